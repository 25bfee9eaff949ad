"""Gradient methods on the input word embeddings: gradient norm, gradient × input, integrated gradients.

All three differentiate the target class's *logit* with respect to the output of ``classifier.embedding_layer``
(the word-embedding table, before position and segment embeddings are added), so they need no special model
code: a forward hook swaps that output for a tensor that records gradients. The model is in eval mode, so the
rows of a batch do not interact and one backward pass gives every example's gradient.

Integrated gradients is Captum's ``LayerIntegratedGradients`` on that layer, with the BERT baseline
``[CLS] [PAD] … [PAD] [SEP]`` (every special token kept, every word piece replaced by the padding token) under
the *same* attention mask, Gauss–Legendre quadrature with ``steps`` nodes. Its rows per forward + backward pass
are their own option (``ig_rows``, Captum's ``internal_batch_size``), not the example batch: steps × examples are
packed into passes of up to that many rows (a few large passes cost less CPU than many small ones; the default
packs up to ``IG_ROWS`` rows, about 0.5 GB of activations at 64 tokens for a 6-layer, 384-wide encoder). The convergence delta δ = Σ attributions − (F(x) − F(x′)) is returned for every example and
flagged when |δ| > 5 % of |F(x) − F(x′)|; flagged examples can be retried with more steps.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from probekit.core.errors import UserError
from probekit.attribution.base import AttributionMethod, option, optional_positive, positive
from probekit.attribution.registry import register
from probekit.attribution.state import batch_state, embedding_leaf
from probekit.attribution.words import model_inputs

#: |δ| above this share of |F(x) − F(x′)| flags an example (Sundararajan et al.'s 5 % rule).
DELTA_TOLERANCE = 0.05
#: Activation bytes one default integrated-gradients pass may hold (``checks.ig_memory``); ``--ig-rows`` overrides.
IG_BUDGET = 512 * 2**20


def model_size(classifier) -> tuple[int, int]:
    """(hidden size, layers) of the classifier's encoder, for the memory estimates."""
    source = getattr(classifier, "source", None)
    return (getattr(source, "hidden_size", classifier.embedding_layer.embedding_dim),
            getattr(source, "num_layers", 1))


def default_rows(classifier, length: int) -> int:
    """Rows per pass that keep one pass's activations (``checks.ig_memory``) within ``IG_BUDGET``."""
    from probekit.core import checks

    hidden, layers = model_size(classifier)
    per_row = checks.ig_memory(steps=0, rows=1, length=int(length), hidden=hidden, layers=layers)
    return max(1, int(IG_BUDGET // per_row))


def embedding_gradients(classifier, batch: dict, target: torch.Tensor | None = None, *, objective=None):
    """(∂ objective / ∂ e, e): both [B, T, E], e the word-embedding layer's output for the batch.

    The objective is Σ_b logit_target[b] by default; ``objective(inputs) -> scalar tensor`` replaces it (it runs
    the forward pass itself, e.g. with the pooling attention detached)."""
    if objective is None:
        return batch_state(classifier, batch, {"embedding_gradients"}, target).gradients
    with embedding_leaf(classifier) as store, torch.enable_grad():
        chosen = objective(model_inputs(batch))
        if not chosen.requires_grad:
            raise UserError("the classifier's logits do not depend on its input embeddings with gradients "
                            "on (is its encoder run under torch.no_grad?); gradient methods cannot run")
        (grad,) = torch.autograd.grad(chosen, store["e"])
    return grad, store["e"].detach()


@register
class Gradient(AttributionMethod):
    """L2 norm of the gradient of the target logit w.r.t. each token's input embedding."""

    name = "gradient"
    summary = "L2 norm of ∂ logit_target / ∂ input embedding (word: norm over all its pieces' coordinates)"
    word_rule = "l2"
    needs = frozenset({"embedding_gradients"})

    def attribute(self, classifier, batch, target, state):
        grad, _e = state.gradients
        return grad.float().norm(dim=-1), {}


@register
class GradInput(AttributionMethod):
    """Gradient × input summed over the embedding dimensions (signed)."""

    name = "grad-input"
    summary = "Σ_d ∂ logit_target / ∂ e_d · e_d, signed (word: sum over pieces)"
    signed = True
    needs = frozenset({"embedding_gradients"})

    def attribute(self, classifier, batch, target, state):
        grad, e = state.gradients
        return (grad.float() * e.float()).sum(-1), {}


gradient, grad_input = Gradient.fn, GradInput.fn


def baseline_ids(classifier, batch: dict) -> torch.Tensor:
    """``[CLS] [PAD] … [PAD] [SEP]``: the input with every word piece replaced by the padding token."""
    pad = classifier.tokenizer.pad_token_id
    if pad is None:
        raise UserError("the classifier's tokenizer has no padding token; integrated gradients needs one for "
                        "its baseline")
    ids = batch["input_ids"]
    piece = batch["attention_mask"].bool() & (batch["word_ids"] >= 0)
    return torch.where(piece, torch.full_like(ids, pad), ids)


def _forward(classifier, keys):
    def f(input_ids, *rest):
        return classifier(input_ids=input_ids, **dict(zip(keys, rest)))

    return f


def _lig(classifier, batch, target, steps: int, rows: int, fx=None):
    """(scores [B, T], δ [B], F(x) − F(x′) [B]) with at most ``rows`` rows per pass: steps × examples packed by
    Captum's internal batching, the batch split into groups of ``rows`` examples when it is larger."""
    B = len(target)
    if rows < B:
        parts = [_lig(classifier, _select(batch, range(s, min(s + rows, B))), target[s:s + rows], steps, rows,
                      None if fx is None else fx[s:s + rows]) for s in range(0, B, rows)]
        T = batch["input_ids"].shape[1]
        return (torch.cat([torch.nn.functional.pad(p[0], (0, T - p[0].shape[1])) for p in parts]),
                torch.cat([p[1] for p in parts]), torch.cat([p[2] for p in parts]))
    from captum.attr import LayerIntegratedGradients

    inputs = model_inputs(batch)
    keys = [k for k in inputs if k != "input_ids"]
    f = _forward(classifier, keys)
    base = baseline_ids(classifier, batch)
    extra = tuple(inputs[k] for k in keys)
    lig = LayerIntegratedGradients(f, classifier.embedding_layer)
    ibs = max(int(rows), B)
    with torch.enable_grad():
        attr = lig.attribute(inputs["input_ids"], baselines=base, target=target, additional_forward_args=extra,
                             n_steps=int(steps), method="gausslegendre", internal_batch_size=ibs)
    with torch.no_grad():   # Captum's compute_convergence_delta, F(x) from the batch's shared forward pass
        idx = target.view(-1, 1)
        if fx is None:
            fx = f(inputs["input_ids"], *extra).float().gather(1, idx).view(-1)
        fb = f(base, *extra).float().gather(1, idx).view(-1)
    scores = attr.float().sum(-1)
    return scores, scores.sum(-1) - (fx - fb), (fx - fb)


def _packed(classifier, batch, target, steps: int, rows: int | None, fx):
    """:func:`_lig` over groups of examples of equal token count, each cut to its own length: no row of any
    pass is padding (a padded batch spends its passes on pad tokens); ``rows`` per pass (None: the budget's)."""
    lengths = batch["attention_mask"].sum(1).tolist()
    B, T = batch["input_ids"].shape
    scores = torch.zeros(B, T, device=batch["input_ids"].device)
    delta, diff = torch.zeros(B, device=scores.device), torch.zeros(B, device=scores.device)
    for L in sorted(set(lengths)):
        idx = [b for b in range(B) if lengths[b] == L]
        sub = {k: v[:, :L] if isinstance(v, torch.Tensor) and v.dim() == 2 and v.shape[1] == T else v
               for k, v in _select(batch, idx).items()}
        s, d, f = _lig(classifier, sub, target[idx], steps, rows or default_rows(classifier, L),
                       None if fx is None else fx[idx])
        scores[idx, :L], delta[idx], diff[idx] = s.to(scores.dtype), d.to(delta.dtype), f.to(diff.dtype)
    return scores, delta, diff


def _select(batch: dict, rows) -> dict:
    rows = list(rows)
    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            out[k] = v[rows]
        elif isinstance(v, (list, tuple)) and len(v) == len(batch["input_ids"]):
            out[k] = [v[r] for r in rows]
        else:
            out[k] = v
    return out


@register
@dataclass
class IntegratedGradients(AttributionMethod):
    """Integrated gradients of the target logit along the straight path from the [PAD] baseline."""

    name = "integrated-gradients"
    summary = ("Captum LayerIntegratedGradients on the word embeddings, [CLS] [PAD]… [SEP] baseline "
               "(word: sum, so Σ words = F(x) − F(x′) + δ)")
    signed = True
    needs = frozenset({"logits"})
    has_convergence_delta = True
    steps: int = option(50, "integrated-gradients steps (Gauss–Legendre nodes)", check=positive)
    retry_steps: int | None = option(None, "retry integrated gradients with N steps where |delta| > 5% of "
                                           "F(x) - F(x') (default: no retry)", check=optional_positive, type=int)
    ig_rows: int | None = option(None, "rows per integrated-gradients forward + backward pass: steps x examples "
                                       "packed up to this many (memory grows with it; default: as many as keep a "
                                       "pass within 512 MiB at the batch's length)", check=optional_positive, type=int)

    def attribute(self, classifier, batch, target, state):
        steps, retry_steps, ibs = self.steps, self.retry_steps, self.ig_rows
        fx = state.target_logits()
        scores, delta, diff = _packed(classifier, batch, target, steps, ibs, fx)
        used = torch.full_like(delta, float(steps))
        flagged = delta.abs() > DELTA_TOLERANCE * diff.abs()
        if retry_steps and int(retry_steps) > int(steps) and bool(flagged.any()):
            rows = torch.nonzero(flagged).view(-1).tolist()
            s2, d2, _ = _packed(classifier, _select(batch, rows), target[rows], retry_steps, ibs, fx[rows])
            for j, r in enumerate(rows):
                if abs(float(d2[j])) < abs(float(delta[r])):
                    scores[r], delta[r], used[r] = s2[j], d2[j], float(retry_steps)
            flagged = delta.abs() > DELTA_TOLERANCE * diff.abs()
        return scores, {"delta": delta.cpu().numpy().astype(np.float64),
                        "delta_ratio": (delta.abs() / diff.abs().clamp_min(1e-12)).cpu().numpy().astype(np.float64),
                        "flagged": flagged.cpu().numpy(), "steps": used.cpu().numpy().astype(np.int64)}


integrated_gradients = IntegratedGradients.fn
