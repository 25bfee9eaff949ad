"""One forward pass per batch: what the chosen methods need, computed once and handed to each of them.

The union of the methods' ``needs`` decides one pass through the classifier on the batch:

- always the logits and class probabilities (the prediction, the target, IG's F(x), occlusion's p(x));
- ``pooling``: the head's weights, from ``classifier.forward_with_weights`` in the same call;
- ``attentions``: every layer's attention maps, captured from the encoder during that call (switched to eager
  attention for it, as ``output_attentions`` requires, and switched back);
- ``embedding_gradients``: the same call runs with gradients on and the word-embedding layer's output swapped
  for a leaf tensor, then one backward of Σ_b logit_target[b] gives ∂ logit_target / ∂ e for every row (the
  model is in eval mode, rows do not interact) — shared by the gradient norm and gradient × input.

So a batch costs one encoder forward (plus one backward when a gradient method runs) outside integrated
gradients' path and occlusion's variants, whatever the set of methods.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np
import torch

from probekit.core.errors import UserError
from probekit.attribution.words import model_inputs


@dataclass
class BatchState:
    """What one batch's shared forward pass gave, and the run settings methods may use."""

    batch: dict
    logits: torch.Tensor                 # [B, C] float, detached
    target: torch.Tensor                 # [B] long, on the classifier's device
    attentions: list | None = None       # L × [B, H, T, T] float (``attentions``)
    pooling: tuple | None = None         # (weights, extra) of forward_with_weights (``pooling``)
    gradients: tuple | None = None       # (∂ logit_target / ∂ e, e), both [B, T, E] (``embedding_gradients``)
    batch_size: int = 16                 # rows per forward pass for methods that run the model themselves
    examples: list | None = None         # the batch's Examples (occlusion deletes words from them)
    words: list | None = None            # each example's words, as attributed
    indices: list = field(default_factory=list)   # the examples' positions in the run
    seed: int = 0
    word_ids: np.ndarray | None = None   # [B, T] each token's word (-1: special, padding), whatever the level

    @property
    def probabilities(self) -> torch.Tensor:
        """[B, C] softmax of the logits, on the CPU."""
        return torch.softmax(self.logits.float(), -1).cpu()

    def target_logits(self) -> torch.Tensor:
        """F(x): the target class's logit of every row [B]."""
        return self.logits.float().gather(1, self.target.view(-1, 1).to(self.logits.device)).view(-1)


@contextlib.contextmanager
def embedding_leaf(classifier, on: bool = True):
    """Swap the word-embedding layer's output for a tensor that records gradients; yields a dict whose ``e`` is
    that tensor once the forward pass ran."""
    store: dict = {}
    if not on:
        yield store
        return

    def hook(module, inputs, output):
        e = output.detach().requires_grad_(True)
        store["e"] = e
        return e

    handle = classifier.embedding_layer.register_forward_hook(hook)
    try:
        yield store
    finally:
        handle.remove()


@contextlib.contextmanager
def captured_attentions(classifier, on: bool = True):
    """While on, the encoder returns its attention maps (eager attention) and they are kept in the yielded
    list: L tensors [B, H, T, T] of the last call."""
    got: list = []
    model = getattr(getattr(classifier, "encoder", None), "model", None)
    if not on or model is None:
        yield got
        return
    before = getattr(model.config, "_attn_implementation", None)
    switched = before not in (None, "eager")

    def pre(module, args, kwargs):
        return args, {**kwargs, "output_attentions": True}

    def post(module, args, output):
        got[:] = [a.detach().float() for a in output.attentions]

    if switched:
        model.set_attn_implementation("eager")
    handles = [model.register_forward_pre_hook(pre, with_kwargs=True), model.register_forward_hook(post)]
    try:
        yield got
    finally:
        for h in handles:
            h.remove()
        if switched:
            model.set_attn_implementation(before)


def _has_encoder(classifier) -> bool:
    return getattr(classifier, "encoder", None) is not None and getattr(classifier, "encoder_mode", "") != "none"


def batch_state(classifier, batch: dict, needs, target=None, *, batch_size: int | None = None, examples=None,
                words=None, indices=None, seed: int = 0, word_ids=None) -> BatchState:
    """The batch's one forward pass (and backward when gradients are needed). ``target``: a LongTensor [B],
    a class index for every row, or None for each row's predicted class."""
    needs = set(needs)
    grads = "embedding_gradients" in needs
    att = "attentions" in needs and _has_encoder(classifier)
    inputs = model_inputs(batch)
    with captured_attentions(classifier, att) as attentions, embedding_leaf(classifier, grads) as leaf, \
            torch.set_grad_enabled(grads):
        if hasattr(classifier, "forward_with_weights"):
            logits, weights, extra = classifier.forward_with_weights(**inputs)
        else:
            logits, weights, extra = classifier(**inputs), None, {}
        if target is None:
            target = logits.detach().argmax(1)
        elif not isinstance(target, torch.Tensor):
            target = torch.full((logits.shape[0],), int(target), dtype=torch.long)
        target = target.to(logits.device)
        gradients = None
        if grads:
            chosen = logits.gather(1, target.view(-1, 1)).sum()
            if not chosen.requires_grad:
                raise UserError("the classifier's logits do not depend on its input embeddings with gradients "
                                "on (is its encoder run under torch.no_grad?); gradient methods cannot run")
            (grad,) = torch.autograd.grad(chosen, leaf["e"])
            gradients = (grad, leaf["e"].detach())
    pooling = None
    if "pooling" in needs:
        pooling = (None if weights is None else weights.detach(),
                   {k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in extra.items()})
    return BatchState(batch=batch, logits=logits.detach(), target=target, attentions=attentions if att else None,
                      pooling=pooling, gradients=gradients, batch_size=int(batch_size or len(target)),
                      examples=examples, words=words if words is not None else batch.get("words"),
                      indices=list(range(len(target))) if indices is None else list(indices), seed=seed,
                      word_ids=batch["word_ids"].cpu().numpy() if word_ids is None else word_ids)


def example_seed(state: BatchState, b: int, salt: int) -> int:
    """A seed for row ``b`` from the run's seed, the example's own text (words) and a per-method salt, so a
    sampling method draws the same for an example whatever batch or position it has in a run."""
    import hashlib

    words = state.words[b] if state.words is not None else []
    ex = state.examples[b] if state.examples is not None else None
    text = "\x1f".join(words) if ex is None else repr((ex.text, ex.words, ex.words_b))
    digest = int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:8], "little")
    return int(np.random.SeedSequence([int(state.seed), digest, int(salt)]).generate_state(1)[0])
