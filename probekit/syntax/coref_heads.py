"""Coreference heads on GAP (after Clark et al. 2019 §4.3): does the pronoun attend more to the right name?

For each layer × head, an example counts as correct when the attention *from* the pronoun word to the true
candidate's words (word-level attention, which already sums over a word's pieces; summed again over the
mention's words) is strictly greater than to the other candidate's. Only examples with exactly one true
candidate are scored. Baselines need no model: the nearest candidate (fewest words from the pronoun) and the
first candidate in the text. Texts longer than the model's limit are cut to a window of words around the
pronoun and both candidates (counted and reported); examples whose mentions alone do not fit are counted
and left out. :class:`CorefHeads` is the scoring as an :class:`~probekit.core.analysis.Analysis`;
``pk.coref`` (:mod:`probekit.syntax.coref`) is the whole run.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from probekit.core.analysis import Analysis
from probekit.core.errors import UserError
from probekit.core.examples import Example
from probekit.core.result import tidy

GROUPS = ("all", "masculine", "feminine")


# ---- windowing ---------------------------------------------------------------------------------------
def piece_counts(tokenizer, examples: list[Example]) -> list[np.ndarray]:
    """Number of sub-tokens of every word (no special tokens), per example."""
    out = []
    for start in range(0, len(examples), 256):
        chunk = [list(ex.words) for ex in examples[start:start + 256]]
        enc = tokenizer(chunk, is_split_into_words=True, add_special_tokens=False, truncation=False)
        for j, words in enumerate(chunk):
            wids = [w for w in enc.encodings[j].word_ids if w is not None]
            out.append(np.bincount(np.asarray(wids, dtype=np.int64), minlength=len(words)))
    return out


def window(example: Example, pieces: np.ndarray, budget: int) -> Example | None:
    """The example cut to at most ``budget`` sub-tokens around its mentions, or None if they alone overflow.

    Words are added alternately left and right of the span from the first to the last mention word, so the
    window stays roughly centred; mention indices in ``meta`` are shifted to the window.
    """
    if int(pieces.sum()) <= budget:
        return example
    m = example.meta
    needed = [m["pronoun"], *m["a"], *m["b"]]
    lo, hi = min(needed), max(needed) + 1
    used = int(pieces[lo:hi].sum())
    if used > budget:
        return None
    grew = True
    while grew:
        grew = False
        for side in ("left", "right"):
            if side == "left" and lo > 0 and used + pieces[lo - 1] <= budget:
                lo -= 1
                used += int(pieces[lo])
                grew = True
            elif side == "right" and hi < len(pieces) and used + pieces[hi] <= budget:
                used += int(pieces[hi])
                hi += 1
                grew = True
    meta = dict(m, pronoun=m["pronoun"] - lo, a=[i - lo for i in m["a"]], b=[i - lo for i in m["b"]],
                window=[lo, hi])
    return replace(example, words=list(example.words[lo:hi]), text=None, meta=meta)


def fit_to_model(examples: list[Example], tokenizer, max_tokens: int) -> tuple[list[Example], int, int]:
    """(examples that fit, number windowed, number left out because the mentions alone are too long)."""
    budget = max_tokens - tokenizer.num_special_tokens_to_add(pair=False)
    kept, windowed, dropped = [], 0, 0
    for ex, pieces in zip(examples, piece_counts(tokenizer, examples)):
        w = window(ex, pieces, budget)
        if w is None:
            dropped += 1
            continue
        windowed += w is not ex
        kept.append(w)
    return kept, windowed, dropped


# ---- scoring -----------------------------------------------------------------------------------------
def _true_other(meta: dict) -> tuple[list[int], list[int]]:
    return (meta["a"], meta["b"]) if meta["a_coref"] else (meta["b"], meta["a"])


def baseline_choices(meta: dict) -> dict[str, bool]:
    """Whether each baseline picks the true candidate: nearest (ties → earlier) and first in the text."""
    p = meta["pronoun"]
    true, other = _true_other(meta)
    dist_t = min(abs(i - p) for i in true)
    dist_o = min(abs(i - p) for i in other)
    first_is_true = min(true) < min(other)
    nearest = dist_t < dist_o or (dist_t == dist_o and first_is_true)
    return {"nearest": nearest, "first": first_is_true}


class CorefHeadScores:
    """Counts, per group (all / masculine / feminine), of examples each head and baseline gets right."""

    def __init__(self, num_layers: int, num_heads: int):
        self.L, self.H = num_layers, num_heads
        self.n = {g: 0 for g in GROUPS}
        self.heads = {g: np.zeros((num_layers, num_heads), dtype=np.int64) for g in GROUPS}
        self.baselines = {g: {"nearest": 0, "first": 0} for g in GROUPS}

    def add(self, attention: np.ndarray, special: np.ndarray, meta: dict) -> None:
        """One example: ``attention`` [L, H, U, U] word-level, rows = from; ``special`` [U]."""
        words = np.flatnonzero(~np.asarray(special, dtype=bool))
        true, other = _true_other(meta)
        row = attention[:, :, words[meta["pronoun"]], :]                # [L, H, U]
        to_true = row[:, :, words[true]].sum(-1)
        to_other = row[:, :, words[other]].sum(-1)
        correct = (to_true > to_other).astype(np.int64)
        base = baseline_choices(meta)
        for g in ("all", meta.get("gender")):
            if g in self.n:
                self.n[g] += 1
                self.heads[g] += correct
                for k, v in base.items():
                    self.baselines[g][k] += int(v)

    def tidy(self, *, model: str = "", split: str = "") -> pd.DataFrame:
        """The shared schema (task, group, model, layer, head, metric, value …): the baselines' rows have an
        empty layer/head and name themselves in ``baseline`` (and ``probe``)."""
        rows = []
        for g in GROUPS:
            n = self.n[g]
            if n == 0:
                continue
            for l in range(self.L):
                for h in range(self.H):
                    rows.append({"task": "coref", "group": g, "model": model, "layer": l + 1, "head": h + 1,
                                 "probe": "attention-head", "baseline": pd.NA, "split": split,
                                 "metric": "accuracy", "value": self.heads[g][l, h] / n, "n": n})
            for k, v in self.baselines[g].items():
                rows.append({"task": "coref", "group": g, "model": model, "layer": pd.NA, "head": pd.NA,
                             "probe": k, "baseline": k, "split": split, "metric": "accuracy", "value": v / n,
                             "n": n})
        columns = ["task", "group", "model", "layer", "head", "probe", "baseline", "split", "metric", "value", "n"]
        return tidy(pd.DataFrame(rows, columns=columns), task="coref", model=model, keys=["group"])

    def table(self, top: int = 5) -> pd.DataFrame:
        """Clark's Table 2 shape: baselines, then the ``top`` heads by overall accuracy; columns per group."""
        n_all = max(self.n["all"], 1)
        rows = []
        for k, label in (("nearest", "Nearest candidate"), ("first", "First candidate")):
            rows.append({"model": label, **{g: 100 * self.baselines[g][k] / max(self.n[g], 1) for g in GROUPS}})
        flat = np.argsort(-self.heads["all"].reshape(-1), kind="stable")[:top]
        for idx in flat:
            l, h = divmod(int(idx), self.H)
            rows.append({"model": f"Head {l + 1}-{h + 1}",
                         **{g: 100 * self.heads[g][l, h] / max(self.n[g], 1) for g in GROUPS}})
        df = pd.DataFrame(rows)
        df.attrs["n"] = dict(self.n, all=n_all if self.n["all"] else 0)
        return df


class CorefHeads(Analysis):
    """GAP coreference heads as a corpus :class:`~probekit.core.analysis.Analysis`.

    Each example is a GAP row as :func:`~probekit.corpora.gap.read_gap` gives it (``meta``: ``pronoun``, ``a``,
    ``b`` word indices, ``a_coref``/``b_coref``, ``gender``), cut to the model with :func:`fit_to_model` first;
    truncated inputs are counted in ``truncated``, never scored. ``result()`` is the tidy table; ``scores`` the
    :class:`CorefHeadScores` counts (``table()`` gives Clark's Table 2 shape)::

        fitted, _, _ = fit_to_model(pk.read_gap("gap-development.tsv"), encoder.tokenizer, encoder.max_length)
        frame, = pk.analyze(encoder, fitted, [pk.CorefHeads(encoder)])
    """

    needs_attention = True
    needs_hidden = False
    level = "word"

    def __init__(self, encoder=None, *, num_layers: int | None = None, num_heads: int | None = None,
                 model: str | None = None, split: str = ""):
        if encoder is not None:
            num_layers = num_layers or encoder.num_layers
            num_heads = num_heads or encoder.num_heads
            model = model if model is not None else encoder.name
        if not num_layers or not num_heads:
            raise ValueError("CorefHeads needs an encoder, or num_layers and num_heads")
        self.scores = CorefHeadScores(num_layers, num_heads)
        self.model, self.split = model or "", split
        self.truncated = 0

    def update(self, activations, example) -> None:
        from probekit.syntax.common import check_word_units

        if activations.truncated:   # cannot happen after windowing, but never score a cut text silently
            self.truncated += 1
            return
        meta = example.meta or {}
        if not {"pronoun", "a", "b", "a_coref", "b_coref"} <= set(meta):
            raise UserError(f"{meta.get('source') or 'an example'}: CorefHeads needs a GAP row "
                            "(meta pronoun, a, b, a_coref, b_coref, as read_gap gives them)")
        check_word_units(activations, example, "coreference scoring")
        self.scores.add(activations.attention.array, activations.special, meta)

    def result(self) -> pd.DataFrame:
        return self.scores.tidy(model=self.model, split=self.split)
