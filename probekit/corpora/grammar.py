"""A small weighted context-free grammar engine: reads rules from ``grammars/*.gr`` (shipped) or a file,
samples deterministically from a seed, and keeps each word's tag, the derivation's constituents, and a gold
dependency tree.

Grammar file format (one rule per line, ``#`` starts a comment)::

    S    -> NP:nsubj *VP Punct:punct
    NP   -> Det:det *N @3 | Det:det Adj:amod *N @1
    N    -> cat | dog | archaeologist
    %upos N NOUN

- A symbol is a nonterminal if it appears on some left-hand side; every other symbol is a word.
- ``@w`` at the end of an alternative is its weight (default 1); alternatives for one LHS may span lines.
- ``*X`` marks the head child; ``X:rel`` names the dependency relation from X's head word to the head word of
  the constituent (UD labels). Unmarked: the first child is the head and other children get ``dep``.
- A word's ``tag`` is the nonterminal that produced it; ``%upos TAG UPOS`` maps tags to UD part-of-speech.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from functools import cached_property
from itertools import accumulate
from pathlib import Path

from probekit.core.errors import UserError, where
from importlib import resources
from probekit.corpora.text import read_utf8, split_lines

_WEIGHT = re.compile(r"^@(\d+(?:\.\d+)?)$")


@dataclass(frozen=True)
class Child:
    symbol: str
    head: bool = False
    rel: str | None = None


@dataclass(frozen=True)
class Rule:
    lhs: str
    children: tuple[Child, ...]
    weight: float
    line: int

    @cached_property
    def head_index(self) -> int:
        marked = [i for i, c in enumerate(self.children) if c.head]
        return marked[0] if marked else 0


@dataclass
class Node:
    """A constituent of a sampled sentence: words ``start:end`` with head word ``head`` (0-based)."""

    label: str
    start: int
    end: int
    head: int
    depth: int
    children: list["Node"] = field(default_factory=list, repr=False)


@dataclass
class Sentence:
    words: list[str]
    tags: list[str]
    upos: list[str]
    heads: list[int]          # 1-based head of each word, 0 = root (CoNLL-U convention)
    deprels: list[str]
    nodes: list[Node]         # every constituent, in pre-order

    def find(self, label: str) -> list[Node]:
        return [n for n in self.nodes if n.label == label]

    def index_of_tag(self, tag: str) -> list[int]:
        return [i for i, t in enumerate(self.tags) if t == tag]


class Grammar:
    """Rules by left-hand side, plus the tag → UPOS map."""

    def __init__(self, rules: list[Rule], upos: dict[str, str], source: str = "<grammar>"):
        self.rules: dict[str, list[Rule]] = {}
        for r in rules:
            self.rules.setdefault(r.lhs, []).append(r)
        # Cumulative weights once per symbol: sampling draws with them exactly as ``weights=`` would.
        self._cum_weights = {lhs: list(accumulate(r.weight for r in alts)) for lhs, alts in self.rules.items()}
        self.upos = upos
        self.source = source

    @classmethod
    def parse(cls, text: str, source: str = "<grammar>") -> "Grammar":
        rules: list[Rule] = []
        upos: dict[str, str] = {}
        for lineno, raw in enumerate(split_lines(text), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("%upos"):
                parts = line.split()
                if len(parts) < 3:
                    raise UserError(f"{where(source, lineno)}: '%upos' needs a tag and a UPOS")
                for tag in parts[1:-1]:
                    upos[tag] = parts[-1]
                continue
            if "->" not in line:
                raise UserError(f"{where(source, lineno)}: expected 'LHS -> symbols', got {raw.strip()!r}")
            lhs, rhs = (s.strip() for s in line.split("->", 1))
            if not lhs or " " in lhs:
                raise UserError(f"{where(source, lineno)}: bad left-hand side {lhs!r}")
            for alt in rhs.split("|"):
                toks = alt.split()
                weight = 1.0
                if toks and _WEIGHT.match(toks[-1]):
                    weight = float(toks.pop()[1:])
                if not toks:
                    raise UserError(f"{where(source, lineno)}: empty alternative for {lhs}")
                children = []
                for t in toks:
                    head = t.startswith("*") and len(t) > 1
                    t = t[1:] if head else t
                    sym, rel = (t.split(":", 1) if ":" in t[1:] else (t, None))
                    children.append(Child(sym, head, rel))
                if sum(c.head for c in children) > 1:
                    raise UserError(f"{where(source, lineno)}: more than one head (*) in an alternative")
                rules.append(Rule(lhs, tuple(children), weight, lineno))
        if not rules:
            raise UserError(f"{source}: no rules")
        return cls(rules, upos, source)

    @classmethod
    def load(cls, name_or_path: str | Path) -> "Grammar":
        """A grammar by path, or by name: ``probekit/corpora/grammars/<name>.gr`` shipped with probekit."""
        p = Path(name_or_path)
        if p.is_file():
            return cls.parse(read_utf8(p, "grammar"), str(p))
        shipped = resources.files("probekit.corpora.grammars") / f"{name_or_path}.gr"
        if not shipped.is_file():
            known = ", ".join(grammar_names())
            raise UserError(f"no grammar {name_or_path!r}: not a file, and not a shipped grammar ({known})")
        return cls.parse(shipped.read_text(encoding="utf-8"), f"grammars/{name_or_path}.gr")

    def sample(self, rng: random.Random, start: str = "S", max_depth: int = 40) -> Sentence:
        """One sentence. Raises ``RecursionError`` past ``max_depth`` (callers resample)."""
        words: list[str] = []
        tags: list[str] = []
        heads: dict[int, tuple[int, str]] = {}
        nodes: list[Node] = []
        rules, cum_weights, choices = self.rules, self._cum_weights, rng.choices

        def expand(symbol: str, depth: int) -> Node:
            if depth > max_depth:
                raise RecursionError("grammar derivation too deep")
            alts = rules[symbol]
            rule = choices(alts, cum_weights=cum_weights[symbol])[0] if len(alts) > 1 else alts[0]
            node = Node(symbol, len(words), len(words), -1, depth)
            nodes.append(node)
            child_heads: list[int] = []
            for c in rule.children:
                if c.symbol in rules:
                    sub = expand(c.symbol, depth + 1)
                    node.children.append(sub)
                    child_heads.append(sub.head)
                else:
                    child_heads.append(len(words))
                    words.append(c.symbol)
                    tags.append(symbol)
            node.end = len(words)
            h = rule.head_index
            node.head = child_heads[h]
            for i, (c, ch) in enumerate(zip(rule.children, child_heads)):
                if i != h:
                    heads[ch] = (node.head, c.rel or "dep")
            return node

        root = expand(start, 0)
        head_list = [0] * len(words)
        rels = ["root"] * len(words)
        for dep, (head, rel) in heads.items():
            head_list[dep] = head + 1
            rels[dep] = rel
        head_list[root.head] = 0
        rels[root.head] = "root"
        return Sentence(words, tags, [self.upos.get(t, t) for t in tags], head_list, rels, nodes)


def generate(grammar: Grammar, n: int, seed: int, *, keep=None, start: str = "S", dedupe: bool = True,
             max_tries: int | None = None) -> list[Sentence]:
    """``n`` distinct sentences accepted by ``keep`` (all, if None), deterministic in ``seed``."""
    rng = random.Random(seed)
    out: list[Sentence] = []
    seen: set[tuple[str, ...]] = set()
    tries = 0
    limit = max_tries if max_tries is not None else 200 * n + 1000
    while len(out) < n:
        tries += 1
        if tries > limit:
            raise UserError(f"{grammar.source}: only {len(out)} of {n} sentences found after {limit} tries; "
                            f"the grammar or filter is too narrow")
        try:
            s = grammar.sample(rng, start)
        except RecursionError:
            continue
        key = tuple(s.words)
        if (dedupe and key in seen) or (keep is not None and not keep(s)):
            continue
        seen.add(key)
        out.append(s)
    return out


def grammar_names() -> list[str]:
    """The grammars shipped with probekit, by name."""
    return sorted(f.name[:-3] for f in resources.files("probekit.corpora.grammars").iterdir() if f.name.endswith(".gr"))


def generate_treebank(n: int, *, seed: int = 0, grammar: str | Path = "english") -> list:
    """``n`` distinct generated sentences with their gold trees, as CoNLL-U-like Examples (``tags`` = UPOS,
    ``meta`` = heads, deprels, text, sent_id, source): data for the dependency analyses without a treebank."""
    from probekit.core.examples import Example

    return [Example(words=list(s.words), tags=list(s.upos),
                    meta={"heads": list(s.heads), "deprels": list(s.deprels), "text": " ".join(s.words),
                          "sent_id": f"generated-{i + 1}", "source": f"{grammar} grammar, seed {seed}"})
            for i, s in enumerate(generate(Grammar.load(grammar), n, seed))]
