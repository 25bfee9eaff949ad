"""``--attention cls``: the last layer's attention from [CLS] as the attention under test.

The weights α are ``attribution/internal.attention_cls`` exactly: the last layer's attention row of the first
token ([CLS], <s>), averaged over heads, summed over each word's pieces (token level: one unit per real
piece) and renormalised over the real words, so special tokens and padding are never units.

``output(units, mask, alpha)`` is the classifier's output with α imposed and everything below the last layer
held fixed (the papers intervene on attention with the encoder's outputs fixed: Jain & Wallace §4.2,
Serrano & Smith §3). The hidden states of layer
L−1 are stored; for imposed word weights α each head h's [CLS] attention row A_h becomes

    A′_h[t] = A_h[t]                                   t a special token ([CLS], [SEP], <s>, </s>)
    A′_h[t] = c_h · A_h[t] · α_w / α⁰_w                t a piece of word w (α⁰: the model's own weights)

with c_h chosen so the row keeps its original mass on the words (rows still sum to 1). So within a word the
pieces keep their original proportions in every head, every head keeps its own attention to the special
tokens, zeroing a word removes it from every head (the others renormalised per head), α = α⁰ gives back the
original row exactly, and with every word zeroed only the special tokens are read (the papers' zero document
vector). From A′ the last layer's [CLS] output is recomputed — value projection, attention output dense +
residual + LayerNorm, feed-forward + residual + LayerNorm — and the classifier's head is run on it. The value
vectors of the other positions do not depend on the [CLS] query row, so nothing else changes.

This is exact only when the head reads the last layer's [CLS] vector (``--head cls`` at the last layer) and
only for BERT-layout layers (BERT, RoBERTa, ELECTRA); anything else is one clear :class:`UserError`.
"""
from __future__ import annotations

import inspect
from typing import Sequence

import torch

from ..core.errors import UserError
from ..core.examples import Example
from .source import AttentionSource

#: model types whose layers have the BERT layout (attention.self.value, attention.output, intermediate, output)
BERT_LAYOUT = ("bert", "roberta", "electra")


def _layers(model):
    """The encoder's layer list, or None when it is not BERT-shaped."""
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    if layers is None or not len(layers):
        return None
    last = layers[-1]
    try:
        last.attention.self.value, last.attention.output.dense, last.attention.output.LayerNorm
        last.intermediate.dense, last.output.dense, last.output.LayerNorm
        last.attention.self.num_attention_heads
    except AttributeError:
        return None
    return layers


def check_cls_classifier(classifier) -> None:
    """The one error for every classifier ``--attention cls`` cannot recompute exactly."""
    if getattr(classifier, "encoder", None) is None or classifier.encoder_mode == "none":
        raise UserError("--attention cls needs an encoder; this classifier was trained with --encoder none")
    model_type = getattr(classifier.encoder.config, "model_type", "?")
    if model_type not in BERT_LAYOUT or _layers(classifier.encoder.model) is None:
        raise UserError(f"--attention cls recomputes the last layer of BERT-layout encoders "
                        f"({', '.join(BERT_LAYOUT)}) only; this classifier's encoder is {model_type!r}")
    L = classifier.encoder.num_layers
    if classifier.head_type != "cls" or classifier.layer != L:
        raise UserError(f"--attention cls needs a classifier whose head reads the last layer's [CLS] vector "
                        f"(--head cls at layer {L}); this one has a {classifier.head_type!r} head at layer "
                        f"{classifier.layer}, which the [CLS] attention row does not feed"
                        + ("; use --attention pooling to test its pooling weights"
                           if classifier.head_type == "attention" else ""))


def _pad(rows: list[torch.Tensor], width: int, value=0.0) -> torch.Tensor:
    """Stack tensors whose last dimension varies, padding it to ``width``."""
    out = rows[0].new_full((len(rows), *rows[0].shape[:-1], width), value)
    for i, r in enumerate(rows):
        out[i, ..., :r.shape[-1]] = r
    return out


class ClsSource(AttentionSource):
    """The last layer's [CLS] attention, with the layers below it held fixed (see the module docstring).

    ``batch(idx)`` gives ``(units, mask)`` with ``units`` a dict of the fixed tensors: ``first`` [B, D]
    (layer L−1 at [CLS], the residual), ``value`` [B, T, H, dh] (layer L−1's value vectors in the last layer),
    ``attn`` [B, H, T] (each head's [CLS] row), ``unit_of`` [B, T] (the unit of every token, −1 for special
    tokens and padding), ``real`` [B, T] (unmasked tokens), ``alpha0`` [B, U]; ``mask`` [B, U] marks the real
    words.
    """

    kind = "cls"

    def __init__(self, classifier, examples: Sequence[Example], *, batch_size: int = 32):
        check_cls_classifier(classifier)
        self.classifier = classifier
        classifier.eval()
        self.model = classifier.encoder.model
        self.layer = _layers(self.model)[-1]
        self.n_heads = int(self.layer.attention.self.num_attention_heads)
        self._store = []
        examples = list(examples)
        for start in range(0, len(examples), batch_size):
            self._store += self._encode(examples[start:start + batch_size], warn=start == 0)

    # --- the fixed tensors ------------------------------------------------------------------------------------

    @torch.no_grad()
    def _encode(self, examples, *, warn: bool):
        clf = self.classifier
        batch = clf.encode(examples, warn=warn)
        accepted = inspect.signature(self.model.forward).parameters
        kwargs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")
                  if k in batch and k in accepted and (k != "token_type_ids" or clf.uses_token_types)}
        before = getattr(self.model.config, "_attn_implementation", None)
        switched = before not in (None, "eager")
        if switched:
            self.model.set_attn_implementation("eager")
        try:
            out = self.model(**kwargs, output_attentions=True, output_hidden_states=True, return_dict=True)
        finally:
            if switched:
                self.model.set_attn_implementation(before)
        hidden = out.hidden_states[-2].float()                  # layer L−1: the input of the last layer
        attn = out.attentions[-1][:, :, 0, :].float()           # [B, H, T]: each head's [CLS] row
        real_tok = batch["attention_mask"].bool()
        unit_of = torch.where(real_tok, batch["word_ids"], torch.full_like(batch["word_ids"], -1))
        rows = []
        for b in range(len(examples)):
            n = int(real_tok[b].sum())
            u = unit_of[b, :n]
            n_units = len(batch["words"][b]) if clf.level == "word" else int((u >= 0).sum())
            n_units = max(n_units, int(u.max()) + 1 if len(u) else 0)
            rows.append({"hidden": hidden[b, :n].cpu(), "attn": attn[b, :, :n].cpu(), "unit_of": u.cpu(),
                         "n_units": n_units})
        return rows

    def __len__(self) -> int:
        return len(self._store)

    def batch(self, idx):
        rows = [self._store[int(i)] for i in torch.as_tensor(idx).view(-1)]
        T = max(r["unit_of"].shape[0] for r in rows)
        U = max(max(r["n_units"] for r in rows), 1)
        dev = self.classifier.device
        hidden = _pad([r["hidden"].T for r in rows], T).transpose(1, 2).to(dev)       # [B, T, D]
        attn = _pad([r["attn"] for r in rows], T).to(dev)                             # [B, H, T]
        unit_of = _pad([r["unit_of"] for r in rows], T, -1).to(dev)                   # [B, T]
        real = _pad([torch.ones(r["unit_of"].shape[0], dtype=torch.bool) for r in rows], T, False).to(dev)
        onehot = self._onehot(unit_of, U)                                             # [B, T, U]
        mass = torch.einsum("bt,btu->bu", attn.mean(1), onehot)                        # word sums of the mean
        mask = onehot.sum(1) > 0
        alpha0 = torch.where(mask, mass, torch.zeros_like(mass))
        alpha0 = alpha0 / alpha0.sum(1, keepdim=True).clamp_min(torch.finfo(alpha0.dtype).tiny)
        with torch.no_grad():                   # the value vectors do not depend on α: computed once per batch
            value = self.layer.attention.self.value(hidden).view(*hidden.shape[:2], self.n_heads, -1)
        units = {"first": hidden[:, 0], "value": value, "attn": attn, "unit_of": unit_of, "real": real,
                 "alpha0": alpha0}
        return units, mask

    @staticmethod
    def _onehot(unit_of: torch.Tensor, U: int) -> torch.Tensor:
        return (unit_of.unsqueeze(-1) == torch.arange(U, device=unit_of.device)).float()

    # --- the interface ----------------------------------------------------------------------------------------

    def attention(self, units, mask):
        return units["alpha0"]

    def imposed_rows(self, units, mask, alpha) -> torch.Tensor:
        """Each head's [CLS] attention row [B, H, T] with the word weights ``alpha`` imposed."""
        attn, unit_of = units["attn"], units["unit_of"]
        U = alpha.shape[1]
        onehot = self._onehot(unit_of, U).to(alpha.dtype)                              # [B, T, U]
        alpha0 = units["alpha0"].to(alpha.dtype)
        ratio = torch.where(mask, alpha / alpha0.clamp_min(torch.finfo(alpha0.dtype).tiny),
                            torch.zeros_like(alpha))                                   # [B, U]
        token_ratio = torch.einsum("btu,bu->bt", onehot, ratio)                        # [B, T]
        is_word = unit_of >= 0
        word = attn * (token_ratio * is_word).unsqueeze(1)                             # [B, H, T]
        word_mass = (attn * is_word.unsqueeze(1)).sum(-1, keepdim=True)                # original, per head
        scale = word_mass / word.sum(-1, keepdim=True).clamp_min(1e-30)
        special = attn * (~is_word & units["real"]).unsqueeze(1)
        return special + word * scale

    def cls_vector(self, units, mask, alpha) -> torch.Tensor:
        """The last layer's [CLS] output [B, D] with ``alpha`` imposed on its attention row."""
        rows = self.imposed_rows(units, mask, alpha)                                   # [B, H, T]
        value = units["value"]                                                         # [B, T, H, dh]
        context = torch.einsum("bht,bthd->bhd", rows.to(value.dtype), value).reshape(len(value), -1)
        attn_out = self.layer.attention.output(context, units["first"])                # dense + residual + LN
        return self.layer.output(self.layer.intermediate(attn_out), attn_out)          # FFN + residual + LN

    def output(self, units, mask, alpha):
        logits, _, _ = self.classifier.head(None, mask, self.cls_vector(units, mask, alpha))
        return torch.softmax(logits.float(), -1)
