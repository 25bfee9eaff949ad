"""The hook layer: one forward pass per batch gives every layer's hidden states and per-head attention,
converted to word level on the fly.

Nothing here holds a corpus of attention maps: :func:`extract` yields one :class:`Activations` per example
and analyses accumulate over them. Batches are sorted by length to cut padding; padding is masked in the
model and drops out of the alignment matrices.
"""
from __future__ import annotations

import sys
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch

from probekit.core import checks
from probekit.core.alignment import Alignment, align_encoding, token_alignment
from probekit.core.progress import progress
from probekit.core.encoder import Encoder
from probekit.core.examples import Example
from probekit.core.memory import steady_heap

SEGMENT_IDS = ("standard", "zero")
SHARDED: ContextVar = ContextVar("probekit_sharded", default=None)   # probekit.core.distributed: extract's windows
WINDOW_BATCHES = 16     # batches tokenised at a time when the corpus is tokenised in windows


class LayerAttention:
    """The attention maps of transformer layers 1…L, indexed by layer number as ``hidden`` is.

    ``attention[l]`` is layer l's ``[H, U, U]`` map (rows = from, columns = to), for l = 1…L, so
    ``hidden[l]`` is that layer's output and ``attention[l]`` the attention inside it; layer 0 (the
    embeddings) has none and raises ``IndexError``. ``attention[l, h - 1]`` is head h (heads count from 1 in
    tables, from 0 in arrays). ``.array`` is the plain ``[L, H, U, U]`` stack, where position l-1 holds layer l.
    """

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray):
        self.array = array

    @property
    def layers(self) -> range:
        return range(1, len(self.array) + 1)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    def __len__(self) -> int:
        return len(self.array)

    def _position(self, layer):
        if isinstance(layer, slice):
            if layer.step not in (None, 1):
                raise IndexError("layer slices take no step")
            start = None if layer.start is None else self._position(layer.start)
            stop = None if layer.stop is None else max(self._position(layer.stop - 1) + 1, 0)
            return slice(start, stop)
        layer = int(layer)
        if not 1 <= layer <= len(self.array):
            raise IndexError(f"layer {layer} has no attention: layers with attention are 1…{len(self.array)} "
                             f"(0 is the embedding output)")
        return layer - 1

    def __getitem__(self, key):
        if isinstance(key, tuple):
            return self.array[(self._position(key[0]),) + key[1:]]
        return self.array[self._position(key)]

    def __iter__(self):
        return iter(self.array)

    def __array__(self, dtype=None, copy=None):
        return self.array if dtype is None else self.array.astype(dtype)

    def __repr__(self) -> str:
        return f"LayerAttention(layers 1…{len(self.array)}, shape {tuple(self.array.shape)})"


@dataclass
class Activations:
    """Word-level (or token-level) activations of one example.

    ``hidden[l]`` is layer l's output (0 = embeddings … L) and ``attention[l]`` layer l's maps (1 … L): both are
    indexed by the same layer numbers, the numbers used in every table (see :class:`LayerAttention`).
    """

    index: int
    units: list[str]
    special: np.ndarray
    word_ids: np.ndarray
    hidden: np.ndarray | None = None              # [L+1, U, D]
    attention: LayerAttention | None = None       # layers 1…L, each [H, U, U]; .array is [L, H, U, U]
    no_position: np.ndarray | None = None   # [U, D_emb]: embedding output with position embeddings zeroed
    truncated: bool = False


@dataclass
class Encoded:
    """One tokenised example, ready to batch."""

    index: int
    input_ids: list[int]
    token_type_ids: list[int] | None
    alignment: Alignment
    truncated: bool

    @property
    def length(self) -> int:
        return len(self.input_ids)


def _inputs(examples: Sequence[Example]) -> list[tuple]:
    """What the tokenizer is given for each example: ("words", words, words_b) or ("text", text, text_b), the text
    with single spaces only (byte-level BPE turns runs of spaces into empty pseudo-words)."""
    out = []
    for ex in examples:
        if ex.words is not None:
            out.append(("words", list(ex.words), None if ex.words_b is None else list(ex.words_b)))
        else:
            out.append(("text", " ".join(ex.text.split()), None if ex.words_b is None else " ".join(ex.words_b)))
    return out


def _tokenize(encoder: Encoder, inputs: Sequence[tuple], max_length: int, truncation: bool) -> list[tuple]:
    """(input ids, token type ids, ``tokenizers.Encoding``) of each input, one tokenizer call per kind."""
    tok = encoder.tokenizer
    kwargs = dict(truncation=truncation, max_length=max_length if truncation else None,
                  return_token_type_ids=True, return_attention_mask=False, return_offsets_mapping=False)
    groups: dict[tuple[str, bool], list[int]] = {}
    for i, (kind, _, second) in enumerate(inputs):
        groups.setdefault((kind, second is not None), []).append(i)
    out: list = [None] * len(inputs)
    for (kind, pair), idx in groups.items():
        first = [inputs[i][1] for i in idx]
        second = [inputs[i][2] for i in idx] if pair else None
        batch = tok(first, second, is_split_into_words=kind == "words", **kwargs)
        for j, i in enumerate(idx):
            out[i] = (batch["input_ids"][j], batch.get("token_type_ids", [None] * len(idx))[j], batch.encodings[j])
    return out


def _without_empty_words(inputs: list[tuple], encodings: list[tuple], unk: str) -> dict[int, tuple]:
    """Inputs in which a word became no token at all (U+200B, a lone soft hyphen U+00AD under BERT's
    normaliser), rewritten with the unknown token in that word's place, so every word keeps one unit and the
    word indices stay those of the input. Returns {input index: (rewritten input, {span: original word})}.

    With words the alignment takes each unit's string from the original words; with text the rewritten spans
    map back to the original characters.
    """
    redo: dict[int, tuple] = {}
    for i, ((kind, first, second), (_, _, enc)) in enumerate(zip(inputs, encodings)):
        if kind == "words":
            present = {(s, w) for s, w in zip(enc.sequence_ids, enc.word_ids) if w is not None and s is not None}
            a = [unk if (0, k) not in present else w for k, w in enumerate(first)]
            b = None if second is None else [unk if (1, k) not in present else w for k, w in enumerate(second)]
            if a != first or b != second:
                redo[i] = ((kind, a, b), {})
            continue
        spans = [(s, e) for (s, e), seq in zip(enc.offsets, enc.sequence_ids) if seq == 0 and e > s]
        pieces, replaced, pos, new_pos, j, changed = [], {}, 0, 0, 0, False
        for word in first.split(" ") if first else []:
            start, end = pos, pos + len(word)
            pos = end + 1
            while j < len(spans) and spans[j][1] <= start:   # offsets run left to right: one pass
                j += 1
            if not (j < len(spans) and spans[j][0] < end):
                replaced[(new_pos, new_pos + len(unk))] = word
                word, changed = unk, True
            pieces.append(word)
            new_pos += len(word) + 1
        if changed:
            redo[i] = ((kind, " ".join(pieces), second), replaced)
    return redo


def encode_examples(encoder: Encoder, examples: Sequence[Example], *, max_length: int | None = None,
                    level: str = "word", segment_ids: str = "standard", warn: bool = True) -> list[Encoded]:
    """Tokenise and align every example; inputs longer than the model's maximum are truncated and counted.

    A word the tokenizer turns into no token is given the unknown token (one warning), never dropped.
    """
    encoded, empty, n_long = _encode(encoder, examples, max_length, level, segment_ids)
    if warn:
        _warn(encoder, examples, len(examples), empty, n_long, max_length)
    return encoded


def encode_windows(encoder: Encoder, examples: Sequence[Example], *, window: int, max_length: int | None = None,
                   level: str = "word", segment_ids: str = "standard", warn: bool = True) -> Iterator[list[Encoded]]:
    """:func:`encode_examples` ``window`` examples at a time, in input order (indices count over all of them),
    so a corpus is never held tokenised whole; the warnings count over the whole corpus, once at the end."""
    empty, n_long = [], 0
    for start in range(0, len(examples), window):
        encoded, e, n = _encode(encoder, examples[start:start + window], max_length, level, segment_ids)
        for item in encoded:
            item.index += start
        empty += [i + start for i in e]
        n_long += n
        yield encoded
    if warn:
        _warn(encoder, examples, len(examples), empty, n_long, max_length)


def _warn(encoder, examples, n, empty: list[int], n_long: int, max_length) -> None:
    if empty:
        first = examples[empty[0]].meta.get("source", f"input {empty[0] + 1}")
        print(f"probekit: warning: {len(empty)} of {n} inputs have a word that the tokenizer turns "
              f"into no token; it is read as {encoder.tokenizer.unk_token} (first: {first})", file=sys.stderr)
    if n_long:
        limit = min(max_length or encoder.max_length, encoder.max_length)
        print(f"probekit: warning: {n_long} of {n} inputs were longer than {limit} tokens "
              f"and were truncated", file=sys.stderr)


def _encode(encoder, examples, max_length, level, segment_ids) -> tuple[list[Encoded], list[int], int]:
    """(encoded examples, indices of those with a word read as the unknown token, how many were truncated)."""
    checks.max_length(max_length)
    if segment_ids not in SEGMENT_IDS:
        raise ValueError(f"segment_ids must be one of {SEGMENT_IDS}")
    limit = min(max_length or encoder.max_length, encoder.max_length)
    for ex in examples:
        if ex.words is not None and any(not isinstance(w, str) or not w or any(c.isspace() for c in w)
                                        for w in list(ex.words) + list(ex.words_b or [])):
            raise ValueError(f"words must be non-empty strings without whitespace: {ex.words!r}")
    inputs = _inputs(examples)
    full = _tokenize(encoder, inputs, limit, truncation=False)
    replaced: dict[int, dict] = {}
    unk = encoder.tokenizer.unk_token
    redo = _without_empty_words(inputs, full, unk) if unk is not None else {}
    idx = sorted(redo)
    for i in idx:
        inputs[i], replaced[i] = redo[i]
    for i, again in zip(idx, _tokenize(encoder, [inputs[i] for i in idx], limit, truncation=False)):
        full[i] = again
    long = [i for i, (ids, _, _) in enumerate(full) if len(ids) > limit]
    for i, cut in zip(long, _tokenize(encoder, [inputs[i] for i in long], limit, truncation=True)):
        full[i] = cut
    long_set = set(long)
    specials = set(encoder.tokenizer.all_special_ids)
    encoded = []
    for i, ex in enumerate(examples):
        ids, tt, enc = full[i]
        tokens = enc.tokens
        if level == "token":
            align = token_alignment(tokens, [1 if (t in specials and w is None) else 0
                                             for t, w in zip(ids, enc.word_ids)])
        else:
            align = align_encoding(enc, tokens, ex.words, ex.words_b,
                                   None if ex.text is None else inputs[i][1], replaced=replaced.get(i))
        if tt is not None and segment_ids == "zero":
            tt = [0] * len(tt)
        encoded.append(Encoded(index=i, input_ids=list(ids), token_type_ids=None if tt is None else list(tt),
                               alignment=align, truncated=i in long_set))
    return encoded, idx, len(long)


def length_batches(encoded: Sequence[Encoded], batch_size: int) -> list[list[Encoded]]:
    """Batches of similar length (longest first), so little compute goes to padding."""
    order = sorted(encoded, key=lambda e: (-e.length, e.index))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def length_windows(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """The length order in windows of ``WINDOW_BATCHES`` batches: the unit of tokenising, and of a sharded run."""
    order, step = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)), WINDOW_BATCHES * batch_size
    return [order[start:start + step] for start in range(0, len(order), step)]


def _windowed_batches(encoder: Encoder, examples: Sequence[Example], lengths: Sequence[int], batch_size: int,
                      kw: dict) -> Iterator[list[Encoded]]:
    """The batches of :func:`length_batches`, tokenising a window of the length order at a time."""
    for idx in length_windows(lengths, batch_size):
        encoded, _, _ = _encode(encoder, [examples[i] for i in idx], kw["max_length"], kw["level"],
                                kw["segment_ids"])
        for e, i in zip(encoded, idx):
            e.index = i
        yield from (encoded[b:b + batch_size] for b in range(0, len(encoded), batch_size))


def model_inputs(encoder: Encoder, batch: Sequence[Encoded]) -> dict[str, torch.Tensor]:
    """Padded tensors for one batch, with only the inputs this model accepts."""
    T = max(e.length for e in batch)
    pad_id = encoder.tokenizer.pad_token_id or 0
    ids = torch.full((len(batch), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), T), dtype=torch.long)
    tt = torch.zeros((len(batch), T), dtype=torch.long)
    for b, e in enumerate(batch):
        ids[b, :e.length] = torch.tensor(e.input_ids)
        mask[b, :e.length] = 1
        if e.token_type_ids is not None:
            tt[b, :e.length] = torch.tensor(e.token_type_ids)
    inputs = {"input_ids": ids, "attention_mask": mask}
    if "token_type_ids" in encoder.tokenizer.model_input_names and getattr(encoder.config, "type_vocab_size", 0):
        inputs["token_type_ids"] = tt
    return {k: v.to(encoder.device) for k, v in inputs.items()}


@contextmanager
def embeddings_without_positions(encoder: Encoder):
    """While active, every forward pass also computes the embedding output with position embeddings zeroed
    (Lin et al.'s layer-0 comparison); the results are appended to the yielded list.

    The embedding module is simply run a second time inside its own forward hook, with a hook on the
    position table that returns zeros, so this works for any architecture that has such a table.
    """
    captured: list[torch.Tensor] = []
    emb, pos = encoder.embeddings, encoder.position_embeddings
    if emb is None or pos is None:
        raise ValueError(f"{encoder.name} has no learned position embedding table")
    state = {"inside": False}

    def zero_positions(module, args, output):
        return torch.zeros_like(output) if state["inside"] else None

    def rerun(module, args, kwargs, output):
        if state["inside"]:
            return None
        state["inside"] = True
        try:
            captured.append(module(*args, **kwargs))
        finally:
            state["inside"] = False
        return None

    handles = [pos.register_forward_hook(zero_positions),
               emb.register_forward_hook(rerun, with_kwargs=True)]
    try:
        yield captured
    finally:
        for h in handles:
            h.remove()


def extract(encoder: Encoder, examples: Sequence[Example], *, hidden: bool = True, attention: bool = False,
            level: str = "word", pooling: str = "mean", attention_from: str = "mean", batch_size: int = 32,
            max_length: int | None = None, segment_ids: str = "standard", no_position: bool = False,
            encoded: Sequence[Encoded] | None = None, lengths: Sequence[int] | None = None,
            desc: str = "extracting", dtype: str = "float32", warn: bool = True) -> Iterator[Activations]:
    """Yield word-level (``level="word"``) or token-level activations for every example, batch by batch.

    Yields in length-sorted order; ``Activations.index`` says which example it belongs to. Arrays are each
    sentence's own block (padding cut), in ``dtype`` (the cache asks for its storage precision directly). ``warn=False``
    silences the truncation warning (for a second pass over the same inputs).

    Without ``encoded``, the corpus is tokenised in windows: once for the token counts (or not at all when the
    caller gives them as ``lengths``), then again a window of the length order at a time, so memory holds one
    window of tokenised inputs; the batches are those of :func:`length_batches` over the whole corpus.
    """
    checks.positive("batch_size", batch_size)
    if level not in ("word", "token"):
        raise ValueError("level must be 'word' or 'token'")
    if attention and not encoder.attention:
        raise ValueError("load the encoder with attention=True to extract attention")
    if encoded is not None:
        batches, total = length_batches(encoded, batch_size), len(encoded)
    else:
        kw = dict(max_length=max_length, level=level, segment_ids=segment_ids)
        if lengths is None:
            lengths = [e.length for window in encode_windows(encoder, examples, window=WINDOW_BATCHES * batch_size,
                                                             warn=warn, **kw) for e in window]
        if SHARDED.get() is not None:   # probekit.core.distributed: the same windows (so batches) on other workers
            return (yield from SHARDED.get()(encoder, examples, length_windows(lengths, batch_size), dict(
                kw, hidden=hidden, attention=attention, pooling=pooling, attention_from=attention_from, dtype=dtype,
                batch_size=batch_size, no_position=no_position), desc))
        batches, total = _windowed_batches(encoder, examples, lengths, batch_size, kw), len(lengths)
    steady_heap()   # per-batch arrays otherwise fragment glibc's heap: memory would grow with the batch count
    bar = progress(total=total, desc=desc, unit="sent")
    hook = embeddings_without_positions(encoder) if no_position else nullcontext([])
    try:
        with hook as nopos:
            for batch in batches:
                # inference mode only around the model: the caller's code between batches runs normally
                with torch.inference_mode():
                    inputs = model_inputs(encoder, batch)
                    out = encoder.model(**inputs, output_hidden_states=hidden, output_attentions=attention,
                                        return_dict=True)
                    acts = list(_to_units(batch, out, nopos, hidden, attention, level, pooling, attention_from,
                                          getattr(torch, dtype)))
                    nopos.clear()
                    del out
                yield from acts
                bar.update(len(batch))
    finally:
        bar.close()


def _to_units(batch, out, nopos, hidden, attention, level, pooling, attention_from, dtype) -> Iterator[Activations]:
    """Split one batch's outputs into per-example Activations, converting to units at the word level.

    A sentence with no split word needs no conversion (its word map is its token map); the others get two
    small matmuls of their exact size (Clark et al.'s sum-to / mean-from rule).
    """
    hs = torch.stack(out.hidden_states) if hidden else None           # [L+1, B, T, D]
    at = out.attentions if attention else None                        # L × [B, H, T, T], never stacked whole
    emb = nopos[0] if nopos else None                                 # [B, T, D]
    for b, e in enumerate(batch):
        al = e.alignment
        n = al.n_tokens
        convert = level == "word" and not al.is_identity
        if convert:
            pool, frm, to = al.matrices(pooling, attention_from)
        # each sentence's own block is converted to ``dtype``: padding never is
        h = a = p = None
        if hs is not None:
            h = (pool @ hs[:, b, :n] if convert else hs[:, b, :n]).to(dtype).numpy()
        if at is not None:
            a = torch.stack([layer[b, :, :n, :n] for layer in at])          # [L, H, n, n]
            a = (frm @ a @ to if convert else a).to(dtype).numpy()
        if emb is not None:
            p = (pool @ emb[b, :n] if convert else emb[b, :n]).to(dtype).numpy()
        yield Activations(index=e.index, units=al.units, special=al.special, word_ids=al.word_ids,
                          hidden=h, attention=None if a is None else LayerAttention(a), no_position=p,
                          truncated=e.truncated)
