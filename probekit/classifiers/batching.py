"""Pieces every fine-tuning loop here shares (``classify --finetune``, the frozen heads, multiple choice): the
learning-rate schedule, seeded batches of similar length, and the learning curve with its best epoch."""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch


def schedule(optimizer, total_steps: int, warmup: float):
    """Linear warm-up over ``warmup`` of the steps, then linear decay to 0."""
    warm = int(round(warmup * total_steps))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total_steps - step) / max(1, total_steps - warm))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def length_batches(encoded, batch_size: int, gen: torch.Generator | None):
    """Batches of similar length: shuffled (seeded) in pools of 50 batches, sorted by length inside a pool."""
    n = len(encoded)
    order = torch.randperm(n, generator=gen).tolist() if gen is not None else list(range(n))
    pool = batch_size * 50
    batches = []
    for p in range(0, n, pool):
        chunk = sorted(order[p:p + pool], key=lambda i: encoded[i].length)
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    if gen is not None:
        batches = [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]
    return batches


def history(rows):
    """The learning curve as a frame, ``best`` marking the kept epoch (dev accuracy, then dev loss)."""
    import pandas as pd

    hist = pd.DataFrame(rows)
    best = max(range(len(rows)), key=lambda i: (rows[i]["dev_accuracy"], -rows[i]["dev_loss"]))
    hist["best"] = [i == best for i in range(len(rows))]
    return hist


def loss_accuracy(logits: np.ndarray, y) -> tuple[float, float]:
    """(cross-entropy, accuracy) of float64 logits against class indices."""
    lg = torch.as_tensor(logits, dtype=torch.float64)
    y = torch.as_tensor(np.asarray(y))
    return float(torch.nn.functional.cross_entropy(lg, y)), float((lg.argmax(1) == y).double().mean())


@torch.no_grad()
def live_logits(clf, encoded, batch_size: int = 64) -> np.ndarray:
    """[N, C] float64 logits of the classifier's own forward pass, in example order."""
    was = clf.training
    clf.eval()
    out = np.zeros((len(encoded), clf.n_classes))
    for idx in length_batches(encoded, batch_size, None):
        batch = clf.collate([encoded[i] for i in idx])
        batch.pop("words")
        out[idx] = clf(**batch).double().cpu().numpy()
    clf.train(was)
    return out


@contextmanager
def threads(n: int | None):
    """torch's intra-op threads set to ``n`` for the block (None: left alone). Small models on batches of 32
    gain little from threads, and on a busy machine their spinning costs far more than the work: a tiny BiLSTM
    epoch took 0.08 s on one thread and 6–9 s on two while other processes used the cores."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)
