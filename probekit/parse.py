"""``python -m probekit.parse``: attention-only parsing probes on a UD treebank (Clark et al. 2019 Table 3).

The pipeline is :func:`probekit.syntax.parse.parse` (``pk.parse``); this module parses the options, calls it
and writes the run folder.
"""
from __future__ import annotations

from .cli import table_command
from .syntax.parse import ParseOptions, parse

build_parser, main = table_command(
    "python -m probekit.parse", "Attention-only parsing probes and baselines, UAS on a dev treebank (Clark §5).",
    ParseOptions, parse, "run folder (default runs/parse-<model>-<time>)")

if __name__ == "__main__":
    raise SystemExit(main())
