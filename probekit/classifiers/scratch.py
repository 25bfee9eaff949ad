"""Encoders trained from scratch, the models the attention-faithfulness papers made their findings on.

- ``lstm``: a bidirectional LSTM over the unit embeddings (Jain & Wallace §3: embedding 300, hidden 128 per
  direction; Wiegreffe & Pinter use the same model);
- ``cnn``: one Conv1D (kernel 3, ReLU, zero-padded so every unit has an output) over the embeddings (the
  allenwind posts' character CNN: embedding 128, 128 filters);
- ``average``: a per-unit Linear + tanh, no context (Jain & Wallace's and Wiegreffe & Pinter's non-contextual
  baseline).

The unit vectors then go through the very pooling heads of :mod:`probekit.classifiers.pooling` (attention, max,
mean), so every analysis sees the interface of :class:`~probekit.classifiers.model.Classifier`: ``encode`` gives
``input_ids`` (vocabulary ids, no special tokens), ``attention_mask``, ``word_ids`` (unit index, -1 off the
units) and ``words``; ``forward_with_weights``, ``units`` and ``embedding_layer`` (whose padding row, all 0, is
the integrated-gradients baseline) behave the same. ``level`` is always "word": a unit is a word or a character
(``units``).

Pairs are encoded as Jain & Wallace encode SNLI: premise and hypothesis run through the encoder separately; the
hypothesis summary q (the last state of each LSTM direction; the max over units for CNN and average) is appended
to every premise unit, so the units are [h_t; q] over the premise only. The attention score vᵀtanh(W[h_t; q]) is
then their additive attention with the hypothesis as query, and the pooled vector is [Σ α_t h_t; q], the pair of
vectors their decoder reads.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Sequence

import numpy as np
import torch
from torch import nn

from probekit.core.errors import UserError
from probekit.core.examples import Example
from probekit.classifiers.pooling import HEADS, make_head
from probekit.classifiers.model import LabelledModel
from probekit.classifiers.vocab import Vocabulary, example_units

ENCODERS = ("lstm", "cnn", "average")
#: per encoder: embedding size, hidden size (Jain & Wallace for lstm/average, allenwind for cnn)
SIZES = {"lstm": (300, 128), "cnn": (128, 128), "average": (300, 128)}
SCRATCH_HEADS = tuple(h for h in HEADS if h != "cls")


@dataclass
class ScratchEncoded:
    """One example as vocabulary ids; ``words`` are its units as the user wrote them."""

    input_ids: list[int]
    token_type_ids: list[int] | None
    words: list[str]
    truncated: bool

    @property
    def length(self) -> int:
        return len(self.input_ids)


class ScratchSource:
    """What run records say about the encoder (``report.rundir.model_record``): there is no checkpoint."""

    num_heads = 0

    def __init__(self, clf: "ScratchClassifier"):
        self.name = f"scratch-{clf.encoder_mode}"
        self.source = "trained from scratch"
        self.config = SimpleNamespace(model_type=clf.encoder_mode)
        self.num_layers = 1 if clf.encoder_mode in ("lstm", "cnn") else 0
        self.hidden_size = clf.unit_dim
        self.max_length = clf.max_length

    def fingerprint(self) -> str:
        return "none"


class ScratchClassifier(LabelledModel):
    """Embedding → encoder (lstm, cnn, average) → pooling head; see the module docstring."""

    encoder = None          # no transformer: attention-cls/rollout do not apply, features are computed live
    retrains_whole = True   # Wiegreffe & Pinter's retrainings train the whole model (scratch_train.retrain)
    layer = None
    level = "word"

    def __init__(self, vocab: Vocabulary, labels: Sequence[str], *, encoder: str = "lstm", head: str = "attention",
                 embedding_dim: int | None = None, hidden_dim: int | None = None, dropout: float = 0.0,
                 attention_dim: int = 128, n_heads: int = 4, max_length: int = 512, pairs: bool = False):
        super().__init__()
        if encoder not in ENCODERS or head not in SCRATCH_HEADS:
            raise ValueError(f"encoder must be one of {ENCODERS}, head one of {SCRATCH_HEADS}")
        e_default, h_default = SIZES[encoder]
        self.vocab = self.tokenizer = vocab
        self.labels = [str(l) for l in labels]
        self.encoder_mode, self.head_type, self.units_kind = encoder, head, vocab.unit
        self.embedding_dim, self.hidden_dim = int(embedding_dim or e_default), int(hidden_dim or h_default)
        self.max_length, self.pairs = int(max_length), bool(pairs)
        self.uses_token_types = self.pairs     # the second text of a pair is marked by token_type_ids = 1
        self.embedding_layer = nn.Embedding(len(vocab), self.embedding_dim, padding_idx=0)
        self.input_dropout = nn.Dropout(dropout)
        if encoder == "lstm":
            self.rnn = nn.LSTM(self.embedding_dim, self.hidden_dim, batch_first=True, bidirectional=True)
            self.unit_dim = 2 * self.hidden_dim
        elif encoder == "cnn":
            self.conv = nn.Conv1d(self.embedding_dim, self.hidden_dim, kernel_size=3, padding=1)
            self.unit_dim = self.hidden_dim
        else:
            self.proj = nn.Linear(self.embedding_dim, self.hidden_dim)
            self.unit_dim = self.hidden_dim
        dim = self.unit_dim * (2 if self.pairs else 1)
        self.options = dict(dropout=dropout, attention_dim=attention_dim, n_heads=n_heads)
        self.head = make_head(head, dim, len(self.labels), **self.options)
        self.source = ScratchSource(self)
        self._special_ids = []
        self.eval()

    def config(self) -> dict:
        """The constructor's arguments (saved with the weights)."""
        return {"encoder": self.encoder_mode, "head": self.head_type, "embedding_dim": self.embedding_dim,
                "hidden_dim": self.hidden_dim, "max_length": self.max_length, "pairs": self.pairs, **self.options}

    # --- the forward pass -------------------------------------------------------------------------------------

    def _encode_sequence(self, emb: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(unit vectors [B, T, D], summary [B, D]) of one embedded sequence; padding rows are 0."""
        x = self.input_dropout(emb)
        lengths = mask.sum(1)
        m = mask.unsqueeze(-1).to(x.dtype)
        if self.encoder_mode == "lstm":
            out, h = self._bilstm(x, lengths.clamp(min=1))
            return out * m, h * (lengths > 0).unsqueeze(-1).to(x.dtype)
        if self.encoder_mode == "cnn":
            out = torch.relu(self.conv((x * m).transpose(1, 2))).transpose(1, 2) * m
        else:
            out = torch.tanh(self.proj(x)) * m
        return out, out.masked_fill(~mask.bool().unsqueeze(-1), 0.0).max(1).values

    def _bilstm(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The BiLSTM over right-padded rows, as a packed sequence would run it: the forward direction over the
        padded rows (padding only follows the real units), the backward one over each row reversed within its
        length, so neither reads padding before a real unit. (outputs [B, T, 2H], last states [B, 2H].) Padded
        tensors take torch's fused CPU kernel, which a packed sequence of unequal lengths cannot: 1.7× less CPU
        per BiLSTM forward and backward, equal to float rounding (``scripts/bench_scratch.py``)."""
        r, B = self.rnn, x.shape[0]
        zeros = (x.new_zeros(1, B, r.hidden_size), x.new_zeros(1, B, r.hidden_size))

        def run(inp, suffix):
            w = [getattr(r, f"{k}_l0{suffix}") for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            return torch.lstm(inp, zeros, w, True, 1, 0.0, self.training, False, True)[0]

        pos = torch.arange(x.shape[1], device=x.device)
        inside = pos < lengths.unsqueeze(1)
        rev = torch.where(inside, (lengths.unsqueeze(1) - 1 - pos).clamp(min=0), pos)   # reverse within length
        rev = rev.unsqueeze(-1)
        fwd = run(x, "")
        bwd_rev = run(torch.gather(x, 1, rev.expand(-1, -1, x.shape[2])), "_reverse")
        bwd = torch.gather(bwd_rev, 1, rev.expand(-1, -1, bwd_rev.shape[2]))
        last = (lengths - 1).view(B, 1, 1).expand(-1, 1, fwd.shape[2])
        h = torch.cat([fwd.gather(1, last)[:, 0], bwd_rev.gather(1, last)[:, 0]], -1)
        return torch.cat([fwd, bwd], -1), h

    def units(self, input_ids, attention_mask, token_type_ids=None, word_ids=None):
        """(unit vectors [B, U, D], mask [B, U], zeros [B, D]): the encoder's outputs at the units (premise units
        of a pair, each with the hypothesis summary appended); there is no [CLS] vector (zeros stand in)."""
        emb = self.embedding_layer(input_ids)
        real = attention_mask.bool()
        if not self.pairs:
            out, _ = self._encode_sequence(emb, real)
            return out, real & (word_ids >= 0 if word_ids is not None else real), out.new_zeros(out.shape[0], out.shape[2])
        second = token_type_ids.bool() & real if token_type_ids is not None else torch.zeros_like(real)
        first = real & ~second
        na = first.sum(1)
        T = max(int(na.max()) if na.numel() else 0, 1)
        # the premise is the start of every row; the hypothesis follows it: shift it to the start of its own rows
        nb = second.sum(1)
        pos = torch.arange(emb.shape[1], device=emb.device)
        idx_b = (na.unsqueeze(1) + pos[:max(int(nb.max()) if nb.numel() else 0, 1)]).clamp(max=emb.shape[1] - 1)
        mask_b = pos[:idx_b.shape[1]].unsqueeze(0) < nb.unsqueeze(1)
        emb_b = torch.gather(emb, 1, idx_b.unsqueeze(-1).expand(-1, -1, emb.shape[2]))
        out_a, _ = self._encode_sequence(emb[:, :T], first[:, :T])
        _, q = self._encode_sequence(emb_b, mask_b)
        units = torch.cat([out_a, q.unsqueeze(1).expand(-1, T, -1) * first[:, :T].unsqueeze(-1)], -1)
        return units, first[:, :T], units.new_zeros(units.shape[0], units.shape[2])

    def forward_with_weights(self, input_ids, attention_mask, token_type_ids=None, word_ids=None, words=None):
        """(logits [B, C], pooling weights [B, U] or None, extra) as :meth:`Classifier.forward_with_weights`."""
        units, mask, _ = self.units(input_ids, attention_mask, token_type_ids, word_ids)
        logits, weights, extra = self.head(units, mask)
        extra["mask"] = mask
        return logits, weights, extra

    def forward(self, input_ids, attention_mask, token_type_ids=None, word_ids=None):
        return self.forward_with_weights(input_ids, attention_mask, token_type_ids, word_ids)[0]

    # --- inputs -----------------------------------------------------------------------------------------------

    def tokenize(self, examples: Sequence[Example], *, warn: bool = True) -> list[ScratchEncoded]:
        """Vocabulary ids of every example's units (each text cut to ``max_length`` units, counted)."""
        out = []
        for ex in examples:
            a, b = example_units(ex, self.units_kind)
            if b is not None and not self.pairs:
                raise UserError(f"{ex.meta.get('source', 'an example')}: a pair (text_b), but this classifier "
                                f"was trained on single texts")
            if self.pairs and b is None:
                b = []
            cut = len(a) > self.max_length or (b is not None and len(b) > self.max_length)
            a, b = a[:self.max_length], None if b is None else b[:self.max_length]
            ids = self.vocab.ids(a) + (self.vocab.ids(b) if b is not None else [])
            tt = [0] * len(a) + [1] * len(b) if b is not None else None
            out.append(ScratchEncoded(ids, tt, a, cut))
        n = sum(e.truncated for e in out)
        if warn and n:
            import sys

            print(f"probekit: warning: {n} of {len(out)} inputs were cut to {self.max_length} units",
                  file=sys.stderr)
        return out

    def collate(self, encoded: Sequence[ScratchEncoded]) -> dict:
        T = max(max((e.length for e in encoded), default=1), 1)
        B = len(encoded)
        ids = torch.zeros((B, T), dtype=torch.long)
        mask = torch.zeros((B, T), dtype=torch.long)
        tt = torch.zeros((B, T), dtype=torch.long)
        wid = torch.full((B, T), -1, dtype=torch.long)
        for b, e in enumerate(encoded):
            n, na = e.length, len(e.words)
            if n:
                ids[b, :n] = torch.tensor(e.input_ids)
                mask[b, :n] = 1
            if e.token_type_ids is not None and n:
                tt[b, :n] = torch.tensor(e.token_type_ids)
            wid[b, :na] = torch.arange(na)
        batch = {"input_ids": ids, "attention_mask": mask}
        if self.pairs:
            batch["token_type_ids"] = tt
        batch["word_ids"] = wid
        batch = {k: v.to(self.device) for k, v in batch.items()}
        batch["words"] = [list(e.words) for e in encoded]
        return batch

    def encode(self, examples: Sequence[Example], *, warn: bool = True) -> dict:
        return self.collate(self.tokenize(examples, warn=warn))

    def embedding_view(self) -> "EmbeddingView":
        """The input embeddings as unit vectors (premise units of a pair), tokenised as this classifier."""
        return EmbeddingView(self)

    def load_embeddings(self, table: np.ndarray) -> None:
        with torch.no_grad():
            self.embedding_layer.weight.copy_(torch.from_numpy(table))


class EmbeddingView(nn.Module):
    """The input unit embeddings of a :class:`ScratchClassifier` as unit vectors (no encoder), for analyses that
    read word embeddings (Wiegreffe & Pinter's diagnostic MLP); tokenises exactly as the classifier does."""

    encoder = None

    def __init__(self, clf: ScratchClassifier):
        super().__init__()
        self.clf = clf
        self.head = SimpleNamespace(dim=clf.embedding_dim)
        self.tokenize, self.collate = clf.tokenize, clf.collate

    def units(self, input_ids, attention_mask, token_type_ids=None, word_ids=None):
        mask = attention_mask.bool() & (word_ids >= 0)
        T = max(int(mask.sum(1).max()) if mask.numel() else 0, 1)
        emb = self.clf.embedding_layer(input_ids)[:, :T] * mask[:, :T].unsqueeze(-1)
        return emb, mask[:, :T], emb.new_zeros(emb.shape[0], emb.shape[2])
