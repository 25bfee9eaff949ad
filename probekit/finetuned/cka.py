"""Linear CKA (Kornblith et al. 2019) between two representations of the same inputs, full and minibatch.

``linear_cka(X, Y)`` is the full-batch estimator: X [n, p] and Y [n, q] centred, CKA = ‖YᵀX‖²_F /
(‖XᵀX‖_F ‖YᵀY‖_F) (biased HSIC), or with ``unbiased=True`` the same ratio of Song et al.'s (2012) unbiased
HSIC₁. :class:`MinibatchCKA` is Nguyen, Raghu & Kornblith's (2021) estimator: the mean HSIC₁ over minibatches,
CKA = mean HSIC₁(K, L) / sqrt(mean HSIC₁(K, K) · mean HSIC₁(L, L)), so memory holds one minibatch, never the
corpus; HSIC₁ being unbiased, the mean over minibatches is an unbiased estimate of the full-corpus HSIC.

HSIC₁ with linear kernels K = XXᵀ, L = YYᵀ (K̃, L̃: the diagonal set to 0)::

    HSIC₁ = [tr(K̃L̃) + (1ᵀK̃1)(1ᵀL̃1) / ((n−1)(n−2)) − 2/(n−2) · 1ᵀK̃L̃1] / (n(n−3))

is computed in feature space, in O(n·p·q) without any n × n matrix: tr(K̃L̃) = ‖XᵀY‖²_F − Σᵢ‖xᵢ‖²‖yᵢ‖², K̃1 =
X(Σᵢxᵢ) − (‖xᵢ‖²)ᵢ. It is invariant to shifting X or Y by a constant, so each minibatch is centred first for
numerical accuracy (the value does not change).
"""
from __future__ import annotations

import math

import numpy as np

from ..core.errors import UserError


def _pair(X, Y, minimum: int) -> tuple[np.ndarray, np.ndarray]:
    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    if X.ndim != 2 or Y.ndim != 2 or len(X) != len(Y):
        raise UserError(f"linear CKA needs two matrices with one row per input (got shapes {X.shape} and {Y.shape})")
    if len(X) < minimum:
        raise UserError(f"linear CKA needs at least {minimum} inputs here (got {len(X)})")
    return X, Y


def hsic1(X, Y) -> float:
    """Unbiased HSIC₁ (Song et al. 2012) of linear kernels on X [n, p], Y [n, q] (n ≥ 4), in feature space."""
    X, Y = _pair(X, Y, 4)
    X, Y = X - X.mean(0), Y - Y.mean(0)
    n = len(X)
    nx, ny = np.einsum("ij,ij->i", X, X), np.einsum("ij,ij->i", Y, Y)      # diagonals of K and L
    trace = float(np.square(X.T @ Y).sum() - nx @ ny)                        # tr(K̃L̃)
    k1, l1 = X @ X.sum(0) - nx, Y @ Y.sum(0) - ny                            # K̃1, L̃1
    value = trace + k1.sum() * l1.sum() / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * float(k1 @ l1)
    return value / (n * (n - 3))


def linear_cka(X, Y, *, unbiased: bool = False) -> float:
    """Linear CKA of X [n, p] and Y [n, q] (rows = the same inputs): 1 for identical representations,
    invariant to orthogonal transforms and isotropic scaling of either. ``unbiased`` uses HSIC₁ (n ≥ 4)."""
    if unbiased:
        X, Y = _pair(X, Y, 4)
        xy, xx, yy = hsic1(X, Y), hsic1(X, X), hsic1(Y, Y)
        return _ratio(xy, xx, yy)
    X, Y = _pair(X, Y, 2)
    X, Y = X - X.mean(0), Y - Y.mean(0)
    xy = float(np.square(Y.T @ X).sum())
    return _ratio(xy, float(np.square(X.T @ X).sum()), float(np.square(Y.T @ Y).sum()), squared=True)


def _ratio(xy: float, xx: float, yy: float, squared: bool = False) -> float:
    """xy / sqrt(xx·yy) (xy / (‖·‖‖·‖) when the norms are squared Frobenius norms); NaN if a side is constant."""
    den = math.sqrt(xx * yy) if xx > 0 and yy > 0 else 0.0
    return xy / den if den > 0 else float("nan")


class MinibatchCKA:
    """Streaming minibatch CKA for several layers at once (Nguyen, Raghu & Kornblith 2021).

    ``add(X, Y)`` takes the next rows of every layer (X [layers, n, p], Y [layers, n, q], the same inputs in the
    same order); every ``batch_size`` rows a minibatch's three HSIC₁ values per layer are added to running sums
    and the rows are dropped. ``result()`` also counts the last, partial minibatch (if it has at least 4 rows),
    weighted by its size relative to a full one; the other minibatches weigh 1 each.
    """

    def __init__(self, n_layers: int, batch_size: int = 1024):
        if batch_size < 4:
            raise UserError(f"--cka-batch-size must be at least 4 (got {batch_size})")
        self.n_layers, self.batch_size = int(n_layers), int(batch_size)
        self._x: list[np.ndarray] = []
        self._y: list[np.ndarray] = []
        self._rows = 0
        self._sums = np.zeros((3, self.n_layers))      # Σ w·HSIC₁(K,L), Σ w·HSIC₁(K,K), Σ w·HSIC₁(L,L)
        self._weight = 0.0
        self.n_batches = 0
        self.n_rows = 0          # rows that went into the estimate
        self.n_dropped = 0       # rows of a final minibatch too small for HSIC₁ (under 4)

    def add(self, X: np.ndarray, Y: np.ndarray) -> None:
        if X.shape[0] != self.n_layers or Y.shape[0] != self.n_layers or X.shape[1] != Y.shape[1]:
            raise ValueError(f"expected [{self.n_layers}, n, ·] arrays with the same n, got {X.shape}, {Y.shape}")
        if X.shape[1] == 0:
            return
        self._x.append(np.asarray(X))         # kept in its own precision (float32 activations)
        self._y.append(np.asarray(Y))
        self._rows += X.shape[1]
        while self._rows >= self.batch_size:
            X_all, Y_all = np.concatenate(self._x, axis=1), np.concatenate(self._y, axis=1)
            self._update(X_all[:, :self.batch_size], Y_all[:, :self.batch_size], 1.0)
            rest = X_all.shape[1] - self.batch_size
            self._x = [X_all[:, self.batch_size:]] if rest else []
            self._y = [Y_all[:, self.batch_size:]] if rest else []
            self._rows = rest

    def _update(self, X: np.ndarray, Y: np.ndarray, weight: float) -> None:
        for l in range(self.n_layers):
            x, y = X[l], Y[l]
            self._sums[:, l] += weight * np.array([hsic1(x, y), hsic1(x, x), hsic1(y, y)])
        self._weight += weight
        self.n_batches += 1
        self.n_rows += X.shape[1]

    def result(self) -> np.ndarray:
        """CKA per layer [layers] (NaN with fewer than 4 rows in all)."""
        if self._rows >= 4:
            X, Y = np.concatenate(self._x, axis=1), np.concatenate(self._y, axis=1)
            self._update(X, Y, X.shape[1] / self.batch_size)
        elif self._rows:
            self.n_dropped += self._rows
        self._x, self._y, self._rows = [], [], 0
        if not self._weight:
            return np.full(self.n_layers, np.nan)
        xy, xx, yy = self._sums / self._weight
        return np.array([_ratio(a, b, c) for a, b, c in zip(xy, xx, yy)])
