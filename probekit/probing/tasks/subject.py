"""The subject-noun task (Lin et al. 2019): which word is the head noun of the subject?

Sentences come from the shipped grammar ``sbjn.gr``. In training and development sentences no noun comes before the subject's
head noun ("the big dog can run"), so "the first noun" would do. Two generalization splits, reported apart,
put a noun first: a compound modifier ("the guard dog can run", ``gen_compound``) or a possessor ("the queen 's
dog can run", ``gen_possessive``; "'s" is a word of its own and word alignment handles its pieces).
"""
from __future__ import annotations

from probekit.corpora.grammar import Grammar, Sentence, generate
from probekit.probing.splits import OPTIONS, add_split_sizes, check_split_sizes, example, split_sizes as sizes_of
from probekit.probing.registry import ProbingData, Task


def head_noun(s: Sentence) -> int:
    return s.index_of_tag("MN")[0]


def kind(s: Sentence) -> str:
    """plain (no noun before the head noun), compound, possessive, both, or "repeat" (a noun before the head
    noun is the head noun itself, "the dog 's dog"; both of the last are used nowhere)."""
    t = head_noun(s)
    before = set(s.tags[:t])
    if any(s.words[i] in (s.words[t], s.words[t] + "s") for i in range(t) if s.tags[i] in ("NMod", "NPoss")):
        return "repeat"
    compound, possessive = "NMod" in before, "NPoss" in before
    return {(False, False): "plain", (True, False): "compound", (False, True): "possessive"}.get(
        (compound, possessive), "both")


def build(*, seed: int, size: str = "quick", split_sizes=None, **_) -> ProbingData:
    n_train, n_dev, n_gen = sizes_of(split_sizes, size)
    grammar = Grammar.load("sbjn")
    plain = generate(grammar, n_train + n_dev, seed, keep=lambda s: kind(s) == "plain")
    compound = generate(grammar, n_gen, seed + 1, keep=lambda s: kind(s) == "compound")
    possessive = generate(grammar, n_gen, seed + 2, keep=lambda s: kind(s) == "possessive")
    splits = ["train"] * n_train + ["dev"] * n_dev + ["gen_compound"] * n_gen + ["gen_possessive"] * n_gen
    examples = [example(s, sp, head_noun(s)) for s, sp in zip(plain + compound + possessive, splits)]
    return ProbingData(examples=examples, keys=[{}], splits=["train", "dev", "gen_compound", "gen_possessive"],
                       notes={"grammar": "sbjn"})


TASK = Task(name="subject", help="the head noun of the subject (Lin et al. 2019)", build=build,
            add_arguments=add_split_sizes, options=OPTIONS, check=check_split_sizes)
