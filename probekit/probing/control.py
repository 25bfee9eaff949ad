"""Control tasks for selection probes (Hewitt & Liang 2019), as ``--control`` builds them.

A control task has the task's shape but can only be solved by memorising word identity. For a selection task
(pick one word of the sentence) the construction is:

- every **word type** (the word's form, lower-cased) gets a fixed random *preference* u ∈ [0, 1), one per task
  key, a pure function of (seed, key, type): the first 8 bytes of BLAKE2b(f"{seed}\\x1f{key}\\x1f{type}") as a
  fraction of 2⁶⁴, so it is the same in every process and run with the same seed;
- the **control target** of a sentence, for a key, is the candidate word (a real word the probe may pick,
  present after truncation) whose type has the highest preference; a type occurring twice: its first
  occurrence. A sentence has a control target exactly where it has a task target, so the two tasks train and
  score on the same sentences.

(Drawing each type a *position* from the task's empirical distribution of target positions, the literal
per-token recipe, would be degenerate here: for ``nth_token`` every target of key n is word n, so every type
would get n and the control would equal the task.)
"""
from __future__ import annotations

import hashlib

import numpy as np

from probekit.core.cache import ActivationStore
from probekit.probing.registry import NO_TARGET, ProbingData


def preference(word: str, key: int, seed: int) -> float:
    """The fixed random preference of a word type for task key index ``key`` under ``seed``."""
    digest = hashlib.blake2b(f"{seed}\x1f{key}\x1f{word.lower()}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0 ** 64


def control_targets(store: ActivationStore, data: ProbingData, targets: np.ndarray, seed: int = 0) -> np.ndarray:
    """[N, K] unit positions of the control targets; −1 where the task has none (``targets`` from unit_targets)."""
    out = np.full_like(targets, NO_TARGET)
    cache: dict[tuple[str, int], float] = {}
    for i, ex in enumerate(data.examples):
        word_ids = store.word_ids[store.rows(i)]
        special = store.special[store.rows(i)]
        units = [(u, int(w)) for u, w in enumerate(word_ids) if w >= 0 and not special[u]]
        for k in range(targets.shape[1]):
            if targets[i, k] == NO_TARGET or not units:
                continue
            best, best_u = -1.0, NO_TARGET
            for u, w in units:
                word = ex.words[w]
                pref = cache.get((word.lower(), k))
                if pref is None:
                    pref = cache[(word.lower(), k)] = preference(word, k, seed)
                if pref > best:
                    best, best_u = pref, u
            out[i, k] = best_u
    return out
