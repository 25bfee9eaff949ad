"""Progress bars and quiet mode, shared by the library and the commands."""
from __future__ import annotations

import os
import sys
from typing import Iterable

_QUIET = False


def set_quiet(quiet: bool) -> None:
    """Silence probekit's progress bars and the chatter of transformers (its own bars and logs)."""
    global _QUIET
    _QUIET = quiet
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        if quiet:
            hf_logging.disable_progress_bar()
        else:
            hf_logging.enable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


def is_quiet() -> bool:
    return _QUIET


def progress(iterable: Iterable | None = None, *, desc: str = "", total: int | None = None, unit: str = "it"):
    """A tqdm bar on stderr, off under ``--quiet``."""
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, unit=unit, disable=_QUIET, leave=False, file=sys.stderr)
