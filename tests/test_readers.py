"""Readers: one UTF-8 reader that ends lines at \\n and \\r\\n only, errors with file:line, and words that the
tokenizer turns into no token keep their unit (read as the unknown token) instead of vanishing."""
from __future__ import annotations

import numpy as np
import pytest

import probekit as pk
from probekit.core.encoder import load_encoder
from probekit.core.errors import UserError
from probekit.core.examples import Example
from probekit.core.extraction import encode_examples, extract
from probekit.corpora.conllu import read_conllu
from probekit.corpora.documents import read_documents
from probekit.corpora.gap import read_gap
from probekit.corpora.grammar import Grammar
from probekit.corpora.sentences import read_sentences
from probekit.corpora.text import read_text, read_utf8_lines, split_lines

#: Characters str.splitlines() also treats as line ends; inside a sentence they are not.
NOT_LINE_ENDS = ["\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"]

CONLLU = ("# sent_id = a\n# text = One\u2028two.\n"
          "1\tOne\tone\tNUM\t_\t_\t0\troot\t_\t_\n2\ttwo\ttwo\tNUM\t_\t_\t1\tdep\t_\t_\n3\t.\t.\tPUNCT\t_\t_\t1\tpunct\t_\t_\n"
          "\n# newdoc\n# sent_id = b\n# text = Dogs\u0085bark.\n"
          "1\tDogs\tdog\tNOUN\t_\t_\t2\tnsubj\t_\t_\n2\tbark\tbark\tVERB\t_\t_\t0\troot\t_\t_\n")


def write(tmp_path, name, text, encoding="utf-8"):
    p = tmp_path / name
    p.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return p


# --- line splitting ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("char", NOT_LINE_ENDS)
def test_lines_end_only_at_newline(char):
    text = f"first{char}still first\r\nsecond\nthird\n"
    assert len(text.splitlines()) > 3            # what the readers used to do
    assert split_lines(text) == [f"first{char}still first", "second", "third"]


def test_split_lines_edges():
    assert split_lines("") == []
    assert split_lines("a") == ["a"] and split_lines("a\n") == ["a"] and split_lines("a\n\n") == ["a", ""]
    assert split_lines("a\r\nb\r\n") == ["a", "b"] and split_lines("a\rb\n") == ["a\rb"]


def test_text_corpus_with_u0085_keeps_one_sentence_per_line(tmp_path):
    """imdb_labelled.txt has U+0085 inside a review: it separates words, never sentences."""
    p = write(tmp_path, "reviews.txt", "A very\u0085very good film.\r\n\nBad\u2028acting .\n")
    got = read_text(p)
    assert [ex.words for ex in got] == [["A", "very", "very", "good", "film."], ["Bad", "acting", "."]]
    assert [ex.meta["source"] for ex in got] == [f"{p}:1", f"{p}:3"]
    assert [ex.words for ex in pk.read_text(p)] == [ex.words for ex in got]
    assert [ex.words for ex in read_sentences(p)] == [ex.words for ex in got]


def test_bom_is_dropped(tmp_path):
    p = write(tmp_path, "bom.txt", "\ufeffhello world\n")
    assert read_text(p)[0].words == ["hello", "world"]


def test_conllu_with_u2028_in_text_comment_is_valid(tmp_path):
    p = write(tmp_path, "u.conllu", CONLLU)
    got = read_conllu(p)
    assert [ex.words for ex in got] == [["One", "two", "."], ["Dogs", "bark"]]
    assert got[0].meta["text"] == "One\u2028two." and got[1].meta["text"] == "Dogs\u0085bark."
    assert [ex.meta["source"] for ex in got] == [f"{p}:1", f"{p}:7"]
    assert [ex.words for ex in read_sentences(p)] == [ex.words for ex in got]


def test_conllu_error_after_u2028_names_the_right_line(tmp_path):
    bad = CONLLU.replace("2\tbark\tbark\tVERB\t_\t_\t0", "2\tbark\tbark\tVERB\t_\t_\tX")
    p = write(tmp_path, "bad.conllu", bad)
    with pytest.raises(UserError, match=rf"^{p}:11: HEAD 'X' is not an integer$"):
        read_conllu(p)
    with pytest.raises(UserError, match=r":11: .*\(use --skip-bad to skip such sentences\)$"):
        read_conllu(p, offer_skip=True)
    problems = []
    assert len(read_conllu(p, skip_bad=True, problems=problems)) == 1 and problems[0].startswith(f"{p}:11:")


def test_documents_from_conllu_line_up_after_u2028(tmp_path):
    p = write(tmp_path, "docs.conllu", CONLLU)
    docs, how = read_documents(p)
    assert [[ex.words for ex in d] for d in docs] == [[["One", "two", "."]], [["Dogs", "bark"]]]
    assert "newdoc" in how


def test_documents_from_text(tmp_path):
    p = write(tmp_path, "docs.txt", "a b\u2029c\nd e\n\nf g\n")
    docs, _ = read_documents(p)
    assert [[ex.words for ex in d] for d in docs] == [[["a", "b", "c"], ["d", "e"]], [["f", "g"]]]


def test_gap_rows_are_not_split_at_u2028(tmp_path):
    header = "ID\tText\tPronoun\tPronoun-offset\tA\tA-offset\tA-coref\tB\tB-offset\tB-coref\tURL\n"
    text = "Anna met\u2028Bea and she smiled."
    row = (f"t1\t{text}\tshe\t{text.index('she')}\tAnna\t0\tTRUE\tBea\t{text.index('Bea')}\tFALSE\thttp://x\n")
    p = write(tmp_path, "gap.tsv", header + row)
    got = read_gap(p)
    assert len(got) == 1 and "Bea" in got[0].words


# --- bad files --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("reader, name", [(read_text, "c.txt"), (read_sentences, "c.txt"),
                                          (read_conllu, "c.conllu"), (read_sentences, "c.conllu"),
                                          (lambda p: read_documents(p), "c.txt"), (read_gap, "c.tsv"),
                                          (Grammar.load, "g.gr")])
def test_non_utf8_is_one_line_with_file_and_line(tmp_path, reader, name):
    p = write(tmp_path, name, b"first line\nsecond caf\xe9 line\n")
    with pytest.raises(UserError) as info:
        reader(p)
    msg = str(info.value)
    assert msg.startswith(f"{p}:2: not UTF-8 text") and "\n" not in msg


@pytest.mark.parametrize("reader", [read_text, read_sentences, read_conllu, read_utf8_lines])
def test_folder_or_missing_file_says_which(tmp_path, reader):
    with pytest.raises(UserError, match="is a folder, not a file"):
        reader(tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        reader(tmp_path / "missing.txt")


def test_empty_text_corpus_is_an_error(tmp_path):
    with pytest.raises(UserError, match="is empty"):
        read_text(write(tmp_path, "e.txt", "\n  \n"))


def test_user_grammar_lines_end_at_newline(tmp_path):
    p = write(tmp_path, "g.gr", "S -> NP VP\nNP -> 'the' 'dog'\u2028\nVP -> 'barks'\n")
    g = Grammar.load(p)
    assert {r.lhs for rules in g.rules.values() for r in rules} == {"S", "NP", "VP"}


# --- words that become no token -------------------------------------------------------------------------------

ZERO = ["\u200b", "\u00ad"]     # zero-width space, lone soft hyphen


@pytest.fixture(scope="module", params=["bert", "roberta", "default"])
def encoder(request, tiny_model_dirs):
    if request.param == "default":
        return load_encoder(None, attention=True)
    return load_encoder(str(tiny_model_dirs[request.param]), attention=True)


@pytest.mark.parametrize("char", ZERO)
def test_zero_token_word_keeps_its_unit_in_word_lists(encoder, char, capsys):
    words = ["the", char, "dog", "barks"]
    ex = Example(words=words, meta={"source": "c.txt:7"})
    e, = encode_examples(encoder, [ex])
    a = e.alignment
    assert [u for u, s in zip(a.units, a.special) if not s] == words
    assert a.word_ids[~a.special].tolist() == [0, 1, 2, 3]
    unit_tokens = [np.asarray(e.input_ids)[a.token_unit == u].tolist() for u in range(a.n_units)]
    if encoder.tokenizer(char, add_special_tokens=False)["input_ids"] == []:   # BERT's normaliser drops it
        assert unit_tokens[2] == [encoder.tokenizer.unk_token_id]
        assert "c.txt:7" in capsys.readouterr().err
    acts = list(extract(encoder, [ex], attention=True))
    assert acts[0].hidden.shape[1] == len(words) + int(a.special.sum())
    np.testing.assert_allclose(acts[0].attention.array.sum(-1), 1.0, atol=1e-4)


@pytest.mark.parametrize("char", ZERO)
def test_zero_token_word_keeps_its_unit_in_raw_text(encoder, char):
    text = f"the {char} dog barks"
    e, = encode_examples(encoder, [Example(None, text=text)], warn=False)
    a = e.alignment
    assert [u for u, s in zip(a.units, a.special) if not s] == ["the", char, "dog", "barks"]
    assert a.word_ids[~a.special].tolist() == [0, 1, 2, 3]


def test_zero_token_words_in_pairs_and_alone(encoder):
    ex = Example(words=["\u200b"], words_b=["a", "\u00ad", "b"])
    e, = encode_examples(encoder, [ex], warn=False)
    a = e.alignment
    assert [u for u, s in zip(a.units, a.special) if not s] == ["\u200b", "a", "\u00ad", "b"]
    assert a.word_ids[~a.special].tolist() == [0, 1, 2, 3]


def test_ordinary_words_are_not_rewritten(encoder):
    """Only words with no token are touched: the ids equal the tokenizer's own."""
    words = ["the", "dog", "barks"]
    e, = encode_examples(encoder, [Example(words=words)])
    assert e.input_ids == encoder.tokenizer(words, is_split_into_words=True)["input_ids"]


def test_deps_scores_a_treebank_with_zero_token_words(tiny_model_dirs, tmp_path):
    """The deps pipeline used to crash on such a word (word indices shifted against the tree)."""
    p = write(tmp_path, "z.conllu", "# text = the \u200b dog barks\n"
              "1\tthe\tthe\tDET\t_\t_\t3\tdet\t_\t_\n2\t\u200b\t_\tX\t_\t_\t3\tdep\t_\t_\n"
              "3\tdog\tdog\tNOUN\t_\t_\t4\tnsubj\t_\t_\n4\tbarks\tbark\tVERB\t_\t_\t0\troot\t_\t_\n\n"
              "# text = a dog barks\n1\ta\ta\tDET\t_\t_\t2\tdet\t_\t_\n"
              "2\tdog\tdog\tNOUN\t_\t_\t3\tnsubj\t_\t_\n3\tbarks\tbark\tVERB\t_\t_\t0\troot\t_\t_\n")
    assert read_conllu(p)[0].words[1] == "\u200b"
    result = pk.deps(conllu=p, model=str(tiny_model_dirs["bert"]), min_count=1, heatmaps=0, quiet=True)
    assert len(result.frame) > 0 and result.frame["value"].notna().any()
