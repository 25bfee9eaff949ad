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

from .cli import main_wrapper, options_parser, parse_options, peek_task
from .core.options import output_options
from .corpora.data import DataOptions, data
from .probing.registry import available_tasks, get_task

OUTPUT = output_options("folder to write <task>.jsonl and config.json into", required=True, figures=False)


def build_parser(task_name: str | None = None):
    p = options_parser("python -m probekit.data", __doc__.split("\n\n")[0], DataOptions, OUTPUT)
    if task_name in available_tasks() or (task_name or "").endswith(".py"):
        task = get_task(task_name)
        task.add_arguments(p.add_argument_group(f"options of --task {task.name}"))
    return p


def _main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    options, out = parse_options(build_parser(peek_task(argv)), argv, OUTPUT)
    result = data(**options)
    path = result.write(out["out"], overwrite=out["overwrite"])
    counts = result.record["counts"]
    print(f"wrote {len(result.records)} sentences ({', '.join(f'{k}: {v}' for k, v in counts.items())}) "
          f"to {path}/{result.main_table}")
    return 0


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
