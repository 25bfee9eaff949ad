"""Shared command-line plumbing: the argument parser, common options, one-line errors with exit status 2."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from contextlib import contextmanager
from typing import Callable, Sequence

from ..core.errors import UserError
from .parser import HelpFormatter, Parser  # noqa: F401 (re-exported for the commands)
from ..core.progress import is_quiet, progress, set_quiet  # noqa: F401 (re-exported for the commands)

__all__ = ["HelpFormatter", "Parser", "peek_task", "add_model_options", "add_cache_options",
           "add_common_options", "add_output_options", "add_encoder_source_option", "encoder_source_scope",
           "main_wrapper", "run_and_write", "is_quiet", "progress", "set_quiet"]


def peek_task(argv: Sequence[str], default: str | None = None) -> str | None:
    """The ``--task`` in ``argv`` before full parsing, so a task's own options can join the parser."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--task", default=default)
    return pre.parse_known_args(argv)[0].task


def _add_group(parser: argparse.ArgumentParser, group, names=None, **defaults) -> None:
    """The fields of a shared option group (:mod:`probekit.core.options`) as arguments, for a command whose
    own options are not declared as a dataclass yet; ``defaults`` replace a field's default (batch size)."""
    from .generate import argument_spec
    from ..core.options import ordered_fields

    for f in ordered_fields(group):
        if names is None or f.name in names:
            flags, kw = argument_spec(f)
            if f.name in defaults:
                kw["default"] = defaults[f.name]
            parser.add_argument(*flags, **kw)


def add_model_options(parser: argparse.ArgumentParser, *, batch_size: int = 32) -> None:
    """``--model``, ``--batch-size``, ``--max-length``, ``--device`` as :class:`~probekit.core.options.ModelOptions`
    declares them."""
    from ..core.options import ModelOptions

    _add_group(parser, ModelOptions, batch_size=batch_size)


def add_cache_options(parser: argparse.ArgumentParser) -> None:
    """``--cache-dir``, ``--no-cache``, ``--dtype`` (:class:`~probekit.core.options.CacheOptions`)."""
    from ..core.options import CacheOptions

    _add_group(parser, CacheOptions)


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """``--figures png [svg pdf]``: the formats of every figure a command writes."""
    from ..core.options import output_options

    _add_group(parser, output_options(""), names=("figures",))


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """``--seed``, ``--quiet`` (:class:`~probekit.core.options.RunOptions`) and ``--overwrite``."""
    from ..core.options import RunOptions, output_options

    _add_group(parser, RunOptions)
    _add_group(parser, output_options(""), names=("overwrite",))


def add_encoder_source_option(parser: argparse.ArgumentParser) -> None:
    """``--encoder-source DIR`` (repeatable): where a saved frozen classifier may load its encoder from."""
    parser.add_argument("--encoder-source", action="append", default=[], metavar="DIR",
                        help="a model folder (or a folder of models) a saved frozen classifier may read its encoder "
                             "from when it lies outside the classifier folder; repeatable (as the environment "
                             "variable PROBEKIT_ENCODER_SOURCE)")


@contextmanager
def encoder_source_scope(options: dict):
    """Pops ``encoder_source`` from parsed ``options`` and allows those folders for the block."""
    from ..classify.verify import encoder_sources

    with encoder_sources(*(options.pop("encoder_source", None) or [])):
        yield


def run_and_write(parser: argparse.ArgumentParser, function: Callable, argv: Sequence[str] | None) -> int:
    """The body of most commands: parse ``argv``, call ``function(**options)``, write its result where ``--out``
    says (``--overwrite``, ``--figures``) and print the one closing line (also under ``--quiet``)."""
    options = vars(parser.parse_args(argv))
    out, overwrite = options.pop("out", None), options.pop("overwrite", False)
    figures = options.pop("figures", ("png",))
    with encoder_source_scope(options):
        result = function(**options)
    path = result.write(out, overwrite=overwrite, figures=figures)
    print(f"results: {', '.join(str(path / f) for f in result.files())}")
    return 0


def main_wrapper(main: Callable[[Sequence[str] | None], int | None]) -> Callable[[Sequence[str] | None], int]:
    """Run ``main``; a :class:`UserError` becomes ``probekit: error: …`` on stderr and exit status 2."""

    def run(argv: Sequence[str] | None = None) -> int:
        warnings.filterwarnings("ignore", message=".*TRANSFORMERS_CACHE.*")
        logging.getLogger("transformers").setLevel(logging.ERROR)
        before = set_quiet(False)                 # a command's --quiet ends with the command
        try:
            code = int(main(argv) or 0)
            sys.stdout.flush()
            return code
        except BrokenPipeError:                   # the reader left early (`probekit --help | head`): not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        except UserError as exc:
            msg = " ".join(str(exc).split("\n"))
            print(f"probekit: error: {msg}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("probekit: interrupted", file=sys.stderr)
            return 130
        finally:
            set_quiet(before)

    return run
