"""The grammar engine: parsing, determinism, tags and gold dependency trees."""
import random

import pytest

from probekit.core.errors import UserError
from probekit.corpora.grammar import Grammar, generate

TOY = """
S  -> NP:nsubj *VP Punct:punct
NP -> Det:det *N @3 | *Name
VP -> *V NP:obj
Det -> the
N -> dog | cat
Name -> mary
V -> saw
Punct -> .
%upos Det DET
%upos N NOUN
"""


def test_sampling_is_deterministic_and_tagged():
    g = Grammar.parse(TOY)
    a = [g.sample(random.Random(7)).words for _ in range(1)]
    b = [g.sample(random.Random(7)).words for _ in range(1)]
    assert a == b
    s = generate(g, 5, seed=3)
    assert [x.words for x in s] == [x.words for x in generate(g, 5, seed=3)]
    assert len({tuple(x.words) for x in s}) == 5
    for x in s:
        assert len(x.words) == len(x.tags) == len(x.upos) == len(x.heads)
        for w, t in zip(x.words, x.tags):
            assert w in {"the": ["Det"], "dog": ["N"], "cat": ["N"], "mary": ["Name"], "saw": ["V"],
                         ".": ["Punct"]} and t == {"the": "Det", "dog": "N", "cat": "N", "mary": "Name",
                                                   "saw": "V", ".": "Punct"}[w]


def test_dependency_tree_from_head_marks():
    g = Grammar.parse(TOY)
    s = next(x for x in generate(g, 9, seed=1) if x.words == ["the", "dog", "saw", "mary", "."])
    assert s.heads == [2, 3, 0, 3, 3]
    assert s.deprels == ["det", "nsubj", "root", "obj", "punct"]
    assert [n.label for n in s.nodes][:2] == ["S", "NP"]
    assert s.find("VP")[0].start == 2 and s.find("VP")[0].head == 2


def test_english_grammar_trees_are_well_formed():
    g = Grammar.load("english")
    for s in generate(g, 200, seed=0):
        assert s.heads.count(0) == 1
        for i in range(len(s.words)):     # following heads from any word reaches the root without a cycle
            seen, j = set(), i
            while s.heads[j] != 0:
                assert j not in seen
                seen.add(j)
                j = s.heads[j] - 1
        assert "dep" not in s.deprels


def test_bad_grammar_lines_name_file_and_line(tmp_path):
    p = tmp_path / "bad.gr"
    p.write_text("S -> A B\nthis is not a rule\n")
    with pytest.raises(UserError, match=r"bad.gr:2"):
        Grammar.load(p)
    with pytest.raises(UserError, match="no grammar"):
        Grammar.load("no_such_grammar")
