"""Units and the vocabulary of encoders trained from scratch; pre-trained word vectors from a local text file.

Units (``--units``): ``word`` splits text at whitespace (pre-split words are kept as given); ``char`` makes
every non-space character a unit; ``auto`` reads runs of CJK script (Han, kana, Hangul, CJK punctuation and
full-width forms) one character at a time and other text as words, so "我爱NLP 很好" is 我 爱 NLP 很 好.

The vocabulary is built from the training split (Jain & Wallace: words seen at least ``min_count`` times,
lower-cased): id 0 is padding (its embedding stays 0, which is also the integrated-gradients baseline), id 1 the
unknown unit, then units by falling frequency (ties in first-seen order) up to ``max_size``. It is saved as JSON
with the model.

Vectors: the word2vec / GloVe text format (``word v1 … vd`` per line; word2vec's first line ``count dim`` is
recognised and skipped). An empty file, one that is not UTF-8, a row of another width than the first, or a word
listed twice is one error naming the file and line.
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from probekit.core.errors import UserError, where
from probekit.core.examples import Example

UNITS = ("word", "char", "auto")
PAD, UNK = "<pad>", "<unk>"

_CJK = ("\u1100-\u11ff\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u3130-\u318f\u31a0-\u31ff"
        "\u3200-\u9fff\ua960-\ua97f\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef"
        "\U00020000-\U0003134f")
_AUTO = re.compile(f"[{_CJK}]|[^\\s{_CJK}]+")


def has_cjk(text: str) -> bool:
    return re.search(f"[{_CJK}]", text) is not None


def split_units(words: Iterable[str], units: str) -> list[str]:
    """The units of a sequence of whitespace-free words (or of ``text.split()``)."""
    words = list(words)
    if units == "word":
        return words
    if units == "char":
        return [c for w in words for c in w if not c.isspace()]
    return [u for w in words for u in _AUTO.findall(w)]


def example_units(ex: Example, units: str) -> tuple[list[str], list[str] | None]:
    """(units of the first text, units of the second text of a pair or None)."""
    a = split_units(ex.words if ex.words is not None else (ex.text or "").split(), units)
    b = split_units(ex.words_b, units) if ex.words_b is not None else None
    return a, b


class Vocabulary:
    """Unit ↔ id. Also answers the few tokenizer questions analyses ask (``pad_token_id``, ``unk_token``,
    ``mask_token``, an empty input), so a from-scratch classifier fits where a transformer one does."""

    pad_token_id = 0
    unk_token_id = 1
    unk_token = UNK
    mask_token = None
    all_special_ids = [0, 1]

    def __init__(self, units: Sequence[str], *, lowercase: bool = True, unit: str = "word"):
        if list(units[:2]) != [PAD, UNK]:
            raise ValueError("a vocabulary starts with the padding and unknown units")
        self.itos = list(units)
        self.stoi = {u: i for i, u in enumerate(self.itos)}
        self.lowercase, self.unit = bool(lowercase), unit

    def __len__(self) -> int:
        return len(self.itos)

    def normal(self, unit: str) -> str:
        return unit.lower() if self.lowercase else unit

    def ids(self, units: Sequence[str]) -> list[int]:
        return [self.stoi.get(self.normal(u), UNK_ID) for u in units]

    def convert_ids_to_tokens(self, ids) -> list[str]:
        return [self.itos[int(i)] for i in ids]

    def __call__(self, text: str = "", return_tensors: str | None = None):
        """An input of no units (occlusion's "every word deleted")."""
        import torch

        return {"input_ids": torch.zeros(1, 1, dtype=torch.long), "attention_mask": torch.zeros(1, 1, dtype=torch.long)}

    @classmethod
    def build(cls, examples: Sequence[Example], *, unit: str = "word", min_count: int = 1,
              max_size: int | None = None, lowercase: bool = True) -> "Vocabulary":
        counts: Counter = Counter()
        for ex in examples:
            a, b = example_units(ex, unit)
            counts.update((u.lower() if lowercase else u) for u in a + (b or []))
        kept = [u for u, c in sorted(counts.items(), key=lambda kv: -kv[1]) if c >= min_count and u not in (PAD, UNK)]
        if max_size is not None:
            kept = kept[:max(int(max_size) - 2, 0)]
        return cls([PAD, UNK] + kept, lowercase=lowercase, unit=unit)

    def to_json(self) -> dict:
        return {"units": self.unit, "lowercase": self.lowercase, "itos": self.itos}

    @classmethod
    def from_json(cls, data: dict, what: str) -> "Vocabulary":
        try:
            itos, unit, lower = data["itos"], data["units"], data["lowercase"]
            if not all(isinstance(u, str) for u in itos) or len(set(itos)) != len(itos) or unit not in UNITS:
                raise ValueError("units must be distinct strings")
            return cls(itos, lowercase=bool(lower), unit=unit)
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{what}: not a valid vocabulary ({exc})") from None


UNK_ID = Vocabulary.unk_token_id


def read_vectors(path, *, wanted: set[str] | None = None) -> tuple[dict[str, np.ndarray], int]:
    """({word: vector} for the words in ``wanted`` (all when None), dimension) of a word2vec/GloVe text file.

    Every row is checked (width, duplicates) even when its word is not wanted, so a broken file is refused
    whatever the vocabulary."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--vectors {path} does not exist")
    out: dict[str, np.ndarray] = {}
    seen: set[str] = set()
    dim = None
    with open(path, "rb") as handle:
        for lineno, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                raise UserError(f"{where(path, lineno)}: not UTF-8 text (word vectors must be the word2vec/GloVe "
                                f"text format in UTF-8)") from None
            parts = line.rstrip(" ").split(" ")
            if not line.strip():
                continue
            if lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue                       # word2vec header: count, dimension
            if dim is None:
                dim = len(parts) - 1
                if dim < 1:
                    raise UserError(f"{where(path, lineno)}: a word without a vector")
            if len(parts) - 1 != dim:
                raise UserError(f"{where(path, lineno)}: {len(parts) - 1} values where the first row has {dim}")
            word = parts[0]
            if word in seen:
                raise UserError(f"{where(path, lineno)}: {word!r} is listed twice")
            seen.add(word)
            if wanted is None or word in wanted or word.lower() in wanted:
                try:
                    vec = np.asarray(parts[1:], dtype=np.float32)
                except ValueError:
                    raise UserError(f"{where(path, lineno)}: a value is not a number") from None
                out.setdefault(word, vec)
    if dim is None:
        raise UserError(f"--vectors {path} is empty")
    return out, dim


def vector_table(vocab: Vocabulary, path, dim: int, seed: int = 0) -> tuple[np.ndarray, float]:
    """(embedding matrix [V, dim] with the file's vectors where it has the unit, small random rows elsewhere,
    0 for padding; the share of the vocabulary, padding and unknown aside, the file covers)."""
    wanted = set(vocab.itos[2:])
    vectors, file_dim = read_vectors(path, wanted=wanted)
    if file_dim != dim:
        raise UserError(f"--vectors {path} has {file_dim} dimensions; --embedding-dim is {dim} (make them equal)")
    lowered = {}
    for w, v in vectors.items():                # exact case first, then a lower-cased match
        lowered.setdefault(vocab.normal(w), v)
    rng = np.random.default_rng(seed)
    table = rng.normal(0, 0.1, size=(len(vocab), dim)).astype(np.float32)
    table[0] = 0.0
    hit = 0
    for i, u in enumerate(vocab.itos[2:], 2):
        v = vectors.get(u, lowered.get(u))
        if v is not None:
            table[i], hit = v, hit + 1
    return table, hit / max(len(vocab) - 2, 1)
