"""Structural probes (Hewitt & Manning 2019): syntax trees as distances and depths under a linear map.

A distance probe learns B (k × d) so that the squared distance ‖B(h_i − h_j)‖² of two word vectors fits the
number of edges between the words in the dependency tree; a depth probe fits the word's depth with ‖B h_i‖².
Losses are the paper's: L1, normalised by the squared sentence length (distance) or the length (depth).
Metrics are the paper's too (see :func:`evaluate`): UUAS of the minimum spanning tree of the predicted
distances, distance Spearman averaged within sentence lengths and then over lengths 5–50, root accuracy and
depth Spearman. Punctuation (UPOS ``PUNCT``) is left out of the spanning tree, the gold edges and the root.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse.csgraph import minimum_spanning_tree, shortest_path
from scipy.stats import spearmanr

PUNCT = frozenset({"PUNCT"})
#: the sentence lengths Spearman correlations are averaged over (both ends included)
SPEARMAN_LENGTHS = (5, 50)


def tree_distances(heads) -> np.ndarray:
    """Path length between every pair of words; ``heads`` are 1-based with 0 for the root."""
    n = len(heads)
    rows = [i for i, h in enumerate(heads) if h > 0]
    adj = np.zeros((n, n))
    for i in rows:
        adj[i, heads[i] - 1] = adj[heads[i] - 1, i] = 1
    return shortest_path(adj, method="D", directed=False, unweighted=True)


def tree_depths(heads) -> np.ndarray:
    """Edges from each word to the root word (the root word has depth 0)."""
    depth = np.zeros(len(heads))
    for i in range(len(heads)):
        node, d = i, 0
        while heads[node] > 0:
            node, d = heads[node] - 1, d + 1
        depth[i] = d
    return depth


@dataclass
class Sentence:
    """One sentence's word vectors with its gold tree (``keep`` marks the non-punctuation words)."""

    vectors: np.ndarray      # [n, d]
    heads: list[int]         # 1-based, 0 = root
    keep: np.ndarray         # [n] bool
    distances: np.ndarray    # [n, n]
    depths: np.ndarray       # [n]

    @classmethod
    def of(cls, vectors: np.ndarray, heads, tags=None, punct=PUNCT) -> "Sentence":
        keep = np.array([t not in punct for t in (tags or [""] * len(heads))], dtype=bool)
        return cls(np.asarray(vectors, dtype=np.float32), list(heads), keep, tree_distances(heads),
                   tree_depths(heads))


class DistanceProbe(torch.nn.Module):
    """‖B(h_i − h_j)‖² for every pair of words of each sentence in a padded batch."""

    def __init__(self, dim: int, rank: int):
        super().__init__()
        self.proj = torch.nn.Parameter(torch.empty(dim, rank))
        torch.nn.init.uniform_(self.proj, -0.05, 0.05)

    def forward(self, h: torch.Tensor) -> torch.Tensor:           # [B, n, d] → [B, n, n]
        t = h @ self.proj
        sq = (t * t).sum(-1)
        # ‖a − b‖² = ‖a‖² + ‖b‖² − 2a·b: no [B, n, n, k] difference tensor
        return (sq[:, :, None] + sq[:, None, :] - 2 * t @ t.transpose(1, 2)).clamp(min=0)


class DepthProbe(torch.nn.Module):
    """‖B h_i‖² for every word."""

    def __init__(self, dim: int, rank: int):
        super().__init__()
        self.proj = torch.nn.Parameter(torch.empty(dim, rank))
        torch.nn.init.uniform_(self.proj, -0.05, 0.05)

    def forward(self, h: torch.Tensor) -> torch.Tensor:           # [B, n, d] → [B, n]
        t = h @ self.proj
        return (t * t).sum(-1)


PROBES = {"distance": DistanceProbe, "depth": DepthProbe}


def _batch(sents: list[Sentence], kind: str):
    n = max(len(s.heads) for s in sents)
    d = sents[0].vectors.shape[1]
    h = torch.zeros(len(sents), n, d)
    lengths = torch.tensor([len(s.heads) for s in sents], dtype=torch.float32)
    if kind == "distance":
        gold = torch.zeros(len(sents), n, n)
        mask = torch.zeros(len(sents), n, n, dtype=torch.bool)
    else:
        gold = torch.zeros(len(sents), n)
        mask = torch.zeros(len(sents), n, dtype=torch.bool)
    for b, s in enumerate(sents):
        m = len(s.heads)
        h[b, :m] = torch.from_numpy(s.vectors)
        if kind == "distance":
            gold[b, :m, :m] = torch.from_numpy(s.distances)
            mask[b, :m, :m] = True
        else:
            gold[b, :m] = torch.from_numpy(s.depths)
            mask[b, :m] = True
    return h, gold, mask, lengths


def loss(pred: torch.Tensor, gold: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor, kind: str):
    """The paper's L1 loss: per sentence Σ|gold − pred| / n² (distance) or / n (depth), averaged over sentences."""
    err = ((pred - gold).abs() * mask).flatten(1).sum(1)
    norm = lengths ** 2 if kind == "distance" else lengths
    return (err / norm).mean()


def predict(probe: torch.nn.Module, sents: list[Sentence], batch_size: int = 64, device: str = "cpu"):
    """The probe's predicted distance matrices or depth vectors, one per sentence."""
    kind = "distance" if isinstance(probe, DistanceProbe) else "depth"
    out = []
    probe.eval()
    with torch.no_grad():
        for start in range(0, len(sents), batch_size):
            chunk = sents[start:start + batch_size]
            h = _batch(chunk, kind)[0].to(device)
            pred = probe(h).cpu().numpy()
            for b, s in enumerate(chunk):
                m = len(s.heads)
                out.append(pred[b, :m, :m] if kind == "distance" else pred[b, :m])
    return out


def train(kind: str, train_sents: list[Sentence], dev_sents: list[Sentence], *, rank: int, epochs: int = 10,
          lr: float = 1e-3, batch_size: int = 20, seed: int = 0, device: str = "cpu", progress=None):
    """Adam on the L1 loss; the epoch with the lowest dev loss is kept (Hewitt & Manning's early stopping)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    dim = train_sents[0].vectors.shape[1]
    probe = PROBES[kind](dim, rank).to(device)
    opt = torch.optim.Adam(probe.parameters(), lr=lr)
    best, best_state, history = float("inf"), None, []
    dev_batches = [_batch(dev_sents[i:i + 64], kind) for i in range(0, len(dev_sents), 64)]
    for epoch in range(1, epochs + 1):
        probe.train()
        order = rng.permutation(len(train_sents))
        total = 0.0
        for start in range(0, len(order), batch_size):
            chunk = [train_sents[i] for i in order[start:start + batch_size]]
            h, gold, mask, lengths = (t.to(device) for t in _batch(chunk, kind))
            value = loss(probe(h), gold, mask, lengths, kind)
            opt.zero_grad()
            value.backward()
            opt.step()
            total += float(value.detach()) * len(chunk)
        probe.eval()
        with torch.no_grad():
            dev = sum(float(loss(probe(h.to(device)), g.to(device), m.to(device), n.to(device), kind)) * len(n)
                      for h, g, m, n in dev_batches) / max(len(dev_sents), 1)
        history.append({"epoch": epoch, "train_loss": total / len(train_sents), "dev_loss": dev})
        if dev < best:
            best, best_state = dev, {k: v.detach().clone() for k, v in probe.state_dict().items()}
        if progress is not None:
            progress(epoch, dev)
    probe.load_state_dict(best_state)
    return probe, history


def mst_edges(distances: np.ndarray, keep: np.ndarray) -> set[tuple[int, int]]:
    """Undirected edges (i < j, indices into the sentence) of the minimum spanning tree over the kept words."""
    idx = np.flatnonzero(keep)
    if len(idx) < 2:
        return set()
    sub = np.asarray(distances, dtype=np.float64)[np.ix_(idx, idx)]
    # csgraph treats 0 as "no edge": shift every off-diagonal weight above 0, keeping the order
    sub = sub - sub.min() + 1.0
    np.fill_diagonal(sub, 0.0)
    tree = minimum_spanning_tree(sub).tocoo()
    return {tuple(sorted((int(idx[a]), int(idx[b])))) for a, b in zip(tree.row, tree.col)}


def gold_edges(heads, keep: np.ndarray) -> set[tuple[int, int]]:
    """Undirected (dependent, head) edges whose two words are both kept (punctuation excluded)."""
    return {tuple(sorted((i, h - 1))) for i, h in enumerate(heads) if h > 0 and keep[i] and keep[h - 1]}


def _length_averaged(values: dict[int, list[float]]) -> float:
    lo, hi = SPEARMAN_LENGTHS
    means = [np.mean(v) for n, v in sorted(values.items()) if lo <= n <= hi and v]
    return float(np.mean(means)) if means else float("nan")


def evaluate_distances(sents: list[Sentence], predicted: list[np.ndarray]) -> dict[str, float]:
    """UUAS (MST of the predicted distances vs gold, punctuation excluded) and the length-averaged Spearman."""
    correct = total = 0
    by_length: dict[int, list[float]] = {}
    for s, pred in zip(sents, predicted):
        gold = gold_edges(s.heads, s.keep)
        correct += len(gold & mst_edges(pred, s.keep))
        total += len(gold)
        n = len(s.heads)
        if SPEARMAN_LENGTHS[0] <= n <= SPEARMAN_LENGTHS[1]:
            rhos = [spearmanr(pred[i], s.distances[i]).statistic for i in range(n)]
            by_length.setdefault(n, []).append(float(np.nanmean(rhos)))
    return {"uuas": correct / total if total else float("nan"), "dspr": _length_averaged(by_length)}


def evaluate_depths(sents: list[Sentence], predicted: list[np.ndarray]) -> dict[str, float]:
    """Root accuracy (the shallowest non-punctuation word is the root) and the length-averaged depth Spearman."""
    hits = counted = 0
    by_length: dict[int, list[float]] = {}
    for s, pred in zip(sents, predicted):
        kept = np.flatnonzero(s.keep)
        root = s.heads.index(0)
        if len(kept) and s.keep[root]:
            counted += 1
            hits += int(kept[np.argmin(pred[kept])] == root)
        n = len(s.heads)
        if SPEARMAN_LENGTHS[0] <= n <= SPEARMAN_LENGTHS[1]:
            by_length.setdefault(n, []).append(float(spearmanr(pred, s.depths).statistic))
    return {"root_acc": hits / counted if counted else float("nan"), "nspr": _length_averaged(by_length)}


def evaluate(kind: str, sents: list[Sentence], predicted: list[np.ndarray]) -> dict[str, float]:
    return evaluate_distances(sents, predicted) if kind == "distance" else evaluate_depths(sents, predicted)


def position_baseline(kind: str, sents: list[Sentence]) -> dict[str, float]:
    """The linear-position baseline: distance |i − j| (a right-branching chain) and depth = position."""
    if kind == "distance":
        pred = [np.abs(np.subtract.outer(np.arange(len(s.heads)), np.arange(len(s.heads)))).astype(float)
                for s in sents]
    else:
        pred = [np.arange(len(s.heads), dtype=float) for s in sents]
    return evaluate(kind, sents, pred)
