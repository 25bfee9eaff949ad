"""Intervals behind every comparison: paired bootstrap over examples, t over seeds, sentences from intervals."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from probekit.core import intervals as iv


def test_paired_interval_is_narrower_than_unpaired_and_covers_the_shift():
    rng = np.random.default_rng(0)
    difficulty = rng.normal(0, 1, 300)                   # shared by both: pairing cancels it
    a = difficulty + 0.2 + rng.normal(0, 0.1, 300)
    b = difficulty + rng.normal(0, 0.1, 300)
    paired = iv.paired_difference(a, b, seed=1, resamples=2000)
    ua, ub = iv.over_examples(a, seed=1, resamples=2000), iv.over_examples(b, seed=1, resamples=2000)
    assert paired.ci_low < 0.2 < paired.ci_high and paired.excludes_zero and paired.n == 300
    assert paired.ci_high - paired.ci_low < (ua.ci_high - ua.ci_low) / 3
    assert np.isclose(paired.estimate, a.mean() - b.mean())


def test_nan_rows_are_dropped_on_both_sides():
    a = np.array([1.0, 2.0, np.nan, 4.0])
    b = np.array([0.0, np.nan, 1.0, 1.0])
    d = iv.paired_difference(a, b, seed=0, resamples=500)
    assert d.n == 2 and np.isclose(d.estimate, np.mean([1.0, 3.0]))


def test_over_seeds_is_students_t():
    v = np.array([0.80, 0.82, 0.85])
    got = iv.over_seeds(v)
    half = stats.t.ppf(0.975, 2) * v.std(ddof=1) / np.sqrt(3)
    assert np.isclose(got.ci_low, v.mean() - half) and np.isclose(got.ci_high, v.mean() + half)
    assert np.isnan(iv.over_seeds([0.8]).ci_low)


def test_sentences_follow_the_interval():
    tie = iv.Interval(0.02, -0.03, 0.07, 100)
    win = iv.Interval(-0.05, -0.08, -0.02, 100)
    assert iv.compare_sentence("attention", "gradient", tie).startswith("no detectable difference")
    s = iv.compare_sentence("attention", "gradient", win, quantity="τ")
    assert "higher for gradient than for attention" in s and "n = 100" in s


def test_ranking_groups_methods_it_cannot_separate():
    rng = np.random.default_rng(3)
    base = rng.normal(0, 1, 400)
    scores = {"a": base + 1.0, "b": base + 1.0 + rng.normal(0, 0.01, 400), "c": base}
    tiers = iv.ranking(scores, seed=0, resamples=1000)
    assert [sorted(t) for t in tiers] == [["a", "b"], ["c"]]
    assert iv.ranking_sentence(tiers, 400).count(">") == 1


def test_constant_data_gives_a_point_interval():
    got = iv.over_examples(np.ones(10))
    assert got.ci_low == got.ci_high == 1.0


def test_paired_statistic_of_a_ratio_and_statistic_difference():
    """A ratio of sums (UUAS-like: correct edges / edges per sentence) resampled by units; the difference of two
    such ratios on the same units is paired, so a constant shift in every unit gives a point interval."""
    from probekit.core.intervals import paired_statistic, statistic_difference

    rng = np.random.default_rng(0)
    edges = rng.integers(3, 20, size=200).astype(float)
    correct = np.floor(edges * rng.uniform(0.5, 0.9, size=200))
    ratio = lambda c, e: c.sum() / e.sum()                               # noqa: E731
    ci = paired_statistic([correct, edges], ratio, resamples=999)
    assert ci.estimate == pytest.approx(correct.sum() / edges.sum()) and ci.n == 200
    assert ci.ci_low < ci.estimate < ci.ci_high < ci.estimate + 0.05
    same = statistic_difference(ratio, [correct, edges], [correct, edges], resamples=999)
    assert same.estimate == 0 and same.ci_low == 0 and same.ci_high == 0
    better = statistic_difference(ratio, [edges, edges], [correct, edges], resamples=999)
    assert better.excludes_zero and better.estimate == pytest.approx(1 - ci.estimate)
    with pytest.raises(ValueError, match="same units"):
        paired_statistic([correct, edges[:10]], ratio)


def test_a_difference_resting_on_two_sentences_is_not_claimed():
    a = np.zeros(30)
    a[:2] = 1.0                                          # layer A right on 2 more sentences out of 30
    b = np.zeros(30)
    d = iv.paired_difference(a, b, seed=0, resamples=2000)
    assert np.isclose(d.estimate, 2 / 30) and not d.excludes_zero
    assert iv.compare_sentence("layer 6", "layer 4", d).startswith("no detectable difference")
