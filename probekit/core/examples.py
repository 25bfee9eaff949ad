"""Examples: plain records over *words*, the unit every analysis works in."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Example:
    """One input sentence (or sentence pair) and the task fields that go with it.

    ``words`` are pre-tokenised words as treebanks give them; with only ``text``, the fast tokenizer's own
    pre-tokenisation defines the words. ``words_b`` makes a pair, ``[CLS] A [SEP] B [SEP]``. ``meta`` holds
    task fields (target, split, condition, heads, deprels …) untouched by extraction.
    """

    words: list[str] | None
    text: str | None = None
    words_b: list[str] | None = None
    tags: list[str] | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.words is None and self.text is None:
            raise ValueError("an Example needs words or text")

    @property
    def n_words(self) -> int:
        return len(self.words or []) + len(self.words_b or [])


def seeded_sample(items: list, limit: int | None, seed: int = 0) -> list:
    """``limit`` items drawn at random (seeded), kept in their order; all of them when ``limit`` is None or not
    smaller. Why not the first N: a file sorted by class (RT lists every negative sentence first) would give one
    class only."""
    import numpy as np

    if not limit or limit >= len(items):
        return list(items)
    keep = np.sort(np.random.default_rng(seed).choice(len(items), size=limit, replace=False))
    return [items[i] for i in keep]
