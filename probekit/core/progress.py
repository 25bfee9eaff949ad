"""Progress bars and quiet mode, shared by the library and the commands.

Quiet is scoped: ``with quiet():`` (``pk.quiet()``) silences probekit's bars inside the block and restores them
afterwards, and a library function's ``quiet=True`` lasts for that call only (:func:`quiet_option`). Only the
command line sets the process-wide default (:func:`set_quiet`). transformers' own bars (``Loading weights 0/103``)
are always off while probekit works: its own bars say what is happening.

In Jupyter the bars are widgets when ipywidgets is installed, else plain text bars (never tqdm's "IProgress not
found" warning).
"""
from __future__ import annotations

import functools
import inspect
import os
import sys
import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterable

_DEFAULT = False                                          # the command line's --quiet
_SCOPE: ContextVar[bool] = ContextVar("probekit_quiet", default=False)


def set_quiet(quiet: bool) -> bool:
    """The process-wide default, for the command layer and scripts (returns the previous one); library code
    uses :func:`quiet`."""
    global _DEFAULT
    before, _DEFAULT = _DEFAULT, bool(quiet)
    _hf_bars(False)
    return before


def is_quiet() -> bool:
    return _DEFAULT or _SCOPE.get()


def _hf_bars(enabled: bool) -> bool:
    """Turn transformers' own bars on or off; returns whether they were on (its logs stay at errors only)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - transformers is a dependency
        return True
    hf_logging.set_verbosity_error()
    before = hf_logging.is_progress_bar_enabled()
    (hf_logging.enable_progress_bar if enabled else hf_logging.disable_progress_bar)()
    return before


@contextmanager
def quiet(on: bool = True):
    """Progress bars off inside the block when ``on`` (an enclosing quiet block is never undone by an inner one)."""
    token = _SCOPE.set(_SCOPE.get() or bool(on))
    before = _hf_bars(False)
    try:
        yield
    finally:
        _SCOPE.reset(token)
        _hf_bars(before)


def quiet_option(fn):
    """Decorator: ``fn``'s own ``quiet`` argument holds for the duration of the call only."""
    sig = inspect.signature(fn)
    default = sig.parameters["quiet"].default

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        given = sig.bind_partial(*args, **kwargs).arguments.get("quiet", default)
        with quiet(bool(given)):
            return fn(*args, **kwargs)

    return wrapper


def in_notebook() -> bool:
    """True inside a Jupyter kernel (notebook, lab, VS Code), false in a terminal or an IPython console."""
    shell = sys.modules.get("IPython")
    if "ipykernel.zmqshell" not in sys.modules or shell is None:
        return False
    try:
        return shell.get_ipython().__class__.__name__ == "ZMQInteractiveShell"
    except AttributeError:  # pragma: no cover - a very old IPython
        return False


def bar_class():
    """tqdm's widget bar in a notebook with ipywidgets, else its text bar.

    ``tqdm.auto`` warns ("IProgress not found …") in a notebook without ipywidgets before falling back; the
    choice is made here instead, so the text bar comes without the warning.
    """
    if in_notebook():
        try:
            import ipywidgets  # noqa: F401
            from tqdm.notebook import tqdm as notebook_tqdm

            return notebook_tqdm
        except ImportError:
            pass
    from tqdm.std import tqdm

    return tqdm


def progress(iterable: Iterable | None = None, *, desc: str = "", total: int | None = None, unit: str = "it",
             **kwargs):
    """A tqdm bar (on stderr in a terminal; a widget or text in Jupyter), off while quiet."""
    kwargs.setdefault("leave", False)
    cls = bar_class()
    if in_notebook() and cls.__module__ == "tqdm.std":
        kwargs.setdefault("position", 0)     # Jupyter's text output has no cursor-up: nested bars share one line
    return cls(iterable, desc=desc, total=total, unit=unit, disable=is_quiet(), file=sys.stderr, **kwargs)


def postfix(bar, every: float = 0.5):
    """A callable that sets ``bar``'s trailing text (e.g. an L-BFGS step inside one probe fit), redrawn at most
    every ``every`` seconds, so a bar whose count moves slowly still shows work going on."""
    last = [float("-inf")]

    def tell(text: str) -> None:
        now = time.monotonic()
        if getattr(bar, "disable", False) or now - last[0] < every:
            return
        last[0] = now
        bar.set_postfix_str(text, refresh=True)

    return tell
