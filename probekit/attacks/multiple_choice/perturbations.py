"""Si, Wang, Kan & Jiang (2019): un-readable test-time attacks and un-answerable training sets for
multiple-choice reading comprehension, on lists of :class:`~probekit.corpora.multiple_choice.MCItem`.

The choices the paper leaves open, as made here:

- **Words and shuffling.** A "word" is a whitespace-separated token of the text, punctuation left attached
  (``"dog?"`` stays one word), so a shuffled sentence holds exactly the multiset of words of its source, nothing
  added or dropped. Shuffling is a uniform random permutation (``numpy.random.default_rng(seed)``); joined with
  single spaces.
- **The distractor** of AddSent2Pas/AddSent2Opt is the shuffle of the question's words followed by one wrong
  option's words (Q ⊕ O_wrong). The wrong option is drawn uniformly among the item's wrong options, once per
  item. AddSent2Opt appends the distractor to that same wrong option; AddAns2Opt appends the shuffled correct
  answer to a wrong option drawn the same way. Appended text follows one space.
- **Draws.** One call is one draw: the items are processed in order from one generator seeded with ``seed``;
  ``pk.attack`` averages ``draws`` calls with seeds ``seed, seed + 1, …`` (mean ± std).
- **Removal.** P-Remove / Q-Remove replace the passage / question by the empty string (:data:`REMOVED`): the
  model sees ``[CLS] [SEP] Q O [SEP]`` (or ``[CLS] P [SEP] O [SEP]``), no placeholder word it could learn.
- **Shuffling a passage** (P-Shuffle) permutes all its words at once, across sentence boundaries.

Nothing is mutated: every generator returns new items (options list and meta copied) with ``meta["attack"]``
naming the attack; the gold ``answer`` is never changed, nor the correct option (test-time attacks only ever
extend a wrong option or the passage). Truncation is the model's business (it cuts the passage, never the
question or options).
"""
from __future__ import annotations

import dataclasses
import copy
from typing import Callable, Sequence

import numpy as np

from probekit.core.errors import UserError
from probekit.attacks.base import transform

#: what a removed passage or question becomes
REMOVED = ""


def words(text: str) -> list[str]:
    """Whitespace-separated words, punctuation attached."""
    return str(text).split()


def shuffled(text: str, rng: np.random.Generator) -> str:
    """The words of ``text`` in a uniformly random order, joined by single spaces."""
    w = words(text)
    return " ".join(w[i] for i in rng.permutation(len(w)))


def _append(text: str, extra: str) -> str:
    return f"{text} {extra}" if text.strip() else extra


def _replace(item, attack: str, **changes):
    """A new item with ``changes``; options list and meta are copies, ``meta["attack"]`` set."""
    meta = dict(copy.deepcopy(getattr(item, "meta", None) or {}))
    meta["attack"] = attack
    changes.setdefault("options", list(item.options))
    if dataclasses.is_dataclass(item):
        return dataclasses.replace(item, meta=meta, **changes)
    new = copy.copy(item)
    for k, v in {**changes, "meta": meta}.items():
        setattr(new, k, v)
    return new


def _check(items) -> list:
    items = list(items)
    for i, it in enumerate(items):
        k = len(getattr(it, "options", []) or [])
        ans = getattr(it, "answer", None)
        if k < 2 or not isinstance(ans, (int, np.integer)) or not 0 <= int(ans) < k:
            src = (getattr(it, "meta", None) or {}).get("source") or getattr(it, "id", "") or f"item {i}"
            raise UserError(f"{src}: a multiple-choice item needs at least 2 options and an answer index "
                            f"0…{max(k - 1, 0)} (got {k} options, answer {ans!r})")
    return items


def _wrong(item, rng: np.random.Generator) -> int:
    wrong = [j for j in range(len(item.options)) if j != int(item.answer)]
    return int(wrong[rng.integers(len(wrong))])


# --- un-readable attacks (test time) --------------------------------------------------------------------------

def distractor(item, wrong: int, rng: np.random.Generator) -> str:
    """Shuffled words of the question followed by wrong option ``wrong`` (Q ⊕ O_wrong)."""
    return shuffled(f"{item.question} {item.options[wrong]}", rng)


def add_sent_to_passage(items: Sequence, seed: int = 0) -> list:
    """AddSent2Pas-Shuffle: the shuffled Q ⊕ O_wrong appended to the passage."""
    rng = np.random.default_rng(seed)
    out = []
    for it in _check(items):
        w = _wrong(it, rng)
        d = distractor(it, w, rng)
        out.append(_replace(it, "AddSent2Pas-Shuffle", passage=_append(it.passage, d)))
        out[-1].meta["attack_option"] = w
    return out


def add_sent_to_option(items: Sequence, seed: int = 0) -> list:
    """AddSent2Opt-Shuffle: the shuffled Q ⊕ O_wrong appended to that wrong option."""
    rng = np.random.default_rng(seed)
    out = []
    for it in _check(items):
        w = _wrong(it, rng)
        d = distractor(it, w, rng)
        options = list(it.options)
        options[w] = _append(options[w], d)
        out.append(_replace(it, "AddSent2Opt-Shuffle", options=options))
        out[-1].meta["attack_option"] = w
    return out


def add_answer_to_option(items: Sequence, seed: int = 0) -> list:
    """AddAns2Opt-Shuffle: the correct answer's words, shuffled, appended to a wrong option."""
    rng = np.random.default_rng(seed)
    out = []
    for it in _check(items):
        w = _wrong(it, rng)
        options = list(it.options)
        options[w] = _append(options[w], shuffled(it.options[int(it.answer)], rng))
        out.append(_replace(it, "AddAns2Opt-Shuffle", options=options))
        out[-1].meta["attack_option"] = w
    return out


# --- un-answerable training sets ------------------------------------------------------------------------------

def _transform(name: str, passage: Callable | None, question: Callable | None):
    def fn(items: Sequence, seed: int = 0) -> list:
        rng = np.random.default_rng(seed)
        out = []
        for it in _check(items):
            changes = {}
            if passage is not None:
                changes["passage"] = passage(it.passage, rng)
            if question is not None:
                changes["question"] = question(it.question, rng)
            out.append(_replace(it, name, **changes))
        return out

    fn.__name__ = name.lower().replace("-", "_")
    fn.__doc__ = f"{name}: " + ", ".join(
        f"{part} {'words shuffled' if f is shuffled else 'removed (empty string)'}"
        for part, f in (("passage", passage), ("question", question)) if f is not None) + "."
    return fn


def _remove(text, rng):
    return REMOVED


p_shuffle = _transform("P-Shuffle", shuffled, None)
q_shuffle = _transform("Q-Shuffle", None, shuffled)
pq_shuffle = _transform("PQ-Shuffle", shuffled, shuffled)
p_remove = _transform("P-Remove", _remove, None)
q_remove = _transform("Q-Remove", None, _remove)
pq_remove = _transform("PQ-Remove", _remove, _remove)

#: test-time attacks, in the paper's order
ATTACKS = {"AddSent2Pas-Shuffle": add_sent_to_passage, "AddSent2Opt-Shuffle": add_sent_to_option,
           "AddAns2Opt-Shuffle": add_answer_to_option}
#: un-answerable training transforms
TRAINING = {"P-Shuffle": p_shuffle, "Q-Shuffle": q_shuffle, "PQ-Shuffle": pq_shuffle,
            "P-Remove": p_remove, "Q-Remove": q_remove, "PQ-Remove": pq_remove}
#: transforms that draw random numbers (the others give the same items whatever the seed)
RANDOM = set(ATTACKS) | {"P-Shuffle", "Q-Shuffle", "PQ-Shuffle"}

for _name, _fn in ATTACKS.items():          # registered (probekit.attacks.base): --attacks of multiple choice
    transform(_name, _fn, models=("multiple-choice",), paper="Si et al. (2019): un-readable test-time attacks")
for _name, _fn in TRAINING.items():         # --unanswerable: training sets the model is retrained on
    transform(_name, _fn, stage="training", models=("multiple-choice",), random=_name in RANDOM,
              paper="Si et al. (2019): un-answerable training sets")
