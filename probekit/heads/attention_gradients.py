"""Clark et al. (2019) Figure 3: how much the loss depends on attention to [SEP], to "." / ",", and to every
other token, layer by layer — the average |∂L/∂α| over heads, query rows and key columns of a class.

Clark released no code for this (attention-analysis issue #8); the protocol here is stated in full:

- the loss L is the masked-LM loss when the checkpoint has a trained masked-LM head: 15% of each input's
  non-special tokens (at least one) are chosen, deterministically from the seed and the input's position;
  of those 80% become the mask token, 10% a random token, 10% stay (BERT's recipe); "unmasked" keys are the
  input's tokens that were not chosen;
- otherwise (e.g. sentence-transformers checkpoints, which ship no head) L is the loss of a linear selection
  probe trained on the last layer for a probing task (default ``nth_token``); every token is then "unmasked";
- each input's own loss (mean over its predictions) is differentiated, so values do not depend on batching;
- per input and layer: mean |∂L/∂α_ij| over heads, all query rows i and keys j in the class; then the mean
  over inputs that have such a key. Token level always, since the loss is defined on tokens.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from probekit.heads.statistics import SpecialTokens, is_punct
from probekit.core.progress import progress
from probekit.core.encoder import Encoder
from probekit.core.examples import Example
from probekit.core.extraction import encode_examples, length_batches, model_inputs

CLASSES = {"grad_sep": "[SEP]", "grad_punct": '"." or ","', "grad_unmasked": "all unmasked tokens"}
MASK_RATE = 0.15


@dataclass
class GradientStats:
    """Per-layer sums of per-input mean |∂L/∂α| for each key class, and the number of inputs behind each."""

    num_layers: int
    sums: dict[str, np.ndarray] = field(default_factory=dict)
    counts: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        for c in CLASSES:
            self.sums.setdefault(c, np.zeros(self.num_layers))
            self.counts.setdefault(c, np.zeros(self.num_layers))

    def add(self, grads: Sequence[torch.Tensor], real: torch.Tensor, keys: dict[str, torch.Tensor]) -> None:
        """``grads`` per layer [B, H, T, T]; ``real`` [B, T] non-padding; ``keys`` class → [B, T] key masks."""
        n = real.sum(1).double()                                           # [B]
        for l, g in enumerate(grads):
            H = g.shape[1]
            received = (g.abs().double() * real[:, None, :, None]).sum((1, 2))   # [B, T]: Σ_h Σ_i |g_hij|
            for c, mask in keys.items():
                m = (mask.to(real.device) & real).double()
                size = m.sum(1)
                has = size > 0
                per = (received * m).sum(1) / (H * n * size.clamp(min=1))
                self.sums[c][l] += float(per[has].sum().cpu())
                self.counts[c][l] += float(has.sum())

    def frame(self) -> pd.DataFrame:
        rows = [(l + 1, c, self.sums[c][l] / self.counts[c][l] if self.counts[c][l] else float("nan"))
                for c in CLASSES for l in range(self.num_layers)]
        return pd.DataFrame(rows, columns=["layer", "metric", "value"])


def _key_classes(encoder: Encoder, ids: torch.Tensor) -> dict[str, torch.Tensor]:
    tok = encoder.tokenizer
    sep_id = tok.convert_tokens_to_ids(SpecialTokens.of(tok).sep) if SpecialTokens.of(tok).sep else None
    strings = tok.convert_ids_to_tokens(ids.reshape(-1).tolist())
    punct = torch.tensor([is_punct(s) for s in strings], dtype=torch.bool).reshape(ids.shape)
    special = torch.isin(ids, torch.tensor(sorted(tok.all_special_ids)))
    return {"grad_sep": ids == sep_id if sep_id is not None else torch.zeros_like(ids, dtype=torch.bool),
            "grad_punct": punct & ~special}


def mask_tokens(encoder: Encoder, ids: list[int], seed: int, index: int) -> tuple[list[int], list[int]]:
    """BERT's masking of one input: (corrupted ids, labels with −100 where nothing is predicted)."""
    tok = encoder.tokenizer
    rng = np.random.default_rng([seed, index])
    specials = set(tok.all_special_ids)
    candidates = [t for t, i in enumerate(ids) if i not in specials]
    out, labels = list(ids), [-100] * len(ids)
    if not candidates:
        return out, labels
    k = max(1, int(round(MASK_RATE * len(candidates))))
    for t in sorted(rng.choice(candidates, size=k, replace=False).tolist()):
        labels[t] = ids[t]
        r = rng.random()
        if r < 0.8:
            out[t] = tok.mask_token_id
        elif r < 0.9:
            out[t] = int(rng.integers(len(tok)))
    return out, labels


def mlm_gradients(encoder: Encoder, examples: Sequence[Example], *, seed: int = 0, batch_size: int = 16,
                  max_length: int | None = None, segment_ids: str = "standard") -> GradientStats:
    """|∂L/∂α| for the masked-LM loss, which needs ``encoder.mlm_model``."""
    model = encoder.mlm_model
    if model is None:
        raise ValueError(f"{encoder.name} has no masked-LM head")
    stats = GradientStats(encoder.num_layers)
    encoded = encode_examples(encoder, examples, max_length=max_length, level="token", segment_ids=segment_ids,
                              warn=False)   # the statistics pass has already counted truncated inputs
    bar = progress(total=len(encoded), desc="gradients (masked LM)", unit="input")
    for batch in length_batches(encoded, batch_size):
        inputs = model_inputs(encoder, batch)
        labels = torch.full_like(inputs["input_ids"], -100)
        for b, e in enumerate(batch):
            ids, lab = mask_tokens(encoder, e.input_ids, seed, e.index)
            inputs["input_ids"][b, :e.length] = torch.tensor(ids)
            labels[b, :e.length] = torch.tensor(lab)
        out = model(**inputs, output_attentions=True, return_dict=True)
        logp = torch.log_softmax(out.logits.float(), -1)
        picked = logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        chosen = labels >= 0
        per_input = -(picked * chosen).sum(1) / chosen.sum(1).clamp(min=1)
        grads = torch.autograd.grad(per_input.sum(), out.attentions)
        real = inputs["attention_mask"].bool()
        keys = _key_classes(encoder, _original_ids(batch, real.shape[1], encoder))
        keys["grad_unmasked"] = ~chosen
        stats.add([g.detach() for g in grads], real, keys)
        bar.update(len(batch))
    bar.close()
    return stats


def _original_ids(batch, T: int, encoder: Encoder) -> torch.Tensor:
    pad = encoder.tokenizer.pad_token_id or 0
    ids = torch.full((len(batch), T), pad, dtype=torch.long)
    for b, e in enumerate(batch):
        ids[b, :e.length] = torch.tensor(e.input_ids)
    return ids


@dataclass
class LinearScorer:
    """A trained linear selection scorer: word u of a sentence gets w_k·h_u for task key k (K keys side by
    side); p(target) is the softmax over the sentence's real words. No bias: the softmax would ignore it."""

    weight: torch.Tensor      # [K, D]
    task: str
    n_train: int
    train_accuracy: float


def task_data(task_name: str, *, seed: int, corpus: str | None = None):
    """The probing task's examples, built with the task's default options (as ``probekit.probe`` would)."""
    from probekit.probing.registry import build_data, task_options

    extra = {"corpus": corpus} if corpus is not None and "corpus" in task_options(task_name) else {}
    return build_data(task_name, seed=seed, **extra)


def _from(example: Example, corpus) -> bool:
    """Whether a sentence was read from ``corpus`` (its ``source`` is ``file:line``)."""
    from pathlib import Path

    return str(example.meta.get("source", "")).rsplit(":", 1)[0] == str(Path(corpus))


def _unit_targets(word_ids: np.ndarray, targets: Sequence[int]) -> list[int]:
    pos = {int(w): u for u, w in enumerate(word_ids) if w >= 0}
    return [pos.get(int(t), -1) if t >= 0 else -1 for t in targets]


def _probe_loss(weight: torch.Tensor, words: torch.Tensor, cand: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per sentence: mean over its keys with a target of −log p(target word). words [B, U, D], y [B, K]."""
    scores = (words @ weight.T).masked_fill(~cand[..., None], float("-inf"))      # [B, U, K]
    logp = torch.log_softmax(scores, dim=1)
    has = y >= 0
    picked = logp.gather(1, y.clamp(min=0)[:, None, :]).squeeze(1)                 # [B, K]
    return -(picked.masked_fill(~has, 0.0)).sum(1) / has.sum(1).clamp(min=1)


def train_last_layer_probe(encoder: Encoder, examples: Sequence[Example], task: str, *, seed: int = 0,
                           epochs: int = 4, lr: float = 1e-2, batch_size: int = 32,
                           max_length: int | None = None) -> LinearScorer:
    """Fit the scorer on the last layer's word vectors (mean of pieces) with Adam, briefly."""
    from probekit.core.extraction import extract

    feats = {}
    for act in extract(encoder, examples, hidden=True, level="word", pooling="mean", batch_size=batch_size,
                       max_length=max_length, desc="probe features"):
        feats[act.index] = (torch.from_numpy(act.hidden[-1]), torch.from_numpy(~act.special),
                            _unit_targets(act.word_ids, examples[act.index].meta["targets"]))
    order = sorted(feats)
    U = max(len(feats[i][0]) for i in order)
    words = torch.zeros((len(order), U, encoder.hidden_size))
    cand = torch.zeros((len(order), U), dtype=torch.bool)
    for j, i in enumerate(order):
        v, c, _ = feats[i]
        words[j, :len(v)], cand[j, :len(c)] = v, c
    y = torch.tensor([feats[i][2] for i in order], dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)
    weight = (torch.randn((y.shape[1], words.shape[-1]), generator=gen) * 0.02).requires_grad_()
    opt = torch.optim.Adam([weight], lr=lr)
    for _ in range(epochs):
        perm = torch.randperm(len(order), generator=gen)
        for k in range(0, len(order), batch_size):
            rows = perm[k:k + batch_size]
            loss = _probe_loss(weight, words[rows], cand[rows], y[rows]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        pred = (words @ weight.T).masked_fill(~cand[..., None], float("-inf")).argmax(1)
        has = y >= 0
        acc = float(((pred == y) & has).sum() / has.sum().clamp(min=1))
    return LinearScorer(weight.detach(), task, len(order), acc)


def probe_gradients(encoder: Encoder, examples: Sequence[Example], probe: LinearScorer, *, batch_size: int = 16,
                    max_length: int | None = None) -> GradientStats:
    """|∂L/∂α| for the probe's loss (mean over the input's task keys of −log p(target word))."""
    from probekit.core.alignment import alignment_matrices

    stats = GradientStats(encoder.num_layers)
    encoded = encode_examples(encoder, examples, max_length=max_length, level="word")
    bar = progress(total=len(encoded), desc=f"gradients ({probe.task} probe)", unit="input")
    for batch in length_batches(encoded, batch_size):
        inputs = model_inputs(encoder, batch)
        T = inputs["input_ids"].shape[1]
        with torch.enable_grad():
            out = encoder.model(**inputs, output_hidden_states=True, output_attentions=True, return_dict=True)
            pool, _, _ = alignment_matrices([e.alignment for e in batch], T, "mean")
            words = torch.from_numpy(pool).to(out.hidden_states[-1].device) @ out.hidden_states[-1]   # [B, U, D]
            U = words.shape[1]
            cand = torch.zeros((len(batch), U), dtype=torch.bool)
            y = torch.full((len(batch), probe.weight.shape[0]), -1, dtype=torch.long)
            for b, e in enumerate(batch):
                cand[b, :e.alignment.n_units] = torch.from_numpy(~e.alignment.special)
                y[b] = torch.tensor(_unit_targets(e.alignment.word_ids, examples[e.index].meta["targets"]))
            per_input = _probe_loss(probe.weight.to(words.device), words, cand.to(words.device), y.to(words.device))
            grads = torch.autograd.grad(per_input.sum(), out.attentions)
        real = inputs["attention_mask"].bool()
        keys = _key_classes(encoder, _original_ids(batch, T, encoder))
        keys["grad_unmasked"] = real
        stats.add([g.detach() for g in grads], real, keys)
        bar.update(len(batch))
    bar.close()
    return stats


def attention_gradients(encoder: Encoder, inputs: Sequence[Example], *, objective: str = "auto",
                        task: str = "nth_token", corpus: str | None = None, limit: int = 500, seed: int = 0,
                        batch_size: int = 16, max_length: int | None = None,
                        segment_ids: str = "standard") -> tuple[pd.DataFrame, dict]:
    """Per-layer gradient rows (layer, stat, value) and a record of the objective that produced them.

    ``objective``: ``mlm`` (needs a masked-LM head), ``probe``, or ``auto`` (mlm when there is a head).
    The masked-LM loss is measured on the first ``limit`` analysed ``inputs``; a probe is trained on the task's
    train split and measured on up to ``limit`` of its held-out sentences, the task built from ``corpus`` when
    one is given and the task reads one. ``record["data"]`` says in words which sentences the values came from.
    """
    from probekit.core.errors import UserError
    from probekit.probing.registry import NO_TARGET

    if objective not in ("auto", "mlm", "probe"):
        raise ValueError("objective must be auto, mlm or probe")
    if objective == "mlm" and encoder.mlm_model is None:
        raise UserError(f"--objective mlm: {encoder.name} has no trained masked-LM head; use --objective probe")
    if objective == "auto":
        objective = "mlm" if encoder.mlm_model is not None else "probe"
    if objective == "mlm":
        chosen = list(inputs[:limit])
        stats = mlm_gradients(encoder, chosen, seed=seed, batch_size=batch_size, max_length=max_length,
                              segment_ids=segment_ids)
        record = {"objective": "mlm", "description": f"masked-LM loss ({MASK_RATE:.0%} of non-special tokens, "
                  "80/10/10 mask/random/keep), on the analysed inputs", "inputs": len(chosen),
                  "data": f"masked-LM loss on the first {len(chosen)} analysed inputs"
                          + (f" of the corpus {corpus}" if corpus is not None else " (generated sentences)"),
                  "from_corpus": corpus is not None}
    else:
        data = task_data(task, seed=seed, corpus=None if corpus is None else str(corpus))
        train = [ex for ex in data.examples if ex.meta["split"] == data.splits[0]][:1000]
        evaluate = [ex for ex in data.examples if ex.meta["split"] != data.splits[0]
                    and any(t != NO_TARGET for t in ex.meta["targets"])][:limit]
        if not train or not evaluate:
            raise UserError(f"task {task} gave no sentences to train or measure the probe on")
        probe = train_last_layer_probe(encoder, train, task, seed=seed, batch_size=batch_size,
                                       max_length=max_length)
        stats = probe_gradients(encoder, evaluate, probe, batch_size=batch_size, max_length=max_length)
        from_corpus = corpus is not None and all(_from(ex, corpus) for ex in train + evaluate)
        where = (f"sentences of the corpus {corpus}" if from_corpus else
                 f"generated sentences of the {task} task" + (f" (the task does not read --corpus {corpus})"
                                                               if corpus is not None else ""))
        record = {"objective": f"probe:{task}",
                  "description": f"loss of a linear {task} probe trained on layer {encoder.num_layers} "
                                 f"(no masked-LM head), on held-out sentences",
                  "data": f"{task} probe trained on {len(train)} and scored on {len(evaluate)} held-out "
                          f"{where}",
                  "from_corpus": from_corpus,
                  "inputs": len(evaluate), "probe_train_sentences": probe.n_train,
                  "probe_train_accuracy": round(probe.train_accuracy, 4)}
    return stats.frame(), record
