"""A command that runs one analysis and writes its run folder, then prints its table (deps, coref, parse) or the
files it wrote (clusters, structural, edges)."""
from __future__ import annotations

from typing import Callable

from ..core.options import output_options
from .generate import options_parser, parse_options
from .options import main_wrapper
from .parser import Parser


def _command(prog: str, description: str, options: type, function, out_help: str, report: Callable):
    """``(build_parser, main)``: parse, call ``function``, write the run folder, then ``report(result, path,
    values)`` prints what the command shows."""
    output = output_options(out_help)

    def build_parser() -> Parser:
        return options_parser(prog, description, options, output)

    def _main(argv=None) -> int:
        values, out = parse_options(build_parser(), argv, output)
        result = function(**values)
        path = result.write(out["out"], overwrite=out["overwrite"], figures=out["figures"])
        report(result, path, values)
        return 0

    return build_parser, main_wrapper(_main)


def table_command(prog: str, description: str, options: type, function, out_help: str, floatfmt: str = ".1f"):
    """``(build_parser, main)`` of a command that runs ``function``, writes its run folder and prints its
    ``.table`` (unless ``--quiet``) and where the run went: deps, coref and parse are this and nothing else."""
    def report(result, path, values) -> None:
        if not values["quiet"]:
            from ..report.rundir import markdown_table

            print(markdown_table(result.table, floatfmt=floatfmt))
        print(f"wrote {path}")

    return _command(prog, description, options, function, out_help, report)


def results_command(prog: str, description: str, options: type, function, out_help: str):
    """``(build_parser, main)`` of a command that runs ``function``, writes its run folder and prints the files it
    wrote (also under ``--quiet``): clusters, structural and edges are this and nothing else."""
    def report(result, path, values) -> None:
        print(f"results: {', '.join(str(path / f) for f in result.files())}")

    return _command(prog, description, options, function, out_help, report)
