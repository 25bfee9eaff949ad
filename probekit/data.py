"""``python -m probekit.data --task TASK --out DIR``: write a task's generated data as JSON Lines.

So that a user can read exactly what was probed: one record per sentence with its words, tags and split and
its target word index (probing tasks: nth_token, auxiliary, subject, ...), or its condition, source word,
correct group and distractor groups (agreement, reflexive). The same options give the same sentences as
``python -m probekit.probe`` / ``python -m probekit.confusion`` with that seed and size. From Python:
``pk.data(task, **options)`` (:mod:`probekit.probing.data`).
"""
from __future__ import annotations

from probekit.cli import command, task_options
from probekit.core.options import output_options
from probekit.probing.data import DataOptions, data


def _report(result, path, values: dict, out: dict) -> None:
    counts = result.record["counts"]
    print(f"wrote {len(result.records)} sentences ({', '.join(f'{k}: {v}' for k, v in counts.items())}) "
          f"to {path}/{result.main_table}")


build_parser, main = command(
    "python -m probekit.data", __doc__.split("\n\n")[0], DataOptions, data,
    output_options("folder to write <task>.jsonl and config.json into", required=True, figures=False), _report,
    extend=task_options())

if __name__ == "__main__":
    raise SystemExit(main())
