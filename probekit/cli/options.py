"""Shared command-line plumbing: the argument parser, ``--task`` read ahead, one-line errors with exit status 2.
The options themselves are declared once (:mod:`probekit.core.options`) and become flags in :mod:`.generate`."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from typing import Callable, Sequence

from probekit.core.errors import UserError
from probekit.cli.parser import HelpFormatter, Parser  # noqa: F401 (re-exported for the commands)
from probekit.core.progress import is_quiet, progress, set_quiet  # noqa: F401 (re-exported for the commands)

__all__ = ["HelpFormatter", "Parser", "peek", "peek_task", "main_wrapper", "is_quiet", "progress", "set_quiet"]


def peek(argv: Sequence[str], flag: str, **spec):
    """The value of ``flag`` in ``argv`` before full parsing (``spec`` as ``add_argument`` takes it), for what
    decides the parser itself: a task's own options, a plug-in file's choices."""
    pre = argparse.ArgumentParser(add_help=False)
    action = pre.add_argument(flag, **spec)
    return getattr(pre.parse_known_args(argv)[0], action.dest)


def peek_task(argv: Sequence[str], default: str | None = None) -> str | None:
    """The ``--task`` in ``argv``, so a task's own options can join the parser."""
    return peek(argv, "--task", default=default)


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
