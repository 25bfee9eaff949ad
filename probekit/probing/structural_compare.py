"""Intervals and paired comparisons for the structural probes, from each sentence's part of a metric.

A row's interval is Student's t over seeds when there are several, else a BCa bootstrap over sentences of the
metric itself (UUAS resamples sentences with their edges, so it stays a ratio of sums; the Spearman averages
keep their within-length, then over-lengths form). Comparisons resample the same sentences for both sides
(:func:`probekit.core.intervals.paired_statistic`): the layer best on dev against the runner-up, the
non-contextual probe and the linear-position baseline, on test when there is one.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from probekit.core import intervals as iv
from probekit.probing import structural_probes as sp

LABELS = {"uuas": "UUAS", "dspr": "distance Spearman", "root_acc": "root accuracy", "nspr": "depth Spearman"}
KIND = {m: k for k, ms in sp.METRICS.items() for m in ms}


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():          # BCa on a near-constant sample falls back to percentile quietly
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def row_interval(metric: str, runs: list[dict], seed: int, resamples: int) -> dict:
    """``value`` (mean over seeds), ``ci_low``, ``ci_high``, ``n`` (seeds or sentences) and ``ci_over``."""
    cols, fn = sp.AGGREGATES[metric]
    values = [fn(*[r[c] for c in cols]) for r in runs]
    if len(runs) > 1:
        ci, over = iv.over_seeds(values), "seeds"
    else:
        ci = _quiet(iv.paired_statistic, [runs[0][c] for c in cols], fn, seed=seed, resamples=resamples)
        over = "sentences"
    return {"value": float(np.nanmean(values)) if np.isfinite(values).any() else float("nan"),
            "ci_low": ci.ci_low, "ci_high": ci.ci_high, "n": ci.n, "ci_over": over}


def difference(metric: str, a: dict, b: dict, *, seed: int = 0, resamples: int = iv.RESAMPLES) -> iv.Interval:
    """metric(a) − metric(b) on the same sentences, with a paired bootstrap interval."""
    cols, fn = sp.AGGREGATES[metric]
    return _quiet(iv.statistic_difference, fn, [a[c] for c in cols], [b[c] for c in cols], seed=seed,
                  resamples=resamples)


def comparisons(frame: pd.DataFrame, scores: dict, *, seed: int = 0, resamples: int = iv.RESAMPLES) -> pd.DataFrame:
    """One row per comparison the summary states: split, metric, a, b, value (a − b), ci_low, ci_high, n,
    sentence. The best layer is the one with the highest dev value, so a test comparison is not chosen on test."""
    split = "test" if (frame["split"] == "test").any() else "dev"
    rows = []
    for metric in [m for m in LABELS if m in set(frame["metric"])]:
        kind = KIND[metric]
        dev = frame[(frame["metric"] == metric) & (frame["split"] == "dev") & (frame["baseline"] == "")
                    & (frame["probe"] == kind) & frame["value"].notna()].sort_values("value", ascending=False)
        if dev.empty:
            continue
        named = [f"layer {int(l)}" for l in dev["layer"]]
        best = named[0]
        others = named[1:2] + ["layer 0 without positions", "linear position"]
        for other in others:
            if (other, kind, split) not in scores:
                continue
            d = difference(metric, scores[(best, kind, split)], scores[(other, kind, split)], seed=seed,
                           resamples=resamples)
            rows.append({"split": split, "metric": metric, "a": best, "b": other, "value": d.estimate,
                         "ci_low": d.ci_low, "ci_high": d.ci_high, "n": d.n, "chosen_on": "dev",
                         "sentence": iv.compare_sentence(best, other, d, quantity=f"{split} {LABELS[metric]}")})
    return pd.DataFrame(rows)
