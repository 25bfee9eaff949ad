"""One text reader for every input file: strict UTF-8, and invisible words left out, with one warning per file."""
from __future__ import annotations

import json

import pytest

from probekit.corpora.labelled import read_file
from probekit.core.errors import UserError
from probekit.core.examples import Example
from probekit.corpora.text import drop_invisible, is_invisible, read_text


@pytest.mark.parametrize("name, body", [
    ("d.tsv", "un film charmant\tpos\ntrès mauvais \xe9t\xe9\tneg\n"),
    ("d.jsonl", '{"text": "un film charmant", "label": "pos"}\n{"text": "tr\xe8s mauvais", "label": "neg"}\n'),
    ("d.csv", "text,label\nfine,pos\nbien s\xfbr,neg\n"),
])
def test_a_stray_byte_is_file_and_line_never_latin1(tmp_path, name, body):
    p = tmp_path / name
    lines = body.split("\n")
    bad = next(i for i, l in enumerate(lines, 1) if any(ord(c) > 127 for c in l))
    # every line but the bad one is UTF-8; the bad line carries latin-1 bytes
    p.write_bytes(b"\n".join(l.encode("latin-1") if i == bad else l.encode("utf-8")
                             for i, l in enumerate(lines, 1)))
    with pytest.raises(UserError, match=rf"{name}:{bad}: not UTF-8 text \(byte 0x"):
        read_file(p, what="--train")


def test_a_bom_is_allowed_and_accents_survive(tmp_path):
    p = tmp_path / "d.tsv"
    p.write_bytes("\ufeffun film très réussi\tpos\n".encode("utf-8"))
    (ex,) = read_file(p, what="--train")
    assert ex.text == "un film très réussi" and ex.meta["label"] == "pos"


def test_invisible_words_are_left_out_once_per_file_with_rationales_aligned(tmp_path, capsys):
    p = tmp_path / "d.jsonl"
    rows = [{"words": ["a", "\u200b", "fine", "film"], "label": "pos", "rationale": [0, 1, 1, 0]},
            {"text": "bad \u00ad \u200b\u200d film", "label": "neg"},
            {"text": "plain text", "label": "neg"}]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    a, b, c = read_file(p, what="--train")
    assert a.words == ["a", "fine", "film"] and a.meta["rationale"] == [0, 1, 0]
    assert b.text == "bad film" and c.text == "plain text"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "3 word(s) made only of invisible characters" in err[0]
    assert "left out of 2 input(s)" in err[0] and f"first: {p}:1" in err[0]


def test_the_same_file_read_again_warns_once_but_inline_inputs_warn_every_time(tmp_path, capsys):
    p = tmp_path / "again.tsv"
    p.write_text("a \u200b film\tpos\n", encoding="utf-8")
    for _ in range(3):                                   # a named set read for train, dev and test
        assert read_file(p, what="--train")[0].text == "a film"
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    inline = [Example(words=None, text="x \u200b y", meta={"source": "--text 1"})]
    for _ in range(2):
        assert drop_invisible(inline, "--text")[0].text == "x y"
    assert len(capsys.readouterr().err.strip().splitlines()) == 2


def test_a_line_of_only_invisible_characters_is_an_error_naming_it(tmp_path):
    p = tmp_path / "d.tsv"
    p.write_text("fine film\tpos\n\u200b \u00ad\tneg\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"d.tsv:2: only invisible characters"):
        read_file(p, what="--train")


def test_a_corpus_skips_invisible_lines_and_words(tmp_path, capsys):
    p = tmp_path / "c.txt"
    p.write_text("the cat \u200b sat\n\u200b\nbirds sing\n", encoding="utf-8")
    sents = read_text(p)
    assert [s.words for s in sents] == [["the", "cat", "sat"], ["birds", "sing"]]
    assert capsys.readouterr().err.count("warning") == 1


def test_visible_text_is_untouched_and_annotated_examples_are_kept_whole():
    assert not is_invisible("café") and not is_invisible("x\u200b") and is_invisible("\u200b\u00ad\ufeff")
    plain = [Example(words=["a", "b"], meta={"source": "x"})]
    assert drop_invisible(plain, "x") == plain
    tagged = [Example(words=["a", "\u200b"], tags=["DET", "X"])]
    assert drop_invisible(tagged, "x")[0].words == ["a", "\u200b"]


def test_word_vectors_are_read_strictly(tmp_path):
    from probekit.syntax.word_vectors import glove_vectors

    p = tmp_path / "v.txt"
    p.write_bytes(b"the 0.1 0.2\ncaf\xe9 0.3 0.4\n")
    with pytest.raises(UserError, match=r"v.txt:2: not UTF-8 text"):
        glove_vectors(p, {"the": 0})


def test_the_tsv_message_says_what_separates_the_fields(tmp_path):
    p = tmp_path / "d.tsv"
    p.write_text("just one field\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"d.tsv:1: expected 2 tab-separated fields \(text, label\) or 3"):
        read_file(p, what="--train")


def test_example_lists_from_python_lose_invisible_words_too(capsys):
    from probekit.corpora.labelled import load_split

    (ex,) = load_split([Example(words=["good", "\u200b", "film"], meta={"label": "pos"})], what="--data")
    assert ex.words == ["good", "film"] and "--data: 1 word(s)" in capsys.readouterr().err
