"""Selection probes: score every word of a sentence and predict the argmax over its real words.

Linear (one score per word, ``w·h``) or MLP with one hidden layer. Lin et al. scored each wordpiece with a
2-way classifier and took the argmax of the class-1 logit (padding included); here the scores go through a
softmax over the sentence's real words only, which is the same decision rule without the padding bug.

``K`` independent probes (one per task key, e.g. n = 1…9) are trained side by side: every parameter has a
leading ``K`` axis and the loss is their sum, so with Adam each probe trains exactly as it would alone, only
faster. The epoch kept for each probe is the one with the lowest dev loss (Lin et al.'s model selection).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from probekit.probing.base import SelectionProbeBase, as_targets, register

KINDS = ("linear", "mlp")


@dataclass
class Sentences:
    """Word vectors of a set of sentences: ``flat`` [N_units, D]; ``index`` [N, U] rows of ``flat`` (−1 =
    padding); ``candidate`` [N, U] True for the words a probe may pick (not specials, not padding)."""

    flat: torch.Tensor
    index: torch.Tensor
    candidate: torch.Tensor

    def __len__(self) -> int:
        return self.index.shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        """(sentences, word slots): scikit-learn counts and splits the sentences by it."""
        return tuple(self.index.shape)

    def __getitem__(self, rows) -> "Sentences":
        """The chosen sentences (an index array, list or slice; ``X[rows, ...]`` as scikit-learn indexes),
        sharing the word vectors."""
        if isinstance(rows, tuple) and rows[1:] in ((), (Ellipsis,)):
            rows = rows[0]
        rows = torch.as_tensor(np.arange(len(self))[rows] if isinstance(rows, slice) else np.asarray(rows))
        return Sentences(self.flat, self.index[rows], self.candidate[rows])

    def batch(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(padded word vectors [B, U, D], candidate mask [B, U]) of the chosen sentences."""
        idx = self.index[rows]
        x = self.flat[idx.clamp(min=0)] * (idx >= 0).unsqueeze(-1)
        return x, self.candidate[rows]


class SelectionProbe(SelectionProbeBase):
    """A linear or one-hidden-layer scorer of every word, trained with AdamW; each key keeps its best dev-loss
    epoch (Lin et al.'s model selection). scikit-learn conventions (:class:`~.base.SelectionProbeBase`)."""

    summary = "score every word (linear or MLP), softmax over the sentence's words; AdamW, best dev-loss epoch"
    paper = "Lin et al. (2019)"

    def __init__(self, kind: str = "linear", hidden: int = 128, epochs: int = 8, lr: float = 1e-3,
                 weight_decay: float = 0.01, batch_size: int = 32, dropout: float = 0.1, seed: int = 0):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")
        self.kind, self.hidden, self.epochs, self.lr = kind, hidden, epochs, lr
        self.weight_decay, self.batch_size, self.dropout, self.seed = weight_decay, batch_size, dropout, seed

    def _init(self, K: int, D: int) -> list[torch.Tensor]:
        """Each key's parameters from its own seed, so a probe starts the same whatever its siblings."""
        def one(k: int) -> list[torch.Tensor]:
            g = torch.Generator().manual_seed(self.seed * 7919 + k)
            # No output bias: a softmax over positions ignores a constant shift, so it could never learn.
            if self.kind == "linear":
                return [torch.randn(D, generator=g) * 0.02]
            return [torch.randn(D, self.hidden, generator=g) * (2.0 / D) ** 0.5, torch.zeros(self.hidden),
                    torch.randn(self.hidden, generator=g) * (1.0 / self.hidden) ** 0.5]

        per_key = [one(k) for k in range(K)]
        return [torch.stack(ps).requires_grad_() for ps in zip(*per_key)]

    def _scores(self, params, x: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
        """[B, U, D] → [B, U, K], −inf where a unit may not be picked."""
        if self.kind == "linear":
            (w,) = params
            s = torch.einsum("bud,kd->buk", x, w)
        else:
            w1, b1, w2 = params
            h = torch.relu(torch.einsum("bud,kdh->bukh", x, w1) + b1)
            s = torch.einsum("bukh,kh->buk", h, w2)
        return s.masked_fill(~cand.unsqueeze(-1), float("-inf"))

    def _loss(self, params, data: Sentences, targets: torch.Tensor, rows: torch.Tensor,
              gen: torch.Generator | None = None):
        """Summed over keys, mean over sentences with a target: (total loss, per-key loss sums, counts).

        With ``gen`` (training) inputs get dropout drawn from that generator, so runs are reproducible.
        """
        x, cand = data.batch(rows)
        if gen is not None and self.dropout:
            keep = torch.rand(x.shape, generator=gen) >= self.dropout
            x = x * keep / (1.0 - self.dropout)
        scores = self._scores(params, x, cand)
        y = targets[rows]                                    # [B, K]
        has = y >= 0
        logp = torch.log_softmax(scores, dim=1)              # over units
        picked = logp.gather(1, y.clamp(min=0).unsqueeze(1)).squeeze(1)   # [B, K]
        per = torch.where(has, -picked, torch.zeros_like(picked))
        counts = has.sum(0)
        total = (per.sum(0) / counts.clamp(min=1)).sum()
        return total, per.sum(0).detach(), counts

    def fit(self, data: Sentences, targets: np.ndarray, dev: tuple[Sentences, np.ndarray] | None = None):
        """Train on ``targets`` [N, K] (unit positions, −1 = no target); keep each key's best dev-loss epoch."""
        gen = torch.Generator().manual_seed(self.seed)
        y = torch.as_tensor(as_targets(targets), dtype=torch.long)
        K, D = y.shape[1], data.flat.shape[1]
        params = self._init(K, D)
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        best = [p.detach().clone() for p in params]
        best_loss = torch.full((K,), float("inf"))
        self.best_epoch_ = np.zeros(K, dtype=int)
        usable = torch.nonzero((y >= 0).any(1)).squeeze(1)
        for epoch in range(self.epochs):
            order = usable[torch.randperm(len(usable), generator=gen)]
            for start in range(0, len(order), self.batch_size):
                if self.on_step is not None:
                    self.on_step(f"epoch {epoch + 1}/{self.epochs}, sentence {start}/{len(order)}")
                loss, _, _ = self._loss(params, data, y, order[start:start + self.batch_size], gen)
                opt.zero_grad()
                loss.backward()
                opt.step()
            if dev is None:
                best = [p.detach().clone() for p in params]
                self.best_epoch_[:] = epoch
                continue
            dev_loss = self._mean_loss(params, dev[0], as_targets(dev[1]))
            improved = dev_loss < best_loss
            best_loss = torch.where(improved, dev_loss, best_loss)
            for b, p in zip(best, params):
                b[improved] = p.detach()[improved]
            self.best_epoch_[improved.numpy()] = epoch
        self.params_ = best
        return self

    @torch.no_grad()
    def _mean_loss(self, params, data: Sentences, targets: np.ndarray) -> torch.Tensor:
        y = torch.as_tensor(targets, dtype=torch.long)
        sums = torch.zeros(y.shape[1])
        counts = torch.zeros(y.shape[1])
        for start in range(0, len(data), 256):
            _, s, c = self._loss(params, data, y, torch.arange(start, min(start + 256, len(data))))
            sums += s
            counts += c
        return sums / counts.clamp(min=1)

    @torch.no_grad()
    def predict(self, data: Sentences) -> np.ndarray:
        """[N, K]: the unit position each probe picks in each sentence."""
        out = []
        for start in range(0, len(data), 256):
            rows = torch.arange(start, min(start + 256, len(data)))
            scores = self._scores(self.params_, *data.batch(rows))
            out.append(scores.argmax(1))
        return torch.cat(out).numpy()

    @torch.no_grad()
    def predict_log_proba(self, data: Sentences) -> np.ndarray:
        """[N, U, K] log-probability of each word being the target (softmax over the sentence's words)."""
        out = np.full((*data.index.shape, self.params_[0].shape[0]), -np.inf)
        for start in range(0, len(data), 256):
            rows = torch.arange(start, min(start + 256, len(data)))
            out[start:start + len(rows)] = torch.log_softmax(self._scores(self.params_, *data.batch(rows)), 1).numpy()
        return out


@register
class MLPProbe(SelectionProbe):
    """The ``mlp`` probe of ``python -m probekit.probe``: :class:`SelectionProbe` with one hidden layer."""

    name = "mlp"
    summary = "one hidden layer (ReLU, dropout) per word, softmax over the sentence's words; AdamW, best dev epoch"

    def __init__(self, kind: str = "mlp", hidden: int = 128, epochs: int = 8, lr: float = 1e-3,
                 weight_decay: float = 0.01, batch_size: int = 32, dropout: float = 0.1, seed: int = 0):
        super().__init__(kind=kind, hidden=hidden, epochs=epochs, lr=lr, weight_decay=weight_decay,
                         batch_size=batch_size, dropout=dropout, seed=seed)
