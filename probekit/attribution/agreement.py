"""How far the methods agree: per example, Kendall's τ (scipy's tau-b) between the word scores of every
pair of methods, then the mean over examples and the share of examples with p ≤ 0.05 (Jain & Wallace).

Signed methods (gradient × input, integrated gradients, occlusion) are ranked by magnitude, |score|, as Jain &
Wallace rank gradient × input: importance either way. τ is undefined (NaN, counted) for an example with fewer
than two words or a constant score vector.
"""
from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

COLUMNS = ["method_a", "method_b", "tau", "tau_std", "share_p05", "examples", "undefined"]


def agreement_table(frame: pd.DataFrame, signed: dict | None = None) -> pd.DataFrame:
    """One row per pair of methods of ``frame`` (columns example, index, method, score)."""
    methods = list(dict.fromkeys(frame["method"]))
    signed = dict(signed or {})
    for m in methods:
        signed.setdefault(m, bool((frame.loc[frame["method"] == m, "score"] < 0).any()))
    wide = frame.pivot_table(index=["example", "index"], columns="method", values="score", aggfunc="first",
                             dropna=False)
    per_example = [{m: g[m].to_numpy(float) for m in methods if m in g} for _, g in wide.groupby(level=0, sort=False)]
    return agreement_from_scores(per_example, methods, signed)


def agreement_from_scores(per_example: list[dict], methods: list[str], signed: dict) -> pd.DataFrame:
    """The same table from one ``{method: scores}`` dict per example (``Attributions``)."""
    from scipy.stats import kendalltau

    taus = {pair: [] for pair in combinations(methods, 2)}
    for g in per_example:
        for a, b in taus:
            if a not in g or b not in g:
                continue
            x, y = np.asarray(g[a], dtype=float), np.asarray(g[b], dtype=float)
            x, y = (np.abs(x) if signed.get(a) else x), (np.abs(y) if signed.get(b) else y)
            ok = np.isfinite(x) & np.isfinite(y)
            if ok.sum() < 2 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
                taus[(a, b)].append((np.nan, np.nan))
                continue
            res = kendalltau(x[ok], y[ok])
            taus[(a, b)].append((float(res.statistic), float(res.pvalue)))
    rows = []
    for (a, b), vals in taus.items():
        arr = np.array(vals, dtype=float).reshape(-1, 2)
        good = np.isfinite(arr[:, 0])
        t, p = arr[good, 0], arr[good, 1]
        rows.append({"method_a": a, "method_b": b, "tau": float(t.mean()) if len(t) else np.nan,
                     "tau_std": float(t.std(ddof=1)) if len(t) > 1 else np.nan,
                     "share_p05": float((p <= 0.05).mean()) if len(p) else np.nan,
                     "examples": int(good.sum()), "undefined": int((~good).sum())})
    return pd.DataFrame(rows, columns=COLUMNS)
