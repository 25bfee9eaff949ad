"""Several attention-pooling heads of one shape trained as one model: every parameter gets a leading member axis.

Retraining experiments (Wiegreffe & Pinter's seeds and their λ grid) train M heads on the same fixed vectors,
one after another. Stacked, a step is a few batched products instead of M × a dozen small ones, and the score
layer tanh(W h) runs on the real units only (packed per member), not on the padding of each batch.

Each member keeps everything a separate run has: its initial weights (copied from the head it stands for), its
batch order (a generator seeded with its seed), its dropout masks (a second generator seeded with its seed, drawn
as CPU ``nn.Dropout`` draws them after ``torch.manual_seed(seed)``), and its own loss. Adam and AdamW are
elementwise, and member m's parameters get the gradient of member m's loss alone, so one optimiser over the
stacked tensors is M separate optimisers; every member takes the same number of steps (same data, same batch
size), so a shared schedule is each member's schedule. The numbers equal one-at-a-time training up to the
rounding of batched products (and on GPU, where ``nn.Dropout`` uses a fused kernel, the masks differ).
"""
from __future__ import annotations

import torch
from torch import nn

from probekit.classifiers.features import Features
from probekit.classifiers.pooling import AttentionHead, masked_softmax


class StackedAttention(nn.Module):
    """M :class:`AttentionHead`s (K score vectors each) as one module with parameters [M, …]."""

    def __init__(self, heads: list[AttentionHead]):
        super().__init__()
        first = heads[0]
        if any(type(h) is not AttentionHead or h.W.weight.shape != first.W.weight.shape or h.heads != first.heads
               or h.out.weight.shape != first.out.weight.shape or h.dropout.p != first.dropout.p for h in heads):
            raise ValueError("stacked heads must be AttentionHeads of one shape and dropout")
        self.M, self.K, self.p = len(heads), first.heads, float(first.dropout.p)
        stack = lambda get: nn.Parameter(torch.stack([get(h).detach().clone() for h in heads]))  # noqa: E731
        self.W = stack(lambda h: h.W.weight)            # [M, A, D]
        self.v = stack(lambda h: h.v.weight)            # [M, K, A]
        self.out_w = stack(lambda h: h.out.weight)      # [M, C, K·D]
        self.out_b = stack(lambda h: h.out.bias)        # [M, C]

    def attention_parameters(self):
        return [self.W, self.v]

    def other_parameters(self):
        return [self.out_w, self.out_b]

    def forward(self, feats: Features, idx: torch.Tensor, dropout: list[torch.Generator] | None = None):
        """(logits [M, B, C], α [M, B, U]) of member m on examples ``idx[m]`` ([M, B]); ``dropout``: the
        members' generators (training), None for eval mode. U is the longest example of any member's batch;
        the extra columns have α = 0 exactly, as padding has."""
        M, B = idx.shape
        width = max(int(feats.lengths[idx].max()), 1)
        rows = feats.index[idx, :width].to(feats.flat.device)          # [M, B, U]
        mask = rows != feats.pad_row
        flat_mask = mask.reshape(M, -1)
        counts = flat_mask.sum(1)
        member, pos = flat_mask.nonzero(as_tuple=True)                 # row-major: grouped by member
        slot = torch.arange(len(member), device=rows.device) - (counts.cumsum(0) - counts)[member]
        packed = torch.full((M, max(int(counts.max()), 1)), feats.pad_row, dtype=torch.long, device=rows.device)
        packed[member, slot] = rows.reshape(M, -1)[member, pos]
        h = feats.flat[packed].float()                                  # [M, P, D]: real units only
        s = torch.bmm(torch.tanh(torch.bmm(h, self.W.transpose(1, 2))), self.v.transpose(1, 2))   # [M, P, K]
        scores = s.new_zeros(M, B * width, self.K)
        scores = scores.index_put((member, pos), s[member, slot])
        scores = scores.view(M, B, width, self.K)
        alpha = masked_softmax(scores, mask.unsqueeze(-1).expand_as(scores), dim=2)   # [M, B, U, K]
        weighted = alpha.reshape(M, B * width, self.K)[member, pos].unsqueeze(-1) * h[member, slot].unsqueeze(1)
        pooled = h.new_zeros(M * B, self.K, h.shape[-1]).index_add(0, member * B + pos // width, weighted)
        pooled = pooled.view(M, B, -1)          # Σ_u α_u h_u over the real units of each example
        if dropout is not None and self.p > 0:
            keep = 1.0 - self.p
            noise = torch.stack([torch.empty(B, pooled.shape[-1]).bernoulli_(keep, generator=g).div_(keep)
                                 for g in dropout]).to(pooled.device)
            pooled = pooled * noise
        logits = torch.baddbmm(self.out_b.unsqueeze(1), pooled, self.out_w.transpose(1, 2))
        alpha = alpha[..., 0] if self.K == 1 else alpha.mean(-1)
        return logits, alpha

    @torch.no_grad()
    def outputs(self, feats: Features, *, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
        """Eval-mode (logits [M, N, C], α [M, N, W]) of every member on every example of ``feats``."""
        N, W = feats.index.shape
        logits, alpha = [], torch.zeros(self.M, N, W)
        for start in range(0, N, batch_size):
            idx = torch.arange(start, min(start + batch_size, N)).expand(self.M, -1)
            lg, a = self(feats, idx)
            logits.append(lg.cpu())
            alpha[:, start:start + idx.shape[1], :a.shape[-1]] = a.cpu()
        return torch.cat(logits, 1) if logits else torch.zeros(self.M, 0, self.out_b.shape[1]), alpha

    def state(self, m: int) -> dict:
        """Member m's weights in :class:`AttentionHead`'s ``state_dict`` layout (copies)."""
        return {"W.weight": self.W[m].detach().clone(), "v.weight": self.v[m].detach().clone(),
                "out.weight": self.out_w[m].detach().clone(), "out.bias": self.out_b[m].detach().clone()}


def orders(gens: list[torch.Generator], n: int) -> torch.Tensor:
    """[M, n] one epoch's batch order per member (``torch.randperm`` with each member's generator)."""
    return torch.stack([torch.randperm(n, generator=g) for g in gens])


def generators(seeds) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(int(s)) for s in seeds]


def train_epochs(stack: StackedAttention, feats: Features, seeds, batch_size: int, loss_of, optimizer,
                 scheduler=None):
    """Endless epochs of stacked training; yields each epoch's mean training loss per member ([M] float64).

    ``loss_of(logits, alpha, idx)`` → [M] losses of the members' batches; their sum is minimised, so each
    member's parameters follow its own loss. The caller stops iterating (and keeps best states) as it likes."""
    order_gens, dropout_gens = generators(seeds), generators(seeds)
    n = len(feats)
    while True:
        stack.train()
        order = orders(order_gens, n)
        total = torch.zeros(stack.M, dtype=torch.float64)
        for i in range(0, n, batch_size):
            idx = order[:, i:i + batch_size]
            logits, alpha = stack(feats, idx, dropout_gens)
            losses = loss_of(logits, alpha, idx)
            optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            total += losses.detach().double().cpu() * idx.shape[1]
        yield (total / n).numpy()


def fit_heads(heads: list[AttentionHead], train: Features, y_train, dev: Features, y_dev, *, seeds, epochs: int,
              lr: float, batch_size: int, weight_decay: float, warmup: float, device="cpu"):
    """``classify.train.fit_head`` for M heads at once (member m trained with ``seeds[m]``): AdamW, warm-up +
    linear decay, the best dev epoch (accuracy, then loss) of each member loaded into its head. Returns the
    members' learning curves."""
    import math

    from probekit.classifiers.batching import history, loss_accuracy, schedule

    stack = StackedAttention(heads).to(device)
    train, dev = train.float().to(device), dev.float().to(device)
    yt = torch.as_tensor(y_train, device=device)
    opt = torch.optim.AdamW(stack.parameters(), lr=lr, weight_decay=weight_decay)
    sched = schedule(opt, math.ceil(len(train) / batch_size) * epochs, warmup)

    def loss_of(logits, alpha, idx):
        M, B, C = logits.shape
        ce = nn.functional.cross_entropy(logits.reshape(M * B, C), yt[idx.to(device)].reshape(-1), reduction="none")
        return ce.view(M, B).mean(1)

    rows, best, best_state = [[] for _ in heads], [None] * len(heads), [None] * len(heads)
    for epoch, train_loss in zip(range(1, epochs + 1), train_epochs(stack, train, seeds, batch_size, loss_of,
                                                                     opt, sched)):
        dev_logits = stack.outputs(dev)[0].double().numpy()
        for m in range(len(heads)):
            dev_loss, dev_acc = loss_accuracy(dev_logits[m], y_dev)
            rows[m].append({"epoch": epoch, "train_loss": float(train_loss[m]), "dev_loss": dev_loss,
                            "dev_accuracy": dev_acc})
            if best[m] is None or (dev_acc, -dev_loss) > best[m]:
                best[m], best_state[m] = (dev_acc, -dev_loss), stack.state(m)
    for head, state in zip(heads, best_state):
        head.load_state_dict(state)
        head.to(device).eval()
    return [history(r) for r in rows]
