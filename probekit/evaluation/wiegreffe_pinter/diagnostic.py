"""Wiegreffe & Pinter 2019 §4: do the attention weights help a model that cannot move information between words?

A non-contextual per-word MLP, h_t = tanh(W e_t + b) (hidden 128) over the INPUT word embeddings (each word's
vector is the mean of its sub-token input embeddings, what ``--encoder none`` pools), is pooled with weights it
is given, Σ α_t h_t, and a linear layer decides (their §4, Table 3). The weights are:

- ``trained``: its own additive attention, learnt jointly;
- ``uniform``: 1/n over the real words;
- ``base``: the classifier's α on the same examples (train, dev and evaluation), frozen;
- ``adversary``: the α of the end-to-end adversary, when ``e2e-adversary`` ran earlier in the same Context
  (``ctx.options["_shared"]["wp:adversary"]``; otherwise the row is left out and counted).

Each is trained on ``ctx.train`` with the same seed and options, the best ``ctx.dev`` epoch kept, and scored on
the evaluation examples. For an encoder trained from scratch the whole diagnostic model is trained, its own
embeddings from random weights, as the paper did (``wp_whole.diagnostic``). Weights that carry the model's reasoning should beat uniform ones, and an adversary's
should not.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from probekit.classifiers.features import Features
from probekit.classifiers.pooling import PoolingHead, masked_softmax
from probekit.core.result import tidy
from probekit.evaluation import stats
from probekit.evaluation.base import Outcome, finding
from probekit.evaluation.wiegreffe_pinter.common import (build, data, derived_seed, fit, head_options, head_outputs,
                                                         model_name, real_mask, scores, shared, skip_reason)

SALT = 503
HIDDEN = 128
WEIGHTS = ("trained", "uniform", "base", "adversary")


class DiagnosticHead(PoolingHead):
    """tanh(Linear(emb → 128)) per word, pooled with trained, uniform or imposed weights, then linear.

    With ``weights="imposed"`` the last column of each unit vector is its weight (see :func:`with_weights`),
    renormalised over the real words."""

    weights_kind = "attention"

    def __init__(self, emb_dim: int, n_classes: int, *, weights: str, hidden: int = HIDDEN, dropout: float = 0.1,
                 attention_dim: int = 128):
        super().__init__(hidden, n_classes, dropout=dropout)
        if weights not in ("trained", "uniform", "imposed"):
            raise ValueError(f"weights must be trained, uniform or imposed (got {weights!r})")
        self.weights = weights
        self.mlp = nn.Linear(emb_dim, hidden)
        if weights == "trained":
            self.W = nn.Linear(hidden, attention_dim, bias=False)
            self.v = nn.Linear(attention_dim, 1, bias=False)

    def pool(self, units, mask, cls):
        m = mask.to(units.dtype)
        if self.weights == "imposed":
            alpha = units[..., -1] * m
            alpha = alpha / alpha.sum(1, keepdim=True).clamp(min=1e-12)
            units = units[..., :-1]
        h = torch.tanh(self.mlp(units))
        if self.weights == "trained":
            alpha = masked_softmax(self.v(torch.tanh(self.W(h)))[..., 0], mask)
        elif self.weights == "uniform":
            alpha = m / m.sum(1, keepdim=True).clamp(min=1)
        return torch.einsum("bu,bud->bd", alpha, h), alpha, {}


def with_weights(feats: Features, alpha: torch.Tensor) -> Features:
    """``feats`` with one more column holding each unit's weight (``alpha`` [N, W] aligned with the index)."""
    flat = torch.cat([feats.flat.float(), torch.zeros(len(feats.flat), 1)], dim=1)
    W = min(feats.index.shape[1], alpha.shape[1])
    rows = feats.index[:, :W]
    valid = rows != feats.pad_row
    flat[rows[valid], -1] = alpha[:, :W][valid].float()
    return Features(flat, feats.index, feats.lengths, feats.cls, feats.truncated)


def word_embeddings(ctx) -> dict[str, Features]:
    """Word vectors from the input embeddings of the classifier's own encoder, per split, computed once."""
    cache = shared(ctx)
    if "wp:diagnostic_features" not in cache:
        from probekit.classifiers.features import live_features
        from probekit.classifiers.model import Classifier

        clf = ctx.classifier
        emb = clf.embedding_layer
        grad = emb.weight.requires_grad          # Classifier(encoder_mode="none") freezes the shared table
        with torch.random.fork_rng(devices=[]):
            none = clf.embedding_view() if hasattr(clf, "embedding_view") else Classifier(
                clf.source, clf.labels, head="mean", level=clf.level, encoder_mode="none", max_length=clf.max_length)
        emb.weight.requires_grad_(grad)
        cache["wp:diagnostic_features"] = {
            name: live_features(none, exs, batch_size=ctx.batch_size).float().to("cpu")
            for name, exs in (("train", ctx.train), ("dev", ctx.dev), ("eval", ctx.examples))}
    return cache["wp:diagnostic_features"]


def _mismatched(a: Features, b: Features) -> int:
    """Examples whose real units differ between two feature sets (then imposed weights are renormalised)."""
    ma, mb = real_mask(a), real_mask(b)
    W = max(ma.shape[1], mb.shape[1])
    pad = lambda m: torch.cat([m, torch.zeros(m.shape[0], W - m.shape[1], dtype=torch.bool)], 1)  # noqa: E731
    return int((pad(ma) != pad(mb)).any(1).sum())


def run(ctx) -> Outcome:
    why = skip_reason(ctx)
    if why:
        return Outcome("diagnostic", skipped=why)
    d = data(ctx)
    seed = derived_seed(ctx, SALT)
    adversary = shared(ctx).get("wp:adversary")
    imposed = {"base": {s: d[s].alpha for s in ("train", "dev", "eval")}}
    if adversary is not None:
        imposed["adversary"] = adversary.get("alpha") or {s: head_outputs(adversary["head"], d[s].feats)[0]
                                                          for s in ("train", "dev", "eval")}
    whole = getattr(ctx.classifier, "retrains_whole", False)
    fit_predict = _whole_model(ctx, d, seed, imposed) if whole else _over_embeddings(ctx, d, seed, imposed)
    counts = {} if whole else {f"{s}_unit_mismatch": _mismatched(fit_predict.words[s], d[s].feats)
                               for s in ("train", "dev", "eval")}
    counts["adversary_missing"] = int(adversary is None)

    rows, results, preds = [], {}, {}
    ev_y, dev_y = d["eval"].y, d["dev"].y
    for weights in WEIGHTS:
        if weights not in ("trained", "uniform") and weights not in imposed:
            continue
        probs, dev_probs = fit_predict(weights)
        s_ev, s_dev = scores(probs.numpy(), ev_y), scores(dev_probs.numpy(), dev_y)
        results[weights] = s_ev
        preds[weights] = probs.numpy().argmax(1)
        rows += [{"weights": weights, "split": "eval", "metric": m, "value": v, "aggregate": "examples"}
                 for m, v in s_ev.items()]
        rows += [{"weights": weights, "split": "dev", "metric": m, "value": v, "aggregate": "examples"}
                 for m, v in s_dev.items()]
        if ev_y is not None:
            correct = (probs.numpy().argmax(1) == ev_y).astype(float)
            rows += [{"weights": weights, "example": i, "split": "eval", "metric": "correct", "value": float(c)}
                     for i, c in enumerate(correct)]
    base_model = scores(d["eval"].probs.numpy(), ev_y)
    rows += [{"weights": "classifier", "split": "eval", "metric": m, "value": v, "aggregate": "examples"}
             for m, v in base_model.items()]
    table = tidy(pd.DataFrame(rows), task="diagnostic", model=model_name(ctx), keys=["weights", "split", "example"])
    return Outcome("diagnostic", tables={"diagnostic": table},
                   findings=_findings(ctx, results, preds, ev_y, base_model, adversary), counts=counts)


def _over_embeddings(ctx, d, seed: int, imposed: dict):
    """``weights → (eval, dev probabilities)``: the diagnostic head over the classifier's input word embeddings
    (fixed), trained on them."""
    words = word_embeddings(ctx)
    emb_dim = words["train"].flat.shape[1]
    opts = head_options(ctx)

    def fit_predict(weights):
        if weights in ("trained", "uniform"):
            kind, feats = weights, words
        else:
            kind, feats = "imposed", {s: with_weights(words[s], imposed[weights][s]) for s in words}
        head = build(lambda: DiagnosticHead(emb_dim, ctx.classifier.n_classes, weights=kind,
                                            dropout=opts["dropout"], attention_dim=opts["attention_dim"]), seed)
        fit(ctx, head, feats["train"], feats["dev"], seed, y_train=d["train"].y, y_dev=d["dev"].y)
        return head_outputs(head, feats["eval"])[1], head_outputs(head, feats["dev"])[1]

    fit_predict.words = words
    return fit_predict


def _whole_model(ctx, d, seed: int, imposed: dict):
    """``weights → (eval, dev probabilities)``: a whole fresh non-contextual model, embeddings included, trained
    with those weights (``wp_whole.diagnostic``; an encoder trained from scratch, as Wiegreffe & Pinter did)."""
    from probekit.evaluation.wiegreffe_pinter import whole as wp_whole

    def fit_predict(weights):
        with torch.random.fork_rng(devices=[]):
            kind = weights if weights in ("trained", "uniform") else "imposed"
            tables = imposed.get(weights) if kind == "imposed" else None
            model = wp_whole.diagnostic(ctx.classifier, kind, ctx.train, ctx.dev, d["train"].y, d["dev"].y,
                                        seed=seed, epochs=ctx.options.get("epochs"), imposed=tables,
                                        batch_size=int(ctx.batch_size))
        t = tables or {}
        return (wp_whole.outputs(model, ctx.examples, 1, t.get("eval"))[1],
                wp_whole.outputs(model, ctx.dev, 1, t.get("dev"))[1])

    return fit_predict


MEANING = {
    "trained": "The per-word MLP with its own attention, learnt jointly: what non-contextual words achieve.",
    "uniform": "The per-word MLP averaging its words: the floor that any useful weighting must beat.",
    "base": "The per-word MLP given the classifier's own α",
    "adversary": "The per-word MLP given the end-to-end adversary's α",
}


def _findings(ctx, results: dict, preds: dict, y, base_model: dict, adversary) -> list[dict]:
    """Each weighting's macro-F1 with its interval; the imposed weights against uniform ones paired over the
    same examples, the sentence following the interval."""
    if not results or "macro_f1" not in results.get("uniform", {}):
        return [finding("diagnostic", "macro-F1", float("nan"), "The evaluation data has no labels to score.")]
    out = []
    for weights in results:
        meaning = MEANING[weights]
        f = stats.metric_interval(ctx, stats.macro_f1, y, preds[weights])
        if weights in ("base", "adversary"):
            gap = stats.metric_difference(ctx, stats.macro_f1, (y, preds[weights]), (y, preds["uniform"]))
            tail = (f" (λ={adversary['lambda']:g})" if weights == "adversary" else "")
            meaning += (f"{tail}: " + stats.sentence(f"{weights} weights", "uniform weights", gap,
                                                     quantity="macro-F1") + (
                "; these weights carry task information a context-free model can use" if gap.excludes_zero
                and gap.estimate > 0 else "") + ".")
        out.append(finding("diagnostic", f"macro-F1, {weights} weights", f.estimate, meaning, interval=f))
    if "macro_f1" in base_model:
        out.append(finding("diagnostic", "macro-F1, the classifier itself", base_model["macro_f1"],
                           "The contextual classifier whose attention is imported, for scale."))
    if adversary is None:
        out.append(finding("diagnostic", "adversary weights", float("nan"),
                           "Not tested: run e2e-adversary in the same run (before diagnostic) to impose its α."))
    return out
