"""``python -m probekit.parse``: attention-only parsing probes on a UD treebank (Clark et al. 2019 Table 3).

The pipeline is :func:`probekit.syntax.parse.parse` (``pk.parse``); this module parses the options, calls it
and writes the run folder.
"""
from __future__ import annotations

from .cli import main_wrapper, options_parser, parse_options
from .core.options import output_options
from .syntax.parse import ParseOptions, parse

OUTPUT = output_options("run folder (default runs/parse-<model>-<time>)")


def build_parser():
    return options_parser("python -m probekit.parse", "Attention-only parsing probes and baselines, UAS on a dev "
                          "treebank (Clark §5).", ParseOptions, OUTPUT)


def _main(argv=None) -> int:
    options, out = parse_options(build_parser(), argv, OUTPUT)
    result = parse(**options)
    path = result.write(out["out"], overwrite=out["overwrite"], figures=out["figures"])
    if not options["quiet"]:
        from .report.rundir import markdown_table

        print(markdown_table(result.table, floatfmt=".1f"))
    print(f"wrote {path}")
    return 0


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
