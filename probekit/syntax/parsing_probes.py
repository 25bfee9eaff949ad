"""Attention-only parsing probes (Clark et al. 2019 §5) and their baselines, in torch.

A probe scores, for every dependent word j, each candidate head i ∈ {ROOT, w1 … wn}; a softmax over the
candidates gives p(head = i | dep = j). Features are the word-level attention maps of every layer × head in
both directions (α^k_ji: j attends to i, and α^k_ij: i attends to j), so K = 2·L·H maps:

- ``attn``: logit(j, i) = Σ_k w_k · map_k[j, i]. ROOT's "attention" is the attention to the special tokens,
  ``rs · map_k[j, first special] + re · map_k[j, last special]`` with two learned scalars shared by all maps.
- ``attn-words``: the weights depend on the pair's word vectors, w_k(j, i) = P_k·v_j + Q_k·v_i + b_k
  (a dense layer on v_j ⊕ v_i, split in two so it is never materialised per pair). ROOT's vector is zero and
  sits at candidate 0, aligned with the ROOT column; ``root_misaligned=True`` reproduces the original code's
  bug (ROOT vector appended at the end, Clark issue #17).
- ``distance-words``: an MLP (256 tanh units) on v_j ⊕ v_i and 8 distance features: (j−i)/n if i<j, (i−j)/n if
  i>j, indicators for i−j ∈ {0, −1, +1, −2, +2}, and a ROOT indicator.
- ``right-branching``: every word's head is the next word (the last word's is ROOT); no training.

One difference from Clark's code: the word itself is never a candidate (it cannot be its own head).
Training follows the reference: Adam, lr 0.002, one sentence per step in corpus order, loss = summed
cross-entropy over the sentence's words. UAS counts every non-punctuation word (ROOT included).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from probekit.core.threads import one_thread

PROBES = ("right-branching", "distance-words", "attn", "attn-words")
LABELS = {"right-branching": "Right-branching", "distance-words": "Distances + word vectors",
          "attn": "Attn", "attn-words": "Attn + word vectors"}


@dataclass
class Tree:
    """Gold tree of one sentence: ``heads`` 1-based (0 = ROOT), ``punct`` words excluded from UAS,
    ``word_ids`` rows of the word-vector table."""

    heads: np.ndarray
    punct: np.ndarray
    word_ids: np.ndarray

    @property
    def n(self) -> int:
        return len(self.heads)


AttentionSource = Callable[[int], tuple[np.ndarray, np.ndarray]]   # i → (attention [L,H,U,U], special [U])


def attention_maps(attention: np.ndarray, special: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(maps [K, n, n] among words, root [2, K, n] = attention to the first / last special), K = 2·L·H."""
    A = torch.as_tensor(np.asarray(attention), dtype=torch.float32)
    L, H, U, _ = A.shape
    A = A.reshape(L * H, U, U)
    maps = torch.cat([A, A.transpose(1, 2)])                       # [K, U, U]: α_ji then α_ij
    sp = np.flatnonzero(np.asarray(special, dtype=bool))
    words = torch.as_tensor(np.flatnonzero(~np.asarray(special, dtype=bool)))
    rows = maps.index_select(1, words)                             # [K, n, U]
    root = torch.stack([rows[:, :, int(sp[0])], rows[:, :, int(sp[-1])]])
    return rows.index_select(2, words), root


def distance_features(n: int) -> torch.Tensor:
    """[n, n+1, 8] features of (dependent j, candidate i), candidate 0 = ROOT."""
    j = torch.arange(1, n + 1, dtype=torch.float32)[:, None]
    i = torch.arange(0, n + 1, dtype=torch.float32)[None, :]
    word = (i > 0).float().expand(n, n + 1)
    d = i - j
    feats = [torch.clamp(-d, min=0) / n * word, torch.clamp(d, min=0) / n * word]
    feats += [(d == k).float() * word for k in (0, -1, 1, -2, 2)]
    feats.append(1 - word)
    return torch.stack(feats, -1)


class ParsingProbe(nn.Module):
    """One of :data:`PROBES` except right-branching; ``forward`` gives logits [n, n+1] (column 0 = ROOT)."""

    def __init__(self, kind: str, n_maps: int, word_dim: int = 0, hidden: int = 256,
                 root_misaligned: bool = False):
        super().__init__()
        if kind not in ("attn", "attn-words", "distance-words"):
            raise ValueError(f"unknown probe {kind!r}")
        if kind != "attn" and word_dim <= 0:
            raise ValueError(f"{kind} needs word vectors")
        self.kind, self.root_misaligned = kind, root_misaligned
        if kind in ("attn", "attn-words"):
            self.root_scale = nn.Parameter(torch.ones(2))           # ROOT_start, ROOT_end
        if kind == "attn":
            self.w = nn.Parameter(torch.zeros(n_maps))
        elif kind == "attn-words":
            self.dep = nn.Linear(word_dim, n_maps, bias=True)        # P v_j + b
            self.cand = nn.Linear(word_dim, n_maps, bias=False)      # Q v_i
        else:
            self.dep = nn.Linear(word_dim, hidden, bias=True)
            self.cand = nn.Linear(word_dim, hidden, bias=False)
            self.dist = nn.Linear(8, hidden, bias=False)
            self.out = nn.Linear(hidden, 1)

    def candidate_vectors(self, vectors: torch.Tensor) -> torch.Tensor:
        """[n+1, d]: the zero ROOT vector first (aligned) or last (the original code's bug)."""
        zero = vectors.new_zeros(1, vectors.shape[1])
        return torch.cat([vectors, zero]) if self.root_misaligned else torch.cat([zero, vectors])

    def forward(self, maps: torch.Tensor | None, root: torch.Tensor | None,
                vectors: torch.Tensor | None) -> torch.Tensor:
        if self.kind == "distance-words":
            n = vectors.shape[0]
            h = (self.dep(vectors)[:, None, :] + self.cand(self.candidate_vectors(vectors))[None, :, :]
                 + self.dist(distance_features(n)))
            logits = self.out(torch.tanh(h)).squeeze(-1)
        else:
            root_col = torch.einsum("r,rkn->kn", self.root_scale, root)           # [K, n]
            X = torch.cat([root_col[:, :, None], maps], 2)                        # [K, n, n+1]
            if self.kind == "attn":
                logits = torch.einsum("k,kji->ji", self.w, X)
            else:
                logits = (torch.einsum("jk,kji->ji", self.dep(vectors), X)
                          + torch.einsum("ik,kji->ji", self.cand(self.candidate_vectors(vectors)), X))
        n = logits.shape[0]
        self_mask = torch.zeros_like(logits, dtype=torch.bool)
        self_mask[torch.arange(n), torch.arange(1, n + 1)] = True
        return logits.masked_fill(self_mask, float("-inf"))


def right_branching(n: int) -> np.ndarray:
    """Heads (1-based) when every word attaches to the next; the last word to ROOT."""
    h = np.arange(2, n + 2)
    h[-1] = 0
    return h


class UAS:
    """Unlabelled attachment score over non-punctuation words."""

    def __init__(self):
        self.correct = 0
        self.total = 0

    def add(self, pred: np.ndarray, tree: Tree) -> None:
        keep = ~tree.punct
        self.correct += int((np.asarray(pred)[keep] == tree.heads[keep]).sum())
        self.total += int(keep.sum())

    @property
    def value(self) -> float:
        return self.correct / self.total if self.total else float("nan")


def _inputs(probe: ParsingProbe, attention: AttentionSource | None, i: int, tree: Tree,
            vectors: torch.Tensor | None):
    maps = root = v = None
    if probe.kind != "distance-words":
        att, special = attention(i)
        maps, root = attention_maps(att, special)
        if maps.shape[1] != tree.n:
            raise ValueError(f"sentence {i}: attention has {maps.shape[1]} words, tree has {tree.n}")
    if probe.kind != "attn":
        v = vectors[torch.as_tensor(tree.word_ids)]
    return maps, root, v


def train_probe(probe: ParsingProbe, trees: Sequence[Tree], attention: AttentionSource | None,
                vectors: torch.Tensor | None = None, *, epochs: int = 1, lr: float = 0.002,
                progress=None) -> list[float]:
    """Adam, one sentence per step, in the given order; returns seconds per epoch."""
    opt = torch.optim.Adam(probe.parameters(), lr=lr)
    times = []
    probe.train()
    with one_thread():
        for _ in range(epochs):
            times.append(_epoch(probe, opt, trees, attention, vectors, progress))
    return times


def _epoch(probe, opt, trees, attention, vectors, progress) -> float:
    start = time.perf_counter()
    for i, tree in enumerate(trees):
        logits = probe(*_inputs(probe, attention, i, tree, vectors))
        loss = nn.functional.cross_entropy(logits, torch.as_tensor(tree.heads), reduction="sum")
        opt.zero_grad()
        loss.backward()
        opt.step()
        if progress is not None:
            progress.update(1)
    return time.perf_counter() - start


@torch.no_grad()
def evaluate_probe(probe: ParsingProbe, trees: Sequence[Tree], attention: AttentionSource | None,
                   vectors: torch.Tensor | None = None) -> float:
    """UAS (non-punct words) of the probe's argmax heads."""
    probe.eval()
    uas = UAS()
    with one_thread():
        for i, tree in enumerate(trees):
            logits = probe(*_inputs(probe, attention, i, tree, vectors))
            uas.add(logits.argmax(1).numpy(), tree)
    return uas.value


def evaluate_right_branching(trees: Sequence[Tree]) -> float:
    uas = UAS()
    for tree in trees:
        uas.add(right_branching(tree.n), tree)
    return uas.value


def top_weights(probe: ParsingProbe, num_layers: int, num_heads: int) -> list[dict]:
    """The Attn probe's weight per (layer, head, direction), largest first (what the probe relies on)."""
    w = probe.w.detach().numpy().reshape(2, num_layers, num_heads)
    rows = [{"layer": l + 1, "head": h + 1, "direction": ("dep->head", "head<-dep")[d], "weight": float(w[d, l, h])}
            for d in range(2) for l in range(num_layers) for h in range(num_heads)]
    return sorted(rows, key=lambda r: -r["weight"])
