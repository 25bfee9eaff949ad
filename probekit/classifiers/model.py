"""The classifier: an encoder (frozen, fine-tuned, or only its input word embeddings) and a pooling head.

``Classifier`` is a plain ``torch.nn.Module``: ``forward(input_ids, attention_mask, token_type_ids, word_ids)``
gives logits, so Captum and hand-written gradient code can use it like any Hugging Face model. Word level
(the default) pools each word's sub-token vectors by their mean, exactly as ``core/alignment`` does for the
activation cache, so a head trained on cached vectors sees the same numbers in a live forward pass.

``word_ids`` [B, T] (long) names the unit of every token: its word index at word level (pairs continue after
the first sentence), its position among the real tokens at token level, and -1 for special tokens and
padding. Without it, every real token is its own unit (token-level pooling). ``encode(examples)`` builds it.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from probekit.core.encoder import Encoder
from probekit.core.examples import Example
from probekit.classifiers.pooling import HEADS, make_head

LEVELS = ("word", "token")
ENCODER_MODES = ("frozen", "finetune", "none")


def units_from_tokens(hs: torch.Tensor, word_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Token vectors [B, T, D] → unit vectors [B, U, D] (mean of each unit's tokens) and mask [B, U].

    The pooling matrix holds 1/count at each (unit, token), as ``core.alignment.alignment_matrices`` builds it,
    so the same float32 matmul gives the same vectors. A unit index no token has (a word lost to truncation in
    a pair) is a masked row.
    """
    n_units = max(int(word_ids.max()) + 1, 1) if word_ids.numel() else 1
    onehot = (word_ids.unsqueeze(-1) == torch.arange(n_units, device=word_ids.device)).to(hs.dtype)  # [B,T,U]
    counts = onehot.sum(1)                                                                            # [B,U]
    pool = onehot / counts.clamp(min=1).unsqueeze(1)
    return pool.transpose(1, 2) @ hs, counts > 0


def token_unit_ids(input_ids: torch.Tensor, attention_mask: torch.Tensor, special_ids: Sequence[int]) -> torch.Tensor:
    """word_ids for token level: each real (non-special, non-padding) token's rank among the real tokens."""
    real = attention_mask.bool() & ~torch.isin(input_ids, torch.tensor(list(special_ids), device=input_ids.device))
    return torch.where(real, real.long().cumsum(1) - 1, torch.full_like(input_ids, -1))


class LabelledModel(nn.Module):
    """What every single-text classifier shares (transformer-based or trained from scratch): its ``labels``,
    device, and :meth:`predict` over its own ``encode`` and forward pass."""

    labels: list[str]

    @property
    def device(self) -> torch.device:
        return self.embedding_layer.weight.device

    @property
    def n_classes(self) -> int:
        return len(self.labels)

    @torch.no_grad()
    def predict_proba(self, examples: Sequence[Example], batch_size: int = 32) -> np.ndarray:
        """[N, C] class probabilities (softmax of the logits, eval mode), in input order; columns follow
        ``labels``. The one way probekit runs a classifier on examples (:mod:`.protocol`)."""
        examples = list(examples)
        was_training = self.training
        self.eval()
        probs = []
        try:
            for start in range(0, len(examples), batch_size):
                batch = self.encode(examples[start:start + batch_size], warn=start == 0)
                batch.pop("words")
                probs.append(torch.softmax(self(**batch).float(), -1).cpu())
        finally:
            self.train(was_training)
        return torch.cat(probs).numpy() if probs else np.zeros((0, self.n_classes), dtype=np.float32)

    def predict(self, examples: Sequence[Example], batch_size: int = 32):
        """One row per example, in input order: ``example``, ``label`` (predicted), ``probability`` (of it),
        ``p_<label>`` for every class, and ``true`` when the example's ``meta["label"]`` is set."""
        import pandas as pd

        examples = list(examples)
        p = self.predict_proba(examples, batch_size)
        pred = p.argmax(1)
        frame = pd.DataFrame({"example": np.arange(len(examples)),
                              "label": [self.labels[i] for i in pred],
                              "probability": p[np.arange(len(p)), pred]})
        for c, name in enumerate(self.labels):
            frame[f"p_{name}"] = p[:, c]
        if examples and all("label" in ex.meta for ex in examples):
            frame.insert(1, "true", [str(ex.meta["label"]) for ex in examples])
        return frame


class Classifier(LabelledModel):
    """Encoder + pooling head. Attributes: ``labels``, ``head_type``, ``level``, ``encoder_mode``, ``layer``,
    ``tokenizer``, ``encoder`` (the core :class:`Encoder`, None for ``encoder_mode="none"``), ``embedding_layer``
    (the input word-embedding ``nn.Embedding``, e.g. for Captum's LayerIntegratedGradients), ``head``."""

    def __init__(self, encoder: Encoder, labels: Sequence[str], *, head: str = "attention", level: str = "word",
                 encoder_mode: str = "frozen", layer: int | None = None, dropout: float = 0.1,
                 attention_dim: int = 128, n_heads: int = 4, max_length: int | None = None):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}")
        if level not in LEVELS or encoder_mode not in ENCODER_MODES:
            raise ValueError(f"level must be one of {LEVELS}, encoder_mode one of {ENCODER_MODES}")
        self.labels = [str(l) for l in labels]
        self.head_type, self.level, self.encoder_mode = head, level, encoder_mode
        self.source = encoder                      # the Encoder it tokenises with (kept with --encoder none too)
        self.tokenizer = encoder.tokenizer
        self.max_length = min(max_length or encoder.max_length, encoder.max_length)
        self.embedding_layer = encoder.input_embeddings
        if encoder_mode == "none":
            if head == "cls":
                raise ValueError("the cls head reads the encoder's [CLS] vector; --encoder none has none")
            self.encoder = None
            self.layer = None
            dim = self.embedding_layer.embedding_dim
            self.embedding_layer.weight.requires_grad_(False)
        else:
            self.encoder = encoder
            self.model = encoder.model              # registered: .to(device) and parameters() include it
            L = encoder.num_layers
            self.layer = L if layer is None else int(layer)
            if not 0 <= self.layer <= L:
                raise ValueError(f"layer must be 0…{L}")
            dim = encoder.hidden_size
            for p in encoder.model.parameters():
                p.requires_grad_(encoder_mode == "finetune")
        self.options = dict(dropout=dropout, attention_dim=attention_dim, n_heads=n_heads)
        self.head = make_head(head, dim, len(self.labels), model_type=encoder.config.model_type, **self.options)
        pooler = getattr(getattr(encoder.model, "pooler", None), "dense", getattr(encoder.model, "pooler", None))
        if head == "cls" and isinstance(pooler, nn.Linear) and pooler.weight.shape == self.head.dense.weight.shape:
            with torch.no_grad():   # start from the checkpoint's own pooler (BERT, ALBERT), as HF heads do
                self.head.dense.weight.copy_(pooler.weight)
                self.head.dense.bias.copy_(pooler.bias)
        self.uses_token_types = ("token_type_ids" in self.tokenizer.model_input_names
                                  and bool(getattr(encoder.config, "type_vocab_size", 0)))
        self._special_ids = sorted(set(self.tokenizer.all_special_ids))
        self.eval()

    # --- modes ------------------------------------------------------------------------------------------------

    def train(self, mode: bool = True):
        """A frozen encoder stays in eval mode (no dropout) while the head trains."""
        super().train(mode)
        if self.encoder_mode != "finetune" and self.encoder is not None:
            self.model.eval()
        return self

    # --- the forward pass -------------------------------------------------------------------------------------

    def token_vectors(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        """[B, T, D]: the hidden states of ``layer`` (or the input word embeddings for ``encoder_mode="none"``)."""
        if self.encoder is None:
            return self.embedding_layer(input_ids)
        kwargs = {}
        if token_type_ids is not None and self.uses_token_types:
            kwargs["token_type_ids"] = token_type_ids
        last = self.layer == self.source.num_layers
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=not last,
                         return_dict=True, **kwargs)
        return out.last_hidden_state if last else out.hidden_states[self.layer]

    def units(self, input_ids, attention_mask, token_type_ids=None, word_ids=None):
        """(unit vectors [B, U, D], mask [B, U], [CLS] vector [B, D])."""
        hs = self.token_vectors(input_ids, attention_mask, token_type_ids)
        if word_ids is None:
            word_ids = token_unit_ids(input_ids, attention_mask, self._special_ids)
        units, mask = units_from_tokens(hs, word_ids.to(hs.device))
        return units, mask, hs[:, 0]

    def forward_with_weights(self, input_ids, attention_mask, token_type_ids=None, word_ids=None, words=None):
        """(logits [B, C], pooling weights [B, U] or None, extra): extra has ``pooled``, ``mask`` [B, U] and, for
        the max head, ``argmax`` [B, D] (the unit that won each dimension); ``attention-multi`` adds
        ``head_weights`` [B, K, U]. ``words`` (from :meth:`encode`) is accepted and ignored."""
        units, mask, cls = self.units(input_ids, attention_mask, token_type_ids, word_ids)
        logits, weights, extra = self.head(units, mask, cls)
        extra["mask"] = mask
        return logits, weights, extra

    def forward(self, input_ids, attention_mask, token_type_ids=None, word_ids=None):
        return self.forward_with_weights(input_ids, attention_mask, token_type_ids, word_ids)[0]

    # --- inputs -----------------------------------------------------------------------------------------------

    def encode(self, examples: Sequence[Example], *, warn: bool = True) -> dict:
        """Padded tensors for ``examples`` (on the classifier's device): ``input_ids``, ``attention_mask``,
        ``token_type_ids`` (models that use them), ``word_ids``, and ``words``: the units of each example (its
        words, or sub-tokens at token level), indexed as ``word_ids`` and the pooling weights are."""
        return self.collate(self.tokenize(examples, warn=warn))

    def tokenize(self, examples: Sequence[Example], *, warn: bool = True) -> list:
        """``core.extraction.Encoded`` inputs at this classifier's level and max length (long inputs are
        truncated, counted and warned about once)."""
        from probekit.core.extraction import encode_examples

        return encode_examples(self.source, list(examples), max_length=self.max_length, level=self.level,
                               warn=warn)

    def collate(self, encoded: Sequence) -> dict:
        """The padded batch of :meth:`encode` from already tokenised inputs."""
        T = max(e.length for e in encoded)
        B = len(encoded)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((B, T), pad, dtype=torch.long)
        mask = torch.zeros((B, T), dtype=torch.long)
        tt = torch.zeros((B, T), dtype=torch.long)
        wid = torch.full((B, T), -1, dtype=torch.long)
        words: list[list[str]] = []
        for b, e in enumerate(encoded):
            n = e.length
            ids[b, :n] = torch.tensor(e.input_ids)
            mask[b, :n] = 1
            if e.token_type_ids is not None:
                tt[b, :n] = torch.tensor(e.token_type_ids)
            token_word, units = unit_layout(e.alignment, self.level)
            wid[b, :n] = torch.from_numpy(token_word)
            words.append(units)
        batch = {"input_ids": ids, "attention_mask": mask}
        if self.uses_token_types:
            batch["token_type_ids"] = tt
        batch["word_ids"] = wid
        batch = {k: v.to(self.device) for k, v in batch.items()}
        batch["words"] = words
        return batch


def unit_layout(alignment, level: str) -> tuple[np.ndarray, list[str]]:
    """(unit of every token, -1 for specials [T]; the units' strings in unit order) of one alignment."""
    al = alignment
    unit_word = al.word_ids[al.token_unit]                    # word index of each token, -1 for specials
    if level == "token":
        real = ~al.special[al.token_unit]
        token_word = np.where(real, np.cumsum(real) - 1, -1)
        return token_word.astype(np.int64), [al.units[u] for u in range(al.n_units) if not al.special[u]]
    n = int(al.word_ids.max()) + 1 if len(al.word_ids) and al.word_ids.max() >= 0 else 0
    names = [""] * n
    for u in range(al.n_units):
        if not al.special[u]:
            names[int(al.word_ids[u])] = al.units[u]
    return unit_word.astype(np.int64), names
