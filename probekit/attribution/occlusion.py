"""Occlusion (leave one word out): delete the word from the input, re-tokenise, and report how much the
target class's probability drops, p(x) − p(x without the word). Positive: the word supported the target.

The word is removed from the text itself (not masked or replaced by [PAD]), as Jain & Wallace's
``remove_and_run`` does, so the remaining words are re-encoded: from each word's cached token pieces where the
tokenizer gives the same ids that way (``pieces.py``), by the tokenizer otherwise. Deleting the only word leaves
``[CLS] [SEP]``. In a pair the word is removed from its own segment. Variants run grouped by token count, each
distinct input once (:func:`class_distributions`), which ERASER shares with its own deletions.
"""
from __future__ import annotations

import contextlib
import hashlib
from contextvars import ContextVar

import numpy as np
import torch

from probekit.core.examples import Example
from probekit.attribution.base import AttributionMethod
from probekit.attribution.pieces import Pieces
from probekit.attribution.registry import register
from probekit.attribution.words import model_inputs

#: Assemble deletion variants from cached word pieces where the tokenizer allows it (False: re-tokenise each).
ASSEMBLE = True


def without_word(example: Example, words: list[str], i: int) -> Example:
    """``example`` with its ``i``-th word (counted over both segments of a pair) deleted.

    ``words`` are the units the classifier scored. When they split the example's pre-split first text further
    (characters or CJK runs of an encoder trained with ``--units char|auto``: same characters, other
    boundaries), the unit is deleted from them, and a pair's second text is kept as given."""
    if example.words is not None:                 # pre-split (pairs always are): delete from the example's own words
        a, b = list(example.words), list(example.words_b or [])
        words = list(words)
        if words not in (a, a + b) and "".join(words) == "".join(a):
            a = words
    else:                                         # text: the words the tokenizer's pre-tokenisation found
        a, b = list(words), []
    n_a = len(a)
    if i < n_a:
        del a[i]
    else:
        del b[i - n_a]
    return Example(words=a, words_b=b if example.words_b is not None else None, meta=dict(example.meta))


def empty_input(classifier) -> dict:
    enc = classifier.tokenizer("", return_tensors="pt")
    batch = {k: v.to(classifier.device) for k, v in enc.items() if k in ("input_ids", "attention_mask",
                                                                          "token_type_ids")}
    if "token_type_ids" in batch and not classifier.uses_token_types:
        del batch["token_type_ids"]
    batch["word_ids"] = torch.full_like(batch["input_ids"], -1)
    return batch


#: Tokens (rows × length) one forward pass of deletion variants may hold; rows of a pass share their length.
VARIANT_TOKENS = 8192
#: Variants encoded per tokenizer / piece-assembly call, and per window grouped by length (memory stays flat).
ENCODE_ROWS, WINDOW_ROWS = 512, 8192
_SHARED: ContextVar[dict | None] = ContextVar("probekit_shared_variants", default=None)


@contextlib.contextmanager
def shared_variants():
    """Inside the block the inputs of every ``class_distributions(..., share=True)`` call (occlusion's) are
    remembered per classifier, and every call (ERASER's too) reads them: such an input is never run again."""
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def by_characters(examples) -> tuple[list[int], list[int]]:
    """(indices of the examples with words, fewest characters first; indices of those without any)."""
    def size(e):
        words = (e.words or []) + (e.words_b or [])
        return sum(len(w) + 1 for w in words) if words else len((e.text or "").strip())

    sizes = [size(e) for e in examples]
    return (sorted((j for j in range(len(examples)) if sizes[j] > 0), key=lambda j: sizes[j]),
            [j for j in range(len(examples)) if sizes[j] == 0])


def class_distributions(classifier, examples, batch_size: int, *, desc: str | None = None,
                        pieces: Pieces | None = None, share: bool = False) -> np.ndarray:
    """Class probabilities [N, C] of every example under inference mode; an example without words is
    ``[CLS] [SEP]``. Inputs are encoded and grouped by token count a window at a time and run with no padding (a
    pass holds rows of one length, up to ``VARIANT_TOKENS`` tokens and at least ``batch_size`` rows); identical
    inputs run once (key: a digest of the ids, types and word ids), across calls too inside
    :func:`shared_variants` (``share``: remember this call's). Rows differ from a padded batch's only by float
    rounding. ``desc`` names a progress bar, shown for long runs; ``pieces`` a word-piece cache to reuse across
    calls (the variants of one run share their words). Occlusion, Jain & Wallace's leave-one-out and ERASER's
    erasures all re-run the classifier this way."""
    from probekit.core.progress import progress

    out = np.zeros((len(examples), classifier.n_classes))
    full, empty = by_characters(examples)
    bar = progress(total=len(full), desc=desc, unit="input") if desc and len(full) > 4 * batch_size else None
    encode = (pieces or Pieces(classifier)).encode if ASSEMBLE and hasattr(classifier, "tokenize") else \
        (lambda chunk: classifier.encode(chunk, warn=False))
    shared = _SHARED.get()
    shared = None if shared is None else shared.setdefault(id(classifier), {})
    seen: dict[bytes, np.ndarray] = {}
    with torch.inference_mode():
        for start in range(0, len(full), WINDOW_ROWS):
            _window(classifier, [(j, examples[j]) for j in full[start:start + WINDOW_ROWS]], encode, batch_size,
                    out, seen, shared, bar)
        if empty:
            out[empty] = torch.softmax(classifier(**empty_input(classifier)).float(), -1).cpu().numpy()[0]
    if share and shared is not None:
        shared.update(seen)
    if bar is not None:
        bar.close()
    return out


def _window(classifier, items, encode, batch_size: int, out, seen: dict, shared: dict | None, bar) -> None:
    """Encode ``items`` ((index, example) pairs), look each input up, run the new ones by token count."""
    waiting: dict[bytes, list[int]] = {}
    groups: dict[int, list] = {}
    known = 0
    for start in range(0, len(items), ENCODE_ROWS):
        chunk = items[start:start + ENCODE_ROWS]
        batch = model_inputs(encode([e for _, e in chunk]))
        lengths = batch["attention_mask"].sum(1).tolist()
        for b, ((j, _), L) in enumerate(zip(chunk, lengths)):
            row = {k: v[b, :L] for k, v in batch.items()}
            key = hashlib.blake2b(b"".join(v.cpu().numpy().tobytes() for v in row.values()), digest_size=16).digest()
            hit = seen.get(key)
            if hit is None and shared is not None:
                hit = shared.get(key)
            if hit is not None:
                out[j] = hit
                known += 1
            elif key in waiting:
                waiting[key].append(j)
            else:
                waiting[key] = [j]
                groups.setdefault(L, []).append((key, row))
    if bar is not None:
        bar.update(known)
    for L in sorted(groups):
        group, step = groups[L], max(batch_size, VARIANT_TOKENS // max(L, 1))
        for start in range(0, len(group), step):
            part = group[start:start + step]
            inputs = {k: torch.stack([r[k] for _, r in part]) for k in part[0][1]}
            probs = torch.softmax(classifier(**inputs).float(), -1).cpu().numpy()
            for (key, _), p in zip(part, probs):
                seen[key] = p
                out[waiting[key]] = p
            if bar is not None:
                bar.update(sum(len(waiting[key]) for key, _ in part))


def probabilities(classifier, examples, target, batch_size: int, share: bool = False) -> np.ndarray:
    """p(target_i | example_i) for every example (see :func:`class_distributions`)."""
    p = class_distributions(classifier, examples, batch_size, share=share)
    return p[np.arange(len(examples)), np.asarray(target, dtype=int)] if len(examples) else np.zeros(0)


@register
class Occlusion(AttributionMethod):
    """Drop in the target probability when the word is deleted from the input."""

    name = "occlusion"
    summary = "leave one word out: p_target(x) − p_target(x without the word), re-tokenised"
    unit = "word"
    signed = True
    needs = frozenset({"probabilities"})

    def attribute(self, classifier, batch, target, state):
        words = state.words if state.words is not None else batch["words"]
        examples = state.examples if state.examples is not None else [Example(words=list(w)) for w in words]
        t = target.cpu().tolist()
        p0 = state.probabilities[torch.arange(len(t)), torch.as_tensor(t)].numpy()   # p(x): the shared pass
        variants, owner = [], []
        for b, ws in enumerate(words):
            for i in range(len(ws)):
                variants.append(without_word(examples[b], ws, i))
                owner.append(b)
        p = probabilities(classifier, variants, [t[b] for b in owner], state.batch_size, share=True)
        W = max((len(w) for w in words), default=0)
        scores = torch.zeros(len(words), max(W, 1), dtype=torch.float64)
        k = 0
        for b, ws in enumerate(words):
            for i in range(len(ws)):
                scores[b, i] = p0[b] - p[k]
                k += 1
        return scores, {}


occlusion = Occlusion.fn
