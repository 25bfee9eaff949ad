"""Edge probing with a scalar mix (Tenney et al. 2019): span and span-pair classifiers over frozen word vectors.

A target is one span (UPOS of a word) or two (the dependency relation of a dependent–head pair; whether a
pronoun and a name corefer). As in Tenney et al.'s edge-probing code (jiant's ``edges-tmpl`` settings): each
span has its own 256-d projection and its own self-attentive pooling over its words, the pooled spans
(concatenated for pairs) go through a two-layer MLP (Linear, Tanh, LayerNorm, dropout 0.3, Linear), and every
label gets its own sigmoid (binary cross-entropy against the one-hot label), scored by micro-F1 at 0.5 beside
accuracy and macro-F1 of the top label. Adam at 1e-4 on batches of 32; the dev micro-F1 is checked every
``val_interval`` steps (Tenney: 1000), the rate halves after 3 checks without improvement and training stops
after 9 (or at ``epochs`` epochs), and the best check's parameters are kept. The word vectors are a scalar mix
h = γ Σ_l s_l h^(l), s = softmax(a), learned with the probe, over a chosen set of layers: one layer (a per-layer
probe), layers 0…l (the cumulative probes of "BERT rediscovers the classical NLP pipeline"), or all layers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.base import ClassifierMixin

from probekit.probing.base import Probe, register


@dataclass
class Targets:
    """Spans of one task: ``spans`` [N, 2, W] row indices into the word-vector table (-1 = no word; a one-span
    task leaves the second span empty), ``labels`` [N] class ids, ``classes`` their names."""

    spans: np.ndarray
    labels: np.ndarray
    classes: list[str]

    def __len__(self) -> int:
        return len(self.labels)


def build_targets(items: list[tuple[list[int], list[int], str]], classes: list[str] | None = None,
                  width: int | None = None) -> Targets:
    """``items``: (span 1 rows, span 2 rows or [], label). Labels unseen in ``classes`` are dropped (dev data)."""
    classes = classes if classes is not None else sorted({lab for _, _, lab in items})
    index = {c: i for i, c in enumerate(classes)}
    kept = [it for it in items if it[2] in index]
    width = width or max([len(a) for a, _, _ in kept] + [len(b) for _, b, _ in kept] + [1])
    spans = np.full((len(kept), 2, width), -1, dtype=np.int64)
    for n, (a, b, _) in enumerate(kept):
        spans[n, 0, :len(a[:width])] = a[:width]
        spans[n, 1, :len(b[:width])] = b[:width]
    labels = np.array([index[lab] for _, _, lab in kept], dtype=np.int64)
    return Targets(spans, labels, list(classes))


class ScalarMix(torch.nn.Module):
    """γ Σ_l softmax(a)_l h^(l) over the layers given to it (weights start equal)."""

    def __init__(self, n_layers: int):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.zeros(n_layers))
        self.gamma = torch.nn.Parameter(torch.ones(()))

    def weights(self) -> torch.Tensor:
        return torch.softmax(self.logits, 0)

    def forward(self, layers: torch.Tensor) -> torch.Tensor:      # [Λ, …, D] → […, D]
        w = self.weights().view(-1, *([1] * (layers.dim() - 1)))
        return self.gamma * (w * layers).sum(0)


class EdgeProbe(torch.nn.Module):
    """Scalar mix → per span, its own projection and self-attentive pooling → Tanh MLP → one logit per label."""

    def __init__(self, n_layers: int, dim: int, n_classes: int, *, pair: bool, proj: int = 256,
                 hidden: int = 256, dropout: float = 0.3):
        super().__init__()
        spans = 2 if pair else 1
        self.mix = ScalarMix(n_layers)
        self.proj = torch.nn.ModuleList([torch.nn.Linear(dim, proj) for _ in range(spans)])
        self.score = torch.nn.ModuleList([torch.nn.Linear(proj, 1) for _ in range(spans)])
        self.pair = pair
        self.mlp = torch.nn.Sequential(torch.nn.Linear(proj * spans, hidden), torch.nn.Tanh(),
                                       torch.nn.LayerNorm(hidden), torch.nn.Dropout(dropout),
                                       torch.nn.Linear(hidden, n_classes))

    def pool(self, x: torch.Tensor, mask: torch.Tensor, span: int = 0) -> torch.Tensor:   # [B, W, P] → [B, P]
        s = self.score[span](x).squeeze(-1).masked_fill(~mask, torch.finfo(x.dtype).min)
        a = torch.softmax(s, -1) * mask
        return (a.unsqueeze(-1) * x).sum(1)

    def forward(self, words: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``words`` [Λ, B, 2, W, D] vectors of each span's words in every mixed layer; ``mask`` [B, 2, W]."""
        spans = range(2 if self.pair else 1)                        # a one-span task's second span is empty
        mixed = self.mix(words[:, :, :len(spans)])                  # [B, spans, W, D]
        return self.mlp(torch.cat([self.pool(self.proj[k](mixed[:, k]), mask[:, k], k) for k in spans], -1))


def _gather(table: torch.Tensor, spans: np.ndarray):
    """``table`` [Λ, R, D] word vectors; ``spans`` [B, 2, W] rows → ([Λ, B, 2, W, D] float32, mask [B, 2, W])."""
    idx = torch.from_numpy(spans)
    mask = idx >= 0
    return table[:, idx.clamp(min=0)].float(), mask


#: Tenney et al.'s schedule (jiant's edge-probing defaults): learning rate, batch, steps between dev checks,
#: checks without improvement before the rate halves and before training stops.
LR, BATCH, VAL_INTERVAL, LR_PATIENCE, PATIENCE = 1e-4, 32, 1000, 3, 9


def train_probe(train_table: torch.Tensor, dev_table: torch.Tensor, layers: list[int], train: Targets,
                dev: Targets, *, pair: bool, epochs: int = 10, lr: float = LR, batch_size: int = BATCH,
                val_interval: int = VAL_INTERVAL, seed: int = 0, device: str = "cpu"):
    """One probe on a mix of ``layers`` (indices into the tables of word vectors [L+1, rows, D] that the
    targets' rows point into), trained on Tenney et al.'s schedule; the dev check with the best micro-F1 is
    kept. A check comes every ``val_interval`` steps, or every epoch when an epoch is shorter. Returns the probe."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    sub, dev_sub = train_table[layers], dev_table[layers]
    K = len(train.classes)
    probe = EdgeProbe(len(layers), train_table.shape[-1], K, pair=pair).to(device)
    opt = torch.optim.Adam(probe.parameters(), lr=lr)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=LR_PATIENCE - 1)
    every = max(1, min(val_interval, -(-len(train) // batch_size)))
    best, best_state, since, step = -1.0, None, 0, 0
    for _ in range(epochs):
        order = rng.permutation(len(train))
        for start in range(0, len(order), batch_size):
            probe.train()
            rows = order[start:start + batch_size]
            words, mask = _gather(sub, train.spans[rows])
            target = torch.nn.functional.one_hot(torch.from_numpy(train.labels[rows]), K).float().to(device)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(probe(words.to(device), mask.to(device)),
                                                                        target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step % every:
                continue
            f1 = micro_f1(predict(probe, dev_sub, dev, device=device), dev.labels) if len(dev) else 0.0
            plateau.step(f1)
            if best_state is None or f1 > best:
                best, since = f1, 0
                best_state = {k: v.detach().clone() for k, v in probe.state_dict().items()}
            else:
                since += 1
            if since >= PATIENCE:
                break
        if best_state is not None and since >= PATIENCE:
            break
    if best_state is not None:
        probe.load_state_dict(best_state)
    return probe


def predict(probe: EdgeProbe, sub: torch.Tensor, targets: Targets, *, batch_size: int = 512,
            device: str = "cpu") -> np.ndarray:
    """Sigmoid probabilities [N, labels]."""
    probe.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(targets), batch_size):
            words, mask = _gather(sub, targets.spans[start:start + batch_size])
            out.append(torch.sigmoid(probe(words.to(device), mask.to(device))).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, len(targets.classes)), dtype=np.float32)


def micro_f1(prob: np.ndarray, gold: np.ndarray) -> float:
    """Tenney et al.'s score: every (target, label) decision at threshold 0.5, F1 over all of them."""
    parts = decision_counts(prob, gold)
    return _f1(*parts.sum(0))


def decision_counts(prob: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """Per target: true positives, false positives, false negatives of its per-label decisions [N, 3]."""
    hit = np.asarray(prob) > 0.5
    truth = np.zeros_like(hit)
    truth[np.arange(len(gold)), gold] = True
    return np.stack([(hit & truth).sum(1), (hit & ~truth).sum(1), (~hit & truth).sum(1)], 1).astype(np.float64)


def _f1(tp, fp, fn) -> float:
    den = 2 * tp + fp + fn
    return float(2 * tp / den) if den else 0.0


def macro_f1(pred, gold, n_classes: int) -> float:
    """Mean over the labels of F1 of the top label (labels absent from both count 0, as scikit-learn's
    ``f1_score(labels=…, zero_division=0)``); fast enough to bootstrap."""
    pred, gold = np.asarray(pred, dtype=np.int64), np.asarray(gold, dtype=np.int64)
    tp = np.bincount(gold[pred == gold], minlength=n_classes)
    fp = np.bincount(pred, minlength=n_classes) - tp
    fn = np.bincount(gold, minlength=n_classes) - tp
    den = 2 * tp + fp + fn
    return float(np.mean(np.where(den > 0, 2 * tp / np.maximum(den, 1), 0.0)))


def scores(prob: np.ndarray, gold: np.ndarray, n_classes: int) -> dict[str, float]:
    """Micro-F1 (Tenney et al.'s per-label decisions), accuracy and macro-F1 of the top label, and for two
    classes the F1 of class 1 (e.g. "corefers") as the top label."""
    pred = np.asarray(prob).argmax(-1)
    out = {"micro_f1": micro_f1(prob, gold), "accuracy": float((pred == gold).mean()),
           "macro_f1": macro_f1(pred, gold, n_classes)}
    if n_classes == 2:
        out["f1"] = _f1(float(((pred == 1) & (gold == 1)).sum()), float(((pred == 1) & (gold == 0)).sum()),
                        float(((pred == 0) & (gold == 1)).sum()))
    return out


def center_of_gravity(weights) -> float:
    """E_s[l] = Σ_l l · s_l for mixing weights s over layers 0…L."""
    w = np.asarray(weights, dtype=float)
    return float((np.arange(len(w)) * w).sum() / w.sum())


def expected_layer(cumulative) -> float:
    """E_Δ[l] = Σ_l l · Δ(l) / Σ_l Δ(l), Δ(l) = score(layers 0…l) − score(layers 0…l−1), for l = 1…L."""
    s = np.asarray(cumulative, dtype=float)
    delta = np.diff(s)
    if not np.isfinite(delta).all() or delta.sum() == 0:
        return float("nan")
    return float((np.arange(1, len(s)) * delta).sum() / delta.sum())


@dataclass
class Spans:
    """What the edge probe reads (``X``): the word-vector table [Λ, rows, D] of the layers it mixes and the
    targets whose spans point into it; indexable by target (scikit-learn splits it by its ``shape``)."""

    table: torch.Tensor
    targets: Targets

    @property
    def shape(self) -> tuple[int]:
        return (len(self.targets),)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, rows) -> "Spans":
        if isinstance(rows, tuple) and rows[1:] in ((), (Ellipsis,)):
            rows = rows[0]
        t = self.targets
        return Spans(self.table, Targets(t.spans[rows], t.labels[rows], t.classes))


@register
class EdgeProbeClassifier(ClassifierMixin, Probe):
    """The edge probe as a scikit-learn estimator: ``fit(X, dev=…) → self`` (``X`` a :class:`Spans`; the labels
    are its targets', so ``y`` is unused) on Tenney et al.'s schedule over a scalar mix of all the table's
    layers; ``predict_proba`` the per-label sigmoids [N, labels] (each label its own binary decision, so a row
    need not sum to 1), ``predict`` the top label, ``score`` Tenney et al.'s micro-F1. Fitted: ``module_``."""

    name = "edge"
    input = "spans"
    paper = "Tenney et al. (2019)"
    summary = "self-attentive span pooling over a scalar mix, an MLP, one sigmoid per label; micro-F1"

    def __init__(self, pair: bool = False, epochs: int = 10, lr: float = LR, batch_size: int = BATCH,
                 val_interval: int = VAL_INTERVAL, seed: int = 0, device: str = "cpu", layers=None):
        self.pair, self.epochs, self.lr, self.batch_size = pair, epochs, lr, batch_size
        self.val_interval, self.seed, self.device, self.layers = val_interval, seed, device, layers

    def _layers(self, X: Spans) -> list[int]:
        """The table layers the probe mixes: ``layers`` (a one-layer or cumulative probe), else all of them."""
        return list(range(X.table.shape[0])) if self.layers is None else list(self.layers)

    def fit(self, X: Spans, y=None, dev: Spans | None = None) -> "EdgeProbeClassifier":
        dev = X if dev is None else dev
        self.module_ = train_probe(X.table, dev.table, self._layers(X), X.targets, dev.targets,
                                   pair=self.pair, epochs=self.epochs, lr=self.lr, batch_size=self.batch_size,
                                   val_interval=self.val_interval, seed=self.seed, device=self.device)
        self.classes_ = np.array(X.targets.classes)
        return self

    def predict_proba(self, X: Spans) -> np.ndarray:
        table = X.table if self.layers is None else X.table[self._layers(X)]
        return predict(self.module_, table, X.targets, device=self.device)

    def mix_weights(self) -> np.ndarray:
        """The fitted scalar mix's softmax weights, one per mixed layer (Tenney et al.'s Fig. 1 bars)."""
        return self.module_.mix.weights().detach().cpu().numpy()

    def predict(self, X: Spans) -> np.ndarray:
        return self.predict_proba(X).argmax(-1)

    def score(self, X: Spans, y=None) -> float:
        return micro_f1(self.predict_proba(X), X.targets.labels)
