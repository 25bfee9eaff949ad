"""Deletion variants assembled from each word's cached token pieces instead of re-tokenising every variant.

Occlusion and ERASER re-encode each example many times with some words deleted (about a hundred variants per
example with every method). A fast tokenizer given pre-split words encodes each word on its own, so where a
word's pieces do not depend on its neighbours or its position — WordPiece, and byte-level BPE or Unigram that
mark every word's start (RoBERTa's ``Ġ`` with ``add_prefix_space``, SentencePiece's ``▁``) — a variant's input
ids are the tokenizer's special tokens around the concatenated pieces of the words kept, each word tokenised once.

Whether a tokenizer does is checked once, on a probe: every probe word's pieces alone must give, concatenated
inside the special tokens, exactly what the tokenizer gives for the sentence (each word first and later, single
and pair). Where it does not (a BPE without word-start markers), for word-level classifiers only, and for any
variant that is too long, has a word without a piece or an empty segment, the tokenizer encodes it as before.
"""
from __future__ import annotations

import weakref

import torch

PROBE = ["Hello", "world", "don't", "naïve", "x", "Straße", "ÉTÉ", "well-known", "3.14", "a"]
_TEMPLATES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _encode(tok, a, b=None):
    enc = tok(a, b, is_split_into_words=True, return_token_type_ids=True, return_attention_mask=False)
    return list(enc["input_ids"]), list(enc.get("token_type_ids") or [0] * len(enc["input_ids"]))


def word_pieces(tok, words) -> list[list[int]]:
    """Each word's token ids when the tokenizer sees it alone (no special tokens), one tokenizer call."""
    if not words:
        return []
    enc = tok([[w] for w in words], is_split_into_words=True, add_special_tokens=False,
              return_attention_mask=False)
    return [list(ids) for ids in enc["input_ids"]]


class Template:
    """Where the special tokens go around one or two segments' pieces, and the segments' token type ids."""

    def __init__(self, tok):
        (p,), (q,) = word_pieces(tok, ["x"]), word_pieces(tok, ["a"])
        ids, types = _encode(tok, ["x"])
        i = _find(ids, p)
        self.prefix, self.suffix = ids[:i], ids[i + len(p):]
        self.t_prefix, self.t_a, self.t_suffix = types[:i], types[i], types[i + len(p):]
        ids, types = _encode(tok, ["x"], ["a"])
        i = _find(ids, p)
        j = _find(ids, q, i + len(p))
        self.pair_prefix, self.mid, self.pair_suffix = ids[:i], ids[i + len(p):j], ids[j + len(q):]
        self.tp_prefix, self.tp_a, self.tp_mid = types[:i], types[i], types[i + len(p):j]
        self.tp_b, self.tp_suffix = types[j], types[j + len(q):]

    def ids(self, a: list[list[int]], b: list[list[int]] | None) -> tuple[list[int], list[int]]:
        """(input ids, token type ids) of segments whose words have the pieces ``a`` (and ``b``)."""
        pa = [t for w in a for t in w]
        if b is None:
            return (self.prefix + pa + self.suffix,
                    self.t_prefix + [self.t_a] * len(pa) + self.t_suffix)
        pb = [t for w in b for t in w]
        return (self.pair_prefix + pa + self.mid + pb + self.pair_suffix,
                self.tp_prefix + [self.tp_a] * len(pa) + self.tp_mid + [self.tp_b] * len(pb) + self.tp_suffix)


def _find(seq, sub, start=0) -> int:
    for i in range(start, len(seq) - len(sub) + 1):
        if seq[i:i + len(sub)] == sub:
            return i
    raise ValueError("pieces not found")


def template(tok) -> Template | None:
    """The tokenizer's :class:`Template` when its words' pieces are independent of context (the probe), else None."""
    if tok in _TEMPLATES:
        return _TEMPLATES[tok]
    got = None
    if getattr(tok, "is_fast", False):
        try:
            t = Template(tok)
            pieces = dict(zip(PROBE, word_pieces(tok, PROBE)))
            ok = all(p for p in pieces.values())
            for words in (PROBE, PROBE[::-1]):
                a, b = words[:6], words[6:]
                ok = ok and _encode(tok, words)[0] == t.ids([pieces[w] for w in words], None)[0]
                ok = ok and _encode(tok, a, b) == t.ids([pieces[w] for w in a], [pieces[w] for w in b])
            got = t if ok else None
        except (ValueError, TypeError, IndexError, KeyError):
            got = None
    _TEMPLATES[tok] = got
    return got


class Pieces:
    """Encodes word-list Examples like ``classifier.encode``, from cached word pieces where that gives the same."""

    def __init__(self, classifier):
        self.classifier = classifier
        self.tok = classifier.tokenizer
        self.template = template(self.tok) if getattr(classifier, "level", "") == "word" else None
        self.limit = min(classifier.max_length, classifier.source.max_length) if self.template else 0
        self.cache: dict[str, list[int]] = {}

    def _row(self, ex):
        if ex.words is None or not ex.words or (ex.words_b is not None and not ex.words_b):
            return None
        words = list(ex.words) + list(ex.words_b or [])
        if any(not isinstance(w, str) or not w or any(c.isspace() for c in w) for w in words):
            return None                         # the tokenizer path refuses these with its own message
        new = list(dict.fromkeys(w for w in words if w not in self.cache))
        self.cache.update(zip(new, word_pieces(self.tok, new)))
        pieces = [self.cache[w] for w in words]
        if any(not p for p in pieces):          # a word without a piece: the tokenizer's unknown-token rule
            return None
        n_a = len(ex.words)
        ids, types = self.template.ids(pieces[:n_a], None if ex.words_b is None else pieces[n_a:])
        if len(ids) > self.limit:
            return None
        wid = [-1] * len(self.template.pair_prefix if ex.words_b is not None else self.template.prefix)
        for k, p in enumerate(pieces):
            wid += [k] * len(p)
            if k == n_a - 1 and ex.words_b is not None:
                wid += [-1] * len(self.template.mid)
        wid += [-1] * (len(ids) - len(wid))
        return ids, types, wid, words

    def encode(self, examples) -> dict:
        """The padded batch ``classifier.encode(examples, warn=False)`` gives, assembled where it can be."""
        if self.template is None:
            return self.classifier.encode(examples, warn=False)
        rows = [self._row(ex) for ex in examples]
        rest = [ex for ex, r in zip(examples, rows) if r is None]
        if rest:
            from probekit.classifiers.model import unit_layout

            done = iter(self.classifier.tokenize(rest, warn=False))
            for k, r in enumerate(rows):
                if r is None:
                    e = next(done)
                    tw, units = unit_layout(e.alignment, self.classifier.level)
                    rows[k] = (e.input_ids, e.token_type_ids, tw.tolist(), units)
        return self._collate(rows)

    def _collate(self, rows) -> dict:
        T, B = max(len(r[0]) for r in rows), len(rows)
        ids = torch.full((B, T), self.tok.pad_token_id or 0, dtype=torch.long)
        mask = torch.zeros((B, T), dtype=torch.long)
        tt = torch.zeros((B, T), dtype=torch.long)
        wid = torch.full((B, T), -1, dtype=torch.long)
        for b, (i, t, w, _) in enumerate(rows):
            ids[b, :len(i)] = torch.tensor(i)
            mask[b, :len(i)] = 1
            if t is not None:
                tt[b, :len(i)] = torch.tensor(t)
            wid[b, :len(i)] = torch.tensor(w)
        batch = {"input_ids": ids, "attention_mask": mask}
        if self.classifier.uses_token_types:
            batch["token_type_ids"] = tt
        batch["word_ids"] = wid
        batch = {k: v.to(self.classifier.device) for k, v in batch.items()}
        batch["words"] = [list(r[3]) for r in rows]
        return batch
