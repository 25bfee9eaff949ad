"""ERASER's metrics (DeYoung et al. 2020) as its ``rationale_benchmark/metrics.py`` computes them, per example,
and how each aggregates over examples.

Plausibility, against a human rationale r (0/1 per word; examples with an empty r are left out and counted,
where ERASER would score their hard predictions as 0):

- ``auprc``: ERASER's ``_auprc`` — per example the area under the precision–recall curve (sklearn's
  ``precision_recall_curve`` then ``auc``, the trapezoidal rule), averaged over the examples. It is *not*
  average precision: the trapezoid interpolates linearly between PR points, so it differs from AP.
- ``average_precision``: ERASER's ``average_precision`` — sklearn's average precision per example, averaged
  over the examples with both classes in r (ERASER discards single-class rationales here).
- Hard predictions: each method's top-|r| words (|r| = the number of rationale words), in contiguous runs.
  ``token_f1`` (macro) is the mean of the per-example F1, ``token_f1_micro`` the F1 of the precision and recall
  pooled over every word of every example (ERASER's ``instance_macro`` and ``instance_micro`` of
  ``score_hard_rationale_predictions``).
- ``iou_f1`` (macro) and ``iou_f1_micro``: ERASER's ``partial_match_score`` at threshold 0.5 — a predicted span
  counts as a hit when its best intersection-over-union with a human span is ≥ 0.5; micro pools hits and spans
  over the examples; macro averages the per-example precision and recall, then takes the F1 of the two.

Faithfulness: ``flip_fraction`` is ERASER's decision-flip fraction — words removed (in the method's order)
before the decision flips, over the example's words, averaged over *every* example, a never-flip example
counting as 1 (all its words removed without a flip; a one-word example is 1 either way);
``flip_fraction_flipped`` is the mean over the examples that flip only (probekit's earlier figure, after
Serrano & Smith's exclusion).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

IOU_THRESHOLD = 0.5


def _scores(scores) -> np.ndarray:
    """Scores with NaN (words without a piece) as the lowest."""
    s = np.asarray(scores, dtype=np.float64)
    if np.isnan(s).all():
        return np.zeros_like(s)
    return np.where(np.isnan(s), np.nanmin(s) - 1.0, s)


def auprc(scores, rationale) -> float:
    """ERASER's AUPRC of one example: trapezoidal area under sklearn's precision–recall curve."""
    from sklearn.metrics import auc, precision_recall_curve

    r = np.asarray(rationale, dtype=int)
    if r.sum() == 0:
        return float("nan")
    precision, recall, _ = precision_recall_curve(r, _scores(scores))
    return float(auc(recall, precision))


def average_precision(scores, rationale) -> float:
    """sklearn's average precision of one example; NaN when r has a single class (ERASER discards those)."""
    from sklearn.metrics import average_precision_score

    r = np.asarray(rationale, dtype=int)
    if r.sum() == 0 or r.sum() == len(r):
        return float("nan")
    return float(average_precision_score(r, _scores(scores)))


def hard_prediction(order, rationale) -> np.ndarray:
    """0/1 per word: the top-|r| words of ``order``."""
    r = np.asarray(rationale, dtype=bool)
    pred = np.zeros(len(r), dtype=bool)
    pred[np.asarray(order, dtype=np.int64)[:int(r.sum())]] = True
    return pred


def spans(mask) -> list[tuple[int, int]]:
    """Maximal runs of 1s as (start, end) with end exclusive."""
    m = np.concatenate([[0], np.asarray(mask, dtype=np.int8), [0]])
    edges = np.flatnonzero(np.diff(m))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def token_counts(pred, rationale) -> tuple[int, int, int]:
    """(words in both, predicted words, rationale words)."""
    p, r = np.asarray(pred, dtype=bool), np.asarray(rationale, dtype=bool)
    return int((p & r).sum()), int(p.sum()), int(r.sum())


def iou_counts(pred, rationale, threshold: float = IOU_THRESHOLD) -> tuple[int, int, int]:
    """(predicted spans whose best IOU with a rationale span is ≥ threshold, predicted spans, rationale spans)."""
    ps, ts = spans(pred), spans(rationale)
    hits = 0
    for a, b in ps:
        best = 0.0
        for c, d in ts:
            inter = max(0, min(b, d) - max(a, c))
            union = (b - a) + (d - c) - inter
            best = max(best, inter / union if union else 0.0)
        hits += int(best >= threshold)
    return hits, len(ps), len(ts)


def _f1(p: float, r: float) -> float:
    return 0.0 if p == 0 or r == 0 else 2 * p * r / (p + r)


def _ratio(a, b):
    """a / b elementwise, 0 where b is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), 0.0)


def _f1s(p, r):
    """F1 of precisions and recalls, elementwise (0 where either is 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((p == 0) | (r == 0), 0.0, 2 * p * r / np.where(p + r > 0, p + r, 1))


# The aggregates take rows [..., n, k] (one example a row) and reduce the last two axes, so a bootstrap can
# hand them every resample at once ([resamples, n, k]); on a plain [n, k] array they give one number.

def micro_f1(rows: np.ndarray):
    """F1 of the pooled precision Σhits/Σpredicted and recall Σhits/Σtrue; rows are (hits, predicted, true)."""
    s = np.asarray(rows, dtype=np.float64).sum(-2)
    hits, pred, true = s[..., 0], s[..., 1], s[..., 2]
    return _f1s(_ratio(hits, pred), _ratio(hits, true))[()]


def macro_token_f1(rows: np.ndarray):
    """Mean over examples of each example's F1 (ERASER ``instance_macro``)."""
    rows = np.asarray(rows, dtype=np.float64)
    if not rows.shape[-2]:
        return float("nan")
    h, p, t = rows[..., 0], rows[..., 1], rows[..., 2]
    return _f1s(_ratio(h, p), _ratio(h, t)).mean(-1)[()]


def macro_iou_f1(rows: np.ndarray):
    """F1 of the mean per-example precision (over examples with a predicted span) and the mean per-example recall
    (over examples with a rationale span), as ERASER's ``partial_match_score`` macro."""
    rows = np.asarray(rows, dtype=np.float64)
    hits, pred, true = rows[..., 0], rows[..., 1], rows[..., 2]
    p = _ratio(_ratio(hits, pred).sum(-1), (pred > 0).sum(-1))
    r = _ratio(_ratio(hits, true).sum(-1), (true > 0).sum(-1))
    return _f1s(p, r)[()]


def _mean(rows: np.ndarray):
    return np.asarray(rows, dtype=np.float64)[..., 0].mean(-1)[()]


@dataclass
class Metric:
    """One ERASER metric: per-example parts [N, k] for each ranking (a NaN row: the example does not count),
    the aggregate over rows, and whether higher is more faithful / plausible."""

    name: str
    higher: bool
    parts: dict
    aggregate: Callable = _mean

    def value(self, method: str) -> float:
        rows = self.parts[method]
        rows = rows[~np.isnan(rows).any(1)]
        return float(self.aggregate(rows)) if len(rows) else float("nan")


#: metric → (label, higher is better, what it is over)
INFO = {
    "aopc_comprehensiveness": ("AOPC comprehensiveness", True, "mean over examples"),
    "aopc_sufficiency": ("AOPC sufficiency", False, "mean over examples"),
    "flip_fraction": ("decision-flip fraction (ERASER: never-flip = 1)", False,
                      "mean over every example, a never-flip one counting as 1"),
    "flip_fraction_flipped": ("decision-flip fraction over the examples that flip", False,
                              "mean over the examples whose decision flips"),
    "token_f1": ("token F1 (macro)", True, "mean per-example F1 over examples with a non-empty rationale"),
    "token_f1_micro": ("token F1 (micro)", True, "F1 of the pooled word counts"),
    "iou_f1": ("IOU F1 (macro, IOU ≥ 0.5)", True, "F1 of mean per-example span precision and recall"),
    "iou_f1_micro": ("IOU F1 (micro, IOU ≥ 0.5)", True, "F1 of the pooled span counts"),
    "auprc": ("AUPRC (ERASER)", True, "mean per-example trapezoidal PR area"),
    "average_precision": ("average precision", True, "mean over examples with both classes in the rationale"),
}
FAITHFULNESS = ("aopc_comprehensiveness", "aopc_sufficiency", "flip_fraction", "flip_fraction_flipped")
PLAUSIBILITY = ("token_f1", "token_f1_micro", "iou_f1", "iou_f1_micro", "auprc", "average_precision")
AGGREGATE = {"token_f1": macro_token_f1, "token_f1_micro": micro_f1, "iou_f1": macro_iou_f1,
             "iou_f1_micro": micro_f1}


def plausibility_parts(orders, scores, rationales) -> dict[str, np.ndarray]:
    """Per plausibility metric, the [N, k] parts of one ranking: ``orders``/``scores`` per example and the
    rationale (None: the example does not count)."""
    N = len(orders)
    out = {"token_f1": np.full((N, 3), np.nan), "token_f1_micro": np.full((N, 3), np.nan),
           "iou_f1": np.full((N, 3), np.nan), "iou_f1_micro": np.full((N, 3), np.nan),
           "auprc": np.full((N, 1), np.nan), "average_precision": np.full((N, 1), np.nan)}
    for e, (o, s, r) in enumerate(zip(orders, scores, rationales)):
        if r is None:
            continue
        pred = hard_prediction(o, r)
        out["token_f1"][e] = out["token_f1_micro"][e] = token_counts(pred, r)
        out["iou_f1"][e] = out["iou_f1_micro"][e] = iou_counts(pred, r)
        out["auprc"][e, 0] = auprc(s, r)
        out["average_precision"][e, 0] = average_precision(s, r)
    return out


def metrics(per_ex, rankings, plausibility: dict | None) -> dict[str, Metric]:
    """The :class:`Metric` of every ERASER quantity: faithfulness from ``per_ex`` (example × method rows), the
    plausibility parts ``plausibility[metric][method]`` when rationales were given."""
    out = {}
    N = int(per_ex["example"].max()) + 1 if len(per_ex) else 0
    for name in FAITHFULNESS:
        parts = {}
        for m in rankings:
            g = per_ex[per_ex["method"] == m]
            col = np.full((N, 1), np.nan)
            col[g["example"].to_numpy(int), 0] = g[name].to_numpy(np.float64)
            parts[m] = col
        out[name] = Metric(name, INFO[name][1], parts)
    for name in PLAUSIBILITY if plausibility else ():
        out[name] = Metric(name, INFO[name][1], plausibility[name], AGGREGATE.get(name, _mean))
    return out
