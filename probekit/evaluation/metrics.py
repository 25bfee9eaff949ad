"""The distances and correlations of the faithfulness papers, exactly as their code computes them
(TVD and JSD in nats as Jain & Wallace 2019 §4.2 define them; Kendall τ-b as their §4.1 uses it).

- ``kl(a, b)`` = Σ a·(log(a + 1e-10) − log(b + 1e-10)), a and b clamped to [0, 1]; natural log.
- ``jsd(p, q)`` = ½KL(p‖m) + ½KL(q‖m), m = ½(p + q): in nats, so 0 ≤ JSD ≤ ln 2 ≈ 0.693 (the papers' plots use
  0–0.7). ``base=2`` gives the [0, 1] scale.
- ``tvd(p, q)`` = ½ Σ|p − q| over the full class distribution (for two classes, |Δp| of either class).
- ``kendall(a, b)``: scipy's tau-b, NaN (and counted by the caller) when either side is constant or has fewer
  than two entries.

Distributions are along the last axis; numpy arrays and torch tensors are both accepted (torch keeps autograd).
"""
from __future__ import annotations

import math

import numpy as np

EPS = 1e-10
LN2 = math.log(2.0)


def _lib(x):
    try:
        import torch

        if isinstance(x, torch.Tensor):
            return torch
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return np


def kl(a, b):
    """KL(a‖b) along the last axis, natural log, clamped as Jain & Wallace's ``kld``."""
    xp = _lib(a)
    if xp is np:
        a, b = np.clip(np.asarray(a, dtype=np.float64), 0, 1), np.clip(np.asarray(b, dtype=np.float64), 0, 1)
        return np.sum(a * (np.log(a + EPS) - np.log(b + EPS)), axis=-1)
    a, b = a.clamp(0, 1), b.clamp(0, 1)
    return (a * (xp.log(a + EPS) - xp.log(b + EPS))).sum(-1)


def jsd(p, q, *, base: float | None = None):
    """Jensen–Shannon divergence along the last axis: nats (≤ ln 2) unless ``base`` is given (2: ≤ 1)."""
    m = 0.5 * (p + q) if _lib(p) is not np else 0.5 * (np.asarray(p, float) + np.asarray(q, float))
    out = 0.5 * kl(p, m) + 0.5 * kl(q, m)
    return out / math.log(base) if base else out


def tvd(p, q):
    """Total variation distance ½ Σ|p − q| along the last axis."""
    if _lib(p) is np:
        return 0.5 * np.abs(np.asarray(p, dtype=np.float64) - np.asarray(q, dtype=np.float64)).sum(-1)
    return 0.5 * (p - q).abs().sum(-1)


def kendall(a, b) -> tuple[float, float]:
    """(tau-b, p) of two score vectors; (NaN, NaN) when undefined (constant input or fewer than 2 entries)."""
    from scipy.stats import kendalltau

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan"), float("nan")
    res = kendalltau(a, b)
    return float(res.statistic), float(res.pvalue)
