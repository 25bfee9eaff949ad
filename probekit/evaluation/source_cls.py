"""``--attention cls``: the last layer's attention from [CLS] as the attention under test.

The weights α are ``attribution/internal.attention_cls`` exactly: the last layer's attention row of the first
token ([CLS], <s>), averaged over heads, summed over each word's pieces (token level: one unit per real
piece) and renormalised over the real words, so special tokens and padding are never units.

``output(units, mask, alpha)`` is the classifier's output with α imposed and everything below the last layer
held fixed (the papers intervene on attention with the encoder's outputs fixed: Jain & Wallace §4.2,
Serrano & Smith §3). The hidden states of layer L−1 are stored; for imposed word weights α each head h's
[CLS] attention row A_h becomes

    A′_h[t] = A_h[t]                                   t a special token ([CLS], [SEP], <s>, </s>)
    A′_h[t] = c_h · A_h[t] · α_w / α⁰_w                t a piece of word w (α⁰: the model's own weights)

with c_h chosen so the row keeps its original mass on the words (rows still sum to 1). So within a word the
pieces keep their original proportions in every head, every head keeps its own attention to the special
tokens, zeroing a word removes it from every head (the others renormalised per head), α = α⁰ gives back the
original row exactly, and with every word zeroed only the special tokens are read (the papers' zero document
vector). The model's own last layer module is then run again on the stored layer L−1 states with A′ in
place of its [CLS] attention row, and the classifier's head reads the recomputed [CLS] vector.

No architecture-specific code: the last layer is found by hooks as the module that maps the output of layer
L−1 to the last hidden states, and the row is imposed through transformers' attention interface (an
attention function registered with ``AttentionInterface``, used only while that layer is re-run), so any
encoder whose attention goes through that interface (``_supports_attention_backend``: BERT, RoBERTa, ELECTRA,
DistilBERT, ALBERT, …) works; others are refused in one line. Before use, the re-run at α = α⁰ is checked to
give back the model's own last layer [CLS] vector.

This is exact only when the head reads the last layer's [CLS] vector (``--head cls`` at the last layer, or a
Hugging Face sequence classifier); anything else is one clear :class:`UserError`.
"""
from __future__ import annotations

import contextlib
import inspect
from typing import Sequence

import torch

from probekit.core.errors import UserError
from probekit.core.examples import Example
from probekit.evaluation.source import AttentionSource

#: the name of the attention function that imposes the [CLS] row (registered with transformers once)
IMPOSED = "probekit_imposed_cls"
_ROWS: dict = {}      # the rows to impose while the last layer is re-run (set by ClsSource.cls_vector only)


def _imposed_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **_):
    """Eager attention with the query row of position 0 replaced by ``_ROWS["rows"]`` [B, H, T]."""
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None and attention_mask.dtype == torch.bool:
        weights = weights.masked_fill(~attention_mask, torch.finfo(weights.dtype).min)
    elif attention_mask is not None:
        weights = weights + attention_mask
    weights = torch.softmax(weights, dim=-1)
    rows = _ROWS.get("rows")
    if rows is not None:
        weights = torch.cat([rows.to(weights.dtype).unsqueeze(2), weights[:, :, 1:]], dim=2)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


def _register() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(IMPOSED, _imposed_attention)


def check_cls_classifier(classifier) -> None:
    """The one error for every classifier ``--attention cls`` cannot recompute exactly."""
    if getattr(classifier, "encoder", None) is None or classifier.encoder_mode == "none":
        raise UserError("--attention cls needs an encoder; this classifier was trained with --encoder none")
    model = classifier.encoder.model
    if not getattr(type(model), "_supports_attention_backend", False):
        model_type = getattr(classifier.encoder.config, "model_type", "?")
        raise UserError(f"--attention cls re-runs the last layer with an imposed [CLS] row through transformers' "
                        f"attention interface, which this classifier's encoder ({model_type!r}, "
                        f"{type(model).__name__}) does not use")
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


@contextlib.contextmanager
def _eager(model):
    """The model with eager attention (SDPA returns no attention maps; the numbers are the same)."""
    before = getattr(model.config, "_attn_implementation", None)
    switched = before not in (None, "eager")
    if switched:
        model.set_attn_implementation("eager")
    try:
        yield
    finally:
        if switched:
            model.set_attn_implementation(before)


def _first_tensor(x):
    return x[0] if isinstance(x, (tuple, list)) and len(x) and isinstance(x[0], torch.Tensor) else x


class _LastLayer:
    """The module that maps layer L−1's hidden states to the last ones, and how it is called (found by hooks on
    one forward pass: the innermost module whose input and output are those two tensors)."""

    def __init__(self, model, kwargs: dict):
        calls = []
        hooks = [m.register_forward_hook(lambda mod, a, k, o: calls.append((mod, a, k, o)), with_kwargs=True)
                 for name, m in model.named_modules() if name]
        try:
            out = model(**kwargs, output_attentions=True, output_hidden_states=True, return_dict=True)
        finally:
            for h in hooks:
                h.remove()
        self.out = out
        before, after = out.hidden_states[-2], out.hidden_states[-1]
        for mod, args, kw, o in calls:
            x, y = (args[0] if args else kw.get("hidden_states")), _first_tensor(o)
            if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and x.shape == before.shape \
                    and y.shape == after.shape and torch.equal(x, before) and torch.equal(y, after):
                self.module, self.args, self.kwargs = mod, list(args), dict(kw)
                break
        else:
            raise UserError(f"--attention cls: no module of this {type(model).__name__} maps the hidden states of "
                            f"layer L-1 to the last layer's; its last layer cannot be re-run on its own")
        self.mask_at = next((i for i, a in enumerate(self.args[1:], 1) if isinstance(a, torch.Tensor)), None)
        if self.mask_at is None and isinstance(self.kwargs.get("attention_mask"), torch.Tensor):
            self.mask_at = "attention_mask"
        template = self._get(self.mask_at) if self.mask_at is not None else None
        self.mask_dtype = None if template is None else template.dtype
        self.mask_dims = None if template is None else template.dim()
        others = [k for k, v in self.kwargs.items() if isinstance(v, torch.Tensor) and k != self.mask_at]
        others += [i for i, a in enumerate(self.args[1:], 1) if isinstance(a, torch.Tensor) and i != self.mask_at]
        if others or (self.mask_dims not in (None, 2, 4)):
            raise UserError(f"--attention cls: the last layer of this {type(model).__name__} takes inputs other "
                            f"than its hidden states and an attention mask ({others}); it cannot be re-run alone")
        if "output_attentions" in self.kwargs:
            self.kwargs["output_attentions"] = False
        if not args and "hidden_states" not in kw:
            raise UserError("--attention cls: cannot tell how the last layer takes its hidden states")

    def _get(self, at):
        return self.kwargs[at] if isinstance(at, str) else self.args[at]

    def mask(self, real: torch.Tensor):
        """The layer's attention mask for the real tokens ``real`` [B, T], in the form the model passed it."""
        if self.mask_dims is None:
            return None
        if self.mask_dims == 2:
            return real.to(self.mask_dtype)
        m = real[:, None, None, :].expand(-1, 1, real.shape[1], -1)
        if self.mask_dtype == torch.bool:
            return m
        zero = torch.zeros((), dtype=self.mask_dtype, device=real.device)
        return torch.where(m, zero, torch.tensor(torch.finfo(self.mask_dtype).min, dtype=self.mask_dtype,
                                                 device=real.device))

    def __call__(self, model, hidden: torch.Tensor, real: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """The layer's output at position 0 [B, D] on ``hidden`` with ``rows`` as the [CLS] attention rows."""
        args, kwargs = list(self.args), dict(self.kwargs)
        if args:
            args[0] = hidden
        else:
            kwargs["hidden_states"] = hidden
        if self.mask_at is not None:
            if isinstance(self.mask_at, str):
                kwargs[self.mask_at] = self.mask(real)
            else:
                args[self.mask_at] = self.mask(real)
        config = model.config
        before = config._attn_implementation
        _register()
        _ROWS["rows"] = rows
        try:
            config._attn_implementation = IMPOSED
            out = self.module(*args, **kwargs)
        finally:
            config._attn_implementation = before
            _ROWS.pop("rows", None)
        return _first_tensor(out)[:, 0]


class ClsSource(AttentionSource):
    """The last layer's [CLS] attention, with the layers below it held fixed (see the module docstring).

    ``batch(idx)`` gives ``(units, mask)`` with ``units`` a dict of the fixed tensors: ``hidden`` [B, T, D]
    (layer L−1, the last layer's input), ``attn`` [B, H, T] (each head's [CLS] row), ``unit_of`` [B, T] (the
    unit of every token, −1 for special tokens and padding), ``real`` [B, T] (unmasked tokens), ``alpha0``
    [B, U]; ``mask`` [B, U] marks the real words.
    """

    kind = "cls"

    def __init__(self, classifier, examples: Sequence[Example], *, batch_size: int = 32):
        check_cls_classifier(classifier)
        self.classifier = classifier
        classifier.eval()
        self.model = classifier.encoder.model
        self.last = None
        self._store = []
        examples = list(examples)
        for start in range(0, len(examples), batch_size):
            self._store += self._encode(examples[start:start + batch_size], warn=start == 0)
        if self._store:
            self._check()

    def _check(self) -> None:
        """The re-run at α = α⁰ must give back the model's own last [CLS] vector (one line if it does not)."""
        units, mask = self.batch(torch.arange(len(self._expected)))
        with torch.no_grad():
            again = self.cls_vector(units, mask, units["alpha0"]).float()
        expected = self._expected.to(again.device)
        gap = float((again - expected).abs().max())
        if not gap <= 1e-4 * (1.0 + float(expected.abs().max())):
            raise UserError(f"--attention cls: re-running the last layer of this {type(self.model).__name__} "
                            f"does not give back its own [CLS] vector (max difference {gap:.3g}); its "
                            f"attention cannot be intervened on this way")

    # --- the fixed tensors ------------------------------------------------------------------------------------

    @torch.no_grad()
    def _encode(self, examples, *, warn: bool):
        clf = self.classifier
        batch = clf.encode(examples, warn=warn)
        accepted = inspect.signature(self.model.forward).parameters
        kwargs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")
                  if k in batch and k in accepted and (k != "token_type_ids" or clf.uses_token_types)}
        with _eager(self.model):
            if self.last is None:
                self.last = _LastLayer(self.model, kwargs)
                out = self.last.out
                del self.last.out
                self._expected = out.hidden_states[-1][:, 0].float()
            else:
                out = self.model(**kwargs, output_attentions=True, output_hidden_states=True, return_dict=True)
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
        units = {"hidden": hidden, "attn": attn, "unit_of": unit_of, "real": real, "alpha0": alpha0}
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
        """The last layer's [CLS] output [B, D] with ``alpha`` imposed on its attention row (the model's own
        last layer re-run on the fixed layer L−1 states)."""
        rows = self.imposed_rows(units, mask, alpha)                                   # [B, H, T]
        hidden = units["hidden"]
        return self.last(self.model, hidden.to(next(self.model.parameters()).dtype), units["real"], rows)

    def output(self, units, mask, alpha):
        logits, _, _ = self.classifier.head(None, mask, self.cls_vector(units, mask, alpha))
        return torch.softmax(logits.float(), -1)
