"""Test-time perturbations of single-text and pair classifier inputs (:class:`~probekit.core.examples.Example`).

- **Word shuffle**: the words of each segment in a uniformly random order (a pair's two sentences stay apart).
- **Appended distractor**: the words of another example, one whose gold label differs (drawn uniformly among
  them), shuffled and appended to the end of the input (to the second sentence of a pair).
  Both work on whitespace-separated words (punctuation attached), so they do not depend on the classifier; an
  example given as ``text`` stays text.
- **Key-word attacks**: delete, or replace by the tokenizer's mask token (``[UNK]`` when it has none), the top
  k % of the words by an attribution score, against the same number of words drawn at random. The words are the
  classifier's own (the units ``pk.attribute`` scores: the tokenizer's pre-tokenisation for text); deletion is
  :func:`probekit.attribution.occlusion.without_word` applied word by word, so the text is re-tokenised exactly as
  occlusion re-tokenises it. **Rounding**: k % of n words is ``ceil(k · n / 100)``, at least one word and at most
  n; ties in the score keep the earlier word. Deleting every word leaves ``[CLS] [SEP]``, as in occlusion.
  Words that ``pk.attribute`` left out because the classifier's length limit cut them are not in the attacked
  input either (the model never saw them).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np
import torch

from probekit.attribution.occlusion import empty_input, without_word
from probekit.attribution.words import model_inputs
from probekit.core.examples import Example
from probekit.attacks.base import Attack, register, transform

OPERATIONS = ("delete", "mask")
SELECTIONS = ("top", "random")


def n_selected(k: float, n: int) -> int:
    """How many of ``n`` words are k %: ``ceil(k·n/100)`` (a tolerance keeps 10 % of 20 at 2), within 1…n."""
    if n <= 0:
        return 0
    return int(min(n, max(1, math.ceil(k * n / 100.0 - 1e-9))))


def top_indices(scores: Sequence[float], m: int) -> np.ndarray:
    """Indices of the ``m`` highest scores (ties: the earlier word first), sorted by position."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return np.sort(order[:m])


def random_indices(n: int, m: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, size=m, replace=False)) if m else np.zeros(0, dtype=np.int64)


def mask_token(tokenizer) -> str:
    return tokenizer.mask_token or tokenizer.unk_token or "[UNK]"


def _segments(example: Example, words: list[str]):
    if example.words is not None:
        return list(example.words), list(example.words_b or [])
    return list(words), []


def delete_words(example: Example, words: list[str], indices) -> Example:
    """``example`` without the words at ``indices`` (counted over both segments), as occlusion deletes one."""
    out = example
    for i in sorted({int(i) for i in indices}, reverse=True):   # from the end: earlier indices stay valid
        out = without_word(out, words, i)
    if out is example:                                           # nothing deleted: a copy, as words
        a, b = _segments(example, words)
        out = Example(words=a, words_b=b if example.words_b is not None else None, meta=dict(example.meta))
    return out


def mask_words(example: Example, words: list[str], indices, token: str) -> Example:
    """``example`` with the words at ``indices`` replaced by ``token`` (the segments of a pair kept)."""
    a, b = _segments(example, words)
    for i in indices:
        i = int(i)
        if i < len(a):
            a[i] = token
        else:
            b[i - len(a)] = token
    return Example(words=a, words_b=b if example.words_b is not None else None, meta=dict(example.meta))


def keyword_variant(example: Example, words: list[str], indices, operation: str, token: str) -> Example:
    return delete_words(example, words, indices) if operation == "delete" else \
        mask_words(example, words, indices, token)


# --- classifier-independent perturbations --------------------------------------------------------------------

def _shuffle(ws: list[str], rng: np.random.Generator) -> list[str]:
    return [ws[i] for i in rng.permutation(len(ws))]


def _all_words(ex: Example) -> list[str]:
    return list(ex.words) + list(ex.words_b or []) if ex.words is not None else ex.text.split()


def _rebuild(ex: Example, a: list[str], b: list[str] | None, attack: str) -> Example:
    meta = {**ex.meta, "attack": attack}
    if ex.words is None:
        return Example(words=None, text=" ".join(a), meta=meta)
    return Example(words=a, words_b=b, meta=meta)


def word_shuffle(examples: Sequence[Example], seed: int = 0) -> list[Example]:
    """Every example with the words of each segment shuffled (one generator seeded with ``seed``)."""
    rng = np.random.default_rng(seed)
    out = []
    for ex in examples:
        if ex.words is None:
            out.append(_rebuild(ex, _shuffle(ex.text.split(), rng), None, "word-shuffle"))
        else:
            b = None if ex.words_b is None else _shuffle(list(ex.words_b), rng)
            out.append(_rebuild(ex, _shuffle(list(ex.words), rng), b, "word-shuffle"))
    return out


def append_distractor(examples: Sequence[Example], seed: int = 0) -> list[Example]:
    """Every example with the shuffled words of an example of another gold label appended (to the last segment).
    An example whose label no other example lacks is left as it is (``meta["attack"]`` says ``none``)."""
    rng = np.random.default_rng(seed)
    labels = np.array([str(ex.meta.get("label")) for ex in examples])
    out = []
    for i, ex in enumerate(examples):
        others = np.flatnonzero(labels != labels[i])
        if not len(others):
            out.append(dataclasses.replace(ex, meta={**ex.meta, "attack": "none"}))
            continue
        j = int(others[rng.integers(len(others))])
        extra = _shuffle(_all_words(examples[j]), rng)
        if ex.words is None:
            out.append(_rebuild(ex, ex.text.split() + extra, None, "distractor"))
        elif ex.words_b is not None:
            out.append(_rebuild(ex, list(ex.words), list(ex.words_b) + extra, "distractor"))
        else:
            out.append(_rebuild(ex, list(ex.words) + extra, None, "distractor"))
        out[-1].meta["distractor_from"] = j
    return out


# --- predictions -----------------------------------------------------------------------------------------------

@torch.no_grad()
def predict_ids(classifier, examples: Sequence[Example], batch_size: int = 32) -> np.ndarray:
    """The predicted class index of every example; an example left without words is ``[CLS] [SEP]``."""
    examples = list(examples)
    pred = np.zeros(len(examples), dtype=np.int64)
    empty = [j for j, e in enumerate(examples) if not (e.words or e.words_b or (e.text or "").strip())]
    full = [j for j in range(len(examples)) if j not in set(empty)]
    was = classifier.training
    classifier.eval()
    try:
        full.sort(key=lambda j: len(_all_words(examples[j])))       # similar lengths share a batch
        for start in range(0, len(full), batch_size):
            rows = full[start:start + batch_size]
            batch = classifier.encode([examples[j] for j in rows], warn=False)
            pred[rows] = classifier(**model_inputs(batch)).argmax(-1).cpu().numpy()
        if empty:
            pred[empty] = int(classifier(**empty_input(classifier)).argmax(-1)[0])
    finally:
        classifier.train(was)
    return pred


def write_jsonl(examples: Sequence[Example], path) -> "Path":
    """Examples as the JSON Lines ``probekit.classify`` reads (``text`` or ``words``, ``words_b``, ``label``;
    ``attack`` and the original ``source`` kept). Examples left without words cannot be read back and are
    skipped (deleting the one word of a one-word text)."""
    import json
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for ex in examples:
            if not (ex.words or (ex.text or "").strip()):
                continue
            obj = {"text": ex.text} if ex.words is None else {"words": list(ex.words)}
            if ex.words_b is not None:
                if not ex.words_b:
                    continue
                obj["words_b"] = list(ex.words_b)
            obj["label"] = ex.meta.get("label")
            for key in ("id", "attack", "source"):
                if key in ex.meta:
                    obj["original_source" if key == "source" else key] = ex.meta[key]
            f.write(json.dumps(obj, ensure_ascii=False) + "\n")
    return path


# --- the registered attacks of single-text classifiers (probekit.attacks.base), in the table's order ------------

transform("word-shuffle", word_shuffle, summary="the words of each text (each text of a pair) in a seeded random "
                                                "order")
transform("distractor", append_distractor, summary="the shuffled words of an example of another label appended")


class _KeyWord(Attack):
    kind = "keyword"
    random = True          # the random-words control is drawn; the top words are not
    paper = "key-word attacks: the top-k % words by an attribution method against k % random words"


@register
class DeleteWords(_KeyWord):
    name = operation = "delete"
    summary = "the top-k % words by the attribution method deleted (against k % random words)"


@register
class MaskWords(_KeyWord):
    name = operation = "mask"
    summary = "the top-k % words by the attribution method replaced by the mask token (against k % random words)"
