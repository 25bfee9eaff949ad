"""The baselines of Si et al.'s tables: random guess and always the longest option.

Both need no training. ``random_guess_accuracy`` is the expected accuracy of a uniform guess, the mean of
1/k over the items (0.25 on MCTest). ``longest_option_accuracy`` picks the option with the most
whitespace-separated words; a tie goes to the first of the longest options.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from probekit.corpora.multiple_choice import MCItem


def random_guess_accuracy(items: Sequence[MCItem]) -> float:
    """Expected accuracy of picking an option uniformly at random: mean of 1/k."""
    return float(np.mean([1.0 / len(it.options) for it in items]))


def longest_option_predictions(items: Sequence[MCItem]) -> np.ndarray:
    """[N] index of each item's longest option (most words; the first on a tie)."""
    return np.array([int(np.argmax([len(o.split()) for o in it.options])) for it in items], dtype=np.int64)


def longest_option_accuracy(items: Sequence[MCItem]) -> float:
    """Accuracy of always answering the longest option."""
    pred = longest_option_predictions(items)
    return float(np.mean(pred == np.array([it.answer for it in items])))
