"""Sub-token → word alignment from the fast tokenizer's word ids and offsets.

Each encoded input becomes a list of *units*: every word is one unit, every special token is a pseudo-word
of its own (``[CLS] w1 … wn [SEP]``). Alignment is expressed as small matrices so that pooling hidden states
and converting attention are one batched matmul each (Clark et al. §4.1):

- hidden state of a word = first / mean / last of its pieces      → ``pool``  [U, T]
- attention FROM a word = mean (or first) of its pieces' rows    → ``from_`` [U, T]
- attention TO a word   = sum of its pieces' columns              → ``to``    [T, U]

so word attention = from_ @ A @ to, and every row still sums to 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

POOLINGS = ("first", "mean", "last")
ATTENTION_FROM = ("mean", "first")


@dataclass
class Alignment:
    """Units of one encoded input and the unit each token belongs to."""

    units: list[str]
    special: np.ndarray      # bool [U]
    word_ids: np.ndarray     # int [U]: word index in the example (words_b continue after A); -1 for specials
    token_unit: np.ndarray   # int [T]: unit of each token

    @property
    def n_units(self) -> int:
        return len(self.units)

    @property
    def n_tokens(self) -> int:
        return len(self.token_unit)

    @property
    def is_identity(self) -> bool:
        """True when every unit is one token: word level then *is* token level, nothing to convert."""
        return self.n_units == self.n_tokens

    def matrices(self, pooling: str = "mean", attention_from: str = "mean"):
        """(pool [U,T], from_ [U,T], to [T,U]) of this input alone, as float32 torch tensors."""
        import torch

        pool, frm, to = alignment_matrices([self], self.n_tokens, pooling, attention_from,
                                           want_hidden=True, want_attention=True)
        return torch.from_numpy(pool[0]), torch.from_numpy(frm[0]), torch.from_numpy(to[0])


def align_encoding(encoding, tokens: list[str], words_a: list[str] | None, words_b: list[str] | None,
                   text: str | None, replaced: dict[tuple[int, int], str] | None = None) -> Alignment:
    """Alignment of one ``tokenizers.Encoding`` (``batch.encodings[i]``).

    With pre-split words, a token's word is ``(sequence id, word id)``; with raw text the tokenizer's
    pre-tokenisation defines the words and their strings come from the character offsets. ``replaced`` maps
    character spans of ``text`` that stand in for another word (the unknown token in place of a word that
    became no token) to that word, so the unit keeps the user's string.
    """
    seq_ids = encoding.sequence_ids
    word_ids = encoding.word_ids
    offsets = encoding.offsets
    n_a = len(words_a) if words_a is not None else 0
    units: list[str] = []
    special: list[bool] = []
    unit_word: list[int] = []
    token_unit = np.empty(len(tokens), dtype=np.int64)
    key_to_unit: dict[tuple[int, int], int] = {}
    spans: dict[int, list[int]] = {}
    for t, (seq, wid) in enumerate(zip(seq_ids, word_ids)):
        if wid is None or seq is None:
            token_unit[t] = len(units)
            units.append(tokens[t])
            special.append(True)
            unit_word.append(-1)
            continue
        key = (seq, wid)
        if key not in key_to_unit:
            key_to_unit[key] = len(units)
            global_word = wid + (n_a if seq == 1 else 0)
            if words_a is not None:
                word = (words_b if seq == 1 else words_a)[wid]
            else:
                word = ""
            units.append(word)
            special.append(False)
            unit_word.append(global_word)
        u = key_to_unit[key]
        token_unit[t] = u
        spans.setdefault(u, []).append(t)
    if words_a is None and text is not None:
        for u, toks in spans.items():
            start = min(offsets[t][0] for t in toks)
            end = max(offsets[t][1] for t in toks)
            units[u] = (replaced or {}).get((start, end), text[start:end])
    return Alignment(units=units, special=np.array(special, dtype=bool),
                     word_ids=np.array(unit_word, dtype=np.int64), token_unit=token_unit)


def token_alignment(tokens: list[str], special_mask: list[int]) -> Alignment:
    """The identity alignment: every token is its own unit (``level="token"``)."""
    n = len(tokens)
    special = np.array(special_mask, dtype=bool)
    return Alignment(units=list(tokens), special=special,
                     word_ids=np.where(special, -1, np.arange(n)), token_unit=np.arange(n))


def alignment_matrices(aligns: list[Alignment], n_tokens: int, pooling: str = "mean",
                       attention_from: str = "mean", want_hidden: bool = True, want_attention: bool = False):
    """Batched ``pool`` [B,U,T], ``from_`` [B,U,T] and ``to`` [B,T,U] as float32 numpy arrays (zero-padded).

    Padding tokens belong to no unit, so they drop out of every pooled vector and attention sum.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}")
    if attention_from not in ATTENTION_FROM:
        raise ValueError(f"attention_from must be one of {ATTENTION_FROM}")
    B = len(aligns)
    U = max(a.n_units for a in aligns)
    pool = np.zeros((B, U, n_tokens), dtype=np.float32) if want_hidden else None
    frm = np.zeros((B, U, n_tokens), dtype=np.float32) if want_attention else None
    to = np.zeros((B, n_tokens, U), dtype=np.float32) if want_attention else None
    for b, a in enumerate(aligns):
        tu = a.token_unit
        t_idx = np.arange(len(tu))
        counts = np.bincount(tu, minlength=a.n_units).astype(np.float32)
        first = np.full(a.n_units, -1)
        last = np.full(a.n_units, -1)
        for t in range(len(tu) - 1, -1, -1):
            first[tu[t]] = t
        for t in range(len(tu)):
            last[tu[t]] = t
        if want_hidden:
            if pooling == "mean":
                pool[b, tu, t_idx] = 1.0 / counts[tu]
            elif pooling == "first":
                pool[b, np.arange(a.n_units), first] = 1.0
            else:
                pool[b, np.arange(a.n_units), last] = 1.0
        if want_attention:
            if attention_from == "mean":
                frm[b, tu, t_idx] = 1.0 / counts[tu]
            else:
                frm[b, np.arange(a.n_units), first] = 1.0
            to[b, t_idx, tu] = 1.0
    return pool, frm, to
