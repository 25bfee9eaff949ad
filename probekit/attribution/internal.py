"""What the model itself weighs: the pooling head's weights, and the encoder's attention from [CLS].

``pooling``
    *attention / attention-multi heads*: the softmax weights α of the pooling head over the real units (words or
    sub-tokens, per the head's level); they sum to 1 over the real units and are 0 on special tokens and
    padding. A multi-head pool is reported as the mean of its heads' α (still summing to 1).
    *max head*: max-pooling importance. Every hidden dimension d of the pooled vector is the value of one unit,
    the one that won its max; that unit is credited with the value: importance = scatter-add of pooled_d at
    argmax_d. So the units' scores sum to Σ_d pooled_d exactly, each dimension credited once. Ties go to the
    index ``torch.max`` returns (the first maximal one; the same unit the max-pooling gradient flows to). The
    original Keras code (allenwind, ``MaskGlobalMaxPooling1D``) instead credits *every* unit equal to the max,
    comparing against the unmasked input, so with ties (ReLU zeros) its scores do not sum to Σ pooled and a
    padded position can be credited; negative maxima give negative importance in both.
``attention-cls``
    The last layer's attention from the first token ([CLS]/<s>), averaged over heads, restricted to the word
    pieces and renormalised to sum to 1 over them (word: sum over pieces).
``attention-rollout``
    Abnar & Zuidema (2020): per layer Ã = 0.5·A + 0.5·I (A averaged over heads, the identity standing for the
    residual connection), rows renormalised, multiplied over layers (R = Ã_L ⋯ Ã_1); the [CLS] row of R, on the
    word pieces, renormalised. Computed per example on its own (unpadded) tokens.
"""
from __future__ import annotations

import torch

from probekit.attribution.base import AttributionMethod
from probekit.attribution.registry import register
from probekit.attribution.words import real_tokens


def _has_pooling(classifier) -> bool:
    return classifier.head_type in ("attention", "attention-multi", "max")


def _has_encoder(classifier) -> bool:
    return getattr(classifier, "encoder", None) is not None and classifier.encoder_mode != "none"


def _n_units(classifier, batch) -> int:
    if classifier.level == "word":
        return max(len(w) for w in batch["words"])
    return int(batch["input_ids"].shape[1])


def _max_importance(extra: dict, n_units: int) -> torch.Tensor:
    idx = extra["argmax"].long()                          # [B, D]: the unit that won each dimension
    vals = extra["pooled"].float()                        # [B, D]: the pooled (maximal) values
    out = torch.zeros(idx.shape[0], n_units, dtype=torch.float32, device=idx.device)
    return out.scatter_add_(1, idx, vals)


@register
class Pooling(AttributionMethod):
    """The pooling head's weights over its units (attention α, or max-pooling importance)."""

    name = "pooling"
    summary = ("the head's own weights: attention-pooling α (sums to 1) or max-pooling importance "
               "(argmax + scatter-add, sums to Σ pooled)")
    unit = "head"
    needs = frozenset({"pooling"})
    requirement = "an attention, attention-multi or max pooling head"

    @classmethod
    def applies(cls, classifier) -> bool:
        return _has_pooling(classifier)

    def attribute(self, classifier, batch, target, state):
        weights, extra = state.pooling
        if classifier.head_type == "max":
            n = max(int(extra["argmax"].max()) + 1, _n_units(classifier, batch))
            return _max_importance(extra, n), {}
        w = weights.float()
        if w.dim() == 3:                                  # [B, K, U]: several pooling heads
            w = w.mean(1)
        return w, {}


pooling = Pooling.fn


def _renormalised(rows: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    rows = torch.where(real, rows, torch.zeros_like(rows))
    return rows / rows.sum(-1, keepdim=True).clamp_min(torch.finfo(rows.dtype).tiny)


class _Attention(AttributionMethod):
    needs = frozenset({"attentions"})
    requirement = "an encoder"

    @classmethod
    def applies(cls, classifier) -> bool:
        return _has_encoder(classifier)


@register
class AttentionCLS(_Attention):
    """Last-layer attention from the first token, averaged over heads."""

    name = "attention-cls"
    summary = "last layer's attention from [CLS], mean over heads, renormalised over the word pieces"

    def attribute(self, classifier, batch, target, state):
        att = state.attentions[-1]                        # [B, H, T, T]
        return _renormalised(att.mean(1)[:, 0, :], real_tokens(batch).to(att.device)), {}


attention_cls = AttentionCLS.fn


def rollout(layers, mask: torch.Tensor) -> torch.Tensor:
    """Attention rollout of one example: layers L × [H, T, T], mask [T] → R [n, n] over its unmasked tokens."""
    keep = torch.nonzero(mask.bool()).view(-1)
    n = len(keep)
    eye = torch.eye(n, dtype=torch.float64)
    R = eye.clone()
    for a in layers:
        A = a[:, keep][:, :, keep].mean(0).double().cpu()
        A = 0.5 * A + 0.5 * eye
        A = A / A.sum(-1, keepdim=True)
        R = A @ R
    return R


@register
class AttentionRollout(_Attention):
    """Attention rollout's [CLS] row."""

    name = "attention-rollout"
    summary = "Abnar & Zuidema rollout (0.5·A + 0.5·I, rows renormalised, product over layers), [CLS] row"

    def attribute(self, classifier, batch, target, state):
        att = state.attentions
        mask = batch["attention_mask"]
        real = real_tokens(batch)
        out = torch.zeros(mask.shape, dtype=torch.float64)
        for b in range(mask.shape[0]):
            keep = torch.nonzero(mask[b].bool()).view(-1).cpu()
            R = rollout([a[b] for a in att], mask[b])
            out[b, keep] = R[0]
        return _renormalised(out, real.cpu()), {}


attention_rollout = AttentionRollout.fn
