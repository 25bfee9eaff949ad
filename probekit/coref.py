"""``python -m probekit.coref --gap FILE``: which attention heads link a pronoun to its antecedent (GAP TSV).

The pipeline is :func:`probekit.syntax.coref.coref` (``pk.coref``); this module parses the options, calls it
and writes the run folder.
"""
from __future__ import annotations

from .cli import (Parser, add_common_options, add_model_options, add_output_options, main_wrapper,
                  set_quiet)
from .syntax.common import defaults
from .syntax.coref import coref


def build_parser() -> Parser:
    d = defaults(coref)
    p = Parser(prog="python -m probekit.coref",
               description="Which attention heads link a pronoun to its antecedent (GAP TSV)?")
    p.add_argument("--gap", required=True, help="GAP-format TSV (ID, Text, Pronoun, Pronoun-offset, A, ...)")
    p.add_argument("--out", default=None, help="run folder (default runs/coref-<model>-<time>)")
    p.add_argument("--skip-bad", action="store_true", help="skip malformed rows (counted) instead of stopping")
    p.add_argument("--limit", type=int, default=d["limit"], help="use only the first N usable rows (quick runs)")
    p.add_argument("--top", type=int, default=d["top"], help="heads listed in the table (default %(default)s)")
    add_model_options(p, batch_size=d["batch_size"])
    add_output_options(p)
    add_common_options(p)
    return p


def _main(argv=None) -> int:
    options = vars(build_parser().parse_args(argv))
    out, overwrite, figures = options.pop("out"), options.pop("overwrite"), options.pop("figures")
    set_quiet(options["quiet"])
    result = coref(**options)
    path = result.write(out, overwrite=overwrite, figures=figures)
    if not options["quiet"]:
        from .report.rundir import markdown_table

        print(markdown_table(result.table, floatfmt=".1f"))
    print(f"wrote {path}")
    return 0


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
