"""The faithfulness experiments' intervals, from :mod:`probekit.core.intervals`, with the run's seed and
``--resamples``.

Every number a finding compares carries a 95 % interval and the ``n`` it stands on (``ci_low``, ``ci_high``,
``n`` columns): a bootstrap over the evaluation examples, *paired* when the same examples are scored twice
(two orderings, two methods, two heads), so example difficulty cancels. Metrics that are not a mean of
per-example values (macro-F1, ERASER's micro F1s) are bootstrapped through the example indices:
:func:`metric_interval` and :func:`metric_difference` resample rows and recompute the metric on them.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from probekit.core import intervals as iv
from probekit.core.intervals import Interval

#: fewest and most bootstrap resamples ``--resamples`` accepts (below 1000 the 2.5 % tails rest on < 25 draws)
RESAMPLES_RANGE = (1000, 1_000_000)
NONE = Interval(float("nan"), float("nan"), float("nan"), 0)


def resamples(ctx) -> int:
    return int(ctx.option("resamples"))


def over_examples(ctx, values, statistic: Callable = np.mean, *, vectorized: bool = False) -> Interval:
    """``statistic`` of per-example ``values`` (NaN dropped) with a bootstrap interval over the examples
    (``vectorized``: as for :func:`probekit.core.intervals.over_examples`)."""
    return iv.over_examples(values, statistic=statistic, seed=int(ctx.seed), resamples=resamples(ctx),
                            vectorized=vectorized)


def share(ctx, flags) -> Interval:
    """A share of examples (0/1 flags, NaN dropped) with its bootstrap interval."""
    return over_examples(ctx, np.asarray(flags, dtype=np.float64))


def difference(ctx, a, b, statistic: Callable = np.mean) -> Interval:
    """``statistic(a) − statistic(b)`` on the examples both define, paired bootstrap interval."""
    return iv.paired_difference(a, b, statistic=statistic, seed=int(ctx.seed), resamples=resamples(ctx))


def _indexed(fn: Callable, columns: list[np.ndarray]) -> Callable:
    def statistic(idx):
        rows = np.asarray(idx, dtype=np.int64)
        return float(fn(*(c[rows] for c in columns)))

    return statistic


def metric_interval(ctx, fn: Callable, *columns) -> Interval:
    """``fn(*columns)`` (a metric over rows, e.g. macro-F1 of (y, pred)) with a bootstrap interval that
    resamples the rows."""
    cols = [np.asarray(c) for c in columns]
    if not len(cols[0]):
        return NONE
    return iv.over_examples(np.arange(len(cols[0]), dtype=np.float64), statistic=_indexed(fn, cols),
                            seed=int(ctx.seed), resamples=resamples(ctx))


def metric_difference(ctx, fn: Callable, a: tuple, b: tuple) -> Interval:
    """``fn(*a) − fn(*b)`` where ``a`` and ``b`` are column tuples over the same rows (the same examples),
    with a paired bootstrap interval: each resample draws the same rows for both."""
    a, b = [np.asarray(c) for c in a], [np.asarray(c) for c in b]
    n = len(a[0])
    if not n:
        return NONE
    stacked = [np.concatenate([x, y]) for x, y in zip(a, b)]          # rows 0…n−1: a, n…2n−1: b
    idx = np.arange(n, dtype=np.float64)
    return iv.paired_difference(idx, idx + n, statistic=_indexed(fn, stacked), seed=int(ctx.seed),
                                resamples=resamples(ctx))


def macro_f1(y, pred) -> float:
    """Macro-F1 over the classes present in ``y`` or ``pred``, F1 = 2tp / (2tp + fp + fn) per class: sklearn's
    ``f1_score(average="macro")``, counted with bincount because a bootstrap calls it thousands of times."""
    y, pred = np.asarray(y, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    if not len(y):
        return float("nan")
    C = int(max(y.max(), pred.max())) + 1
    tp = np.bincount(y[y == pred], minlength=C)
    true, predicted = np.bincount(y, minlength=C), np.bincount(pred, minlength=C)
    present = (true + predicted) > 0
    return float(np.mean(2 * tp[present] / (true[present] + predicted[present])))


def accuracy(y, pred) -> float:
    return float(np.mean(np.asarray(y) == np.asarray(pred))) if len(y) else float("nan")


def fmt(i: Interval, digits: int = 3, pct: bool = False) -> str:
    """"0.123 (95% CI 0.100…0.150, n = 200)", or as percentages with ``pct``."""
    if not pct:
        return i.text(digits)
    if not np.isfinite(i.ci_low):
        return f"{100 * i.estimate:.0f}% (no interval, n = {i.n})"
    return f"{100 * i.estimate:.0f}% (95% CI {100 * i.ci_low:.0f}…{100 * i.ci_high:.0f}%, n = {i.n})"


def columns(i: Interval | None) -> dict:
    """The ``ci_low``, ``ci_high``, ``n`` cells of a table row (empty for None)."""
    if i is None:
        return {"ci_low": np.nan, "ci_high": np.nan, "n": np.nan}
    return {"ci_low": i.ci_low, "ci_high": i.ci_high, "n": i.n}


def sentence(name_a: str, name_b: str, d: Interval, *, quantity: str = "", higher: str = "higher") -> str:
    return iv.compare_sentence(name_a, name_b, d, quantity=quantity, higher=higher)
