"""The n-th-token task (Lin et al. 2019): which word of the sentence is the n-th?

The target is simply the n-th word (1-based n), so a probe that finds it must read position from the
representation. Sentences come from the toolkit's English grammar (train and dev up to 20 words; the
generalization split has 21–30 words, longer than anything seen in training) or from ``--corpus``.
"""
from __future__ import annotations

import argparse
import random

from probekit.corpora.sentences import read_sentences
from probekit.core.errors import UserError
from probekit.core.examples import Example
from probekit.corpora.grammar import Grammar, generate
from probekit.probing.registry import NO_TARGET, ProbingData, Task

SIZES = {"quick": (2000, 500, 500), "paper": (40000, 10000, 10000)}
MAX_TRAIN_LEN, MIN_LEN, MAX_LEN = 20, 10, 30


#: The task's own options and their defaults.
OPTIONS = {"n": list(range(1, 10)), "corpus": None}


def parse_n(value) -> list[int]:
    """``"1-9"``, ``"1,3,5"``, ``3`` or ``[1, 3]`` → sorted distinct positive integers."""
    out: set[int] = set()
    try:
        if isinstance(value, str):
            for part in value.replace(" ", "").split(","):
                lo, _, hi = part.partition("-")
                out.update(range(int(lo), int(hi or lo) + 1))
        else:
            items = [value] if isinstance(value, int) else list(value)
            if any(isinstance(v, bool) or not isinstance(v, int) for v in items):
                raise ValueError
            out.update(items)
    except (TypeError, ValueError):
        raise UserError(f"--n: expected positions like '1-9' or '1,3,5', got {value!r}") from None
    if not out or min(out) < 1:
        raise UserError(f"--n: positions must be positive (got {value!r})")
    return sorted(out)


def check(options: dict) -> dict:
    corpus = options["corpus"]
    if corpus is not None:
        from probekit.core.checks import input_file

        input_file("corpus", corpus)
    return {"n": parse_n(options["n"]), "corpus": None if corpus is None else str(corpus)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", default=OPTIONS["n"],
                        help="which positions to probe, e.g. 1-9 (default) or 1,3,5")
    parser.add_argument("--corpus", default=OPTIONS["corpus"],
                        help="real sentences instead of generated ones: .txt (one per line) or .conllu")


def _generated(seed: int, size: str) -> list[Example]:
    n_train, n_dev, n_gen = SIZES[size]
    grammar = Grammar.load("english")
    short = generate(grammar, n_train + n_dev, seed, keep=lambda s: MIN_LEN <= len(s.words) <= MAX_TRAIN_LEN)
    long = generate(grammar, n_gen, seed + 1, keep=lambda s: MAX_TRAIN_LEN < len(s.words) <= MAX_LEN)
    splits = ["train"] * n_train + ["dev"] * n_dev + ["gen"] * n_gen
    return [Example(words=s.words, tags=s.upos, meta={"split": sp}) for s, sp in zip(short + long, splits)]


def _from_corpus(path: str, seed: int) -> list[Example]:
    """Real sentences: the longest quarter is the generalization split, the rest 80/20 train/dev."""
    examples = read_sentences(path)
    lengths = sorted(ex.n_words for ex in examples)
    threshold = lengths[(3 * len(lengths)) // 4]
    rng = random.Random(seed)
    for ex in examples:
        if ex.n_words > threshold:
            ex.meta["split"] = "gen"
        else:
            ex.meta["split"] = "train" if rng.random() < 0.8 else "dev"
    return examples


def build(*, seed: int, size: str = "quick", n: list[int] = OPTIONS["n"], corpus: str | None = None,
          **_) -> ProbingData:
    if corpus:
        examples = _from_corpus(corpus, seed)
    else:
        examples = _generated(seed, size)
    ns = n
    skipped = {}
    for ex in examples:
        ex.meta["targets"] = [n - 1 if n <= ex.n_words else NO_TARGET for n in ns]
    for j, n in enumerate(ns):
        skipped[n] = sum(ex.meta["targets"][j] == NO_TARGET for ex in examples)
        if not any(ex.meta["targets"][j] != NO_TARGET and ex.meta["split"] == "train" for ex in examples):
            where = corpus or "the generated sentences"
            raise UserError(f"no training sentence in {where} has at least {n} words (n={n})")
    return ProbingData(examples=examples, keys=[{"n": n} for n in ns], splits=["train", "dev", "gen"],
                       notes={"sentences_shorter_than_n_skipped": skipped})


TASK = Task(name="nth_token", help="the n-th word of the sentence (Lin et al. 2019)", build=build,
            add_arguments=add_arguments, key_names=("n",), options=OPTIONS, check=check)
