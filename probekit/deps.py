"""``python -m probekit.deps``: dependency-head accuracy of every attention head (Clark et al. 2019 Table 1).

The pipeline is :func:`probekit.syntax.deps.deps` (``pk.deps``); this module parses the options, calls it and
writes the run folder.
"""
from __future__ import annotations

from probekit.cli import table_command
from probekit.syntax.deps import DepsOptions, deps

build_parser, main = table_command(
    "python -m probekit.deps", "Per-head dependency accuracy with fixed-offset baselines (Clark et al. 2019 §4.2).",
    DepsOptions, deps, "run folder (default runs/deps-<model>-<time>)")

if __name__ == "__main__":
    raise SystemExit(main())
