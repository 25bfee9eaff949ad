"""Shared command-line plumbing: the argument parser, common options, one-line errors with exit status 2."""
from __future__ import annotations

import argparse
import logging
import sys
import warnings
from typing import Callable, Sequence

from ..core.errors import UserError
from ..core.progress import is_quiet, progress, set_quiet  # noqa: F401 (re-exported for the commands)

__all__ = ["HelpFormatter", "Parser", "peek_task", "add_model_options", "add_cache_options",
           "add_common_options", "add_output_options", "main_wrapper", "run_and_write", "is_quiet", "progress",
           "set_quiet"]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default unless its help already says it, or there is none worth showing."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr and exit status 2 like every other user error."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # noqa: D401 - argparse API
        raise UserError(f"{self.prog}: {message} (see --help)")


def peek_task(argv: Sequence[str], default: str | None = None) -> str | None:
    """The ``--task`` in ``argv`` before full parsing, so a task's own options can join the parser."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--task", default=default)
    return pre.parse_known_args(argv)[0].task


def add_model_options(parser: argparse.ArgumentParser, *, batch_size: int = 32) -> None:
    parser.add_argument("--model", default=None,
                        help="Hugging Face model id or local folder (default: the bundled all-MiniLM-L6-v2)")
    parser.add_argument("--batch-size", type=int, default=batch_size, help="sentences per forward pass (default %(default)s)")
    parser.add_argument("--max-length", type=int, default=None,
                        help="truncate inputs to this many tokens (default: the model's maximum)")
    parser.add_argument("--device", default="cpu", help="torch device (default %(default)s)")


def add_cache_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-dir", default=None, help="activation cache folder (default: the user's cache directory)")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the activation cache")
    parser.add_argument("--dtype", choices=["float16", "float32"], default="float16",
                        help="precision of stored activations (default %(default)s)")


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """``--figures png [svg pdf]``: the formats of every figure a command writes."""
    parser.add_argument("--figures", nargs="+", choices=["png", "svg", "pdf"], default=["png"], metavar="FORMAT",
                        help="figure formats, any of png svg pdf (default png)")


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --out folder")


def run_and_write(parser: argparse.ArgumentParser, function: Callable, argv: Sequence[str] | None) -> int:
    """The body of most commands: parse ``argv``, call ``function(**options)``, write its result where ``--out``
    says (``--overwrite``, ``--figures``) and print the one closing line (also under ``--quiet``)."""
    options = vars(parser.parse_args(argv))
    out, overwrite = options.pop("out", None), options.pop("overwrite", False)
    figures = options.pop("figures", ("png",))
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
            return int(main(argv) or 0)
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
