"""``python -m probekit.data --task TASK --out DIR``: write a task's generated data as JSON Lines.

So that a user can read exactly what was probed: one record per sentence with its words, tags and split and
its target word index (probing tasks: nth_token, auxiliary, subject, ...), or its condition, source word,
correct group and distractor groups (agreement, reflexive). The same options give the same sentences as
``python -m probekit.probe`` / ``python -m probekit.confusion`` with that seed and size. From Python:
``pk.data(task, **options)`` (:mod:`probekit.corpora.data`).
"""
from __future__ import annotations

import sys
from typing import Sequence

from .cli import Parser, add_common_options, main_wrapper, peek_task
from .corpora.data import CONDITION_TASKS, SENTENCES, data
from .probing.registry import SIZE_NAMES, available_tasks, get_task


def build_parser(task_name: str | None = None) -> Parser:
    tasks = sorted(available_tasks()) + list(CONDITION_TASKS)
    p = Parser(prog="python -m probekit.data", description=__doc__.split("\n\n")[0])
    p.add_argument("--task", required=True, help=f"one of: {', '.join(tasks)}")
    p.add_argument("--out", required=True, help="folder to write <task>.jsonl and config.json into")
    p.add_argument("--size", choices=SIZE_NAMES, default=None, help="probing tasks: data size (default quick)")
    p.add_argument("--sentences", type=int, default=None,
                   help=f"agreement/reflexive: sentences per condition (default {SENTENCES}; A3/A4: half per part)")
    p.add_argument("--conditions", nargs="+", default=None,
                   help="agreement/reflexive: which conditions (default: all of the family)")
    p.add_argument("--tsv", action="store_true",
                   help="agreement/reflexive: also one <condition>.tsv per condition in the format of "
                        "python -m probekit.confusion --data")
    add_common_options(p)
    if task_name in available_tasks() or (task_name or "").endswith(".py"):
        task = get_task(task_name)
        task.add_arguments(p.add_argument_group(f"options of --task {task.name}"))
    return p


def _main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    options = vars(build_parser(peek_task(argv)).parse_args(argv))
    out, overwrite = options.pop("out"), options.pop("overwrite")
    result = data(**options)
    path = result.write(out, overwrite=overwrite)
    counts = result.record["counts"]
    print(f"wrote {len(result.records)} sentences ({', '.join(f'{k}: {v}' for k, v in counts.items())}) "
          f"to {path}/{result.main_table}")
    return 0


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
