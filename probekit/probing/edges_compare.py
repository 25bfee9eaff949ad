"""Intervals and paired comparisons for edge probing, bootstrapped over sentences.

The targets of one sentence (its words' tags, its dependency arcs) are not independent draws, so the resampled
unit is the sentence: each score is recomputed from the summed per-sentence parts of the resampled sentences —
micro-F1 (Tenney et al.'s score) from true/false positives and false negatives of the per-label decisions,
accuracy from hits and targets, macro-F1 from per-class true/false positives and false negatives of the top
label, so every score stays the ratio of sums it is. Several seeds give Student's t over seeds instead.
Comparisons resample the same sentences for both probes (paired): the layer best on dev against the runner-up
and the non-contextual probe (layer 0 without positions), on test when there is one. With two classes the F1
of class 1 (coref's "corefers") is recomputed the same way, from that class's true/false positives and false
negatives.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from probekit.core import intervals as iv
from probekit.probing import edge_probe as ep

NOPOS = "layer-nopos"


def _f1s(tp, fp, fn):
    den = 2 * tp + fp + fn
    return np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), 0.0)


def _micro(sums):
    return _f1s(sums[..., 0], sums[..., 1], sums[..., 2])


def _accuracy(sums):
    return np.where(sums[..., 1] > 0, sums[..., 0] / np.maximum(sums[..., 1], 1), np.nan)


def _macro(sums):
    c = sums.shape[-1] // 3
    return _f1s(sums[..., :c], sums[..., c:2 * c], sums[..., 2 * c:]).mean(-1)


def _class1(sums):
    c = sums.shape[-1] // 3
    return _f1s(sums[..., 1], sums[..., c + 1], sums[..., 2 * c + 1])


#: metric → (per-target columns summed per sentence, the score of the summed columns)
AGGREGATES = {"micro_f1": (("tp", "fp", "fn"), _micro), "accuracy": (("correct", "one"), _accuracy),
              "macro_f1": (("class_tp", "class_fp", "class_fn"), _macro),
              "f1": (("class_tp", "class_fp", "class_fn"), _class1)}       # two classes: F1 of class 1


def parts(prob: np.ndarray, gold: np.ndarray, sentence: np.ndarray, n_classes: int) -> dict[str, np.ndarray]:
    """Each target's share of micro-F1, accuracy and macro-F1, and its sentence."""
    counts = ep.decision_counts(prob, gold)
    pred = np.asarray(prob).argmax(-1)
    hit = (pred == gold).astype(np.float64)
    eye = np.eye(n_classes)
    return {"tp": counts[:, 0], "fp": counts[:, 1], "fn": counts[:, 2], "correct": hit, "one": np.ones(len(gold)),
            "class_tp": eye[gold] * hit[:, None], "class_fp": eye[pred] * (1 - hit)[:, None],
            "class_fn": eye[gold] * (1 - hit)[:, None], "sentence": np.asarray(sentence, dtype=np.int64)}


def _per_sentence(metric: str, part: dict) -> np.ndarray:
    """[S, m]: the metric's columns summed over each sentence's targets (sentences without targets left out)."""
    cols = np.column_stack([np.asarray(part[c], dtype=np.float64).reshape(len(part["sentence"]), -1)
                            for c in AGGREGATES[metric][0]])
    _, sentence = np.unique(part["sentence"], return_inverse=True)
    out = np.zeros((sentence.max() + 1 if len(sentence) else 0, cols.shape[1]))
    np.add.at(out, sentence, cols)
    return out


def _resampled(table: np.ndarray, score):
    """A vectorised statistic of resampled sentence indices: ``score`` of the summed rows of ``table``."""
    S = len(table)

    def statistic(index, axis=-1):
        index = np.asarray(index).astype(np.int64)
        lead, flat = index.shape[:-1], index.reshape(-1, index.shape[-1])
        out = np.empty(len(flat))
        for i in range(0, len(flat), 512):
            chunk = flat[i:i + 512]
            rows = np.arange(len(chunk))[:, None] * S + chunk
            weights = np.bincount(rows.ravel(), minlength=len(chunk) * S).reshape(len(chunk), S)
            out[i:i + 512] = score(weights @ table)
        return out.reshape(lead)

    return statistic


def _over_sentences(table: np.ndarray, score, seed: int, resamples: int) -> iv.Interval:
    index = np.arange(len(table), dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return iv.over_examples(index, statistic=_resampled(table, score), seed=seed, resamples=resamples,
                                vectorized=True)


def row_interval(metric: str, values: list[float], runs: list[dict], seed: int, resamples: int) -> dict:
    """``value`` (mean over seeds) with ``ci_low``, ``ci_high``, ``n`` and ``ci_over`` (seeds or sentences)."""
    value = float(np.mean(values))
    if len(values) > 1:
        ci, over = iv.over_seeds(values), "seeds"
    elif metric in AGGREGATES:
        ci, over = _over_sentences(_per_sentence(metric, runs[0]), AGGREGATES[metric][1], seed, resamples), \
            "sentences"
    else:
        return {"value": value, "ci_low": np.nan, "ci_high": np.nan, "n": len(np.unique(runs[0]["sentence"])),
                "ci_over": ""}
    return {"value": value, "ci_low": ci.ci_low, "ci_high": ci.ci_high, "n": ci.n, "ci_over": over}


def mean_parts(runs: list[dict]) -> dict:
    return {k: np.mean([r[k] for r in runs], axis=0) if k != "sentence" else runs[0][k] for k in runs[0]}


def difference(metric: str, a: dict, b: dict, *, seed: int = 0, resamples: int = iv.RESAMPLES) -> iv.Interval:
    """score(a) − score(b) on the same targets, paired over their sentences."""
    score = AGGREGATES[metric][1]
    ta, tb = _per_sentence(metric, a), _per_sentence(metric, b)
    m = ta.shape[1]
    return _over_sentences(np.hstack([ta, tb]), lambda s: score(s[..., :m]) - score(s[..., m:]), seed, resamples)


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
