"""Clark et al. (2019) §3 surface statistics of attention, accumulated one input at a time.

For every layer × head and every input (Clark's "document": one forward pass), a statistic is averaged over
the input's query rows; inputs are then averaged with equal weight (or a caller-given weight). Nothing keeps
attention maps beyond a small buffer for the head-similarity pass, so memory does not grow with the corpus.

Statistics (``STATS``; α is one head's map, rows = queries, n = units in the input):

- ``cls`` / ``sep`` / ``punct``: (1/n) Σ_i Σ_{j ∈ class} α_ij, class = the model's own [CLS] (or <s>), its
  [SEP] (or </s>, every occurrence), or a unit that is exactly "." or "," (word-start markers Ġ/▁ ignored).
- ``self`` (α_ii), ``prev`` (α_{i,i−1}), ``next`` (α_{i,i+1}): averaged over all n rows, as in Clark's code
  (the first / last row has no neighbour and contributes 0).
- ``sep_sep``: Σ_{i,j ∈ SEP} α_ij / #SEP rows (Clark hard-coded 2); ``rest_sep``: Σ_{i ∉ SEP, j ∈ SEP} α_ij /
  #other rows. Inputs without a [SEP] (or without other rows) do not count towards these.
- ``entropy``: mean over rows of −Σ_j α'_ij ln α'_ij in nats, α' = (1−1e-4)α + 1e-4/n; ``entropy_cls``: the
  same for the [CLS] row; ``uniform_entropy``: the mean of ln n (the entropy of uniform attention, Clark's
  reference line; identical for every head).
- ``max_weight``: mean over rows of the row's largest weight (a "broad" head keeps it ≤ 0.1).

Head similarity: Jensen–Shannon divergence in nats (scipy's ``jensenshannon`` squared) between the rows of
every pair of heads, α' = (1−1e-3)α + 1e-3/n (each row renormalised first, as scipy does), averaged over rows
and inputs — the dissimilarity Clark fed to MDS (he summed instead of averaging; a constant factor that MDS does
not care about). Its costly inner sum runs in the compiled loop of :mod:`probekit.xlogx`.
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from probekit.heads import xlogx
from probekit.core.analysis import Analysis

STATS = {
    "cls": "attention to [CLS]",
    "sep": "attention to [SEP]",
    "punct": 'attention to "." or ","',
    "self": "attention to the token itself",
    "prev": "attention to the previous token",
    "next": "attention to the next token",
    "sep_sep": "[SEP] → [SEP] (over [SEP] rows)",
    "rest_sep": "other → [SEP] (over the other rows)",
    "entropy": "entropy of a row (nats)",
    "entropy_cls": "entropy of the [CLS] row (nats)",
    "uniform_entropy": "entropy of uniform attention, mean ln n (nats)",
    "max_weight": "largest weight of a row",
}
PUNCT = frozenset({".", ","})
ENTROPY_SMOOTHING = 1e-4
JS_SMOOTHING = 1e-3
_WORD_MARKERS = "Ġ▁"
_JS_BUFFER_ELEMENTS = 1 << 21   # attention weights buffered (K · Σ n²) before the head-distance sums run


@dataclass(frozen=True)
class SpecialTokens:
    """The model's own sequence-start and separator strings ([CLS]/[SEP], <s>/</s>, …)."""

    cls: str | None
    sep: str | None

    @classmethod
    def of(cls, tokenizer) -> "SpecialTokens":
        return cls(cls=getattr(tokenizer, "cls_token", None) or getattr(tokenizer, "bos_token", None),
                   sep=getattr(tokenizer, "sep_token", None) or getattr(tokenizer, "eos_token", None))


def is_punct(unit: str) -> bool:
    return unit.lstrip(_WORD_MARKERS) in PUNCT


def unit_classes(units, special, specials: SpecialTokens) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boolean masks (is [CLS], is [SEP], is "." or ",") over an input's units."""
    special = np.asarray(special, dtype=bool)
    is_cls = special & np.array([u == specials.cls for u in units], dtype=bool)
    is_sep = special & np.array([u == specials.sep for u in units], dtype=bool)
    punct = ~special & np.array([is_punct(u) for u in units], dtype=bool)
    return is_cls, is_sep, punct


def input_stats(attention: np.ndarray, is_cls: np.ndarray, is_sep: np.ndarray,
                punct: np.ndarray) -> dict[str, np.ndarray | None]:
    """Every statistic of one input's maps ``attention`` [L, H, n, n], each as an [L, H] array.

    A statistic that is undefined for this input (no [SEP] rows, no [CLS]) is None.
    """
    A = np.asarray(attention, dtype=np.float64)
    n = A.shape[-1]
    received = A.sum(axis=2)                                   # [L, H, n]: Σ over queries
    out: dict[str, np.ndarray | None] = {
        "cls": received[..., is_cls].sum(-1) / n,
        "sep": received[..., is_sep].sum(-1) / n,
        "punct": received[..., punct].sum(-1) / n,
        "self": np.einsum("lhii->lh", A) / n,
        "prev": np.diagonal(A, offset=-1, axis1=2, axis2=3).sum(-1) / n,
        "next": np.diagonal(A, offset=1, axis1=2, axis2=3).sum(-1) / n,
    }
    n_sep = int(is_sep.sum())
    to_sep = A[..., is_sep].sum(-1)                            # [L, H, n]: each row's mass on [SEP]s
    out["sep_sep"] = to_sep[..., is_sep].sum(-1) / n_sep if n_sep else None
    out["rest_sep"] = to_sep[..., ~is_sep].sum(-1) / (n - n_sep) if n - n_sep else None
    flat = np.ascontiguousarray(attention, dtype=np.float32).reshape(-1, n)
    rows, largest = np.empty(len(flat)), np.empty(len(flat))   # per row, in one compiled pass
    xlogx.row_entropy_and_max(flat, ENTROPY_SMOOTHING, rows, largest)
    rows, largest = rows.reshape(A.shape[:3]), largest.reshape(A.shape[:3])   # [L, H, n]
    out["entropy"] = rows.mean(-1)
    out["entropy_cls"] = rows[..., int(np.argmax(is_cls))] if is_cls.any() else None
    out["uniform_entropy"] = np.full(A.shape[:2], np.log(n))
    out["max_weight"] = largest.mean(-1)
    return out


class AttentionStatistics:
    """Streaming accumulator: ``add`` each input's maps, then read ``means()``, ``head_distances()``, ``frame()``."""

    def __init__(self, num_layers: int, num_heads: int, specials: SpecialTokens, *, similarity: bool = True):
        self.L, self.H = num_layers, num_heads
        self.specials = specials
        self.similarity = similarity
        self._sum = {s: np.zeros((num_layers, num_heads)) for s in STATS}
        self._weight = {s: 0.0 for s in STATS}
        K = num_layers * num_heads
        self._pair_xlogx = np.zeros((K, K))   # Σ c s ln s, s = p + q, for heads a < b (upper triangle)
        self._head_xlogx = np.zeros(K)        # Σ c p ln p
        self._head_mass = np.zeros(K)         # Σ c p (the total row weight, up to rounding)
        self._js_weight = 0.0
        self._buffer: list[tuple[np.ndarray, float]] = []
        self._elements = 0
        self._x = self._c = np.empty(0, dtype=np.float32)   # reused work arrays of the flush
        self._pool: ThreadPoolExecutor | None = None
        self.n_inputs = 0
        self.n_similarity_inputs = 0

    def add(self, units, special, attention: np.ndarray, weight: float = 1.0, similarity: bool = True) -> None:
        """Accumulate one input: its unit strings, special mask and maps [L, H, n, n].

        ``similarity=False`` leaves this input out of the head distances only (to bound their cost).
        """
        n = len(units)
        if attention.shape != (self.L, self.H, n, n):
            raise ValueError(f"attention of shape {attention.shape} does not match {self.L} layers × "
                             f"{self.H} heads × {len(units)} units")
        classes = unit_classes(units, special, self.specials)
        for name, value in input_stats(attention, *classes).items():
            if value is not None:
                self._sum[name] += weight * value
                self._weight[name] += weight
        self.n_inputs += 1
        if self.similarity and similarity:
            self.n_similarity_inputs += 1
            self._buffer.append((attention, weight))
            self._elements += self.L * self.H * n * n
            if self._elements >= _JS_BUFFER_ELEMENTS:
                self._flush()

    def add_activations(self, act, weight: float = 1.0, similarity: bool = True) -> None:
        """Accumulate an :class:`~probekit.extraction.Activations` (token or word level)."""
        self.add(act.units, act.special, act.attention.array, weight, similarity)

    def _flush(self) -> None:
        """Add the buffered inputs to the head-distance sums.

        Every smoothed row of every buffered input goes, unpadded, into one flat X [K, E] with its weight
        c = w/n per element; then for each pair of heads Σ_e c s ln s (s = p + q) and for each head Σ_e c p ln p
        and Σ_e c p are accumulated. The pairs are shared among threads (the compiled loop releases the GIL).
        """
        live = [(a, w) for a, w in self._buffer if w > 0]   # weight 0 adds nothing (and ln needs p > 0)
        self._buffer.clear()
        self._elements = 0
        if not live:
            return
        K = self.L * self.H
        E = sum(a.shape[-1] ** 2 for a, _ in live)
        if self._x.size < K * E:
            self._x = np.empty(K * E, dtype=np.float32)
            self._c = np.empty(E, dtype=np.float32)
        X, c = self._x[:K * E].reshape(K, E), self._c[:E]
        at = 0
        for a, w in live:
            n = a.shape[-1]
            rows = a.reshape(K, n, n)
            # rows renormalised first, as scipy's jensenshannon does: half-precision maps sum to 1 ± 1e-3
            scale = (1.0 - JS_SMOOTHING) / rows.sum(-1, dtype=np.float32, keepdims=True)
            block = X[:, at:at + n * n].reshape(K, n, n)
            np.multiply(rows, scale, out=block, casting="unsafe")
            block += JS_SMOOTHING / n
            c[at:at + n * n] = w / n
            self._js_weight += w
            at += n * n
        workers = max(1, min(torch.get_num_threads(), 8))
        if self._pool is None:
            self._pool = ThreadPoolExecutor(workers, thread_name_prefix="probekit-js")
        list(self._pool.map(lambda rows: xlogx.pair_sums(X, c, rows, self._pair_xlogx),
                            [np.arange(i, K - 1, workers) for i in range(workers)]))
        xlogx.head_sums(X, c, self._head_xlogx, self._head_mass)

    def means(self) -> dict[str, np.ndarray]:
        """Weighted mean of every statistic, [L, H] each (NaN where no input defined it)."""
        return {s: (self._sum[s] / self._weight[s] if self._weight[s] else np.full((self.L, self.H), np.nan))
                for s in STATS}

    def head_distances(self) -> np.ndarray:
        """[L·H, L·H] mean JS divergence between heads (row-major: index = (layer−1)·H + head−1)."""
        if not self.similarity:
            raise ValueError("head similarity was not accumulated (similarity=False)")
        self._flush()
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        if not self._js_weight:
            return np.full_like(self._pair_xlogx, np.nan)
        # per row JS = ½(Σ p ln p + Σ q ln q) − Σ m ln m, and Σ m ln m = ½ Σ s ln s − ½ ln 2 · Σ s with s = p + q
        ne, mass = self._head_xlogx, self._head_mass
        js = (0.5 * (ne[:, None] + ne[None, :]) - 0.5 * self._pair_xlogx
              + 0.5 * math.log(2.0) * (mass[:, None] + mass[None, :]))
        upper = np.triu(js, 1) / self._js_weight
        return np.maximum(upper + upper.T, 0.0)   # rounding can leave −1e-8 where two heads are identical

    def frame(self) -> pd.DataFrame:
        """Rows layer (1…L), head (1…H), metric (a name of ``STATS``), value."""
        rows = []
        for stat, value in self.means().items():
            for l in range(self.L):
                for h in range(self.H):
                    rows.append((l + 1, h + 1, stat, float(value[l, h])))
        return pd.DataFrame(rows, columns=["layer", "head", "metric", "value"])


class AttentionStats(AttentionStatistics, Analysis):
    """The statistics as an :class:`~probekit.core.analysis.Analysis`, so one pass can feed several analyses::

        stats, = pk.analyze(encoder, examples, [pk.AttentionStats(encoder)])

    Built from an encoder (its layers, heads and special tokens) or from ``num_layers``/``num_heads``/``specials``.
    Each example weighs ``example.meta.get("weight", 1.0)``; inputs at position ``similarity_limit`` or later
    (by ``Activations.index``) are left out of the head distances only. ``word_level`` reads word-level maps.
    :meth:`result` is the tidy table (task ``attention``, model, layer, head, metric, value).
    """

    needs_hidden = False
    needs_attention = True

    def __init__(self, encoder=None, *, num_layers: int | None = None, num_heads: int | None = None,
                 specials: SpecialTokens | None = None, similarity: bool = True,
                 similarity_limit: int | None = None, word_level: bool = False, model: str | None = None):
        if encoder is not None:
            num_layers, num_heads = encoder.num_layers, encoder.num_heads
            specials = specials or SpecialTokens.of(encoder.tokenizer)
            model = model or encoder.name
        if num_layers is None or num_heads is None:
            raise ValueError("AttentionStats needs an encoder or num_layers and num_heads")
        super().__init__(num_layers, num_heads, specials or SpecialTokens("[CLS]", "[SEP]"), similarity=similarity)
        self.level = "word" if word_level else "token"
        self.similarity_limit = similarity_limit
        self.model = model or "model"
        self.n_truncated = 0

    def update(self, activations, example) -> None:
        weight = float(example.meta.get("weight", 1.0)) if example is not None else 1.0
        self.add_activations(activations, weight, similarity=self.similarity_limit is None
                             or activations.index < self.similarity_limit)
        self.n_truncated += bool(getattr(activations, "truncated", False))

    def result(self) -> pd.DataFrame:
        from probekit.core.result import tidy

        return tidy(self.frame(), task="attention", model=self.model)


def distance_frame(distances: np.ndarray, num_heads: int) -> pd.DataFrame:
    """Tidy head-pair rows (layer_a, head_a, layer_b, head_b, value) of a [K, K] distance matrix."""
    K = distances.shape[0]
    idx = np.arange(K)
    a, b = np.meshgrid(idx, idx, indexing="ij")
    return pd.DataFrame({"layer_a": a.ravel() // num_heads + 1, "head_a": a.ravel() % num_heads + 1,
                         "layer_b": b.ravel() // num_heads + 1, "head_b": b.ravel() % num_heads + 1,
                         "value": distances.ravel()})


def mds_map(distances: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D metric MDS embedding [K, 2] of a precomputed dissimilarity matrix (scikit-learn)."""
    import inspect

    from sklearn.manifold import MDS

    params = inspect.signature(MDS).parameters
    kwargs = {"n_components": 2, "random_state": seed, "max_iter": 1000, "eps": 1e-9}
    if "metric_mds" in params:   # scikit-learn ≥ 1.8 renamed dissimilarity= to metric=
        kwargs.update(metric="precomputed", metric_mds=True, init="classical_mds", n_init=1)
    else:
        kwargs.update(dissimilarity="precomputed", n_init=4)
    if "normalized_stress" in params:
        kwargs["normalized_stress"] = "auto"
    return MDS(**kwargs).fit_transform(np.asarray(distances, dtype=np.float64))
