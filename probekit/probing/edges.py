"""Edge probing with a scalar mix (Tenney et al. 2019): span and span-pair classifiers over frozen word vectors.

A target is one span (UPOS of a word) or two (the dependency relation of a dependent–head pair; whether a
pronoun and a name corefer). Each span is projected, pooled over its words by self-attentive pooling, and the
pooled spans (concatenated for pairs) go through a two-layer MLP. The word vectors are a scalar mix
h = γ Σ_l s_l h^(l), s = softmax(a), learned with the probe, over a chosen set of layers: one layer (a per-layer
probe), layers 0…l (the cumulative probes of "BERT rediscovers the classical NLP pipeline"), or all layers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


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
    """Scalar mix → projection → self-attentive span pooling → MLP over one span or a concatenated pair."""

    def __init__(self, n_layers: int, dim: int, n_classes: int, *, pair: bool, proj: int = 256,
                 hidden: int = 256, dropout: float = 0.2):
        super().__init__()
        self.mix = ScalarMix(n_layers)
        self.proj = torch.nn.Linear(dim, proj)
        self.score = torch.nn.Linear(proj, 1)
        self.pair = pair
        self.mlp = torch.nn.Sequential(torch.nn.Linear(proj * (2 if pair else 1), hidden), torch.nn.ReLU(),
                                       torch.nn.LayerNorm(hidden), torch.nn.Dropout(dropout),
                                       torch.nn.Linear(hidden, n_classes))

    def pool(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:   # [B, W, P], [B, W] → [B, P]
        s = self.score(x).squeeze(-1).masked_fill(~mask, torch.finfo(x.dtype).min)
        a = torch.softmax(s, -1) * mask
        return (a.unsqueeze(-1) * x).sum(1)

    def forward(self, words: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``words`` [Λ, B, 2, W, D] vectors of each span's words in every mixed layer; ``mask`` [B, 2, W]."""
        if not self.pair:                                           # the second span is empty: skip it
            return self.mlp(self.pool(self.proj(self.mix(words[:, :, 0])), mask[:, 0]))
        x = self.proj(self.mix(words))                              # [B, 2, W, P]
        return self.mlp(torch.cat([self.pool(x[:, 0], mask[:, 0]), self.pool(x[:, 1], mask[:, 1])], -1))


def _gather(table: torch.Tensor, spans: np.ndarray):
    """``table`` [Λ, R, D] word vectors; ``spans`` [B, 2, W] rows → ([Λ, B, 2, W, D] float32, mask [B, 2, W])."""
    idx = torch.from_numpy(spans)
    mask = idx >= 0
    return table[:, idx.clamp(min=0)].float(), mask


def train_probe(train_table: torch.Tensor, dev_table: torch.Tensor, layers: list[int], train: Targets,
                dev: Targets, *, pair: bool, epochs: int = 3, lr: float = 1e-3, batch_size: int = 128,
                seed: int = 0, device: str = "cpu"):
    """One probe on a mix of ``layers`` (indices into the tables of word vectors [L+1, rows, D] that the
    targets' rows point into); the epoch with the best dev accuracy is kept. Returns (probe, dev predictions
    of that epoch)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    sub, dev_sub = train_table[layers], dev_table[layers]
    probe = EdgeProbe(len(layers), train_table.shape[-1], len(train.classes), pair=pair).to(device)
    opt = torch.optim.Adam(probe.parameters(), lr=lr)
    best, best_state, best_pred = -1.0, None, None
    for _ in range(epochs):
        probe.train()
        order = rng.permutation(len(train))
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            words, mask = _gather(sub, train.spans[rows])
            logits = probe(words.to(device), mask.to(device))
            loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(train.labels[rows]).to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
        pred = predict(probe, dev_sub, dev, batch_size=4 * batch_size, device=device)
        acc = float((pred == dev.labels).mean()) if len(dev) else float("nan")
        if acc > best:
            best, best_pred = acc, pred
            best_state = {k: v.detach().clone() for k, v in probe.state_dict().items()}
    probe.load_state_dict(best_state)
    return probe, best_pred


def predict(probe: EdgeProbe, sub: torch.Tensor, targets: Targets, *, batch_size: int = 512,
            device: str = "cpu") -> np.ndarray:
    probe.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(targets), batch_size):
            words, mask = _gather(sub, targets.spans[start:start + batch_size])
            out.append(probe(words.to(device), mask.to(device)).argmax(-1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def scores(pred: np.ndarray, gold: np.ndarray, n_classes: int) -> dict[str, float]:
    """Accuracy and macro-F1 (scikit-learn); for two classes also the F1 of class 1 (e.g. "corefers")."""
    from sklearn.metrics import f1_score

    out = {"accuracy": float((pred == gold).mean()),
           "macro_f1": float(f1_score(gold, pred, average="macro", labels=list(range(n_classes)),
                                      zero_division=0))}
    if n_classes == 2:
        out["f1"] = float(f1_score(gold, pred, pos_label=1, zero_division=0))
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
