"""How much each head's attention changed: Jensen–Shannon divergence between two models' rows on the same input.

For one input, head (l, h) and query row i, JS(pᵢ, qᵢ) = ½ KL(pᵢ‖m) + ½ KL(qᵢ‖m), m = ½(pᵢ + qᵢ), in nats
(natural log), so 0 ≤ JS ≤ ln 2; each row is renormalised first (half-precision rows sum to 1 ± 1e-3), and
0·ln 0 = 0, so no smoothing is needed. The per-head value is the mean over the input's rows (every unit's row,
[CLS] and [SEP] included, as Clark et al.'s head distances do), then over inputs with equal weight.
"""
from __future__ import annotations

import numpy as np
from scipy.special import xlogy

LN2 = float(np.log(2.0))


def jensen_shannon(p, q, axis: int = -1) -> np.ndarray:
    """JS divergence (nats) between distributions along ``axis`` (renormalised; zeros allowed)."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    p = p / p.sum(axis=axis, keepdims=True)
    q = q / q.sum(axis=axis, keepdims=True)
    m = 0.5 * (p + q)
    js = 0.5 * (xlogy(p, p) - xlogy(p, m)).sum(axis) + 0.5 * (xlogy(q, q) - xlogy(q, m)).sum(axis)
    return np.clip(js, 0.0, LN2)   # rounding can leave −1e-17 for identical rows


class AttentionChange:
    """Streaming mean per-head JS divergence between two models' attention maps [L, H, n, n] of each input."""

    def __init__(self, num_layers: int, num_heads: int):
        self.L, self.H = num_layers, num_heads
        self._sum = np.zeros((num_layers, num_heads))
        self.n_inputs = 0

    def add(self, base: np.ndarray, finetuned: np.ndarray) -> None:
        if base.shape != finetuned.shape or base.shape[:2] != (self.L, self.H):
            raise ValueError(f"attention shapes {base.shape} and {finetuned.shape} do not match "
                             f"{self.L} layers × {self.H} heads")
        self._sum += jensen_shannon(base, finetuned).mean(-1)   # [L, H, n] → mean over the rows
        self.n_inputs += 1

    def result(self) -> np.ndarray:
        """[L, H] mean JS (layer l+1, head h+1 at [l, h]); NaN before any input."""
        return self._sum / self.n_inputs if self.n_inputs else np.full((self.L, self.H), np.nan)
