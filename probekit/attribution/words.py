"""From a batch's sub-tokens to each example's words, and the batch helpers every method shares.

Word rules (``Method.word_rule``):

- ``sum`` for additive scores (gradient × input, integrated gradients, attention mass, pooling weights): a word's
  score is the sum over its pieces, so totals are kept (IG's completeness, α summing to 1, max-pooling importance
  summing to Σ pooled).
- ``l2`` for the gradient norm: the norm of the gradient over *all* the word's input coordinates,
  sqrt(Σ_pieces ‖∂F/∂e_t‖²), i.e. the L2 norm of the concatenated piece gradients (not the norm of their sum,
  which lets opposite pieces cancel, and not the sum of norms, which grows with the piece count).

A word index without any piece gets NaN (``encode`` lists only the words that kept a piece, so words cut off
by the length limit are simply absent). ``level="token"`` keeps one row per real sub-token
(special tokens and padding are never reported); a word-level score (occlusion, pooling of a word-level head)
is then spread equally over the word's pieces, so its total is kept.
"""
from __future__ import annotations

import numpy as np
import torch

INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids", "word_ids")


def model_inputs(batch: dict) -> dict:
    """The tensors ``classifier.forward`` takes, from an ``encode()`` batch (absent or None ones left out)."""
    return {k: batch[k] for k in INPUT_KEYS if batch.get(k) is not None}


def real_tokens(batch: dict) -> torch.Tensor:
    """[B, T] bool: tokens that belong to a word (not [CLS]/[SEP]/padding)."""
    return batch["attention_mask"].bool() & (batch["word_ids"] >= 0)


def n_words(batch: dict, b: int) -> int:
    return len(batch["words"][b])


def to_words(scores, word_ids, n: int, rule: str = "sum") -> np.ndarray:
    """Token scores [T] → word scores [n] by ``rule``; NaN for a word with no piece in the input."""
    s = np.asarray(torch.as_tensor(scores).detach().float().cpu(), dtype=np.float64)
    w = np.asarray(torch.as_tensor(word_ids).cpu(), dtype=np.int64)
    keep = (w >= 0) & (w < n)
    out = np.zeros(n, dtype=np.float64)
    vals = s[keep] ** 2 if rule == "l2" else s[keep]
    np.add.at(out, w[keep], vals)
    if rule == "l2":
        out = np.sqrt(out)
    seen = np.zeros(n, dtype=bool)
    seen[w[keep]] = True
    out[~seen] = np.nan
    return out


def token_positions(batch: dict, b: int) -> np.ndarray:
    """Positions of example ``b``'s real sub-tokens, in order."""
    return np.flatnonzero(real_tokens(batch)[b].cpu().numpy())


def spread_to_tokens(word_scores, word_ids, positions) -> np.ndarray:
    """Word scores → scores of the given token positions: each word's score split equally among its pieces."""
    w = np.asarray(torch.as_tensor(word_ids).cpu(), dtype=np.int64)[positions]
    ws = np.asarray(word_scores, dtype=np.float64)
    counts = np.bincount(w, minlength=len(ws)).astype(np.float64)
    return ws[w] / counts[w]
