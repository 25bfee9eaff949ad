"""Agreement (A1–A4) and reflexive (R1–R8) items for attention confusion scores (Lin et al. 2019 Table 2).

Every condition is a start symbol of the shipped grammars ``agr.gr`` or ``refl.gr``, so each sentence has its
condition's template by construction. A3 and A4 are each made of two parts, subject relatives (``A3-srel``)
and object relatives (``A3-orel``), reported separately and pooled (Lin's files mixed them, two to one).
Each item records its source word (the matrix auxiliary or the reflexive), its correct group (the subject's
Det N) and its distractor groups (every other Det N, in sentence order), all as word indices. The nouns of
one sentence are distinct lemmas, so the correct group never repeats a distractor's noun.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from probekit.core.errors import UserError, where
from probekit.core.examples import Example
from probekit.corpora.grammar import Grammar, Sentence, generate

FAMILIES = {"agreement": "agr", "reflexive": "refl"}
SOURCE_TAGS = {"MAux_sg", "MAux_pl", "Refl_m", "Refl_f"}
FEATURE_OF_TAG = {"N_sg": "sg", "N_pl": "pl", "N_m": "m", "N_f": "f"}


@dataclass(frozen=True)
class Condition:
    """One Table-2 row: its template parts (grammar start symbols) and what the table says about it."""

    name: str
    family: str                       # "agreement" or "reflexive"
    parts: tuple[str, ...]            # part names, e.g. ("A3-srel", "A3-orel"); (name,) when not split
    rc: bool
    match: dict                       # distractor kind → same number/gender as the subject?
    example: str
    lin: float                        # Lin et al.'s mean confusion (bert-base-uncased), for comparison

    @property
    def n_distractors(self) -> int:
        return len(self.match)

    @property
    def chance(self) -> float:
        """−log2 of the correct group's share when every candidate word gets equal attention (Det+N groups)."""
        return math.log2(1 + self.n_distractors)


def _start_symbol(part: str) -> str:
    return part.replace("-", "_")


CONDITIONS: dict[str, Condition] = {c.name: c for c in [
    Condition("A1", "agreement", ("A1",), False, {"pp": True}, "the cat near the dog does sleep", 0.97),
    Condition("A2", "agreement", ("A2",), False, {"pp": False}, "the cat near the dogs does sleep", 0.93),
    Condition("A3", "agreement", ("A3-srel", "A3-orel"), True, {"rc": True},
              "the cat that can comfort the dog does sleep / the cat that the dog can comfort does sleep", 0.85),
    Condition("A4", "agreement", ("A4-srel", "A4-orel"), True, {"rc": False},
              "the cat that can comfort the dogs does sleep / the cat that the dogs can comfort does sleep", 0.81),
    Condition("R1", "reflexive", ("R1",), False, {"obj": True}, "the lord could comfort the wizard by himself", 1.01),
    Condition("R2", "reflexive", ("R2",), False, {"obj": False}, "the lord could comfort the witch by himself", 0.92),
    Condition("R3", "reflexive", ("R3",), True, {"rc": True},
              "the lord that can hurt the prince could comfort himself", 0.99),
    Condition("R4", "reflexive", ("R4",), True, {"rc": False},
              "the lord that can hurt the princess could comfort himself", 0.89),
    Condition("R5", "reflexive", ("R5",), True, {"obj": True, "rc": True},
              "the lord that can hurt the prince could comfort the wizard by himself", 1.57),
    Condition("R6", "reflexive", ("R6",), True, {"obj": True, "rc": False},
              "the lord that can hurt the princess could comfort the wizard by himself", 1.52),
    Condition("R7", "reflexive", ("R7",), True, {"obj": False, "rc": True},
              "the lord that can hurt the prince could comfort the witch by himself", 1.49),
    Condition("R8", "reflexive", ("R8",), True, {"obj": False, "rc": False},
              "the lord that can hurt the princess could comfort the witch by himself", 1.39),
]}
PART_OF = {p: c.name for c in CONDITIONS.values() for p in c.parts}


def parse_conditions(spec: list[str] | str | None) -> list[str]:
    """Condition or part names (``A1``, ``A3-srel``), ``agreement``, ``reflexive`` or ``all`` → names in
    table order; comma- or space-separated."""
    if spec is None:
        return list(CONDITIONS)
    tokens = [t for s in ([spec] if isinstance(spec, str) else spec) for t in s.replace(",", " ").split()]
    chosen: list[str] = []
    for t in tokens:
        key = t.strip()
        upper = key.upper()
        if key.lower() == "all":
            names = list(CONDITIONS)
        elif key.lower() in FAMILIES:
            names = [c.name for c in CONDITIONS.values() if c.family == key.lower()]
        elif upper in CONDITIONS:
            names = [upper]
        elif any(p.lower() == key.lower() for p in PART_OF):
            names = [next(p for p in PART_OF if p.lower() == key.lower())]
        else:
            raise UserError(f"unknown condition {key!r}; choose from {', '.join(CONDITIONS)}, "
                            f"{', '.join(p for p in PART_OF if p not in CONDITIONS)}, agreement, reflexive, all")
        chosen += [n for n in names if n not in chosen]
    if not chosen:
        raise UserError("no condition given")
    return chosen


@dataclass
class Item:
    """One sentence to score: word indices of the source word, the correct group and the distractor groups."""

    words: list[str]
    source: int
    correct: list[int]
    distractors: list[list[int]]
    condition: str                    # pooled name (A3) or a name of one's own (external --data files)
    part: str                         # A3-srel, A3-orel, or the condition itself
    tags: list[str] | None = None
    features: dict = field(default_factory=dict)

    def to_example(self) -> Example:
        return Example(words=list(self.words), tags=None if self.tags is None else list(self.tags),
                       meta={"condition": self.condition, "part": self.part, "source": self.source,
                             "correct": list(self.correct), "distractors": [list(g) for g in self.distractors]})

    def record(self) -> dict:
        """The JSON Lines record written by ``python -m probekit.data``."""
        return {"condition": self.condition, "part": self.part, "sentence": " ".join(self.words),
                "words": list(self.words), "tags": self.tags, "source": self.source, "correct": self.correct,
                "distractors": self.distractors, "features": self.features}


def _lemmas(grammar: Grammar) -> dict[str, str]:
    """Plural → singular from the aligned ``N_sg`` / ``N_pl`` lists of agr.gr (identity elsewhere)."""
    if "N_sg" not in grammar.rules or "N_pl" not in grammar.rules:
        return {}
    sg = [r.children[0].symbol for r in grammar.rules["N_sg"]]
    pl = [r.children[0].symbol for r in grammar.rules["N_pl"]]
    if len(sg) != len(pl):
        raise ValueError(f"{grammar.source}: N_sg and N_pl must list the same nouns in the same order")
    return dict(zip(pl, sg))


def item_from_sentence(s: Sentence, condition: str, part: str) -> Item:
    """Read source, groups and features off a derivation (node labels Ante*/Dist*, source tags)."""
    sources = [i for i, t in enumerate(s.tags) if t in SOURCE_TAGS]
    antes = [n for n in s.nodes if n.label.startswith("Ante_")]
    dists = sorted((n for n in s.nodes if n.label.startswith("Dist")), key=lambda n: n.start)
    if len(sources) != 1 or len(antes) != 1:
        raise ValueError(f"{part}: expected one source word and one antecedent in {' '.join(s.words)!r}")
    subject = FEATURE_OF_TAG[s.tags[antes[0].head]]
    features = {"rc": "Rel" in s.tags, "subject": subject}
    for n in dists:
        kind = {"DistO": "obj", "DistR": "rc"}.get(n.label.split("_")[0]) or ("rc" if "Rel" in s.tags else "pp")
        value = FEATURE_OF_TAG[s.tags[n.head]]
        features[f"{kind}_distractor"] = value
        features[f"{kind}_match"] = value == subject
    if part.endswith("-srel") or part.endswith("-orel"):
        features["relative"] = "subject" if part.endswith("-srel") else "object"
    return Item(words=list(s.words), source=sources[0], correct=list(range(antes[0].start, antes[0].end)),
                distractors=[list(range(n.start, n.end)) for n in dists], condition=condition, part=part,
                tags=list(s.tags), features=features)


def _distinct_nouns(lemmas: dict[str, str]):
    def keep(s: Sentence) -> bool:
        heads = [n.head for n in s.nodes if n.label.startswith(("Ante_", "Dist"))]
        nouns = [lemmas.get(s.words[h], s.words[h]) for h in heads]
        return len(set(nouns)) == len(nouns)
    return keep


def part_sizes(condition: Condition, n: int) -> dict[str, int]:
    """``n`` sentences shared out over the condition's parts as evenly as possible."""
    k = len(condition.parts)
    return {p: n // k + (1 if i < n % k else 0) for i, p in enumerate(condition.parts)}


def generate_condition(name: str, n: int, seed: int = 0) -> list[Item]:
    """``n`` distinct items of condition ``name`` (or of one part, e.g. ``A3-srel``), deterministic in seed."""
    if name in PART_OF and name not in CONDITIONS:
        cond, sizes = CONDITIONS[PART_OF[name]], {name: n}
    else:
        cond = CONDITIONS[name]
        sizes = part_sizes(cond, n)
    grammar = Grammar.load(FAMILIES[cond.family])
    keep = _distinct_nouns(_lemmas(grammar))
    items: list[Item] = []
    for part, k in sizes.items():
        if k == 0:
            continue
        part_seed = zlib.crc32(f"{seed}:{part}".encode())   # each template its own stream
        for s in generate(grammar, k, part_seed, keep=keep, start=_start_symbol(part)):
            item = item_from_sentence(s, cond.name, part)
            got = {kind: item.features.get(f"{kind}_match") for kind in cond.match}
            if len(item.distractors) != cond.n_distractors or got != cond.match:
                raise ValueError(f"{grammar.source}: {part} produced {' '.join(s.words)!r}, which is not of "
                                 f"its template ({len(item.distractors)} distractor groups, matches {got})")
            items.append(item)
    return items


def generate_items(names: list[str], n: int, seed: int = 0) -> list[Item]:
    """Items of every named condition or part, ``n`` sentences each."""
    return [item for name in names for item in generate_condition(name, n, seed)]


def _ints(text: str, what: str, path, lineno: int) -> list[int]:
    try:
        return [int(t) for t in text.split()]
    except ValueError:
        raise UserError(f"{where(path, lineno)}: {what} must be whitespace-separated integers, "
                        f"got {text!r}") from None


def read_items(path: str | Path) -> list[Item]:
    """External items (``confusion --data``), one per line:
    ``sentence<TAB>source<TAB>correct indices<TAB>distractor indices``.

    Word indices are 0-based over the whitespace-separated words; the distractor field may be empty or
    missing (then the confusion is 0). Blank lines are skipped. The condition is named after the file. A bad
    line, or bytes that are not UTF-8, is one :class:`UserError` with ``file:line``.
    """
    from probekit.corpora.text import read_utf8_lines

    p = Path(path)
    name = p.stem
    items: list[Item] = []
    for lineno, line in enumerate(read_utf8_lines(p, "--data"), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) == 3:
            fields.append("")
        if len(fields) != 4:
            raise UserError(f"{where(p, lineno)}: expected 4 tab-separated fields (sentence, source index, "
                            f"correct group indices, distractor indices), got {len(fields)}")
        words = fields[0].split()
        if not words:
            raise UserError(f"{where(p, lineno)}: empty sentence")
        source = _ints(fields[1], "the source index", p, lineno)
        correct = _ints(fields[2], "the correct group", p, lineno)
        distractors = _ints(fields[3], "the distractor indices", p, lineno)
        if len(source) != 1:
            raise UserError(f"{where(p, lineno)}: the source field must be one index, got {fields[1]!r}")
        if not correct:
            raise UserError(f"{where(p, lineno)}: the correct group is empty")
        every = source + correct + distractors
        bad = [i for i in every if not 0 <= i < len(words)]
        if bad:
            raise UserError(f"{where(p, lineno)}: index {bad[0]} is outside the sentence's "
                            f"{len(words)} words (indices are 0-based)")
        if len(set(every)) != len(every):
            raise UserError(f"{where(p, lineno)}: an index appears twice (source, correct and distractor "
                            f"words must all differ)")
        items.append(Item(words=words, source=source[0], correct=correct,
                          distractors=[distractors] if distractors else [], condition=name, part=name))
    if not items:
        raise UserError(f"--data {p}: no items")
    return items
