"""Sampling gradient methods from Captum, as plug-ins: SmoothGrad and GradientSHAP on the word embeddings.

Both differentiate the target class's logit with respect to the output of ``classifier.embedding_layer`` (the
word-embedding table, as the gradient methods do): the model runs on embeddings handed in by Captum through a
forward hook that swaps that layer's output. Each example runs on its own, unpadded, with its random draws
seeded from the run's seed and the example's own text, so its scores do not depend on the batch or the
position it has in a run, and a run repeats exactly. Neither runs unless named (``default = False``): each
costs ``samples`` forward and backward passes per example.

``smoothgrad``
    Smilkov et al. (2017), SmoothGrad: the gradient averaged over ``samples`` copies of the input with Gaussian
    noise N(0, σ²) added (Captum ``NoiseTunnel`` over ``Saliency`` with ``abs=False``), σ = ``stdev`` × (max −
    min) of the word-embedding table — the paper's noise level relative to the input's range (§3, 10–20 %
    recommended). The token score is the L2 norm of that mean gradient, as ``gradient``'s is of the plain one;
    unsigned, word rule ``l2``.
``gradient-shap``
    Lundberg & Lee (2017) expected gradients as Captum's ``GradientShap``: ``samples`` draws of a random point
    on the straight path from the baseline (integrated gradients' ``[CLS] [PAD] … [PAD] [SEP]``) to the input
    with Gaussian noise of σ = ``stdev`` × range added, the gradient there times (input − baseline), averaged.
    With this one baseline it is a Monte-Carlo estimate of integrated gradients (Σ scores ≈ F(x) − F(x′) in
    expectation, not exactly). Signed, word rule ``sum``.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from probekit.attribution.base import AttributionMethod, option, positive
from probekit.attribution.gradients import baseline_ids
from probekit.attribution.registry import register
from probekit.attribution.state import example_seed
from probekit.attribution.words import model_inputs


#: One help line for ``--samples``, which every sampling method declares with its own default.
SAMPLES_HELP = ("samples per example: noisy copies (smoothgrad), path points (gradient-shap), word subsets (lime, "
                "kernel-shap)")


def non_negative(name, value):
    from probekit.core import checks

    return checks.number(name, value, minimum=0)


def embedding_forward(classifier, keys):
    """f(embeddings, *inputs): the classifier's logits with the word-embedding layer's output replaced."""
    layer = classifier.embedding_layer

    def f(emb, *rest):
        handle = layer.register_forward_hook(lambda module, inputs, output: emb)
        try:
            return classifier(**dict(zip(keys, rest)))
        finally:
            handle.remove()

    return f


@contextlib.contextmanager
def seeded(state, b: int, salt: int, device):
    """Torch's and NumPy's global generators seeded for row ``b`` (Captum draws from both), restored after."""
    seed = example_seed(state, b, salt)
    saved = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            np.random.seed(seed)
            yield
    finally:
        np.random.set_state(saved)


def per_example(classifier, batch, target, state, salt: int, run, *, probabilities: bool = False):
    """Scores [B, T] from ``run(f, emb, base_emb, extra, target_b, b, n)`` on each example alone (its n real
    positions, unpadded, draws seeded). ``f`` gives logits, or class probabilities with ``probabilities``."""
    inputs = model_inputs(batch)
    keys = list(inputs)
    logits = embedding_forward(classifier, keys)
    f = (lambda *a: torch.softmax(logits(*a).float(), -1)) if probabilities else logits
    base = baseline_ids(classifier, batch)
    layer = classifier.embedding_layer
    out = torch.zeros(batch["input_ids"].shape, dtype=torch.float32)
    device = classifier.device
    for b in range(batch["input_ids"].shape[0]):
        n = int(batch["attention_mask"][b].sum())
        extra = tuple(inputs[k][b:b + 1, :n] for k in keys)
        with torch.no_grad():
            emb = layer(inputs["input_ids"][b:b + 1, :n]).detach()
            emb0 = layer(base[b:b + 1, :n]).detach()
        with seeded(state, b, salt, device), torch.enable_grad():
            attr = run(f, emb, emb0, extra, int(target[b]), b, n)
        out[b, :n] = attr.detach().float().cpu()[0]
    return out


def embedding_range(classifier) -> float:
    w = classifier.embedding_layer.weight
    return float(w.max() - w.min())


@register
@dataclass
class SmoothGrad(AttributionMethod):
    """SmoothGrad: the L2 norm of the gradient averaged over noisy copies of the input embeddings."""

    name = "smoothgrad"
    summary = ("Captum NoiseTunnel(Saliency): L2 norm of ∂ logit_target / ∂ e averaged over noisy copies "
               "(σ = stdev × embedding range; word: norm over its pieces)")
    word_rule = "l2"
    default = False
    samples: int = option(20, SAMPLES_HELP, check=positive)
    stdev: float = option(0.15, "noise σ as a share of the word-embedding table's range (max - min)",
                          check=non_negative)

    def attribute(self, classifier, batch, target, state):
        from captum.attr import NoiseTunnel, Saliency

        sigma = self.stdev * embedding_range(classifier)

        def run(f, emb, emb0, extra, t, b, n):
            nt = NoiseTunnel(Saliency(f))
            g = nt.attribute(emb, nt_type="smoothgrad", nt_samples=self.samples, stdevs=sigma, target=t,
                             additional_forward_args=extra, nt_samples_batch_size=state.batch_size, abs=False)
            return g.float().norm(dim=-1)

        return per_example(classifier, batch, target, state, 101, run), {}


@register
@dataclass
class GradientSHAP(AttributionMethod):
    """GradientSHAP: gradients at random points between the [PAD] baseline and the (noisy) input, × the
    input's distance from the baseline, averaged."""

    name = "gradient-shap"
    summary = ("Captum GradientShap on the word embeddings, [CLS] [PAD]… [SEP] baseline, random path points "
               "(signed; word: sum, Σ ≈ F(x) − F(x′) in expectation)")
    signed = True
    default = False
    samples: int = option(20, SAMPLES_HELP, check=positive)
    stdev: float = option(0.0, "noise σ as a share of the word-embedding table's range (max - min)",
                          check=non_negative)

    def attribute(self, classifier, batch, target, state):
        from captum.attr import GradientShap

        sigma = self.stdev * embedding_range(classifier)

        def run(f, emb, emb0, extra, t, b, n):
            gs = GradientShap(f)
            a = gs.attribute(emb, baselines=emb0, n_samples=self.samples, stdevs=sigma, target=t,
                             additional_forward_args=extra)
            return a.float().sum(-1)

        return per_example(classifier, batch, target, state, 102, run), {}
