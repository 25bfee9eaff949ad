"""What the Lin et al. (2019) probing tasks share: split sizes and grammar sentences as Examples."""
from __future__ import annotations

import argparse

from probekit.core.errors import UserError
from probekit.core.examples import Example
from probekit.corpora.grammar import Sentence

#: Sentences per split: train, dev, and each generalization split.
SIZES = {"quick": (4000, 1000, 1000), "paper": (40000, 10000, 10000)}

#: The option the grammar tasks share: ``None`` means the sizes of ``--size``.
OPTIONS = {"split_sizes": None}


def parse_split_sizes(value) -> tuple[int, int, int] | None:
    """``"400,100,100"`` or ``(400, 100, 100)`` → (train, dev, gen), each at least 1; ``None`` stays None."""
    if value is None:
        return None
    try:
        parts = value.replace(" ", "").split(",") if isinstance(value, str) else list(value)
        sizes = tuple(int(t) for t in parts)
        if any(isinstance(t, bool) or (isinstance(t, float) and not t.is_integer()) for t in parts):
            sizes = ()
    except (TypeError, ValueError):
        sizes = ()
    if len(sizes) != 3 or min(sizes) < 1:
        raise UserError(f"--split-sizes: expected three positive counts TRAIN,DEV,GEN, got {value!r}")
    return sizes  # type: ignore[return-value]


def add_split_sizes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--split-sizes", default=OPTIONS["split_sizes"], metavar="TRAIN,DEV,GEN",
                        help="sentences per split, overriding --size (each generalization split gets GEN)")


def check_split_sizes(options: dict) -> dict:
    return {**options, "split_sizes": parse_split_sizes(options.get("split_sizes"))}


def split_sizes(split_sizes: tuple[int, int, int] | None, size: str = "quick") -> tuple[int, int, int]:
    """The given sizes, or those of ``size`` (quick / paper)."""
    return tuple(split_sizes) if split_sizes else SIZES[size]


def example(s: Sentence, split: str, target: int) -> Example:
    """A grammar sentence as an Example with its split, its one target word and its gold tree."""
    return Example(words=list(s.words), tags=list(s.tags),
                   meta={"split": split, "targets": [target], "heads": list(s.heads), "deprels": list(s.deprels)})
