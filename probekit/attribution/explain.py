"""``explain``: run attribution methods over examples and return an :class:`~.attributions.Attributions`.

The library call under ``pk.attribute`` (which adds option checks, input reading, the run record and files),
used directly by ERASER and the key-word attacks. Examples run in batches sorted by token count (little
padding; the corpus is tokenised a window at a time for the counts, keeping only the numbers) and come back in
input order. Per batch, ``state.batch_state`` does the one forward pass (and backward) the
chosen methods need; each method then turns it into scores, and ``words.py`` turns sub-token scores into
word scores by the method's word rule.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from probekit.core.errors import UserError
from probekit.core.progress import progress
from probekit.attribution import registry
from probekit.attribution.attributions import Attributions, Explanation
from probekit.attribution.base import refuse_unknown
from probekit.attribution.state import batch_state
from probekit.attribution.words import spread_to_tokens, to_words, token_positions

LEVELS = ("word", "token")


def explain(classifier, examples: Sequence, methods: Sequence[str] | str | None = None, *, target=None,
            batch_size: int = 16, level: str = "word", seed: int = 0, device: str | None = None,
            **method_options) -> Attributions:
    """Attribute ``classifier``'s decision on every Example of ``examples`` to its words (``level="token"``:
    sub-tokens), by ``methods`` (default: every default method that applies). ``target``: a label (or class
    index) to explain instead of each example's prediction; ``batch_size`` examples per batch, also the rows
    per forward pass of occlusion and the sampling methods (integrated gradients has its own ``ig_rows``); ``method_options`` are the methods' own
    options (``steps=100`` for integrated gradients …), each going to every chosen method that declares it."""
    names = registry.resolve(methods, classifier)
    classes = [registry.get_method(n) for n in names]
    refuse_unknown(method_options, classes, [registry.get_method(n) for n in registry.method_names()])
    instances = [c.build(**method_options) for c in classes]
    if level not in LEVELS:
        raise UserError(f"--level must be one of {', '.join(LEVELS)} (got {level!r})")
    examples = list(examples)
    if device is not None:
        classifier.to(device)
    labels = [str(l) for l in classifier.labels]
    target_index = target if isinstance(target, (int, np.integer)) else target_index_of(classifier, target)
    torch.manual_seed(seed)
    classifier.eval()
    needs = set().union(*(c.needs for c in classes)) if classes else set()
    order = length_order(classifier, examples, batch_size)
    out: list = [None] * len(examples)
    cut = [False] * len(examples)
    bar = progress(total=len(examples), desc="attributions", unit="example")
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        chunk = [examples[i] for i in idx]
        batch = classifier.encode(chunk, warn=False)
        word_ids, words = _word_layout(classifier, batch, chunk)
        state = batch_state(classifier, batch, needs, target_index, batch_size=batch_size, examples=chunk,
                            words=words, indices=idx, seed=seed, word_ids=word_ids)
        results = {}
        for name, m in zip(names, instances):
            scores, extra = m.attribute(classifier, batch, state.target, state)
            unit = registry.unit_of(m, classifier)
            if m.unit == "head" and unit == "token":
                scores = _head_to_tokens(scores, batch)
            results[name] = (m, unit, scores.detach().float().cpu(), extra)
        for b, (i, ex) in enumerate(zip(idx, chunk)):
            out[i] = _explanation(classifier, batch, state, b, ex, words[b], word_ids, results, level)
        for i, c in zip(idx, _truncated(classifier, batch, chunk)):
            cut[i] = c
        bar.update(len(idx))
    bar.close()
    return Attributions(out, names, level=level, signed={c.name: c.signed for c in classes}, labels=labels,
                        truncated=cut)


def length_order(classifier, examples, batch_size: int) -> list[int]:
    """Example indices by token count (ties in input order), tokenised ``WINDOW_BATCHES`` batches at a time; a
    classifier with a vocabulary of its own (an encoder from scratch) counts its own units."""
    from probekit.core.extraction import WINDOW_BATCHES, encode_windows

    if getattr(classifier.source, "tokenizer", None) is None:
        lengths = [e.length for e in classifier.tokenize(examples, warn=False)]
        return sorted(range(len(examples)), key=lambda i: (lengths[i], i))
    lengths = [e.length for window in encode_windows(classifier.source, examples, window=WINDOW_BATCHES * batch_size,
                                                      max_length=classifier.max_length, level="token", warn=False)
               for e in window]
    return sorted(range(len(examples)), key=lambda i: (lengths[i], i))


def target_index_of(classifier, target) -> int | None:
    """The class index of the label ``target`` (None stays None: each example's prediction)."""
    if target is None:
        return None
    labels = [str(l) for l in classifier.labels]
    if str(target) not in labels:
        raise UserError(f"--target {target!r} is not one of the classifier's labels: {', '.join(labels)}")
    return labels.index(str(target))


def _explanation(model, batch, state, b, example, words, word_ids, results, level) -> Explanation:
    probs, target = state.probabilities, state.target
    pred = int(probs[b].argmax())
    true = example.meta.get("label")
    n = len(words)
    pos = token_positions({"attention_mask": batch["attention_mask"], "word_ids": torch.from_numpy(word_ids)}, b)
    units = words if level == "word" else model.tokenizer.convert_ids_to_tokens(batch["input_ids"][b, pos].tolist())
    scores, delta, flagged = {}, {}, {}
    for name, (m, unit, s, extra) in results.items():
        if level == "word":
            vals = s[b, :n].numpy().astype(np.float64) if unit == "word" else to_words(s[b], word_ids[b], n,
                                                                                          m.word_rule)
        else:
            vals = spread_to_tokens(s[b, :n].numpy(), word_ids[b], pos) if unit == "word" else \
                s[b, pos].numpy().astype(np.float64)
        scores[name] = np.asarray(vals, dtype=np.float64)[:len(units)]
        if "delta" in extra:
            delta[name] = float(extra["delta"][b])
        if "flagged" in extra:
            flagged[name] = bool(extra["flagged"][b])
    return Explanation(units=list(units), scores=scores, target=model.labels[int(target[b])],
                       prediction=model.labels[pred], probability=float(probs[b, pred]),
                       label=None if true is None else str(true), delta=delta, flagged=flagged,
                       word_index=None if level == "word" else word_ids[b][pos].astype(np.int64))


def _word_layout(classifier, batch, examples):
    """(word index of every token [B, T] as numpy, words of each example) whatever the classifier's level."""
    if classifier.level == "word":
        return batch["word_ids"].cpu().numpy(), [list(w) for w in batch["words"]]
    from probekit.classifiers.model import unit_layout
    from probekit.core.extraction import encode_examples

    encoded = encode_examples(classifier.source, examples, max_length=classifier.max_length, level="word",
                              warn=False)
    T = batch["input_ids"].shape[1]
    wid = np.full((len(encoded), T), -1, dtype=np.int64)
    words = []
    for b, e in enumerate(encoded):
        tw, names = unit_layout(e.alignment, "word")
        wid[b, :len(tw)] = tw
        words.append(names)
    return wid, words


def _head_to_tokens(scores: torch.Tensor, batch) -> torch.Tensor:
    """Scores over a token-level head's units (ranks of the real tokens) → [B, T] over token positions."""
    wid = batch["word_ids"].to(scores.device)
    gathered = scores.gather(1, wid.clamp_min(0))
    return torch.where(wid >= 0, gathered, torch.zeros_like(gathered))


def _truncated(model, batch, chunk) -> list[bool]:
    """Which examples lost tokens to the length limit (only those that fill it are re-tokenised to check)."""
    from probekit.core.extraction import encode_examples

    full = (batch["attention_mask"].sum(1) >= model.max_length).tolist()
    if not any(full):
        return [False] * len(chunk)
    at_limit = [ex for ex, f in zip(chunk, full) if f]
    flags = iter(e.truncated for e in encode_examples(model.source, at_limit, max_length=model.max_length,
                                                      warn=False))
    return [next(flags) if f else False for f in full]
