"""The faithfulness intervals: metrics that are not a mean are recomputed on resampled examples, paired."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from probekit.evaluation import stats


def ctx(seed=0):
    return SimpleNamespace(seed=seed, option=lambda name: 2000)


def test_macro_f1_is_sklearns():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(1)
    for C in (2, 3, 5):
        y, p = rng.integers(0, C, 40), rng.integers(0, C - 1, 40)      # one class never predicted
        assert stats.macro_f1(y, p) == pytest.approx(f1_score(y, p, average="macro", zero_division=0))


def test_macro_f1_difference_is_paired_over_the_same_examples():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    a = np.where(rng.random(300) < 0.9, y, 1 - y)          # right 90 % of the time
    b = np.where(rng.random(300) < 0.7, y, 1 - y)          # right 70 % of the time
    d = stats.metric_difference(ctx(), stats.macro_f1, (y, a), (y, b))
    assert d.estimate == pytest.approx(stats.macro_f1(y, a) - stats.macro_f1(y, b))
    assert d.n == 300 and d.excludes_zero and d.ci_low < d.estimate < d.ci_high
    same = stats.metric_difference(ctx(), stats.macro_f1, (y, a), (y, a))
    assert same.estimate == 0 and not same.excludes_zero
    one = stats.metric_interval(ctx(), stats.macro_f1, y, a)
    assert one.ci_low < stats.macro_f1(y, a) < one.ci_high
    # the same seed gives the same interval
    assert stats.metric_difference(ctx(), stats.macro_f1, (y, a), (y, b)) == d


def test_sentences_follow_the_interval():
    covers = stats.Interval(0.02, -0.03, 0.07, 150)
    assert stats.sentence("a", "b", covers).startswith("no detectable difference")
    assert "higher for b than for a" in stats.sentence("a", "b", stats.Interval(-0.1, -0.15, -0.05, 150))
    assert stats.fmt(stats.Interval(0.5, 0.4, 0.6, 10), pct=True) == "50% (95% CI 40…60%, n = 10)"
