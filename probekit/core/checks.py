"""Checks of option values, shared by the library functions and the commands.

Every public function checks its keyword arguments with these before doing any work, so a bad value is the same
one-line :class:`UserError` from Python as from the command line (where the option is spelled ``--batch-size``).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable, Sequence

from .errors import UserError


def flag(name: str) -> str:
    """``batch_size`` → ``--batch-size``: errors name the option as the command line spells it."""
    return "--" + name.replace("_", "-")


def integer(name: str, value, *, minimum: int | None = None, maximum: int | None = None,
            optional: bool = False) -> int | None:
    """An int (not a bool, not a float with a fraction) within bounds; ``None`` passes when ``optional``."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int,)) and not (
            isinstance(value, float) and value.is_integer()) and not (isinstance(value, str) and _is_int(value)):
        raise UserError(f"{flag(name)} must be a whole number (got {value!r})")
    value = int(value)
    if minimum is not None and value < minimum:
        raise UserError(f"{flag(name)} must be at least {minimum} (got {value})")
    if maximum is not None and value > maximum:
        raise UserError(f"{flag(name)} must be at most {maximum} (got {value})")
    return value


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def positive(name: str, value, *, optional: bool = False) -> int | None:
    """A whole number ≥ 1."""
    return integer(name, value, minimum=1, optional=optional)


def number(name: str, value, *, minimum: float | None = None, above: float | None = None,
           maximum: float | None = None, optional: bool = False) -> float | None:
    """A finite float; ``above`` is a strict lower bound (``--lr`` must be > 0)."""
    if value is None and optional:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{flag(name)} must be a number (got {value!r})") from None
    if isinstance(value, bool) or not math.isfinite(value):
        raise UserError(f"{flag(name)} must be a finite number (got {value})")
    if above is not None and not value > above:
        raise UserError(f"{flag(name)} must be greater than {above:g} (got {value:g})")
    if minimum is not None and value < minimum:
        raise UserError(f"{flag(name)} must be at least {minimum:g} (got {value:g})")
    if maximum is not None and value > maximum:
        raise UserError(f"{flag(name)} must be at most {maximum:g} (got {value:g})")
    return value


def choice(name: str, value, choices: Iterable[str]):
    choices = list(choices)
    if value not in choices:
        raise UserError(f"{flag(name)} must be one of {', '.join(map(str, choices))} (got {value!r})")
    return value


def choices(name: str, values, allowed: Iterable[str]) -> list:
    """A non-empty list whose every item is allowed (a single string counts as a list of one)."""
    allowed = list(allowed)
    values = [values] if isinstance(values, str) else list(values or [])
    if not values:
        raise UserError(f"{flag(name)} needs at least one of {', '.join(allowed)}")
    bad = [v for v in values if v not in allowed]
    if bad:
        raise UserError(f"{flag(name)}: unknown {', '.join(map(repr, bad))}; choose from {', '.join(allowed)}")
    return values


#: The shortest input any encoder needs: [CLS], one token, [SEP].
MIN_MAX_LENGTH = 3


def max_length(value, name: str = "max_length") -> int | None:
    """``None`` means the model's maximum; anything else must leave room for a word between the special tokens
    (``0`` is refused, not read as "no limit")."""
    return integer(name, value, minimum=MIN_MAX_LENGTH, optional=True)


def model_options(*, batch_size, max_length, device, dtype=None) -> None:
    """The options every command that runs a model shares: ``--batch-size``, ``--max-length``, ``--device``
    and, where activations are cached, ``--dtype``."""
    positive("batch_size", batch_size)
    globals()["max_length"](max_length)
    globals()["device"](device)
    if dtype is not None:
        choice("dtype", dtype, ("float16", "float32"))


def device(value: str, name: str = "device") -> str:
    """A torch device that exists here: ``cpu``, ``cuda``/``cuda:N`` with CUDA available, ``mps`` with MPS."""
    import torch

    text = str(value)
    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise UserError(f"{flag(name)} {text!r} is not a torch device (try cpu or cuda)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"{flag(name)} {text}: CUDA is not available on this machine (use --device cpu)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(f"{flag(name)} {text}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise UserError(f"{flag(name)} {text}: MPS is not available on this machine (use --device cpu)")
    elif dev.type != "cpu":
        raise UserError(f"{flag(name)} {text}: unsupported device type {dev.type!r} (use cpu, cuda or mps)")
    return text


def input_file(name: str, path, what: str | None = None) -> Path:
    """An existing, readable regular file; a folder or a missing path says which it is."""
    if path is None:
        raise UserError(f"{flag(name)} is required")
    p = Path(path)
    label = f"{flag(name)} {p}" if what is None else f"{what} {p}"
    if p.is_dir():
        raise UserError(f"{label} is a folder, not a file")
    if not p.exists():
        raise UserError(f"{label} does not exist")
    if not p.is_file():
        raise UserError(f"{label} is not a regular file")
    if not os.access(p, os.R_OK):
        raise UserError(f"{label} is not readable")
    return p


def input_files(name: str, paths: Sequence | None) -> list[Path]:
    return [input_file(name, p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths or [])]


def output_file(name: str, path) -> Path:
    """Where a single output file goes: not an existing folder, and its folder must be writable (or creatable)."""
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{flag(name)} {p} is a folder; give a file name")
    parent = p.parent if str(p.parent) else Path(".")
    existing = next((q for q in [parent, *parent.parents] if q.exists()), None)
    if existing is not None and not existing.is_dir():
        raise UserError(f"{flag(name)} {p}: {existing} is a file, not a folder")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{flag(name)} {p}: {existing} is not writable")
    return p
