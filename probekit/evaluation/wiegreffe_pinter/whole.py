"""Wiegreffe & Pinter's end-to-end adversary and diagnostic retraining the WHOLE model (encoders from scratch).

Over a pre-trained transformer both train heads over fixed vectors (``wp_adversary``, ``wp_diagnostic``).
Wiegreffe & Pinter trained whole models, which is cheap for an encoder trained from scratch, so that is what runs
there:

- **adversary** (their §5, Algorithm 1): a fresh model of the classifier's own configuration (embeddings,
  encoder, attention head, from random weights) trained end to end on mean_b ½·TVD(p_adv, p_base) −
  λ·mean_b KL(α_adv ‖ α_base), p_base and α_base the classifier's outputs on the training examples; Adam with
  amsgrad, lr 1e-3, weight decay 1e-5 except on the attention parameters; the epoch of lowest training loss
  kept, stopping after ``patience`` epochs without a lower one;
- **diagnostic** (their §4, Table 3): a fresh non-contextual model, embeddings from scratch and a per-unit
  Linear(→128) + tanh (the ``average`` encoder), pooled with its own trained attention, uniform weights, or
  weights imposed per example (the classifier's α, the adversary's), trained on cross-entropy by Jain & Wallace's
  recipe (``scratch_train.SCRATCH_DEFAULTS``), the best dev epoch kept (accuracy, then loss).

Both batch by length with a seeded generator, as ``classify`` trains these encoders.
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from probekit.classifiers.batching import length_batches, threads
from probekit.classifiers.pooling import PoolingHead
from probekit.classifiers.scratch import ScratchClassifier
from probekit.classifiers.scratch_train import SCRATCH_DEFAULTS, KeptEpoch, dev_auc, jw_optimizer, selection
from probekit.evaluation.wiegreffe_pinter.common import adversarial_loss, lowest_loss

#: Wiegreffe & Pinter's diagnostic MLP width
HIDDEN = 128


class ImposedHead(PoolingHead):
    """Pools with weights given per example: ``self.alpha`` [B, ≥U] is set for each batch by the caller,
    renormalised over the real units."""

    weights_kind = "attention"

    def __init__(self, dim: int, n_classes: int, *, dropout: float = 0.1):
        super().__init__(dim, n_classes, dropout=dropout)
        self.alpha = None

    def pool(self, units, mask, cls):
        a = self.alpha[:, :units.shape[1]].to(units.dtype) * mask.to(units.dtype)
        a = a / a.sum(1, keepdim=True).clamp(min=1e-12)
        return torch.einsum("bu,bud->bd", a, units), a, {}


def _forward(model, enc, idx, alpha=None):
    batch = model.collate([enc[i] for i in idx])
    batch.pop("words")
    if alpha is not None:
        model.head.alpha = alpha[torch.as_tensor(idx)].to(model.device)
    logits, weights, _ = model.forward_with_weights(**batch)
    return logits, weights


@torch.no_grad()
def outputs(model, examples, width: int, alpha=None, batch_size: int = 128):
    """(α [N, width] float64, 0 off the units; class probabilities [N, C] float64) of ``model`` in eval mode;
    ``alpha``: the weights an :class:`ImposedHead` is given, aligned with ``examples``."""
    model.eval()
    enc = model.tokenize(examples, warn=False)
    a = torch.zeros(len(enc), width, dtype=torch.float64)
    probs = torch.zeros(len(enc), model.n_classes, dtype=torch.float64)
    for start in range(0, len(enc), batch_size):
        idx = list(range(start, min(start + batch_size, len(enc))))
        logits, weights = _forward(model, enc, idx, alpha)
        probs[idx] = torch.softmax(logits.double(), -1).cpu()
        if weights is not None:
            w = min(width, weights.shape[1])
            a[idx, :w] = weights[:, :w].double().cpu()
    return a, probs


def adversary(clf, train, base_alpha: torch.Tensor, base_probs: torch.Tensor, lam: float, *, seed: int,
              epochs: int, patience: int, batch_size: int = 32):
    """A fresh model of ``clf``'s configuration trained on the adversarial loss; (model, per-epoch losses)."""
    torch.manual_seed(seed)
    model = ScratchClassifier(clf.vocab, clf.labels, **clf.config()).to(clf.device)
    enc = model.tokenize(train, warn=False)
    a_base, p_base = base_alpha.float().to(clf.device), base_probs.float().to(clf.device)
    opt = jw_optimizer(model)
    gen = torch.Generator().manual_seed(seed)

    def epoch():
        model.train()
        total = 0.0
        for idx in length_batches(enc, batch_size, gen):
            logits, alpha = _forward(model, enc, idx)
            t = torch.as_tensor(idx, device=clf.device)
            loss = adversarial_loss(logits, alpha, p_base[t], a_base[t], lam)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        return total / max(len(enc), 1)

    with threads(1):
        losses = lowest_loss(model, epoch, epochs=epochs, patience=patience)
    return model.eval(), losses


def diagnostic(clf, weights: str, train, dev, y_train, y_dev, *, seed: int, epochs: int | None = None,
               imposed: dict | None = None, batch_size: int = 32):
    """A fresh non-contextual model (``average`` encoder) pooled with ``weights`` ("trained", "uniform",
    "imposed": ``imposed["train"]``/``["dev"]`` [N, W] per split), trained on cross-entropy, the epoch kept by
    the rule every from-scratch model follows (Jain & Wallace's: the best dev ROC-AUC after the first epoch for
    two classes, else accuracy; :func:`~probekit.classifiers.scratch_train.selection`). Returns the model (its
    ``head.alpha`` must be set for an imposed head: see :func:`outputs`; ``kept_epoch``: the epoch kept)."""
    from probekit.evaluation.wiegreffe_pinter.common import UniformHead

    cfg = {**clf.config(), "encoder": "average", "head": "attention", "hidden_dim": HIDDEN}
    torch.manual_seed(seed)
    model = ScratchClassifier(clf.vocab, clf.labels, **cfg).to(clf.device)
    dim, C, drop = model.head.dim, clf.n_classes, float(cfg.get("dropout", 0.1))
    if weights == "uniform":
        model.head = UniformHead(dim, C, dropout=drop).to(clf.device)
    elif weights == "imposed":
        model.head = ImposedHead(dim, C, dropout=drop).to(clf.device)
    elif weights != "trained":
        raise ValueError(weights)
    enc = {"train": model.tokenize(train, warn=False), "dev": model.tokenize(dev, warn=False)}
    tables = imposed or {}
    yt = torch.as_tensor(y_train)
    opt = jw_optimizer(model, attention_decay=True)
    gen = torch.Generator().manual_seed(seed)
    loss_fn = torch.nn.CrossEntropyLoss()
    n_epochs, criterion = int(epochs or SCRATCH_DEFAULTS["epochs"]), selection(C, y_dev)
    state, kept = copy.deepcopy(model.state_dict()), KeptEpoch(n_epochs)
    with threads(1):
        for epoch in range(1, n_epochs + 1):
            model.train()
            for idx in length_batches(enc["train"], batch_size, gen):
                logits, _ = _forward(model, enc["train"], idx, tables.get("train"))
                loss = loss_fn(logits, yt[idx].to(clf.device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            _, p = outputs(model, dev, 1, tables.get("dev"))
            p = p.numpy()
            logp = np.log(p.clip(1e-12))
            dev_loss = float(-logp[np.arange(len(y_dev)), y_dev].mean())
            measure = (dev_auc(logp, y_dev) if criterion == "dev_auc"
                       else float((p.argmax(1) == np.asarray(y_dev)).mean()))
            if kept.offer(epoch, measure, dev_loss):
                state = copy.deepcopy(model.state_dict())
    model.load_state_dict(state)
    model.kept_epoch = kept.epoch
    return model.eval()
