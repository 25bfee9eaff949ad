"""``python -m probekit.coref --gap FILE``: which attention heads link a pronoun to its antecedent (GAP TSV).

The pipeline is :func:`probekit.syntax.coref.coref` (``pk.coref``); this module parses the options, calls it
and writes the run folder.
"""
from __future__ import annotations

from .cli import main_wrapper, options_parser, parse_options
from .core.options import output_options
from .syntax.coref import CorefOptions, coref

OUTPUT = output_options("run folder (default runs/coref-<model>-<time>)")


def build_parser():
    return options_parser("python -m probekit.coref", "Which attention heads link a pronoun to its antecedent "
                          "(GAP TSV)?", CorefOptions, OUTPUT)


def _main(argv=None) -> int:
    options, out = parse_options(build_parser(), argv, OUTPUT)
    result = coref(**options)
    path = result.write(out["out"], overwrite=out["overwrite"], figures=out["figures"])
    if not options["quiet"]:
        from .report.rundir import markdown_table

        print(markdown_table(result.table, floatfmt=".1f"))
    print(f"wrote {path}")
    return 0


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
