"""``python -m probekit.probe --task TASK``: selection probes on every layer of an encoder.

Writes ``results.csv`` (tidy), ``results.md``, ``accuracy_by_layer.png`` and ``config.json`` into a run
directory. From Python: ``pk.probe(task, **options)`` (:mod:`probekit.probing.probe`).
"""
from __future__ import annotations

import sys
from typing import Sequence

from .cli import main_wrapper, options_parser, parse_options, peek_task
from .core.options import output_options
from .core.plugins import load_plugins
from .probing.probe import ProbeOptions, probe
from .probing.registry import available_tasks

OUTPUT = output_options("run directory (default runs/<task>-<model>-<time>)")
DEFAULT_TASK = ProbeOptions.__dataclass_fields__["task"].default


def build_parser(task_name: str | None = DEFAULT_TASK):
    parser = options_parser("python -m probekit.probe", __doc__.split("\n\n")[0], ProbeOptions, OUTPUT)
    if task_name in available_tasks() or (task_name or "").endswith(".py"):
        from .probing.registry import get_task

        task = get_task(task_name)
        task.add_arguments(parser.add_argument_group(f"options of --task {task.name}"))
    return parser


def _main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    load_plugins(argv)                     # a --plugin file's probes are --probes choices
    options, out = parse_options(build_parser(peek_task(argv, DEFAULT_TASK)), argv, OUTPUT)
    result = probe(**options)
    path = result.write(out["out"], overwrite=out["overwrite"], figures=out["figures"])
    print(f"results: {', '.join(str(path / f) for f in result.files())}")
    return 0


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
