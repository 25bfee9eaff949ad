"""Perturbation methods from Captum, as plug-ins over words: feature ablation, LIME and KernelSHAP.

Each word is one feature (all its pieces together); a word "switched off" has every piece's input embedding
replaced by the ``[PAD]`` embedding (integrated gradients' baseline, so [CLS]/[SEP] are never touched), the
model runs on the embeddings (``sampling.embedding_forward``), and the output explained is the target class's
*probability*, as occlusion's and ERASER's. Each example runs alone with its draws seeded from the run's seed and
its text; ``--batch-size`` perturbed inputs go through each forward pass. None runs unless named.

``feature-ablation``
    Captum ``FeatureAblation``: p_target(x) − p_target(x with the word's pieces set to [PAD]); one pass per
    word. Unlike ``occlusion`` the word is masked, not deleted, so the other words keep their positions.
``lime``
    Ribeiro et al. (2016) LIME, Captum ``Lime``: ``--samples`` (200) random subsets of the words switched on,
    weighted by LIME's text kernel (cosine distance of the on/off vector to all-on, ×100, exponential kernel of
    width 25, as the paper's text explainer), a ridge regression (α = 1) of p_target on the on/off vector; a
    word's score is its coefficient.
``kernel-shap``
    Lundberg & Lee (2017) Kernel SHAP, Captum ``KernelShap``: the same regression with the Shapley kernel
    weights, ``--samples`` (200) coalitions; scores estimate the words' Shapley values of p_target.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from probekit.attribution.base import AttributionMethod, option, positive
from probekit.attribution.registry import register
from probekit.attribution.sampling import SAMPLES_HELP, per_example


def word_features(state, b: int, n: int) -> tuple[torch.Tensor, int]:
    """Captum's feature mask [1, n, 1] for example ``b`` (its words; the special tokens one extra feature that
    never changes, as its baseline is the input itself) and the number of words."""
    wid = torch.as_tensor(np.asarray(state.word_ids[b][:n], dtype=np.int64))
    W = len(state.words[b])
    return torch.where(wid >= 0, wid, torch.full_like(wid, W)).view(1, n, 1), W


def to_word_scores(token_scores: torch.Tensor, state) -> torch.Tensor:
    """[B, T] scores, equal over a word's pieces → [B, W] (NaN for a word with no piece in the input)."""
    B = token_scores.shape[0]
    W = max((len(w) for w in state.words), default=0)
    out = torch.full((B, max(W, 1)), float("nan"), dtype=torch.float64)
    for b in range(B):
        wid = np.asarray(state.word_ids[b])
        for w in range(len(state.words[b])):
            at = np.flatnonzero(wid == w)
            if len(at):
                out[b, w] = float(token_scores[b, at[0]])
    return out


class _WordPerturbation(AttributionMethod):
    unit = "word"
    signed = True
    default = False
    salt = 0

    def explainer(self, f):
        raise NotImplementedError

    def call(self, explainer, emb, emb0, extra, t, mask, batch_size):
        raise NotImplementedError

    def attribute(self, classifier, batch, target, state):
        def run(f, emb, emb0, extra, t, b, n):
            mask, _ = word_features(state, b, n)
            with torch.no_grad():
                a = self.call(self.explainer(f), emb, emb0, extra, t, mask.to(emb.device), state.batch_size)
            return a[..., 0]

        tokens = per_example(classifier, batch, target, state, self.salt, run, probabilities=True)
        return to_word_scores(tokens, state), {}


@register
class FeatureAblation(_WordPerturbation):
    """p_target(x) − p_target(x with the word's pieces replaced by [PAD])."""

    name = "feature-ablation"
    summary = "Captum FeatureAblation: p_target(x) − p_target(x with the word's pieces set to the [PAD] embedding)"
    salt = 201

    def explainer(self, f):
        from captum.attr import FeatureAblation as Captum

        return Captum(f)

    def call(self, explainer, emb, emb0, extra, t, mask, batch_size):
        return explainer.attribute(emb, baselines=emb0, target=t, additional_forward_args=extra,
                                   feature_mask=mask, perturbations_per_eval=batch_size)


def lime_text_kernel(original, perturbed, interpretable, **_):
    """LIME's text weighting: d = 100 × cosine distance of the on/off vector to all-on; √exp(−d² / 25²)."""
    z = interpretable.float().view(-1)
    cos = float(z.sum() / (z.norm() * np.sqrt(len(z)))) if float(z.norm()) > 0 else 0.0
    d = 100.0 * (1.0 - cos)
    return float(np.sqrt(np.exp(-(d ** 2) / 25.0 ** 2)))


@register
@dataclass
class LIME(_WordPerturbation):
    """LIME: a ridge regression of p_target on which words are kept, over random subsets."""

    name = "lime"
    summary = ("Captum Lime over words ([PAD] when off), LIME's text kernel (cosine ×100, width 25), ridge "
               "regression of p_target; a word's coefficient")
    salt = 202
    samples: int = option(200, SAMPLES_HELP, check=positive)

    def explainer(self, f):
        from captum._utils.models.linear_model import SkLearnRidge
        from captum.attr import Lime

        return Lime(f, interpretable_model=SkLearnRidge(alpha=1.0), similarity_func=lime_text_kernel)

    def call(self, explainer, emb, emb0, extra, t, mask, batch_size):
        return explainer.attribute(emb, baselines=emb0, target=t, additional_forward_args=extra,
                                   feature_mask=mask, n_samples=self.samples, perturbations_per_eval=batch_size)


@register
@dataclass
class KernelSHAP(_WordPerturbation):
    """Kernel SHAP: Shapley values of p_target over the words, estimated by a kernel-weighted regression."""

    name = "kernel-shap"
    summary = "Captum KernelShap over words ([PAD] when off): estimated Shapley values of p_target"
    salt = 203
    samples: int = option(200, SAMPLES_HELP, check=positive)

    def explainer(self, f):
        from captum.attr import KernelShap

        return KernelShap(f)

    def call(self, explainer, emb, emb0, extra, t, mask, batch_size):
        return explainer.attribute(emb, baselines=emb0, target=t, additional_forward_args=extra,
                                   feature_mask=mask, n_samples=self.samples, perturbations_per_eval=batch_size)
