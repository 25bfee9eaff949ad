"""95 % intervals for every number a summary compares, and the sentences that report them.

Two kinds, one shape (:class:`Interval`: estimate, ci_low, ci_high, n):

- over **examples**, by bootstrap (``scipy.stats.bootstrap``, seeded; the envelope of its BCa and percentile
  intervals, since BCa alone is too narrow on small discrete samples). When the same examples are scored
  twice (two methods, two orderings, a model before and after), the difference is bootstrapped *paired*, so
  example difficulty cancels: :func:`paired_difference`.
- over **seeds**, by Student's t (a handful of seeds is too few to resample): :func:`over_seeds`.

Summaries are written from the intervals (:func:`compare_sentence`, :func:`ranking`): a difference whose
interval covers 0 is "no detectable difference", and a ranking groups methods it cannot separate.
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

LEVEL = 0.95
RESAMPLES = 9999


@dataclass(frozen=True)
class Interval:
    """A point estimate with its 95 % interval and the number of examples (or seeds) it stands on."""
    estimate: float
    ci_low: float
    ci_high: float
    n: int

    @property
    def excludes_zero(self) -> bool:
        return bool(np.isfinite(self.ci_low) and np.isfinite(self.ci_high)
                    and (self.ci_low > 0 or self.ci_high < 0))

    def columns(self, prefix: str = "") -> dict:
        """``{prefix}ci_low``, ``{prefix}ci_high``, ``{prefix}n`` for a tidy table row (the estimate is ``value``)."""
        return {f"{prefix}ci_low": self.ci_low, f"{prefix}ci_high": self.ci_high, f"{prefix}n": self.n}

    def text(self, digits: int = 3) -> str:
        if not np.isfinite(self.ci_low):
            return f"{self.estimate:.{digits}f} (no interval, n = {self.n})"
        return f"{self.estimate:.{digits}f} (95% CI {self.ci_low:.{digits}f}…{self.ci_high:.{digits}f}, n = {self.n})"

    def as_dict(self) -> dict:
        return asdict(self)


def _clean(values) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64).ravel()
    return a[np.isfinite(a)]


def _bootstrap(samples: Sequence[np.ndarray], statistic: Callable, *, paired: bool, seed: int,
               resamples: int, vectorized: bool = False) -> tuple[float, float]:
    from scipy.stats import bootstrap

    n = len(samples[0])
    if n < 2:
        return float("nan"), float("nan")
    point = statistic(*samples)
    if all(np.ptp(s) == 0 for s in samples):        # constant data: every resample gives the same value
        return float(point), float(point)
    # a vectorized statistic sees a batch of resamples at once: batches cap memory at ~2e7 values
    batch = max(1, int(2e7 // n)) if vectorized else None
    with warnings.catch_warnings():           # BCa undefined on near-degenerate data: the percentile below
        warnings.simplefilter("ignore")
        res = bootstrap(tuple(samples), statistic, n_resamples=resamples, confidence_level=LEVEL, method="BCa",
                        paired=paired, vectorized=vectorized, batch=batch, rng=np.random.default_rng(seed))
    dist = np.asarray(res.bootstrap_distribution, dtype=np.float64)
    dist = dist[np.isfinite(dist)]
    tail = 100 * (1 - LEVEL) / 2
    p_low, p_high = (np.percentile(dist, [tail, 100 - tail]) if len(dist) else (np.nan, np.nan))
    b_low, b_high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (np.isfinite(b_low) and np.isfinite(b_high)):   # BCa undefined (e.g. a near-degenerate sample)
        return float(p_low), float(p_high)
    # the envelope of BCa and percentile: BCa corrects bias and skew but is too narrow on small discrete samples
    # (a 0/1 difference resting on two sentences); the envelope never claims more than either interval
    return float(min(b_low, p_low)), float(max(b_high, p_high))


def over_examples(values, *, statistic: Callable = np.mean, seed: int = 0,
                  resamples: int = RESAMPLES, vectorized: bool = False) -> Interval:
    """``statistic`` of per-example ``values`` (NaN dropped) with a bootstrap interval over the examples.
    ``vectorized``: ``statistic`` takes ``axis=`` (``np.mean`` does), so resamples are computed in batches —
    much faster when many intervals are needed (one per layer × probe × split)."""
    a = _clean(values)
    if not len(a):
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    low, high = _bootstrap([a], statistic, paired=False, seed=seed, resamples=resamples, vectorized=vectorized)
    return Interval(float(statistic(a)), low, high, len(a))


def paired_difference(a, b, *, statistic: Callable = np.mean, seed: int = 0,
                      resamples: int = RESAMPLES, vectorized: bool = False) -> Interval:
    """``statistic(a) − statistic(b)`` on the examples both score (a row with a NaN on either side is dropped),
    with a paired bootstrap interval: each resample draws the same examples for both."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same examples ({len(a)} vs {len(b)})")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if not len(a):
        return Interval(float("nan"), float("nan"), float("nan"), 0)

    def diff(x, y, **axis):
        return statistic(x, **axis) - statistic(y, **axis)

    low, high = _bootstrap([a, b], diff, paired=True, seed=seed, resamples=resamples, vectorized=vectorized)
    return Interval(float(diff(a, b)), low, high, len(a))


def paired_statistic(samples: Sequence, statistic: Callable, *, seed: int = 0,
                     resamples: int = RESAMPLES) -> Interval:
    """``statistic(*samples)`` of several per-unit arrays of the same units (a ratio of sums, say), with a paired
    bootstrap interval: each resample draws the same units for every array. Units with a NaN are dropped."""
    arrays = [np.asarray(s, dtype=np.float64).ravel() for s in samples]
    if len({len(a) for a in arrays}) != 1:
        raise ValueError(f"paired values need the same units ({[len(a) for a in arrays]})")
    keep = np.logical_and.reduce([np.isfinite(a) for a in arrays])
    arrays = [a[keep] for a in arrays]
    if not len(arrays[0]):
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    low, high = _bootstrap(arrays, statistic, paired=True, seed=seed, resamples=resamples)
    return Interval(float(statistic(*arrays)), low, high, len(arrays[0]))


def statistic_difference(statistic: Callable, a: Sequence, b: Sequence, *, seed: int = 0,
                         resamples: int = RESAMPLES) -> Interval:
    """``statistic(*a) − statistic(*b)``, where ``a`` and ``b`` are per-unit arrays of the same units (a metric's
    parts under two probes, say), with a paired bootstrap interval (:func:`paired_statistic`)."""
    k = len(a)
    return paired_statistic([*a, *b], lambda *x: statistic(*x[:k]) - statistic(*x[k:]), seed=seed,
                            resamples=resamples)


def over_seeds(values) -> Interval:
    """Mean over seeds with a Student-t interval (NaN interval for a single seed)."""
    from scipy.stats import t

    a = _clean(values)
    n = len(a)
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    mean = float(a.mean())
    if n < 2:
        return Interval(mean, float("nan"), float("nan"), n)
    half = float(t.ppf(0.5 + LEVEL / 2, n - 1) * a.std(ddof=1) / np.sqrt(n))
    return Interval(mean, mean - half, mean + half, n)


def compare_sentence(name_a: str, name_b: str, diff: Interval, *, quantity: str = "", digits: int = 3,
                     higher: str = "higher") -> str:
    """One sentence for ``a − b`` that says only what the interval supports."""
    what = f"{quantity} " if quantity else ""
    ci = (f"95% CI {diff.ci_low:+.{digits}f}…{diff.ci_high:+.{digits}f}" if np.isfinite(diff.ci_low)
          else "no interval")
    detail = f"difference {diff.estimate:+.{digits}f}, {ci}, n = {diff.n}"
    if not diff.excludes_zero:
        return f"no detectable difference in {what}between {name_a} and {name_b} ({detail})"
    first, second = (name_a, name_b) if diff.estimate > 0 else (name_b, name_a)
    return f"{what}is {higher} for {first} than for {second} ({detail})".strip()


def ranking(scores: Mapping[str, np.ndarray], *, higher_is_better: bool = True, seed: int = 0,
            statistic: Callable = np.mean, resamples: int = RESAMPLES, vectorized: bool = False) -> list[list[str]]:
    """Names in tiers, best first. Methods are ordered by ``statistic``; each tier starts at the best remaining
    method and takes every other one whose paired difference to it has an interval covering 0 (a tie).
    ``vectorized``: as for :func:`over_examples`."""
    sign = 1.0 if higher_is_better else -1.0
    order = sorted(scores, key=lambda k: -sign * statistic(_clean(scores[k])) if len(_clean(scores[k])) else np.inf)
    tiers: list[list[str]] = []
    left = list(order)
    while left:
        lead = left.pop(0)
        tier, rest = [lead], []
        for name in left:
            d = paired_difference(scores[lead], scores[name], statistic=statistic, seed=seed, resamples=resamples,
                                  vectorized=vectorized)
            (rest if d.excludes_zero else tier).append(name)
        tiers.append(tier)
        left = rest
    return tiers


def ranking_sentence(tiers: Sequence[Sequence[str]], n: int) -> str:
    """"a > b = c > d (n = …)": ``=`` joins methods whose paired intervals cannot separate them."""
    return " > ".join(" = ".join(t) for t in tiers) + f" (paired 95% intervals, n = {n})"
