"""Linear CKA (Kornblith et al. 2019) between two representations of the same inputs, full and minibatch.

``linear_cka(X, Y)`` is the full-batch estimator: X [n, p] and Y [n, q] centred, CKA = ‖YᵀX‖²_F /
(‖XᵀX‖_F ‖YᵀY‖_F) (biased HSIC), or with ``unbiased=True`` the same ratio of Song et al.'s (2012) unbiased
HSIC₁. :class:`StreamingCKA` computes that unbiased full-batch value over a corpus too large to hold, from sums
accumulated chunk by chunk, so it does not depend on the order of the rows. Nguyen, Raghu & Kornblith's (2021)
minibatch estimator (the mean HSIC₁ over minibatches) is unbiased only when minibatch membership is random: in
corpus order neighbouring sentences are alike and it drifts from the full-batch value (+0.004 at CKA ≈ 0.93,
+0.026 at ≈ 0.45 on RT dev), so here minibatches serve only the bootstrap interval.

HSIC₁ with linear kernels K = XXᵀ, L = YYᵀ (K̃, L̃: the diagonal set to 0)::

    HSIC₁ = [tr(K̃L̃) + (1ᵀK̃1)(1ᵀL̃1) / ((n−1)(n−2)) − 2/(n−2) · 1ᵀK̃L̃1] / (n(n−3))

is computed in feature space, in O(n·p·q) without any n × n matrix: tr(K̃L̃) = ‖XᵀY‖²_F − Σᵢ‖xᵢ‖²‖yᵢ‖², K̃1 =
X(Σᵢxᵢ) − (‖xᵢ‖²)ᵢ. It is invariant to shifting X or Y by a constant, so each minibatch is centred first for
numerical accuracy (the value does not change).
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from probekit.core.errors import UserError
from probekit.core.intervals import Interval


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


class StreamingCKA:
    """Full-batch unbiased linear CKA for several layers at once, accumulated over the corpus in chunks.

    The estimate is exactly ``linear_cka(X, Y, unbiased=True)`` on every row ever added, whatever their order:
    HSIC₁ needs only sums over rows (XᵀY, XᵀX, YᵀY, Σx, Σy, the row norms and their products with the rows),
    so memory holds those [p, q] sums per layer, never an n × n matrix nor the corpus. (Nguyen, Raghu &
    Kornblith's minibatch mean of HSIC₁ is unbiased only when minibatch membership is random; in corpus order,
    where neighbouring sentences are alike, it is not.)

    For the 95 % interval, every ``batch_size`` rows in arrival order also give one minibatch estimate of the
    three HSIC₁ values; a paired bootstrap over those minibatches (``scipy.stats.bootstrap``) gives the spread
    of the minibatch estimator, which is placed around the exact value. That spread is the sampling
    uncertainty only when rows arrive in random order: ``pk.compare`` feeds sentences in a seeded shuffle.
    """

    def __init__(self, n_layers: int, batch_size: int = 1024):
        if batch_size < 4:
            raise UserError(f"--cka-batch-size must be at least 4 (got {batch_size})")
        self.n_layers, self.batch_size = int(n_layers), int(batch_size)
        self._stats: list[_Sums | None] = [None] * self.n_layers
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._pending_rows = 0
        self._batches: list[np.ndarray] = []     # per minibatch: [3, layers] HSIC₁ (K,L), (K,K), (L,L)
        self._weights: list[float] = []
        self.n_batches = 0
        self.n_rows = 0

    def add(self, X: np.ndarray, Y: np.ndarray) -> None:
        """The next rows of every layer: X [layers, n, p], Y [layers, n, q] (the same inputs, in order)."""
        if X.shape[0] != self.n_layers or Y.shape[0] != self.n_layers or X.shape[1] != Y.shape[1]:
            raise ValueError(f"expected [{self.n_layers}, n, ·] arrays with the same n, got {X.shape}, {Y.shape}")
        if X.shape[1] == 0:
            return
        X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
        for l in range(self.n_layers):
            if self._stats[l] is None:          # shift by the first rows' mean: HSIC₁ ignores it, rounding won't
                self._stats[l] = _Sums(X[l].mean(0), Y[l].mean(0))
            self._stats[l].add(X[l], Y[l])
        self.n_rows += X.shape[1]
        self._pending.append((X, Y))
        self._pending_rows += X.shape[1]
        while self._pending_rows >= self.batch_size:
            Xa, Ya = (np.concatenate(a, axis=1) for a in zip(*self._pending))
            self._minibatch(Xa[:, :self.batch_size], Ya[:, :self.batch_size], 1.0)
            rest = Xa.shape[1] - self.batch_size
            self._pending = [(Xa[:, self.batch_size:], Ya[:, self.batch_size:])] if rest else []
            self._pending_rows = rest

    def _minibatch(self, X, Y, weight: float) -> None:
        self._batches.append(np.array([[hsic1(x, y), hsic1(x, x), hsic1(y, y)] for x, y in zip(X, Y)]).T)
        self._weights.append(weight)
        self.n_batches += 1

    def result(self) -> np.ndarray:
        """CKA per layer [layers] (NaN with fewer than 4 rows in all)."""
        return np.array([s.cka() if s is not None and s.n >= 4 else np.nan for s in self._stats])

    def intervals(self, seed: int = 0, resamples: int | None = None) -> list[Interval]:
        """Per layer: the exact CKA with a 95 % interval from the bootstrap over minibatches (NaN bounds with
        fewer than 2 minibatches); ``n`` is the number of words."""
        from probekit.core import intervals as iv

        if self._pending_rows >= 4:         # the last, partial minibatch, weighted by its size
            Xa, Ya = (np.concatenate(a, axis=1) for a in zip(*self._pending))
            self._minibatch(Xa, Ya, Xa.shape[1] / self.batch_size)
        self._pending, self._pending_rows = [], 0
        exact = self.result()
        if len(self._batches) < 2:
            return [Interval(float(v), float("nan"), float("nan"), self.n_rows) for v in exact]
        stack, w = np.stack(self._batches), np.asarray(self._weights)       # [batches, 3, layers], [batches]
        out = []
        for l, value in enumerate(exact):
            def cka(xy, xx, yy, w):
                return _ratio(float(w @ xy), float(w @ xx), float(w @ yy))
            with warnings.catch_warnings():     # a layer the models share exactly: BCa is undefined, percentile used
                warnings.simplefilter("ignore")
                spread = iv.paired_statistic([stack[:, 0, l], stack[:, 1, l], stack[:, 2, l], w], cka, seed=seed,
                                             resamples=resamples or iv.RESAMPLES)
            out.append(Interval(float(value), float(value + spread.ci_low - spread.estimate),
                                float(value + spread.ci_high - spread.estimate), self.n_rows))
        return out


class _Sums:
    """The sums over rows that HSIC₁ of linear kernels needs, for one layer (rows shifted by ``mx``, ``my``)."""

    def __init__(self, mx: np.ndarray, my: np.ndarray):
        self.mx, self.my = mx, my
        p, q = len(mx), len(my)
        self.xy, self.xx, self.yy = np.zeros((p, q)), np.zeros((p, p)), np.zeros((q, q))
        self.sx, self.sy = np.zeros(p), np.zeros(q)
        # Σ nx·x, Σ nx·y, Σ ny·x, Σ ny·y (nx, ny: squared row norms) and the scalars Σnx, Σny, Σnx², Σny², Σnx·ny
        self.nx_x, self.nx_y, self.ny_x, self.ny_y = np.zeros(p), np.zeros(q), np.zeros(p), np.zeros(q)
        self.scalars = np.zeros(5)
        self.n = 0

    def add(self, X: np.ndarray, Y: np.ndarray) -> None:
        X, Y = X - self.mx, Y - self.my
        nx, ny = np.einsum("ij,ij->i", X, X), np.einsum("ij,ij->i", Y, Y)
        self.xy += X.T @ Y
        self.xx += X.T @ X
        self.yy += Y.T @ Y
        self.sx += X.sum(0)
        self.sy += Y.sum(0)
        self.nx_x += nx @ X
        self.nx_y += nx @ Y
        self.ny_x += ny @ X
        self.ny_y += ny @ Y
        self.scalars += [nx.sum(), ny.sum(), nx @ nx, ny @ ny, nx @ ny]
        self.n += len(X)

    def _hsic1(self, cross, sa, sb, na_a, na_b, nb_a, nb_b, na, nb, na_nb) -> float:
        """HSIC₁ from sums: tr(K̃L̃) = ‖Σ a bᵀ‖² − Σ na·nb; 1ᵀK̃1 = ‖Σa‖² − Σna; 1ᵀK̃L̃1 = Σᵢ (K̃1)ᵢ(L̃1)ᵢ with
        (K̃1)ᵢ = aᵢ·Sa − naᵢ, expanded into the accumulated sums."""
        n = self.n
        trace = float(np.square(cross).sum()) - na_nb
        k1 = float(sa @ sa) - na
        l1 = float(sb @ sb) - nb
        kl = float(sa @ cross @ sb) - float(na_b @ sb) - float(nb_a @ sa) + na_nb
        return (trace + k1 * l1 / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * kl) / (n * (n - 3))

    def cka(self) -> float:
        snx, sny, snx2, sny2, snxny = self.scalars
        xy = self._hsic1(self.xy, self.sx, self.sy, self.nx_x, self.nx_y, self.ny_x, self.ny_y, snx, sny, snxny)
        xx = self._hsic1(self.xx, self.sx, self.sx, self.nx_x, self.nx_x, self.nx_x, self.nx_x, snx, snx, snx2)
        yy = self._hsic1(self.yy, self.sy, self.sy, self.ny_y, self.ny_y, self.ny_y, self.ny_y, sny, sny, sny2)
        return _ratio(xy, xx, yy)
