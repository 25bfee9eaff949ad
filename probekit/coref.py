"""``python -m probekit.coref --gap FILE``: which attention heads link a pronoun to its antecedent (GAP TSV).

The pipeline is :func:`probekit.syntax.coref.coref` (``pk.coref``); this module parses the options, calls it
and writes the run folder.
"""
from __future__ import annotations

from .cli import table_command
from .syntax.coref import CorefOptions, coref

build_parser, main = table_command(
    "python -m probekit.coref", "Which attention heads link a pronoun to its antecedent (GAP TSV)?",
    CorefOptions, coref, "run folder (default runs/coref-<model>-<time>)")

if __name__ == "__main__":
    raise SystemExit(main())
