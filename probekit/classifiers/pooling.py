"""Pooling heads: unit vectors [B, U, D] and a mask [B, U] → class logits, and the weights that say why.

``units`` are the real words (or, at token level, the real sub-tokens) of each input, in order; special tokens
and padding are never units, and ``mask`` is False on the padding rows. ``cls`` is the vector of the encoder's
first special token ([CLS], <s>), read only by the ``cls`` head. Every head returns
``(logits [B, C], weights [B, U] or None, extra dict)``:

- ``attention`` / ``attention-multi``: weights = α, a softmax over the real units only (0 on padding, rows sum
  to 1; a row without any real unit is all 0). Scores are masked with ``torch.finfo(dtype).min`` rather than
  −1e12 (the original code's), which overflows in float16. ``attention-multi`` also gives ``extra["head_weights"]``
  [B, K, U]; its ``weights`` are their mean over the K heads.
- ``max``: masked global max pooling; ``extra["argmax"]`` [B, D] is the unit that won each dimension (torch's
  max picks one unit on ties, the one the gradient flows to), so crediting each dimension's value to its unit
  (``scatter_add``) gives word scores that sum to Σ pooled.
- ``cls`` and ``mean``: no weights.

Each head is a class registered by name (``@register``; ``HEAD_CLASSES``), built by its :meth:`PoolingHead.build`
from the command's options; a user's head (a ``pool`` method and a ``name``) registered in a plug-in file is a
``make_head`` kind as the built-in ones are, and ``head_names()`` lists them.
"""
from __future__ import annotations

import torch
from torch import nn

from probekit.core.plugins import registry as _registry

#: the built-in heads (``head_names()`` has a user's too)
HEADS = ("cls", "mean", "max", "attention", "attention-multi")
HEAD_CLASSES: dict[str, type] = _registry("pooling heads")

#: The activation of each architecture's own sequence-classification head, so that a fine-tuned ``cls``
#: classifier is exactly a Hugging Face ``AutoModelForSequenceClassification`` (see saved.py).
CLS_ACTIVATIONS = {"distilbert": "relu", "electra": "gelu"}


def _activation(name: str) -> nn.Module:
    return {"tanh": nn.Tanh(), "relu": nn.ReLU(), "gelu": nn.GELU()}[name]


def masked_mean(units: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the real units [B, D]; a row without any real unit gives 0."""
    m = mask.to(units.dtype).unsqueeze(-1)
    return (units * m).sum(1) / m.sum(1).clamp(min=1)


def masked_max(units: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-dimension max over the real units [B, D], index of the winning unit [B, D]); empty rows give 0."""
    filled = units.masked_fill(~mask.unsqueeze(-1), torch.finfo(units.dtype).min)
    values, index = filled.max(dim=1)
    empty = ~mask.any(1, keepdim=True)
    return values.masked_fill(empty, 0.0), index


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Softmax over the real units; padding gets exactly 0 and an all-padding row is all 0 (not NaN)."""
    filled = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    alpha = torch.softmax(filled, dim=dim)
    return alpha.masked_fill(~mask, 0.0)


class PoolingHead(nn.Module):
    """Base: ``pool`` gives the sentence vector, ``out`` (dropout + linear) the logits."""

    name = ""
    weights_kind: str | None = None
    needs_units = True      # False: the head reads only the [CLS] vector

    def __init__(self, dim: int, n_classes: int, *, dropout: float = 0.1, pooled_dim: int | None = None):
        super().__init__()
        self.dim, self.n_classes = dim, n_classes
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(pooled_dim or dim, n_classes)

    def pool(self, units, mask, cls):  # pragma: no cover - every head defines it
        raise NotImplementedError

    @classmethod
    def build(cls, dim: int, n_classes: int, *, dropout: float = 0.1, attention_dim: int = 128, n_heads: int = 4,
              model_type: str | None = None) -> "PoolingHead":
        """The head from the classifier's options (a head takes the ones it needs)."""
        return cls(dim, n_classes, dropout=dropout)

    def forward(self, units: torch.Tensor, mask: torch.Tensor, cls: torch.Tensor | None = None):
        pooled, weights, extra = self.pool(units, mask.bool(), cls)
        extra["pooled"] = pooled
        return self.out(self.dropout(pooled)), weights, extra


def register(cls: type) -> type:
    """Add the head class ``cls`` under ``cls.name``; a class decorator."""
    if not (isinstance(cls, type) and issubclass(cls, PoolingHead)) or not cls.name:
        raise TypeError(f"{cls!r}: a pooling head is a PoolingHead subclass with a name")
    if cls.pool is PoolingHead.pool:
        raise TypeError(f"{cls.__name__}: implement pool(units, mask, cls)")
    HEAD_CLASSES[cls.name] = cls
    return cls


register_head = register


def head_names() -> list[str]:
    return list(HEAD_CLASSES)


@register
class ClsHead(PoolingHead):
    """dense → activation → dropout → linear on the [CLS] vector: the layout of BERT's pooler + classifier,
    RoBERTa's and ELECTRA's classification heads and DistilBERT's pre-classifier (activation per model type)."""

    def __init__(self, dim: int, n_classes: int, *, dropout: float = 0.1, activation: str = "tanh"):
        super().__init__(dim, n_classes, dropout=dropout)
        self.activation_name = activation
        self.dense = nn.Linear(dim, dim)
        self.activation = _activation(activation)

    name = "cls"
    needs_units = False

    @classmethod
    def build(cls, dim, n_classes, *, dropout=0.1, model_type=None, **_):
        return cls(dim, n_classes, dropout=dropout, activation=CLS_ACTIVATIONS.get(model_type or "", "tanh"))

    def pool(self, units, mask, cls):
        if cls is None:
            raise ValueError("the cls head needs the [CLS] vector")
        return self.activation(self.dense(self.dropout(cls))), None, {}


@register
class MeanHead(PoolingHead):
    name = "mean"

    def pool(self, units, mask, cls):
        return masked_mean(units, mask), None, {}


@register
class MaxHead(PoolingHead):
    name = "max"
    weights_kind = "max"

    def pool(self, units, mask, cls):
        values, index = masked_max(units, mask)
        return values, None, {"argmax": index}


@register
class AttentionHead(PoolingHead):
    """Additive attention pooling: s_t = vᵀ tanh(W h_t), α = masked softmax(s), pooled = Σ α_t h_t.

    ``heads`` > 1 is ``attention-multi``: K score vectors over a shared tanh(W h), the K pooled vectors
    concatenated (allenwind's MultiHeadAttentionPooling1D, without its input-dim = hidden-dim assumption).
    """

    name = "attention"
    weights_kind = "attention"

    @classmethod
    def build(cls, dim, n_classes, *, dropout=0.1, attention_dim=128, **_):
        return cls(dim, n_classes, dropout=dropout, attention_dim=attention_dim, heads=1)

    def __init__(self, dim: int, n_classes: int, *, dropout: float = 0.1, attention_dim: int = 128,
                 heads: int = 1):
        super().__init__(dim, n_classes, dropout=dropout, pooled_dim=dim * heads)
        self.heads = heads
        self.W = nn.Linear(dim, attention_dim, bias=False)
        self.v = nn.Linear(attention_dim, heads, bias=False)

    def pool(self, units, mask, cls):
        scores = self.v(torch.tanh(self.W(units)))                     # [B, U, K]
        alpha = masked_softmax(scores, mask.unsqueeze(-1).expand_as(scores), dim=1)
        pooled = torch.einsum("buk,bud->bkd", alpha, units).reshape(units.shape[0], -1)
        alpha = alpha.transpose(1, 2)                                  # [B, K, U]
        if self.heads == 1:
            return pooled, alpha[:, 0], {}
        return pooled, alpha.mean(1), {"head_weights": alpha}


@register
class MultiAttentionHead(AttentionHead):
    """``attention-multi``: :class:`AttentionHead` with ``n_heads`` score vectors."""

    name = "attention-multi"

    @classmethod
    def build(cls, dim, n_classes, *, dropout=0.1, attention_dim=128, n_heads=4, **_):
        return cls(dim, n_classes, dropout=dropout, attention_dim=attention_dim, heads=n_heads)


def make_head(kind: str, dim: int, n_classes: int, *, dropout: float = 0.1, attention_dim: int = 128,
              n_heads: int = 4, model_type: str | None = None) -> PoolingHead:
    if kind not in HEAD_CLASSES:
        raise ValueError(f"unknown head {kind!r}; expected one of {tuple(HEAD_CLASSES)}")
    return HEAD_CLASSES[kind].build(dim, n_classes, dropout=dropout, attention_dim=attention_dim, n_heads=n_heads,
                                    model_type=model_type)
