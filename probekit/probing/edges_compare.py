"""Intervals and paired comparisons for edge probing, from each target's part of a score.

Micro-F1 (Tenney et al.'s score) resamples targets with their true/false positive and false negative
counts, so it stays a ratio of sums; accuracy resamples each target's 0/1. Several seeds give Student's t
over seeds instead. Comparisons resample the same targets for both probes (paired): the layer best on dev
against the runner-up and the non-contextual probe (layer 0 without positions), on test when there is one.
Macro-F1 and F1 are shown without an interval (no sentence compares them).
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..core import intervals as iv
from . import edges as ep

NOPOS = "layer-nopos"


def _ratio_f1(tp, fp, fn) -> float:
    return ep._f1(float(np.sum(tp)), float(np.sum(fp)), float(np.sum(fn)))


#: metric → (per-target columns, statistic) for the metrics that get an interval
AGGREGATES = {"micro_f1": (("tp", "fp", "fn"), _ratio_f1),
              "accuracy": (("correct",), lambda c: float(np.mean(c)) if len(c) else float("nan"))}


def parts(prob: np.ndarray, gold: np.ndarray) -> dict[str, np.ndarray]:
    """Each target's share of micro-F1 and accuracy."""
    counts = ep.decision_counts(prob, gold)
    return {"tp": counts[:, 0], "fp": counts[:, 1], "fn": counts[:, 2],
            "correct": (np.asarray(prob).argmax(-1) == gold).astype(np.float64)}


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def row_interval(metric: str, values: list[float], runs: list[dict], seed: int, resamples: int) -> dict:
    """``value`` (mean over seeds) with ``ci_low``, ``ci_high``, ``n`` and ``ci_over`` (seeds or targets)."""
    value = float(np.mean(values))
    if len(values) > 1:
        ci, over = iv.over_seeds(values), "seeds"
    elif metric in AGGREGATES:
        cols, fn = AGGREGATES[metric]
        ci, over = _quiet(iv.paired_statistic, [runs[0][c] for c in cols], fn, seed=seed, resamples=resamples), \
            "targets"
    else:
        return {"value": value, "ci_low": np.nan, "ci_high": np.nan, "n": len(runs[0]["correct"]), "ci_over": ""}
    return {"value": value, "ci_low": ci.ci_low, "ci_high": ci.ci_high, "n": ci.n, "ci_over": over}


def mean_parts(runs: list[dict]) -> dict:
    return {k: np.mean([r[k] for r in runs], axis=0) for k in runs[0]}


def difference(metric: str, a: dict, b: dict, *, seed: int = 0, resamples: int = iv.RESAMPLES) -> iv.Interval:
    cols, fn = AGGREGATES[metric]
    return _quiet(iv.statistic_difference, fn, [a[c] for c in cols], [b[c] for c in cols], seed=seed,
                  resamples=resamples)


def comparisons(frame: pd.DataFrame, scored: dict, *, seed: int = 0, resamples: int = iv.RESAMPLES,
                metric: str = "micro_f1") -> pd.DataFrame:
    """Per task: the per-layer probe best on dev micro-F1 against the runner-up and the non-contextual probe,
    on the same targets; ``scored[(task, probe, layer, split)]`` holds the per-target parts."""
    split = "test" if (frame["split"] == "test").any() else "dev"
    rows = []
    for task, g in frame.groupby("task", sort=False):
        dev = g[(g["probe"] == "layer") & (g["metric"] == metric) & (g["split"] == "dev")]
        dev = dev.sort_values("value", ascending=False)
        if dev.empty:
            continue
        best = int(dev["layer"].iloc[0])
        others = [("layer", int(l), f"layer {int(l)}") for l in dev["layer"].iloc[1:2]]
        others.append((NOPOS, 0, "layer 0 without positions"))
        for probe, layer, name in others:
            if (task, probe, layer, split) not in scored:
                continue
            d = difference(metric, scored[(task, "layer", best, split)], scored[(task, probe, layer, split)],
                           seed=seed, resamples=resamples)
            rows.append({"task": task, "split": split, "metric": metric, "a": f"layer {best}", "b": name,
                         "value": d.estimate, "ci_low": d.ci_low, "ci_high": d.ci_high, "n": d.n,
                         "chosen_on": "dev",
                         "sentence": f"{task}: " + iv.compare_sentence(f"layer {best}", name, d,
                                                                      quantity=f"{split} micro-F1")})
    return pd.DataFrame(rows)
