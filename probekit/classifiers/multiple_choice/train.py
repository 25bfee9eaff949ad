"""Training and evaluating multiple-choice models: seeded, resumable, best dev epoch kept.

``train_multiple_choice`` fine-tunes encoder and head together as ``classify --finetune`` does (AdamW, no
weight decay on biases and norms, linear warm-up then linear decay, gradient clipping at 1.0, batches of
similar length shuffled with a seeded generator) and keeps the weights of the best dev epoch (accuracy, then
loss). ``batch_size`` counts questions per optimiser step; each step runs as forward passes of at most
``micro_batch`` option sequences (a 4-option question is 4), gradients accumulated, so memory stays small
whatever the batch size. With ``checkpoint=DIR`` every finished epoch is saved (:mod:`.mc_checkpoint`) and a
later call with the same DIR and settings continues after the last finished epoch, giving the same weights and
learning curve as an uninterrupted run.
"""
from __future__ import annotations

import copy
import math
import time
from typing import Sequence

import numpy as np
import torch

from probekit.core.progress import quiet_option
from probekit.core import checks
from probekit.core.errors import UserError
from probekit.classifiers.multiple_choice.baselines import longest_option_accuracy, random_guess_accuracy  # noqa: F401  (re-exported)
from probekit.corpora.multiple_choice import MCItem
from probekit.classifiers.multiple_choice.model import MultipleChoiceModel

#: defaults of the multiple-choice task (``classify --task multiple-choice``); see the README for the timings
MC_DEFAULTS = {"epochs": 6, "lr": 5e-5, "head_lr": 1e-3, "batch_size": 4, "max_length": 384, "micro_batch": 8}


def build_model(model=None, *, max_length: int | None = None, seed: int = 0, device: str = "cpu"):
    """A fresh :class:`MultipleChoiceModel` from ``model``: None (the bundled encoder), a model name or folder,
    an :class:`~probekit.core.encoder.Encoder`, or a MultipleChoiceModel (copied, so the caller's stays as is)."""
    from probekit.core.encoder import Encoder, load_encoder

    if isinstance(model, MultipleChoiceModel):
        out = copy.deepcopy(model).to(device)
        out.encoder.device = device
        if max_length is not None:
            out.max_length = min(max_length, out.encoder.max_length)
        return out
    enc = model if isinstance(model, Encoder) else load_encoder(model, device=device)
    return MultipleChoiceModel(enc, max_length=max_length, seed=seed).to(device)


@quiet_option
def train_multiple_choice(train: Sequence[MCItem], dev: Sequence[MCItem], *, model=None,
                          epochs: int = MC_DEFAULTS["epochs"], lr: float = MC_DEFAULTS["lr"],
                          batch_size: int = MC_DEFAULTS["batch_size"], max_length: int | None = None,
                          device: str = "cpu", seed: int = 0, checkpoint=None, quiet: bool = False,
                          weight_decay: float = 0.01, warmup: float = 0.1,
                          micro_batch: int = MC_DEFAULTS["micro_batch"], head_lr: float | None = None,
                          callback=None):
    """Fine-tune a multiple-choice model on ``train``, keep its best ``dev`` epoch; returns (model, history).

    ``model``: see :func:`build_model` (never modified: a copy is trained). ``max_length`` None keeps the
    model's (for a fresh model: :data:`MC_DEFAULTS`). ``history``: epoch, train_loss, dev_loss, dev_accuracy,
    best; ``history.attrs`` holds ``epoch_s``/``epoch_cpu_s`` (wall and CPU seconds of each epoch's training),
    ``truncated`` (train/dev items whose passage was cut), ``dev_scores`` (the kept epoch's [N, k] dev scores)
    and ``resumed_from`` (the epoch a resumed run started
    after, 0 for a fresh one). ``callback(epoch, history_rows)`` runs after each saved epoch.
    """
    from probekit.core.progress import progress
    from probekit.classifiers.multiple_choice.checkpoint import Checkpoint, items_hash, restore_rng, state_hash
    from probekit.classifiers.batching import history as _history, length_batches as _batches, schedule as _schedule

    epochs = checks.positive("epochs", epochs)
    lr = checks.number("lr", lr, above=0)
    checks.positive("batch_size", batch_size)
    checks.positive("micro_batch", micro_batch)
    checks.max_length(max_length)
    checks.device(device)
    checks.integer("seed", seed)
    checks.number("weight_decay", weight_decay, minimum=0)
    checks.number("warmup", warmup, minimum=0, maximum=1)
    head_lr = MC_DEFAULTS["head_lr"] if head_lr is None else checks.number("head_lr", head_lr, above=0)
    for what, items in (("--train", train), ("--dev", dev)):
        if not items:
            raise UserError(f"{what} has no items")
        if any(it.answer < 0 for it in items):
            raise UserError(f"{what}: every item needs its answer for training")
    if max_length is None and not isinstance(model, MultipleChoiceModel):
        max_length = MC_DEFAULTS["max_length"]
    model = build_model(model, max_length=max_length, seed=seed, device=device)
    enc_train, enc_dev = model.encode(train), model.encode(dev)
    y = torch.tensor([it.answer for it in train], device=model.device)
    y_dev = np.array([it.answer for it in dev])
    settings = {"epochs": epochs, "lr": lr, "head_lr": head_lr, "batch_size": batch_size,
                "max_length": model.max_length,
                "seed": seed, "weight_decay": weight_decay, "warmup": warmup, "micro_batch": micro_batch}
    ckpt = None
    if checkpoint is not None:
        settings.update(model=state_hash(model), train=items_hash(train), dev=items_hash(dev))
        ckpt = Checkpoint(checkpoint, settings)

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(param_groups(model, lr=lr, head_lr=head_lr, weight_decay=weight_decay), lr=lr)
    params = [p for g in opt.param_groups for p in g["params"]]
    n_steps = math.ceil(len(train) / batch_size)
    sched = _schedule(opt, n_steps * epochs, warmup)
    rows, timing, best, best_state, best_epoch, start, best_scores = [], [], None, None, 0, 0, None
    state = ckpt.load(model.device) if ckpt is not None else None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        restore_rng(state, gen)
        rows, timing, start, best_epoch = state["rows"], state["timing"], state["epoch"], state["best_epoch"]
        r = rows[best_epoch - 1]
        best = (r["dev_accuracy"], -r["dev_loss"])
        best_state = {k: v.to(model.device) for k, v in state["best"].items()}
        best_scores = None if state["dev_scores"] is None else state["dev_scores"].numpy()
    for epoch in range(start + 1, epochs + 1):
        model.train()
        total, t0, c0 = 0.0, time.perf_counter(), time.process_time()
        bar = progress(total=n_steps, desc=f"multiple-choice epoch {epoch}/{epochs}", unit="batch")
        for idx in _batches(enc_train, batch_size, gen):
            opt.zero_grad(set_to_none=True)
            for chunk in _micro(idx, enc_train, micro_batch):
                scores = model.batch_scores(model.collate([enc_train[i] for i in chunk]))
                loss = torch.nn.functional.cross_entropy(scores, y[chunk], reduction="sum") / len(idx)
                loss.backward()
                total += loss.item() * len(idx)
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            bar.update(1)
        bar.close()
        timing.append([round(time.perf_counter() - t0, 3), round(time.process_time() - c0, 3)])
        dev_scores = model.scores(dev, micro_batch, encoded=enc_dev)
        dev_loss, dev_acc = _loss_acc(dev_scores, y_dev)
        rows.append({"epoch": epoch, "train_loss": total / len(train), "dev_loss": dev_loss,
                     "dev_accuracy": dev_acc})
        if best is None or (dev_acc, -dev_loss) > best:
            best, best_epoch, best_scores = (dev_acc, -dev_loss), epoch, dev_scores
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if ckpt is not None:
            ckpt.save(epoch=epoch, model=model, best_state=best_state, best_epoch=best_epoch, optimizer=opt,
                      scheduler=sched, generator=gen, rows=rows, timing=timing, dev_scores=best_scores)
        if callback is not None:
            callback(epoch, rows)
    model.load_state_dict(best_state)
    model.eval()
    history = _history(rows)
    history.attrs.update(dev_scores=best_scores, epoch_s=[t[0] for t in timing],
                         epoch_cpu_s=[t[1] for t in timing], resumed_from=start,
                         truncated={"train": sum(e.truncated for e in enc_train),
                                    "dev": sum(e.truncated for e in enc_dev)})
    return model, history


def param_groups(model: MultipleChoiceModel, *, lr: float, head_lr: float, weight_decay: float) -> list[dict]:
    """AdamW groups: the scoring head and the encoder's pooler at ``head_lr``, the rest of the encoder at
    ``lr``; no weight decay on biases and norms.

    Why the pooler goes with the head: checkpoints trained for mean-pooled sentence embeddings ship a pooler
    that was never trained (all-MiniLM-L6-v2's has bias 0 and weights of std 0.009), so its tanh output is
    ~0.05 and, at the encoder's 5e-5, a fresh head moves too little in mc160's few dozen steps per epoch for
    the option scores to separate (the loss stays at ln k).
    """
    base = model._base_key()
    groups: dict[tuple[bool, bool], list] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            head = not name.startswith(base) or name[len(base):].startswith("pooler.")
            groups.setdefault((head, p.ndim < 2), []).append(p)
    return [{"params": ps, "lr": head_lr if head else lr, "weight_decay": 0.0 if flat else weight_decay}
            for (head, flat), ps in sorted(groups.items())]


def _micro(idx: list[int], encoded, micro_batch: int) -> list[list[int]]:
    """Split a step's items into forward passes of at most ``micro_batch`` option sequences (≥ 1 item each)."""
    chunks, cur, n = [], [], 0
    for i in idx:
        k = encoded[i].k
        if cur and n + k > micro_batch:
            chunks.append(cur)
            cur, n = [], 0
        cur.append(i)
        n += k
    if cur:
        chunks.append(cur)
    return chunks


def _loss_acc(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    s = torch.as_tensor(scores, dtype=torch.float64)
    yt = torch.as_tensor(y)
    return float(torch.nn.functional.cross_entropy(s, yt)), float((s.argmax(1) == yt).double().mean())


def evaluate_mc(model: MultipleChoiceModel, items: Sequence[MCItem], batch_size: int = 8, *,
                scores: np.ndarray | None = None) -> dict:
    """``accuracy`` (over the items with a known answer; None if none has one), ``predictions`` [N],
    ``scores`` [N, k_max] (``-inf`` padded), ``probabilities`` [N, k_max] and ``truncated`` (items whose passage
    was cut). ``scores`` already computed for these items (the kept dev epoch's) are used instead of a forward
    pass."""
    from probekit.classifiers.multiple_choice.model import softmax

    checks.positive("batch_size", batch_size)
    encoded = model.encode(items)
    if scores is None:
        scores = model.scores(items, batch_size, encoded=encoded)
    pred = scores.argmax(1)
    y = np.array([it.answer for it in items])
    known = y >= 0
    acc = float((pred[known] == y[known]).mean()) if known.any() else None
    return {"accuracy": acc, "predictions": pred, "scores": scores, "probabilities": softmax(scores),
            "truncated": int(sum(e.truncated for e in encoded))}
