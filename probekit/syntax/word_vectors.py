"""Fixed word vectors for the parsing probes: the encoder's own input embeddings, or a GloVe text file.

Both return a table ``[V, d]`` (row 0 = unknown word, all zeros) and a word → row map built over the words
of the corpora at hand, so only the vectors that are needed are kept in memory.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from probekit.core.errors import UserError


def vocabulary(words: Iterable[str], lowercase: bool) -> dict[str, int]:
    """word → row (1 …), in first-seen order; row 0 is reserved for unknown words."""
    vocab: dict[str, int] = {}
    for w in words:
        key = w.lower() if lowercase else w
        if key not in vocab:
            vocab[key] = len(vocab) + 1
    return vocab


def model_vectors(encoder, vocab: dict[str, int], batch: int = 2048) -> torch.Tensor:
    """Each word's vector = mean of its sub-tokens' rows of the model's input embedding matrix."""
    table = encoder.input_embeddings.weight.detach().float().cpu()
    out = torch.zeros(len(vocab) + 1, table.shape[1])
    words = list(vocab)
    for start in range(0, len(words), batch):
        chunk = words[start:start + batch]
        ids = encoder.tokenizer(chunk, add_special_tokens=False)["input_ids"]
        for w, piece_ids in zip(chunk, ids):
            if piece_ids:
                out[vocab[w]] = table[torch.as_tensor(piece_ids)].mean(0)
    return out


def glove_vectors(path: str | Path, vocab: dict[str, int]) -> tuple[torch.Tensor, int]:
    """Vectors for the vocabulary's words from a GloVe text file (``word v1 … vd`` per line).

    Returns (table, number of vocabulary words found). Unknown words keep the zero vector, as in Clark's
    probe. Keys of ``vocab`` should be lowercased (GloVe's own vocabulary is).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"word-vector file {path} does not exist")
    table: torch.Tensor | None = None
    found = 0
    dim = None
    from probekit.corpora.text import iter_utf8_lines

    for lineno, line in iter_utf8_lines(path, "word-vector file"):    # strict UTF-8, a line at a time
        parts = line.rstrip(" ").split(" ")
        if lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
            continue  # word2vec-style header "count dim"
        if len(parts) < 2:
            continue
        if dim is None:
            dim = len(parts) - 1
            table = torch.zeros(len(vocab) + 1, dim)
        if len(parts) - 1 != dim:
            raise UserError(f"{path}:{lineno}: expected {dim} numbers after the word, found {len(parts) - 1}")
        row = vocab.get(parts[0])
        if row is None:
            continue
        try:
            table[row] = torch.tensor([float(x) for x in parts[1:]])
        except ValueError:
            raise UserError(f"{path}:{lineno}: not a number in the vector of {parts[0]!r}") from None
        found += 1
    if table is None:
        raise UserError(f"word-vector file {path} has no vectors")
    return table, found


def word_rows(words: list[str], vocab: dict[str, int], lowercase: bool) -> np.ndarray:
    return np.array([vocab.get(w.lower() if lowercase else w, 0) for w in words], dtype=np.int64)
