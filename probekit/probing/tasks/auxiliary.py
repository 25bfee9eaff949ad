"""The main-auxiliary task (Lin et al. 2019): which word is the main clause's auxiliary?

Sentences come from the shipped grammar ``aux.gr``. In training and development sentences no auxiliary comes before the main
one ("the cat will eat the fish that can swim"), so "the first auxiliary" would do. The generalization split
holds only sentences whose subject carries a relative clause, so that another auxiliary precedes the main one
("the cat that can swim will eat"): a probe that read linear order fails there, one that read structure does not.
"""
from __future__ import annotations

from probekit.corpora.grammar import Grammar, Sentence, generate
from probekit.probing.splits import OPTIONS, add_split_sizes, check_split_sizes, example, split_sizes as sizes_of
from probekit.probing.registry import ProbingData, Task


def main_aux(s: Sentence) -> int:
    return s.index_of_tag("MAux")[0]


def rc_before_main(s: Sentence) -> bool:
    """The subject's relative clause (and its auxiliary) come before the main auxiliary."""
    return "Rel" in s.tags[:main_aux(s)]


def build(*, seed: int, size: str = "quick", split_sizes=None, **_) -> ProbingData:
    n_train, n_dev, n_gen = sizes_of(split_sizes, size)
    grammar = Grammar.load("aux")
    plain = generate(grammar, n_train + n_dev, seed, keep=lambda s: not rc_before_main(s))
    gen = generate(grammar, n_gen, seed + 1, keep=rc_before_main)
    splits = ["train"] * n_train + ["dev"] * n_dev + ["gen"] * n_gen
    examples = [example(s, sp, main_aux(s)) for s, sp in zip(plain + gen, splits)]
    return ProbingData(examples=examples, keys=[{}], splits=["train", "dev", "gen"],
                       notes={"grammar": "aux", "generalization": "subject relative clause before the main auxiliary"})


TASK = Task(name="auxiliary", help="the main clause's auxiliary (Lin et al. 2019)", build=build,
            add_arguments=add_split_sizes, options=OPTIONS, check=check_split_sizes)
