"""Several attention-pooling heads of one shape trained as one model: every parameter gets a leading member axis.

Retraining experiments (Wiegreffe & Pinter's seeds and their λ grid) train M heads on the same fixed vectors,
one after another. Stacked, a step is a few batched products instead of M × a dozen small ones, and the score
layer tanh(W h) runs on the real units only (packed per member), not on the padding of each batch. That
product and its gradient for W are most of the work: on RT with the MiniLM vectors, one-at-a-time training
scores about twice as many (padded) units, so about half the CPU is where the stacked path can get.

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
        """(logits [M, B, C], α [M, B, U]) of member m on examples ``idx[m]`` ([M, B]), or of every member on
        the same examples ``idx`` ([B]); ``dropout``: the members' generators (training), None for eval mode.
        U is the longest example of the batch; the extra columns have α = 0 exactly, as padding has.

        Only real units are scored (packed per member). With the same examples for all members (evaluation),
        their vectors are read once and scored by all members' W in one product."""
        M, K, flat, pad = self.M, self.K, feats.flat, feats.pad_row
        same = idx.dim() == 1
        B = idx.shape[-1]
        width = max(int(feats.lengths[idx].max()), 1)
        rows = feats.index[idx, :width].to(flat.device)                # [M or 1, B, U]
        mask = rows != pad
        if same:
            pos = mask.reshape(-1).nonzero(as_tuple=True)[0]
            P = max(len(pos), 1)
            h = flat.index_select(0, rows.reshape(-1)[pos]).float()                  # [P, D]
            z = (h @ self.W.reshape(-1, h.shape[1]).T).view(len(pos), M, -1).transpose(0, 1)  # [M, P, A]
            member = torch.arange(M, device=rows.device).repeat_interleave(len(pos))
            slot = torch.arange(len(pos), device=rows.device).repeat(M)
            pos = pos.repeat(M)
            mask = mask.expand(M, -1, -1)
        else:
            flat_mask = mask.reshape(M, -1)
            counts = flat_mask.sum(1)
            P = max(int(counts.max()), 1)
            member, pos = flat_mask.nonzero(as_tuple=True)             # row-major: grouped by member
            slot = torch.arange(len(member), device=rows.device) - (counts.cumsum(0) - counts)[member]
            packed = torch.full((M, P), pad, dtype=torch.long, device=rows.device)
            packed[member, slot] = rows.reshape(M, -1)[member, pos]
            h = flat.index_select(0, packed.reshape(-1)).view(M, P, -1).float()     # [M, P, D]
            z = torch.bmm(h, self.W.transpose(1, 2))                                  # [M, P, A]
        s = torch.bmm(torch.tanh(z), self.v.transpose(1, 2))                          # [M, P, K]
        # back to the examples' unit positions: (m, j) reads packed row m·P + slot, padding a zero row
        where = torch.full((M, B * width), M * P, dtype=torch.long, device=rows.device)
        where[member, pos] = member * P + slot
        scores = torch.cat([s.reshape(M * P, K), s.new_zeros(1, K)]).index_select(0, where.reshape(-1))
        scores = scores.view(M, B, width, K)
        alpha = masked_softmax(scores, mask.unsqueeze(-1).expand_as(scores), dim=2)   # [M, B, U, K]
        if same:        # Σ_u α_u h_u over the examples' vectors, read once for all members
            units = flat.index_select(0, rows.reshape(-1)).view(B, width, -1).float()
            pooled = torch.einsum("mbuk,bud->mbkd", alpha, units)
        else:           # a small batch: one product of a [B, P] block matrix of α with the packed vectors
            block = alpha.new_zeros(M, P, B, K).index_put(
                (member, slot, pos // width), alpha.reshape(M, B * width, K)[member, pos])
            pooled = torch.matmul(block.view(M, P, B * K).transpose(1, 2), h)        # [M, B·K, D]
        pooled = pooled.reshape(M, B, -1)
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
            idx = torch.arange(start, min(start + batch_size, N))
            lg, a = self(feats, idx)
            logits.append(lg.cpu())
            alpha[:, start:start + len(idx), :a.shape[-1]] = a.cpu()
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
