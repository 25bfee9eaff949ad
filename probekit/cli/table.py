"""A command that runs one analysis, writes its run folder and prints its table (deps, coref, parse)."""
from __future__ import annotations

from ..core.options import output_options
from .generate import options_parser, parse_options
from .options import main_wrapper
from .parser import Parser


def table_command(prog: str, description: str, options: type, function, out_help: str, floatfmt: str = ".1f"):
    """``(build_parser, main)`` of a command that runs ``function``, writes its run folder and prints its
    ``.table`` (unless ``--quiet``) and where the run went: deps, coref and parse are this and nothing else."""
    output = output_options(out_help)

    def build_parser() -> Parser:
        return options_parser(prog, description, options, output)

    def _main(argv=None) -> int:
        values, out = parse_options(build_parser(), argv, output)
        result = function(**values)
        path = result.write(out["out"], overwrite=out["overwrite"], figures=out["figures"])
        if not values["quiet"]:
            from ..report.rundir import markdown_table

            print(markdown_table(result.table, floatfmt=floatfmt))
        print(f"wrote {path}")
        return 0

    return build_parser, main_wrapper(_main)
