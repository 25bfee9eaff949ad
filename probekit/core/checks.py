"""Checks of option values, shared by the library functions and the commands.

Every public function checks its keyword arguments with these before doing any work, so a bad value is the same
one-line :class:`UserError` from Python as from the command line (where the option is spelled ``--batch-size``).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable, Sequence

from probekit.core.errors import UserError


def flag(name: str) -> str:
    """``batch_size`` → ``--batch-size``: errors name the option as the command line spells it."""
    return "--" + name.replace("_", "-")


#: numpy's legacy seeds and scikit-learn's ``random_state`` take 0 … 2**32 − 1
MAX_SEED = 2**32 - 1

#: Work sizes every command bounds before it starts, by option name: (minimum, maximum, why the maximum). A
#: value past the maximum would run for hours or exhaust memory before giving anything back; the bounds are far
#: above what the papers use, so no published setting is refused.
WORK_BOUNDS: dict[str, tuple[int, int, str]] = {
    "steps": (1, 1000, "integrated gradients converges long before, and its Gauss-Legendre nodes cost steps³ time"),
    "retry_steps": (1, 1000, "integrated gradients converges long before, and its Gauss-Legendre nodes cost "
                             "steps³ time"),
    "epochs": (1, 10_000, "a run this long would not finish"),
    "draws": (1, 10_000, "seeded draws beyond this change no reported mean"),
    "random_draws": (1, 10_000, "seeded draws beyond this change no reported mean"),
    "permutations": (1, 100_000, "Jain & Wallace used 100 permutations per example"),
    "candidates": (1, 1000, "Jain & Wallace used a handful of adversarial candidates"),
    "adversary_steps": (1, 100_000, "the adversary's optimisation converges long before"),
    "seeds": (1, 1000, "Wiegreffe & Pinter retrained 8 seeds"),
    "k": (1, 100_000, "k-means with more clusters than this is not a summary"),
    "seed": (0, MAX_SEED, "numpy's and scikit-learn's seeds are 0 … 2**32 − 1"),
}

#: Learning rates outside this range diverge or do nothing; refused before training instead of after it.
LR_RANGE = (0.0, 10.0)


def integer(name: str, value, *, minimum: int | None = None, maximum: int | None = None,
            optional: bool = False) -> int | None:
    """An int (not a bool, not a float with a fraction) within bounds; ``None`` passes when ``optional``.
    Options named in :data:`WORK_BOUNDS` are held to those bounds too, whoever checks them."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int,)) and not (
            isinstance(value, float) and value.is_integer()) and not (isinstance(value, str) and _is_int(value)):
        raise UserError(f"{flag(name)} must be a whole number (got {value!r})")
    value = int(value)
    why = ""
    if name in WORK_BOUNDS:
        low, high, why = WORK_BOUNDS[name]
        minimum = low if minimum is None else max(minimum, low)
        why = why if maximum is None or maximum >= high else ""     # the caller's own bound is the tighter one
        maximum = high if maximum is None else min(maximum, high)
    if minimum is not None and value < minimum:
        raise UserError(f"{flag(name)} must be at least {minimum} (got {value})")
    if maximum is not None and value > maximum:
        raise UserError(f"{flag(name)} must be at most {maximum} (got {value})" + (f": {why}" if why else ""))
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
    if name.endswith("lr") and value > LR_RANGE[1]:       # --lr, --head-lr, --adversary-lr
        raise UserError(f"{flag(name)} must be at most {LR_RANGE[1]:g} (got {value:g}): a larger learning rate "
                        f"diverges at the first step")
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


def output_file(name: str, path, *, overwrite: bool = False, inputs: Iterable = ()) -> Path:
    """Where a single output file goes, checked before any work: not a folder, its folder writable (or
    creatable), not an existing file unless ``overwrite``, and never one of the run's ``inputs`` (so an output
    cannot replace the data it was computed from). Write it with :func:`probekit.core.outputs.write_atomic`."""
    if path is None or not str(path).strip():
        raise UserError(f"{flag(name)} needs a file name")
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{flag(name)} {p} is a folder; give a file name")
    parent = p.parent if str(p.parent) else Path(".")
    existing = next((q for q in [parent, *parent.parents] if q.exists()), None)
    if existing is not None and not existing.is_dir():
        raise UserError(f"{flag(name)} {p}: {existing} is a file, not a folder")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{flag(name)} {p}: {existing} is not writable")
    for given in inputs:
        if isinstance(given, (str, os.PathLike)) and _same_file(p, Path(given)):
            raise UserError(f"{flag(name)} {p} is also an input of this run ({given}); write to another file")
    if p.exists() and not overwrite:
        raise UserError(f"{flag(name)} {p} already exists (pass --overwrite to replace it)")
    return p


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def available_memory(device: str = "cpu") -> int | None:
    """Bytes free for new tensors on ``device`` (CUDA: free device memory; CPU: ``MemAvailable``), or None
    when this system does not say."""
    if str(device).startswith("cuda"):
        import torch

        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_fits(what: str, nbytes: float, *, device: str = "cpu", advice: str = "") -> None:
    """Refuse, before the allocation, work estimated to need more than the free memory of ``device``."""
    free = available_memory(device)
    if free is not None and nbytes > free:
        raise UserError(f"{what} needs about {_gib(nbytes)} of memory, more than the {_gib(free)} free on {device}"
                        + (f"; {advice}" if advice else ""))


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def ig_memory(*, steps: int, rows: int, length: int, hidden: int, layers: int) -> float:
    """Bytes integrated gradients holds at once when each forward pass takes ``rows`` rows (Captum's
    ``internal_batch_size``; the steps of an example are spread over passes): one pass's activations kept for
    backpropagation (rows × length × hidden × ~16 float32 tensors per layer), the gradients summed over the
    steps (rows × length × hidden) and the Gauss-Legendre nodes' eigenproblem (steps² doubles)."""
    per_pass = 4.0 * rows * length * hidden
    return per_pass * 16 * (layers + 1) + per_pass + 8.0 * steps ** 2


def scorable_words(name: str, path, examples, left_out=frozenset({"PUNCT"})) -> None:
    """Refuse data whose every word carries a tag the scores leave out (all punctuation): the run would end in
    an empty table instead of saying why."""
    if examples and all(t in left_out for ex in examples for t in (ex.tags or ["?"])):
        raise UserError(f"{flag(name)} {path}: every word is punctuation (UPOS PUNCT), which the scores leave out; "
                        f"nothing would be scored")
