"""Structural probes (Hewitt & Manning 2019): syntax trees as distances and depths under a linear map.

A distance probe learns B (k × d) so that the squared distance ‖B(h_i − h_j)‖² of two word vectors fits the
number of edges between the words in the dependency tree; a depth probe fits the word's depth with ‖B h_i‖².
Losses are the paper's: L1, normalised by the squared sentence length (distance) or the length (depth).
Training is Hewitt & Manning's regimen (their code's ``regimen.py``): Adam at 0.001, the learning rate ×0.1
whenever the dev loss stops falling, at most 40 epochs, a stop after 5 epochs without a better dev loss, and the
parameters of the best dev loss kept. Metrics are the paper's too (see :func:`evaluate`): UUAS of the minimum
spanning tree of the predicted distances, distance Spearman averaged within sentence lengths and then over
lengths 5–50, root accuracy and depth Spearman. Punctuation (UPOS ``PUNCT``; Hewitt's code uses the PTB
punctuation tags) is left out of the spanning tree, the gold edges and the predicted root. Root accuracy counts
every sentence as Hewitt's code does: the gold root is the word of depth 0 even when it is punctuation (then
never found), and a sentence of punctuation only takes its shallowest word of all.

:func:`sentence_scores` keeps each sentence's part of every metric, so intervals and paired comparisons can
resample sentences (:data:`AGGREGATES` turns the parts back into the metric).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse.csgraph import minimum_spanning_tree, shortest_path
from scipy.stats import spearmanr

from probekit.probing.base import Probe, register

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


#: Hewitt & Manning's regimen: at most this many epochs, a stop after PATIENCE epochs without a better dev
#: loss (by more than MIN_DELTA), the learning rate ×DECAY each epoch the dev loss does not improve.
EPOCHS, PATIENCE, MIN_DELTA, DECAY = 40, 5, 1e-4, 0.1


def train(kind: str, train_sents: list[Sentence], dev_sents: list[Sentence], *, rank: int, epochs: int = EPOCHS,
          lr: float = 1e-3, batch_size: int = 20, seed: int = 0, device: str = "cpu", progress=None):
    """Hewitt & Manning's regimen: Adam, ReduceLROnPlateau (×0.1, patience 0) on the dev loss, early stopping
    after :data:`PATIENCE` epochs without improvement, the parameters with the lowest dev loss returned."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    dim = train_sents[0].vectors.shape[1]
    probe = PROBES[kind](dim, rank).to(device)
    opt = torch.optim.Adam(probe.parameters(), lr=lr)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=DECAY, patience=0)
    best, best_epoch, best_state, history = float("inf"), 0, None, []
    dev_batches = [_batch(dev_sents[i:i + 64], kind) for i in range(0, len(dev_sents), 64)]
    for epoch in range(1, epochs + 1):
        probe.train()
        order = rng.permutation(len(train_sents))
        total = 0.0
        rate = opt.param_groups[0]["lr"]
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
        plateau.step(dev)
        history.append({"epoch": epoch, "lr": rate, "train_loss": total / len(train_sents), "dev_loss": dev})
        if progress is not None:
            progress(epoch, dev)
        if best_state is None or dev < best - MIN_DELTA:
            best, best_epoch = dev, epoch
            best_state = {k: v.detach().clone() for k, v in probe.state_dict().items()}
        elif epoch - best_epoch >= PATIENCE:
            break
    probe.load_state_dict(best_state)
    for h in history:
        h["kept"] = h["epoch"] == best_epoch
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


def length_averaged(lengths, values) -> float:
    """Hewitt & Manning's average: the mean within each sentence length, then the mean over lengths 5–50."""
    lengths, values = np.asarray(lengths, dtype=np.int64), np.asarray(values, dtype=np.float64)
    lo, hi = SPEARMAN_LENGTHS
    use = (lengths >= lo) & (lengths <= hi) & np.isfinite(values)
    if not use.any():
        return float("nan")
    counts = np.bincount(lengths[use], minlength=hi + 1)
    sums = np.bincount(lengths[use], weights=values[use], minlength=hi + 1)
    return float(np.mean(sums[counts > 0] / counts[counts > 0]))


def _ratio(correct, total) -> float:
    t = float(np.sum(total))
    return float(np.sum(correct)) / t if t else float("nan")


#: metric → (the per-sentence columns it needs, how they make the metric)
AGGREGATES = {"uuas": (("correct", "edges"), _ratio), "dspr": (("length", "dspr"), length_averaged),
              "root_acc": (("root_hit",), lambda hits: float(np.mean(hits)) if len(hits) else float("nan")),
              "nspr": (("length", "nspr"), length_averaged)}
METRICS = {"distance": ("uuas", "dspr"), "depth": ("root_acc", "nspr")}


def root_guess(pred: np.ndarray, keep: np.ndarray) -> int:
    """The shallowest non-punctuation word, or the shallowest word when all are punctuation (as Hewitt's code)."""
    kept = np.flatnonzero(keep)
    return int(kept[np.argmin(pred[kept])]) if len(kept) else int(np.argmin(pred))


def sentence_scores(kind: str, sents: list[Sentence], predicted: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Each sentence's share of the metrics: distance — correct MST edges, gold edges, length and the mean
    Spearman of its rows (NaN outside lengths 5–50); depth — root found (0/1), length and depth Spearman."""
    lo, hi = SPEARMAN_LENGTHS
    out: dict[str, list] = {"length": []}
    for s, pred in zip(sents, predicted):
        n = len(s.heads)
        out["length"].append(n)
        inside = lo <= n <= hi
        if kind == "distance":
            gold = gold_edges(s.heads, s.keep)
            out.setdefault("correct", []).append(len(gold & mst_edges(pred, s.keep)))
            out.setdefault("edges", []).append(len(gold))
            rho = (np.nanmean([spearmanr(pred[i], s.distances[i]).statistic for i in range(n)]) if inside
                   else np.nan)
            out.setdefault("dspr", []).append(float(rho))
        else:
            out.setdefault("root_hit", []).append(float(root_guess(pred, s.keep) == s.heads.index(0)))
            out.setdefault("nspr", []).append(float(spearmanr(pred, s.depths).statistic) if inside else np.nan)
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def aggregate(scores: dict[str, np.ndarray], metric: str) -> float:
    cols, fn = AGGREGATES[metric]
    return fn(*[scores[c] for c in cols])


def evaluate(kind: str, sents: list[Sentence], predicted: list[np.ndarray]) -> dict[str, float]:
    scores = sentence_scores(kind, sents, predicted)
    return {m: aggregate(scores, m) for m in METRICS[kind]}


def evaluate_distances(sents: list[Sentence], predicted: list[np.ndarray]) -> dict[str, float]:
    """UUAS (MST of the predicted distances vs gold, punctuation excluded) and the length-averaged Spearman."""
    return evaluate("distance", sents, predicted)


def evaluate_depths(sents: list[Sentence], predicted: list[np.ndarray]) -> dict[str, float]:
    """Root accuracy over every sentence (Hewitt's count) and the length-averaged depth Spearman."""
    return evaluate("depth", sents, predicted)


def position_predictions(kind: str, sents: list[Sentence]) -> list[np.ndarray]:
    """The linear-position baseline: distance |i − j| (a right-branching chain) and depth = position."""
    if kind == "distance":
        return [np.abs(np.subtract.outer(np.arange(len(s.heads)), np.arange(len(s.heads)))).astype(float)
                for s in sents]
    return [np.arange(len(s.heads), dtype=float) for s in sents]


def position_baseline(kind: str, sents: list[Sentence]) -> dict[str, float]:
    """The linear-position baseline's metrics (:func:`position_predictions`)."""
    return evaluate(kind, sents, position_predictions(kind, sents))


class StructuralProbe(Probe):
    """A structural probe as a scikit-learn estimator: ``X`` a list of :class:`Sentence` (their gold trees are
    the targets, so ``y`` is unused), ``fit(X, dev=…) → self`` on Hewitt & Manning's regimen (the dev loss
    selects the epoch; without ``dev`` the training sentences do), ``predict`` the distance matrices or depth
    vectors, ``score`` the paper's first metric (UUAS or root accuracy). ``rank=None``: the vectors' size.
    Fitted: ``module_`` (the torch probe), ``history_`` (one row per epoch)."""

    input = "trees"
    paper = "Hewitt & Manning (2019)"
    kind = ""

    def __init__(self, rank: int | None = None, epochs: int = EPOCHS, lr: float = 1e-3, batch_size: int = 20,
                 seed: int = 0, device: str = "cpu"):
        self.rank, self.epochs, self.lr, self.batch_size = rank, epochs, lr, batch_size
        self.seed, self.device = seed, device

    def fit(self, X, y=None, dev=None) -> "StructuralProbe":
        X = list(X)
        rank = self.rank or X[0].vectors.shape[1]
        self.module_, self.history_ = train(self.kind, X, list(dev) if dev is not None else X, rank=rank,
                                            epochs=self.epochs, lr=self.lr, batch_size=self.batch_size,
                                            seed=self.seed, device=self.device)
        return self

    def predict(self, X) -> list:
        return predict(self.module_, list(X), device=self.device)

    def score(self, X, y=None) -> float:
        X = list(X)
        return float(evaluate(self.kind, X, self.predict(X))[METRICS[self.kind][0]])


@register
class TreeDistanceProbe(StructuralProbe):
    name = kind = "distance"
    summary = "‖B(h_i − h_j)‖² fits the tree distance of two words; scored by UUAS of the spanning tree"


@register
class TreeDepthProbe(StructuralProbe):
    name = kind = "depth"
    summary = "‖B h_i‖² fits the word's depth in the tree; scored by root accuracy"
