"""Captum's single-pass gradient methods, as plug-ins: Saliency, InputXGradient and DeepLift on the embeddings.

Like the sampling methods (``sampling.py``) they differentiate the target class's logit with respect to the
output of ``classifier.embedding_layer`` (the model runs on embeddings handed in by Captum through a forward
hook that swaps that layer's output), one example at a time and unpadded. None runs unless named.

``saliency``
    Simonyan et al. (2014) §3.1, Captum ``Saliency`` (``abs=True``): |∂ logit_target / ∂ e| per embedding
    coordinate, reduced per token by ``--saliency-reduce``: ``sum`` (the L1 norm; default) or ``max`` (the
    paper's maximum over channels, here over coordinates). Unsigned; a word's score is the sum over its pieces.
    Not ``gradient``, which is the L2 norm of the signed gradient.
``input-x-gradient``
    Captum ``InputXGradient``: e · ∂ logit_target / ∂ e summed over coordinates. It is the same number as
    ``grad-input`` (which takes the gradient from the batch's shared backward pass); this one is Captum's own
    implementation, for comparison with other tools. Signed, word: sum.
``deeplift``
    Shrikumar et al. (2017) DeepLIFT with the Rescale rule, Captum ``DeepLift`` on the embeddings, against the
    ``--deeplift-baseline``: ``pad`` (integrated gradients' ``[CLS] [PAD] … [SEP]``, default) or ``zero`` (word
    pieces' embeddings set to 0, special tokens kept). Captum applies the Rescale rule only to nonlinearities
    that are *modules* it knows (``nn.ReLU``, ``nn.Tanh``, ``nn.Sigmoid``, ``nn.Softmax`` …) and passes plain
    gradients through everything else. In a transformer the GELU and the attention softmax are not such modules,
    so the scores are not the paper's DeepLIFT and do not sum to F(x) − F(x′): the convergence delta δ = Σ
    scores − (F(x) − F(x′)) is reported for every example and flagged above 5 % of |F(x) − F(x′)|, as for
    integrated gradients. On a network whose nonlinearities are all such modules, δ ≈ 0 (summation to delta).
    Signed, word: sum.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from probekit.core import checks
from probekit.attribution.base import AttributionMethod, option
from probekit.attribution.gradients import DELTA_TOLERANCE
from probekit.attribution.registry import register
from probekit.attribution.sampling import embedding_forward, per_example
from probekit.attribution.words import model_inputs


@register
@dataclass
class Saliency(AttributionMethod):
    """|∂ logit_target / ∂ e| per coordinate (Captum Saliency), summed (or maxed) over a token's coordinates."""

    name = "saliency"
    summary = ("Captum Saliency: |∂ logit_target / ∂ e| per embedding coordinate, summed over them (L1 norm; or "
               "max) — unsigned; word: sum over pieces")
    default = False
    saliency_reduce: str = option("sum", "saliency: sum (L1 norm) or max of |gradient| over a token's embedding "
                                         "coordinates", check=lambda n, v: checks.choice(n, v, ("sum", "max")))

    def attribute(self, classifier, batch, target, state):
        from captum.attr import Saliency as Captum

        def run(f, emb, emb0, extra, t, b, n):
            g = Captum(f).attribute(emb.requires_grad_(), target=t, additional_forward_args=extra, abs=True).float()
            return g.amax(-1) if self.saliency_reduce == "max" else g.sum(-1)

        return per_example(classifier, batch, target, state, 0, run), {}


@register
class InputXGradient(AttributionMethod):
    """e · ∂ logit_target / ∂ e summed over coordinates (Captum InputXGradient; equals ``grad-input``)."""

    name = "input-x-gradient"
    summary = "Captum InputXGradient: Σ_d e_d · ∂ logit_target / ∂ e_d, signed (= grad-input; word: sum)"
    signed = True
    default = False

    def attribute(self, classifier, batch, target, state):
        from captum.attr import InputXGradient as Captum

        def run(f, emb, emb0, extra, t, b, n):
            return Captum(f).attribute(emb.requires_grad_(), target=t, additional_forward_args=extra).float().sum(-1)

        return per_example(classifier, batch, target, state, 0, run), {}


class EmbeddingModel(nn.Module):
    """The classifier as a module of its input embeddings. DeepLift hooks the nonlinearity modules it reaches
    through ``apply``; a classifier can hold one module under two parents (a Hugging Face classifier's head and
    encoder share its pooler), which ``nn.Module.apply`` would hook twice, so ``apply`` visits each module once."""

    def __init__(self, classifier, keys):
        super().__init__()
        object.__setattr__(self, "classifier", classifier)      # not a child: apply() below reaches it
        self.f = embedding_forward(classifier, keys)

    def apply(self, fn):
        for module in self.classifier.modules():                 # modules() lists each module once
            fn(module)
        fn(self)
        return self

    def forward(self, emb, *rest):
        return self.f(emb, *rest)


@register
@dataclass
class DeepLift(AttributionMethod):
    """DeepLIFT (Rescale) from the baseline's embeddings to the input's (Captum DeepLift)."""

    name = "deeplift"
    summary = ("Captum DeepLift on the word embeddings, [PAD] or zero baseline (signed; word: sum). Rescale rule "
               "only on nn.ReLU/Tanh/Sigmoid/Softmax modules: on transformers (GELU, functional softmax) it is "
               "not the paper's DeepLIFT — see the convergence delta")
    signed = True
    default = False
    has_convergence_delta = True
    deeplift_baseline: str = option("pad", "deeplift: baseline of the word pieces, pad ([PAD] embedding) or zero",
                                    check=lambda n, v: checks.choice(n, v, ("pad", "zero")))

    def attribute(self, classifier, batch, target, state):
        from captum.attr import DeepLift as Captum

        model = EmbeddingModel(classifier, list(model_inputs(batch))).eval()
        deltas, diffs = {}, {}

        def run(f, emb, emb0, extra, t, b, n):
            if self.deeplift_baseline == "zero":
                piece = (batch["word_ids"][b, :n] >= 0).to(emb.device).view(1, n, 1)
                emb0 = torch.where(piece, torch.zeros_like(emb), emb)
            with warnings.catch_warnings():              # Captum's note that it sets hooks on nonlinearities
                warnings.simplefilter("ignore", UserWarning)
                a, delta = Captum(model).attribute(emb.requires_grad_(), baselines=emb0, target=t, additional_forward_args=extra,
                                                   return_convergence_delta=True)
            a = a.detach().float().sum(-1)
            deltas[b] = float(delta.detach().view(-1)[0])
            diffs[b] = float(a.sum()) - deltas[b]          # F(x) − F(x′): Captum's δ is Σ a − (F(x) − F(x′))
            return a

        scores = per_example(classifier, batch, target, state, 0, run)
        B = scores.shape[0]
        delta = np.array([deltas[b] for b in range(B)], dtype=np.float64)
        diff = np.array([diffs[b] for b in range(B)], dtype=np.float64)
        ratio = np.abs(delta) / np.maximum(np.abs(diff), 1e-12)
        return scores, {"delta": delta, "delta_ratio": ratio, "flagged": ratio > DELTA_TOLERANCE}
