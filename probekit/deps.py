"""``python -m probekit.deps``: dependency-head accuracy of every attention head (Clark et al. 2019 Table 1).

The pipeline is :func:`probekit.syntax.deps.deps` (``pk.deps``); this module parses the options, calls it and
writes the run folder.
"""
from __future__ import annotations

from .cli import main_wrapper, options_parser, parse_options
from .core.options import output_options
from .syntax.deps import DepsOptions, deps

OUTPUT = output_options("run folder (default runs/deps-<model>-<time>)")


def build_parser():
    return options_parser("python -m probekit.deps", "Per-head dependency accuracy with fixed-offset baselines "
                          "(Clark et al. 2019 §4.2).", DepsOptions, OUTPUT)


def _main(argv=None) -> int:
    options, out = parse_options(build_parser(), argv, OUTPUT)
    result = deps(**options)
    path = result.write(out["out"], overwrite=out["overwrite"], figures=out["figures"])
    if not options["quiet"]:
        from .report.rundir import markdown_table

        print(markdown_table(result.table, floatfmt=".1f"))
    print(f"wrote {path}")
    return 0


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
