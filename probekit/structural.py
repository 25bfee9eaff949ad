"""``python -m probekit.structural --train F --dev F``: Hewitt & Manning's structural probes on every layer.

Writes ``results.csv`` (UUAS, distance Spearman, root accuracy and depth Spearman per layer and split, with
95 % intervals, the linear-position and non-contextual baselines), ``comparisons.csv``, ``history.csv``, ``results.md``, ``structural_by_layer.png``, ``tree.png`` (one dev
sentence, gold vs predicted) and ``config.json``. ``pk.structural(train=…, dev=…)`` does the same from Python.
"""
from __future__ import annotations

from probekit.cli import results_command
from probekit.probing.structural import StructuralOptions, structural

build_parser, main = results_command(
    "python -m probekit.structural", __doc__.split("\n\n")[0], StructuralOptions, structural,
    "run folder (default runs/structural-<model>-<time>)")

if __name__ == "__main__":
    raise SystemExit(main())
