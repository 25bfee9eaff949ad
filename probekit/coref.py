"""``python -m probekit.coref --gap FILE``: which attention heads link a pronoun to its antecedent (GAP TSV).

Prints Clark et al.'s Table 2 (the baselines, then the best heads) and writes ``results.csv`` (every head and
baseline), ``results.md``, ``heads.png`` and ``config.json``; ``pk.coref(gap)`` is the same from Python.
"""
from __future__ import annotations

from probekit.cli import table_command
from probekit.syntax.coref import CorefOptions, coref

build_parser, main = table_command(
    "python -m probekit.coref", "Which attention heads link a pronoun to its antecedent (GAP TSV)?",
    CorefOptions, coref, "run folder (default runs/coref-<model>-<time>)")

if __name__ == "__main__":
    raise SystemExit(main())
