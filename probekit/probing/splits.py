"""What the Lin et al. (2019) probing tasks share: split sizes and grammar sentences as Examples."""
from __future__ import annotations

import argparse

from ..core.examples import Example
from ..corpora.grammar import Sentence

#: Sentences per split: train, dev, and each generalization split.
SIZES = {"quick": (4000, 1000, 1000), "paper": (40000, 10000, 10000)}


def parse_split_sizes(text: str) -> tuple[int, int, int]:
    """``"400,100,100"`` → (train, dev, gen), each at least 1."""
    try:
        sizes = tuple(int(t) for t in text.replace(" ", "").split(","))
    except ValueError:
        sizes = ()
    if len(sizes) != 3 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected three positive counts TRAIN,DEV,GEN, got {text!r}")
    return sizes  # type: ignore[return-value]


def add_split_sizes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--split-sizes", type=parse_split_sizes, default=None, metavar="TRAIN,DEV,GEN",
                        help="sentences per split, overriding --size (each generalization split gets GEN)")


def split_sizes(options: argparse.Namespace) -> tuple[int, int, int]:
    given = getattr(options, "split_sizes", None)
    return tuple(given) if given else SIZES[getattr(options, "size", "quick")]


def example(s: Sentence, split: str, target: int) -> Example:
    """A grammar sentence as an Example with its split, its one target word and its gold tree."""
    return Example(words=list(s.words), tags=list(s.tags),
                   meta={"split": split, "targets": [target], "heads": list(s.heads), "deprels": list(s.deprels)})
