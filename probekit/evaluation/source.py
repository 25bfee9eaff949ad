"""The attention under test, and the classifier's output recomputed from it with the hidden states held fixed.

Jain & Wallace, Serrano & Smith and Wiegreffe & Pinter all intervene on the attention while the encoder's
outputs stay what they were (Jain & Wallace §4.2, Serrano & Smith §3). For an attention-pooling classifier
that is exact and cheap: the unit vectors h (words, or sub-tokens at token level) are computed once — from the activation
cache for a frozen encoder — and the head's output for any weights α is ``out(Σ_u α_u h_u)``.

An :class:`AttentionSource` gives, for a batch of example indices,

- ``batch(idx)`` → ``(units [B, U, D], mask [B, U])``: the fixed vectors and which units are real words;
- ``attention(units, mask)`` → α [B, U]: the weights under test, 0 off the mask, each row summing to 1;
- ``output(units, mask, alpha)`` → class probabilities [B, C], differentiable in ``alpha``;
- ``probs(units, mask)`` → the model's own probabilities (``output`` at its own α).

The support is the real words only: special tokens and padding are never units (classifiers/model.py).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from probekit.core.errors import UserError
from probekit.core.examples import Example

#: heads whose pooling weights are one distribution over the units
POOLING_HEADS = ("attention",)


def fixed_features(clf, examples: Sequence[Example], *, batch_size: int = 32, cache_dir=None,
                   no_cache: bool = False):
    """The unit vectors the head reads, in example order: the activation cache for a frozen encoder at word
    level (a cache hit runs no model), the classifier's own forward pass otherwise (fine-tuned, token level,
    ``--encoder none``). The cache key includes the encoder's fingerprint, so fine-tuned weights never reuse
    the base model's vectors — but a fine-tuned classifier computes them live anyway."""
    from probekit.classifiers.features import cached_features, live_features

    if clf.encoder_mode == "frozen" and clf.level == "word":
        return cached_features(clf, examples, cache_dir=cache_dir, use_cache=not no_cache,
                               batch_size=batch_size).float()
    return live_features(clf, examples, batch_size=batch_size).float()


def check_pooling_classifier(classifier) -> None:
    """The one error for a classifier whose head has no attention-pooling α to test."""
    if classifier.head_type not in POOLING_HEADS:
        raise UserError(f"the classifier's {classifier.head_type!r} head has no attention-pooling weights "
                        f"(faithfulness tests need --head attention); use --attention cls to test the last "
                        f"layer's [CLS] attention instead")


class AttentionSource:
    """Base class; see the module docstring."""

    kind = ""

    def __len__(self) -> int:  # pragma: no cover - subclasses define it
        raise NotImplementedError

    @property
    def n_classes(self) -> int:
        return self.classifier.n_classes

    def batches(self, batch_size: int, indices: Sequence[int] | None = None):
        """Index tensors of consecutive examples (all of them, or ``indices``)."""
        idx = torch.arange(len(self)) if indices is None else torch.as_tensor(list(indices), dtype=torch.long)
        for start in range(0, len(idx), batch_size):
            yield idx[start:start + batch_size]

    def probs(self, units, mask):
        return self.output(units, mask, self.attention(units, mask))

    @torch.no_grad()
    def all_attention(self, batch_size: int = 256) -> list[np.ndarray]:
        """α of every example over its real units (padding and gaps dropped), float64."""
        out = []
        for idx in self.batches(batch_size):
            units, mask = self.batch(idx)
            alpha = self.attention(units, mask).double().cpu().numpy()
            m = mask.cpu().numpy()
            out += [alpha[b][m[b]] for b in range(len(idx))]
        return out


class PoolingSource(AttentionSource):
    """The attention-pooling head's own α over fixed unit vectors."""

    kind = "pooling"

    def __init__(self, classifier, examples: Sequence[Example], *, batch_size: int = 32, cache_dir=None,
                 no_cache: bool = False):
        check_pooling_classifier(classifier)
        self.classifier = classifier
        self.head = classifier.head
        self.head.eval()
        self.features = fixed_features(classifier, examples, batch_size=batch_size, cache_dir=cache_dir,
                                       no_cache=no_cache).to(classifier.device)

    def __len__(self) -> int:
        return len(self.features)

    def batch(self, idx):
        units, mask, _ = self.features.batch(torch.as_tensor(idx))
        return units, mask

    def scores(self, units, mask):
        """The head's unnormalised scores vᵀtanh(W h) [B, U] (masked units keep their raw score)."""
        return self.head.v(torch.tanh(self.head.W(units)))[..., 0]

    def attention(self, units, mask):
        from probekit.classifiers.pooling import masked_softmax

        with torch.no_grad():
            return masked_softmax(self.scores(units, mask), mask)

    def output(self, units, mask, alpha):
        pooled = torch.einsum("bu,bud->bd", alpha * mask.to(alpha.dtype), units)
        return torch.softmax(self.head.out(pooled).float(), -1)

