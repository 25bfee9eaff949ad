"""The body every command shares: parse the generated parser, call the function, write its run folder, then say
what it wrote. deps, coref, parse and confusion print their table (:func:`table_command`); clusters, structural
and edges the files they wrote (:func:`results_command`); the others pass their own report to :func:`command`."""
from __future__ import annotations

import sys
from contextlib import nullcontext
from dataclasses import dataclass, make_dataclass
from typing import Any, Callable

from probekit.core.options import Options, option, output_options
from probekit.cli.generate import options_parser, parse_options
from probekit.cli.options import main_wrapper, peek_task
from probekit.cli.parser import Parser


@dataclass(frozen=True, kw_only=True)
class EncoderSource(Options):
    """``--encoder-source DIR`` (repeatable): where a saved frozen classifier may load its encoder from. Command
    line only: in Python, ``with pk.encoder_sources(DIR):``."""

    encoder_source: tuple = option((), "a model folder (or a folder of models) a saved frozen classifier may read "
                                       "its encoder from when it lies outside the classifier folder; repeatable (as "
                                       "the environment variable PROBEKIT_ENCODER_SOURCE)",
                                   action="append", metavar="DIR")


def classifier_output(out_help: str, *, required: bool = False, plugins: str | None = None) -> type:
    """The command-line-only options of a command that reads a saved classifier: ``--out``, ``--overwrite``,
    ``--figures`` and ``--encoder-source``; with ``plugins`` (what a plug-in file may register, e.g. "attacks or
    attribution methods") also ``--plugin FILE``, loaded by ``core.plugins.load_plugins`` before parsing."""
    extra = [] if plugins is None else [
        ("plugin", tuple, option((), f"a Python file that registers {plugins} (repeatable); they become choices "
                                     f"of this command", action="append", metavar="FILE"))]
    return make_dataclass("ClassifierOutput", extra, bases=(output_options(out_help, required=required),
                                                             EncoderSource), frozen=True, kw_only=True)


def report_files(result, path, values: dict, out: dict, note: str = "") -> None:
    """The closing line of most commands (also under ``--quiet``): the files the run folder holds."""
    print(f"results: {', '.join(str(path / f) for f in result.files())}{note}")


def command(prog: str, description: str, options: type, function, output: type, report: Callable = report_files,
            *, prepare: Callable | None = None, load: Callable | None = None, extend: Callable | None = None):
    """``(build_parser, main)`` of a command: parse ``argv`` with the parser generated from ``options`` and
    ``output``, call ``function`` (inside ``--encoder-source`` where ``output`` has it), write the run folder,
    then ``report(result, path, values, out)``. ``load(argv)`` runs before the parser is built (plug-in files
    whose names become choices), ``extend(parser, argv)`` adds flags declared elsewhere (a task's or the
    plug-ins' own options), ``prepare(values, out)`` adjusts the parsed values before the call."""

    def build_parser(argv=()) -> Parser:
        if load is not None:
            load(list(argv))
        parser = options_parser(prog, description, options, output)
        if extend is not None:
            extend(parser, list(argv))
        return parser

    def _main(argv=None) -> int:
        argv = list(sys.argv[1:] if argv is None else argv)
        values, out = parse_options(build_parser(argv), argv, output)
        if prepare is not None:
            prepare(values, out)
        with _sources(out.get("encoder_source")):
            result = function(**values)
        path = result.write(out["out"], **{k: out[k] for k in ("overwrite", "figures") if k in out})
        report(result, path, values, out)
        return 0

    return build_parser, main_wrapper(_main)


def task_options(default: str | None = None) -> Callable:
    """``extend`` of a command with ``--task``: the task's own options (``--n`` of nth_token), as a group."""
    def extend(parser, argv) -> None:
        from probekit.probing.registry import available_tasks, get_task

        name = peek_task(argv, default)
        if name in available_tasks() or (name or "").endswith(".py"):
            task = get_task(name)
            task.add_arguments(parser.add_argument_group(f"options of --task {task.name}"))

    return extend


def _sources(folders: Any):
    if not folders:
        return nullcontext()
    from probekit.classifiers.verify import encoder_sources

    return encoder_sources(*folders)


def table_command(prog: str, description: str, options: type, function, out_help: str, floatfmt: str = ".1f",
                  show: Callable | None = None):
    """``(build_parser, main)`` of a command that runs ``function``, writes its run folder and prints its table
    (unless ``--quiet``: ``show(result)``, by default ``.table`` as Markdown) and where the run went: deps, coref,
    parse and confusion are this and nothing else."""
    def report(result, path, values, out) -> None:
        if not values["quiet"]:
            from probekit.core.rundir import markdown_table

            print(show(result) if show is not None else markdown_table(result.table, floatfmt=floatfmt))
        print(f"wrote {path}")

    return command(prog, description, options, function, output_options(out_help), report)


def results_command(prog: str, description: str, options: type, function, out_help: str):
    """``(build_parser, main)`` of a command that runs ``function``, writes its run folder and prints the files it
    wrote (also under ``--quiet``): clusters, structural and edges are this and nothing else."""
    return command(prog, description, options, function, output_options(out_help))
