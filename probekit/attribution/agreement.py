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
    from scipy.stats import kendalltau

    methods = list(dict.fromkeys(frame["method"]))
    signed = dict(signed or {})
    for m in methods:
        signed.setdefault(m, bool((frame.loc[frame["method"] == m, "score"] < 0).any()))
    wide = frame.pivot_table(index=["example", "index"], columns="method", values="score", aggfunc="first",
                             dropna=False)
    for m in methods:
        if signed[m] and m in wide:
            wide[m] = wide[m].abs()
    taus = {pair: [] for pair in combinations(methods, 2)}
    for _, g in wide.groupby(level=0, sort=False):
        for a, b in taus:
            if a not in g or b not in g:
                continue
            x, y = g[a].to_numpy(float), g[b].to_numpy(float)
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
