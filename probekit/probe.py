"""``python -m probekit.probe --task TASK``: selection probes on every layer of an encoder.

Writes ``results.csv`` (tidy), ``results.md``, ``accuracy_by_layer.png`` and ``config.json`` into a run
directory. From Python: ``pk.probe(task, **options)`` (:mod:`probekit.probing.probe`).
"""
from __future__ import annotations

from probekit.cli import command, task_options
from probekit.core.options import output_options
from probekit.core.plugins import load_plugins
from probekit.probing.probe import ProbeOptions, probe

build_parser, main = command(
    "python -m probekit.probe", __doc__.split("\n\n")[0], ProbeOptions, probe,
    output_options("run directory (default runs/<task>-<model>-<time>)"),
    extend=task_options(ProbeOptions.__dataclass_fields__["task"].default), load=load_plugins)

if __name__ == "__main__":
    raise SystemExit(main())
