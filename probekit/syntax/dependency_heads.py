"""Which attention heads track syntactic dependencies (Clark et al. 2019 §4.2), accumulated sentence by sentence.

For every layer × head and both directions a head "predicts" each word's syntactic head:

- ``dep->head``: the word the dependent attends to most (the word-level map A as is);
- ``head<-dep``: the word that attends most to the dependent (Aᵀ).

Self and special tokens ([CLS]/[SEP] pseudo-words) are excluded before the argmax, so ROOT is never
predicted (as in Clark's code). The ``'s`` rule for possessives follows the paper: for a ``poss`` /
``nmod:poss`` word followed by its possessive marker (``'s``, ``'`` …, attached to the word), the
prediction *for the marker* is scored against the possessor's gold head. Fixed-offset baselines predict
word i+k (clamped to the sentence, so off-sentence predictions become ROOT or the last word, as in Clark's
code); the best offset per relation is the baseline.

Only counts are kept (``[relations, L, H, 2]`` integers), never the maps, so memory does not grow with the
corpus. :class:`DependencyHeads` wraps the counts as an :class:`~probekit.core.analysis.Analysis`, so
``pk.analyze`` can feed it in the same pass as other analyses.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from probekit.core.analysis import Analysis
from probekit.corpora.conllu import strip_subtype
from probekit.core.result import tidy

DIRECTIONS = ("dep->head", "head<-dep")
CLARK_OFFSETS = tuple(range(-3, 3))      # Clark's code: range(-3, 3) = -3..+2
DEFAULT_OFFSETS = tuple(range(-3, 4))    # -3..+3
POSS_RELATIONS = {"poss", "nmod:poss"}
POSS_MARKERS = {"'s", "s'", "'", "’s", "’", "s’"}
ALL, ALL_NOPUNCT = "all", "all-nopunct"


def parse_offsets(spec: str) -> tuple[int, ...]:
    """``"-3:3"`` (inclusive range) or ``"-2,-1,1"`` → offsets."""
    spec = spec.strip()
    try:
        if ":" in spec:
            lo, hi = (int(s) for s in spec.split(":", 1))
            if lo > hi:
                raise ValueError
            return tuple(range(lo, hi + 1))
        return tuple(int(s) for s in spec.split(",") if s.strip())
    except ValueError:
        raise ValueError(f"offsets must look like '-3:3' or '-2,-1,1', got {spec!r}") from None


def word_attention(attention: np.ndarray, special: np.ndarray) -> np.ndarray:
    """[L, H, n, n] attention among the real words only (special pseudo-words dropped)."""
    idx = np.flatnonzero(~np.asarray(special, dtype=bool))
    return attention[:, :, idx[:, None], idx[None, :]]


def head_predictions(attention: np.ndarray, special: np.ndarray) -> np.ndarray:
    """Predicted heads, 1-based, [2 (direction), L, H, n]; self and specials never win."""
    A = np.asarray(attention, dtype=np.float32)
    special = np.asarray(special, dtype=bool)
    if special[0] and special[-1] and not special[1:-1].any():
        W = A[:, :, 1:-1, 1:-1].copy()          # the usual [CLS] w1 … wn [SEP]: a slice, one copy
    else:
        W = word_attention(A, special)
    L, H, n, _ = W.shape
    diag = np.arange(n)
    W[..., diag, diag] = -np.inf
    out = np.empty((2, L, H, n), dtype=np.int64)
    # argmax over the last axis of 2-D contiguous arrays is much faster than over a strided axis
    out[0] = W.reshape(-1, n).argmax(1).reshape(L, H, n)
    out[1] = np.ascontiguousarray(W.swapaxes(-1, -2)).reshape(-1, n).argmax(1).reshape(L, H, n)
    return out + 1


def scored_positions(words: list[str], heads: list[int], deprels: list[str]) -> np.ndarray:
    """Whose prediction is scored for each word: itself, or the following possessive marker (poss rule)."""
    n = len(words)
    src = np.arange(n)
    for j in range(n - 1):
        if (deprels[j] in POSS_RELATIONS and words[j + 1].lower() in POSS_MARKERS
                and heads[j + 1] == j + 1):
            src[j] = j + 1
    return src


def offset_predictions(n: int, offsets) -> np.ndarray:
    """[len(offsets), n] 1-based predictions ``clamp(i + 1 + k, 0, n)`` (Clark's ``offset_predictor``)."""
    i = np.arange(n)
    return np.clip(i[None, :] + 1 + np.asarray(offsets)[:, None], 0, n)


class DependencyHeadScores:
    """Per-relation correct counts of every head (both directions) and every fixed offset."""

    def __init__(self, num_layers: int, num_heads: int, *, offsets=DEFAULT_OFFSETS, strip_subtypes: bool = False):
        self.L, self.H = num_layers, num_heads
        self.offsets = tuple(offsets)
        self.strip_subtypes = strip_subtypes
        self.relations: dict[str, int] = {}
        self._counts = np.zeros(0, dtype=np.int64)
        self._head = np.zeros((0, 2, num_layers, num_heads), dtype=np.int64)
        self._offset = np.zeros((0, len(self.offsets)), dtype=np.int64)
        self.n_sentences = 0

    def _rel_ids(self, rels: list[str]) -> np.ndarray:
        for r in rels:
            if r not in self.relations:
                self.relations[r] = len(self.relations)
        grow = len(self.relations) - len(self._counts)
        if grow > 0:
            self._counts = np.concatenate([self._counts, np.zeros(grow, np.int64)])
            self._head = np.concatenate([self._head, np.zeros((grow,) + self._head.shape[1:], np.int64)])
            self._offset = np.concatenate([self._offset, np.zeros((grow, len(self.offsets)), np.int64)])
        return np.array([self.relations[r] for r in rels], dtype=np.int64)

    def add(self, attention: np.ndarray, special: np.ndarray, words: list[str], heads: list[int],
            deprels: list[str]) -> None:
        """Score one sentence: ``attention`` [L, H, U, U] word-level, ``special`` [U] bool."""
        n = len(words)
        if int((~np.asarray(special, dtype=bool)).sum()) != n:
            raise ValueError(f"attention has {int((~special).sum())} word units for {n} words")
        gold = np.asarray(heads, dtype=np.int64)
        src = scored_positions(words, heads, deprels)
        rels = [strip_subtype(r) for r in deprels] if self.strip_subtypes else list(deprels)
        rid = self._rel_ids(rels)
        present, local = np.unique(rid, return_inverse=True)         # the few relations in this sentence
        onehot = np.zeros((n, len(present)), dtype=np.float32)
        onehot[np.arange(n), local] = 1.0
        pred = head_predictions(attention, special)                  # [2, L, H, n]
        correct = (pred[..., src] == gold).reshape(-1, n).astype(np.float32)      # [2LH, n]
        off = (offset_predictions(n, self.offsets)[:, src] == gold).astype(np.float32)   # [K, n]
        # counts per relation as small float matmuls (exact: at most n per entry), added to int64 totals
        self._counts[present] += onehot.sum(0).astype(np.int64)
        self._head[present] += np.rint(onehot.T @ correct.T).astype(np.int64).reshape((len(present),) + self._head.shape[1:])
        self._offset[present] += np.rint(onehot.T @ off.T).astype(np.int64)
        self.n_sentences += 1

    # ---- results -------------------------------------------------------------------------------------
    def _aggregates(self):
        """relation → (count, head correct [2, L, H], offset correct [K]), with "all" and "all-nopunct"."""
        out = {}
        punct = [i for r, i in self.relations.items() if r == "punct"]
        keep = np.ones(len(self.relations), dtype=bool)
        keep[punct] = False
        out[ALL] = (int(self._counts.sum()), self._head.sum(0), self._offset.sum(0))
        out[ALL_NOPUNCT] = (int(self._counts[keep].sum()), self._head[keep].sum(0), self._offset[keep].sum(0))
        for r, i in sorted(self.relations.items(), key=lambda kv: (-self._counts[kv[1]], kv[0])):
            out[r] = (int(self._counts[i]), self._head[i], self._offset[i])
        return out

    def tidy(self, *, task: str = "deps", model: str = "", split: str = "") -> pd.DataFrame:
        """One row per (relation, layer, head, direction) and per (relation, offset): accuracy and count.

        The shared schema (task, relation, direction, model, layer, head, metric, value …): baseline rows have
        an empty layer/head, ``baseline`` = ``"offset"`` and their offset in ``offset``.
        """
        rows = []
        for rel, (count, head, off) in self._aggregates().items():
            if count == 0:
                continue
            acc = head / count
            for d, direction in enumerate(DIRECTIONS):
                for l in range(self.L):
                    for h in range(self.H):
                        rows.append({"task": task, "relation": rel, "model": model, "layer": l + 1, "head": h + 1,
                                     "direction": direction, "offset": pd.NA, "probe": "attention-head",
                                     "baseline": pd.NA, "split": split, "metric": "accuracy",
                                     "value": float(acc[d, l, h]), "n": count})
            for k, o in enumerate(self.offsets):
                rows.append({"task": task, "relation": rel, "model": model, "layer": pd.NA, "head": pd.NA,
                             "direction": pd.NA, "offset": o, "probe": "offset", "baseline": "offset",
                             "split": split, "metric": "accuracy", "value": float(off[k] / count), "n": count})
        columns = ["task", "relation", "model", "layer", "head", "direction", "offset", "probe", "baseline",
                   "split", "metric", "value", "n"]
        df = pd.DataFrame(rows, columns=columns)
        df["offset"] = df["offset"].astype("Int64")
        return tidy(df, task=task, model=model, keys=["relation", "direction"])

    def best(self, *, min_count: int = 100, skip=("root", "punct")) -> pd.DataFrame:
        """Clark's Table 1: per relation the best head (over layers × heads × directions) and best offset.

        Rows: "all", "all-nopunct", then every relation with at least ``min_count`` words, most frequent first
        (``root`` and ``punct`` left out, as in Clark's notebook). Ties go to the lowest layer, head, direction.
        """
        rows = []
        for rel, (count, head, off) in self._aggregates().items():
            if count == 0 or (rel not in (ALL, ALL_NOPUNCT) and (count < min_count or rel in skip)):
                continue
            acc = head / count
            d, l, h = np.unravel_index(int(np.argmax(acc.reshape(-1))), acc.shape)
            k = int(np.argmax(off))
            rows.append({"relation": rel, "count": count, "head": f"{l + 1}-{h + 1}", "layer": int(l + 1),
                         "head_index": int(h + 1), "direction": DIRECTIONS[d], "accuracy": float(acc[d, l, h]),
                         "baseline": float(off[k] / count), "offset": int(self.offsets[k])})
        return pd.DataFrame(rows)

    def layer_head(self, relation: str, direction: str) -> np.ndarray:
        """[L, H] accuracy of one relation and direction (for heat maps)."""
        count, head, _ = self._aggregates()[relation]
        return head[DIRECTIONS.index(direction)] / max(count, 1)


class DependencyHeads(Analysis):
    """Clark et al.'s dependency-head accuracy as a corpus :class:`~probekit.core.analysis.Analysis`.

    Each example brings its gold tree (``example.words``, ``example.meta["heads"]`` 1-based with 0 = root,
    ``example.meta["deprels"]``, as :func:`~probekit.corpora.conllu.read_conllu` gives them); ``update`` scores
    its word-level attention and drops it. Truncated inputs have no complete tree: they are counted in
    ``truncated``, not scored. ``result()`` is the tidy table (see :meth:`DependencyHeadScores.tidy`);
    ``scores`` keeps the counts (``best()``, ``layer_head()``)::

        deps, = pk.analyze(encoder, pk.read_conllu("dev.conllu"), [pk.DependencyHeads(encoder)])
    """

    needs_attention = True
    needs_hidden = False
    level = "word"

    def __init__(self, encoder=None, *, num_layers: int | None = None, num_heads: int | None = None,
                 offsets=DEFAULT_OFFSETS, strip_subtypes: bool = False, model: str | None = None, split: str = ""):
        if encoder is not None:
            num_layers = num_layers or encoder.num_layers
            num_heads = num_heads or encoder.num_heads
            model = model if model is not None else encoder.name
        if not num_layers or not num_heads:
            raise ValueError("DependencyHeads needs an encoder, or num_layers and num_heads")
        self.scores = DependencyHeadScores(num_layers, num_heads, offsets=offsets, strip_subtypes=strip_subtypes)
        self.model, self.split = model or "", split
        self.truncated = 0

    def update(self, activations, example) -> None:
        from probekit.core.errors import UserError
        from probekit.syntax.common import check_word_units

        if activations.truncated:
            self.truncated += 1     # a cut sentence has no complete tree to score; counted and reported instead
            return
        meta = example.meta or {}
        if "heads" not in meta or "deprels" not in meta:
            raise UserError(f"{meta.get('source') or 'an example'}: DependencyHeads needs a gold tree "
                            "(meta['heads'] and meta['deprels'], as read_conllu gives them)")
        check_word_units(activations, example, "dependency scoring")
        self.scores.add(activations.attention.array, activations.special, list(example.words), meta["heads"],
                        meta["deprels"])

    def result(self) -> pd.DataFrame:
        return self.scores.tidy(model=self.model, split=self.split)
