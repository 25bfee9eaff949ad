"""``python -m probekit.parse``: attention-only parsing probes on a UD treebank (Clark et al. 2019 Table 3).

Prints the dev UAS of each probe beside the baselines and writes ``results.csv``, ``results.md``, the
attention probes' learned weights (``attn_weights.csv``) and ``config.json``; ``pk.parse(train, dev)`` is the
same from Python.
"""
from __future__ import annotations

from probekit.cli import table_command
from probekit.syntax.parse import ParseOptions, parse

build_parser, main = table_command(
    "python -m probekit.parse", "Attention-only parsing probes and baselines, UAS on a dev treebank (Clark §5).",
    ParseOptions, parse, "run folder (default runs/parse-<model>-<time>)")

if __name__ == "__main__":
    raise SystemExit(main())
