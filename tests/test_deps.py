"""CoNLL-U reading and validation, per-head dependency accuracy, the poss rule, offset baselines, the deps CLI."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import importlib

deps = importlib.import_module("probekit.deps")  # the command module (pk.deps is the function)
from probekit.corpora.conllu import read_conllu
from probekit.syntax.dependency_heads import (DependencyHeadScores, head_predictions, offset_predictions, parse_offsets,
                               scored_positions)
from probekit.core.errors import UserError

GOOD = """\
# sent_id = s1
# text = The dog barks.
1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_
2\tdog\tdog\tNOUN\tNN\t_\t3\tnsubj\t_\t_
3\tbarks\tbark\tVERB\tVBZ\t_\t0\troot\t_\t_
4\t.\t.\tPUNCT\t.\t_\t3\tpunct\t_\t_

# sent_id = s2
# text = John's cat can't sleep.
1-2\tJohn's\t_\t_\t_\t_\t_\t_\t_\t_
1\tJohn\tJohn\tPROPN\tNNP\t_\t3\tnmod:poss\t_\t_
2\t's\t's\tPART\tPOS\t_\t1\tcase\t_\t_
3\tcat\tcat\tNOUN\tNN\t_\t6\tnsubj\t_\t_
4-5\tcan't\t_\t_\t_\t_\t_\t_\t_\t_
4\tca\tcan\tAUX\tMD\t_\t6\taux\t_\t_
5\tn't\tnot\tPART\tRB\t_\t6\tadvmod\t_\t_
5.1\tsleeping\tsleep\tVERB\tVBG\t_\t_\t_\t6:dep\t_
6\tsleep\tsleep\tVERB\tVB\t_\t0\troot\t_\t_
7\t.\t.\tPUNCT\t.\t_\t6\tpunct\t_\t_
"""


def _write(tmp_path, text, name="t.conllu"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


# ---- reader -------------------------------------------------------------------------------------------------
def test_reader_keeps_words_tags_heads_and_skips_ranges_and_empty_nodes(tmp_path):
    ex = read_conllu(_write(tmp_path, GOOD))
    assert [e.meta["sent_id"] for e in ex] == ["s1", "s2"]
    assert ex[0].words == ["The", "dog", "barks", "."]
    assert ex[0].tags == ["DET", "NOUN", "VERB", "PUNCT"]
    assert ex[0].meta["heads"] == [2, 3, 0, 3]
    assert ex[0].meta["text"] == "The dog barks."
    assert ex[1].words == ["John", "'s", "cat", "ca", "n't", "sleep", "."]
    assert ex[1].meta["deprels"] == ["nmod:poss", "case", "nsubj", "aux", "advmod", "root", "punct"]
    assert ex[1].meta["heads"] == [3, 1, 6, 6, 6, 0, 6]


def _line_of(text, needle):
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


BAD_CASES = {
    "columns": ("2\tdog\tdog\tNOUN\tNN\t_\t3\tnsubj\t_\t_", "2\tdog\tdog\tNOUN\tNN\t_\t3\tnsubj\t_", "10 tab"),
    "head-not-int": ("2\tdog\tdog\tNOUN\tNN\t_\t3\tnsubj\t_\t_", "2\tdog\tdog\tNOUN\tNN\t_\tx\tnsubj\t_\t_",
                     "not an integer"),
    "head-range": ("2\tdog\tdog\tNOUN\tNN\t_\t3\tnsubj\t_\t_", "2\tdog\tdog\tNOUN\tNN\t_\t9\tnsubj\t_\t_",
                   "out of range"),
}


@pytest.mark.parametrize("case", ["columns", "head-not-int", "head-range"])
def test_malformed_line_is_reported_with_file_and_line(tmp_path, case):
    old, new, words = BAD_CASES[case]
    text = GOOD.replace(old, new)
    path = _write(tmp_path, text)
    with pytest.raises(UserError) as err:
        read_conllu(path)
    assert f"{path}:{_line_of(text, new.split(chr(9))[0] + chr(9) + 'dog')}:" in str(err.value)
    assert words in str(err.value)


def test_cycle_and_missing_root_are_errors(tmp_path):
    cyc = GOOD.replace("2\tdog\tdog\tNOUN\tNN\t_\t3\tnsubj", "2\tdog\tdog\tNOUN\tNN\t_\t1\tnsubj")
    cyc = cyc.replace("1\tThe\tthe\tDET\tDT\t_\t2\tdet", "1\tThe\tthe\tDET\tDT\t_\t2\tdet")
    path = _write(tmp_path, cyc)
    with pytest.raises(UserError, match=r"cycle.*words 1, 2"):
        read_conllu(path)
    noroot = GOOD.replace("3\tbarks\tbark\tVERB\tVBZ\t_\t0\troot", "3\tbarks\tbark\tVERB\tVBZ\t_\t2\troot")
    path = _write(tmp_path, noroot, "noroot.conllu")
    with pytest.raises(UserError) as err:
        read_conllu(path)
    assert f"{path}:1:" in str(err.value) and "no root" in str(err.value)


def test_skip_bad_skips_and_counts(tmp_path):
    text = GOOD.replace("2\tdog\tdog\tNOUN\tNN\t_\t3\tnsubj", "2\tdog\tdog\tNOUN\tNN\t_\t7\tnsubj")
    problems: list[str] = []
    ex = read_conllu(_write(tmp_path, text), skip_bad=True, problems=problems)
    assert [e.meta["sent_id"] for e in ex] == ["s2"]
    assert len(problems) == 1 and ":4:" in problems[0] and "out of range" in problems[0]


def test_cli_reports_malformed_input_with_exit_status_2(tmp_path, capsys):
    text = GOOD.replace("3\tbarks\tbark\tVERB\tVBZ\t_\t0\troot", "3\tbarks\tbark\tVERB\tVBZ\t_\tzero\troot")
    path = _write(tmp_path, text)
    out = tmp_path / "run"
    assert deps.main(["--conllu", str(path), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("probekit: error: ")
    assert f"{path}:5:" in err[0] and "HEAD 'zero'" in err[0]
    assert not out.exists()


# ---- scoring on hand-built maps --------------------------------------------------------------------------------
def _map(n, edges, L=1, H=1, layer=0, head=0, base=None):
    """Word-level map [L,H,n+2,n+2] ([CLS] first, [SEP] last): rows get most mass on their special tokens and
    themselves (which must be ignored), then `edges` word → word (0-based) next."""
    U = n + 2
    A = np.full((L, H, U, U), 0.01, dtype=np.float32) if base is None else base
    for i in range(1, U - 1):
        A[layer, head, i, 0] = 0.4
        A[layer, head, i, U - 1] = 0.3
        A[layer, head, i, i] = 0.35
    for frm, to in edges.items():
        A[layer, head, frm + 1, to + 1] = 0.2
    return A


def _special(n):
    s = np.zeros(n + 2, dtype=bool)
    s[[0, -1]] = True
    return s


def test_head_accuracy_on_a_hand_built_map():
    words, heads, rels = ["The", "dog", "barks", "."], [2, 3, 0, 3], ["det", "nsubj", "root", "punct"]
    # head (1,1): The→dog, dog→barks, barks→The, .→dog   (dep->head correct: The, dog)
    A = _map(4, {0: 1, 1: 2, 2: 0, 3: 1}, L=1, H=2)
    # head (1,2): the transposed pattern: dog→The and barks→dog and barks→. : head<-dep gets The, dog, "."
    A = _map(4, {1: 0, 2: 1}, L=1, H=2, head=1, base=A)
    A[0, 1, 3, 4] = 0.19   # barks → "." (second choice for barks, first choice in the column of ".")
    s = DependencyHeadScores(1, 2, offsets=(-1, 1))
    s.add(A, _special(4), words, heads, rels)
    tidy = s.tidy()
    heads_rows = tidy[tidy.probe == "attention-head"].set_index(["relation", "head", "direction"])["value"]
    assert heads_rows[("all", 1, "dep->head")] == pytest.approx(2 / 4)
    assert heads_rows[("all-nopunct", 1, "dep->head")] == pytest.approx(2 / 3)
    assert heads_rows[("det", 1, "dep->head")] == 1.0 and heads_rows[("punct", 1, "dep->head")] == 0.0
    assert heads_rows[("det", 2, "head<-dep")] == 1.0 and heads_rows[("nsubj", 2, "head<-dep")] == 1.0
    assert heads_rows[("punct", 2, "head<-dep")] == 1.0 and heads_rows[("root", 2, "head<-dep")] == 0.0
    best = s.best(min_count=1).set_index("relation")
    assert best.loc["all", "head"] == "1-2" and best.loc["all", "direction"] == "head<-dep"
    assert best.loc["all", "accuracy"] == pytest.approx(3 / 4)
    assert "root" not in best.index and "punct" not in best.index


def test_self_and_specials_never_predicted():
    A = _map(3, {})                   # only specials and self carry mass
    pred = head_predictions(A, _special(3))
    assert pred.shape == (2, 1, 1, 3)
    for p in pred.reshape(-1, 3):
        assert all(1 <= h <= 3 and h != i + 1 for i, h in enumerate(p))


def test_poss_rule_scores_the_marker_prediction():
    words = ["John", "'s", "cat", "sleeps"]
    heads, rels = [3, 1, 4, 0], ["nmod:poss", "case", "nsubj", "root"]
    assert list(scored_positions(words, heads, rels)) == [1, 1, 2, 3]
    # John attends to 's (wrong by itself), 's attends to cat (= John's head): poss counts as correct
    A = _map(4, {0: 1, 1: 2, 2: 3, 3: 2})
    s = DependencyHeadScores(1, 1, offsets=(1,))
    s.add(A, _special(4), words, heads, rels)
    acc = s.tidy().set_index(["relation", "probe", "direction"])["value"]
    assert acc[("nmod:poss", "attention-head", "dep->head")] == 1.0
    assert acc[("case", "attention-head", "dep->head")] == 0.0
    # without a possessive marker after it, a possessive pronoun is scored on its own prediction
    assert list(scored_positions(["his", "cat", "sleeps"], [2, 3, 0], ["nmod:poss", "nsubj", "root"])) == [0, 1, 2]
    strip = DependencyHeadScores(1, 1, offsets=(1,), strip_subtypes=True)
    strip.add(A, _special(4), words, heads, rels)
    assert "nmod" in strip.relations and "nmod:poss" not in strip.relations


def test_offset_baselines_and_best_offset():
    assert offset_predictions(3, (-1, 1, 3)).tolist() == [[0, 1, 2], [2, 3, 3], [3, 3, 3]]
    words, heads, rels = ["a", "b", "c", "d"], [2, 3, 4, 0], ["x", "x", "x", "root"]
    s = DependencyHeadScores(1, 1, offsets=parse_offsets("-2:2"))
    s.add(_map(4, {}), _special(4), words, heads, rels)
    off = s.tidy().query("probe == 'offset' and relation == 'x'").set_index("offset")["value"]
    assert off[1] == 1.0 and off[-1] == 0.0 and off[2] == pytest.approx(1 / 3)  # c+2 clamps to d, its head
    best = s.best(min_count=1).set_index("relation")
    assert best.loc["x", "offset"] == 1 and best.loc["x", "baseline"] == 1.0
    assert parse_offsets("-3:2") == (-3, -2, -1, 0, 1, 2) and parse_offsets("-1,2") == (-1, 2)


def test_counts_accumulate_over_sentences():
    rng = np.random.default_rng(0)
    s_all = DependencyHeadScores(2, 3)
    parts = [DependencyHeadScores(2, 3) for _ in range(2)]
    sents = []
    for k in range(6):
        n = int(rng.integers(2, 7))
        heads = [0] + [int(rng.integers(1, i + 1)) for i in range(1, n)]
        rels = [rng.choice(["det", "nsubj", "punct"]) for _ in range(n)]
        rels[0] = "root"
        sents.append((rng.dirichlet(np.ones(n + 2), size=(2, 3, n + 2)), [f"w{i}" for i in range(n)], heads, rels))
    for k, (A, w, h, r) in enumerate(sents):
        s_all.add(A, _special(len(w)), w, h, r)
        parts[k % 2].add(A, _special(len(w)), w, h, r)
    keys = ["relation", "probe", "layer", "head", "direction", "offset"]

    def correct(scores):
        t = scores.tidy().fillna({"layer": 0, "head": 0, "direction": "", "offset": 99})
        return (t["value"] * t["n"]).set_axis(pd.MultiIndex.from_frame(t[keys]))

    whole = correct(s_all)
    summed = sum(correct(p).reindex(whole.index, fill_value=0) for p in parts)
    assert np.allclose(summed, whole) and whole.sum() > 0
    assert s_all.n_sentences == 6


# ---- CLI end to end on a tiny model --------------------------------------------------------------------------
def test_deps_cli_writes_tables_and_counts_too_long(tmp_path, tiny_model_dirs):
    long_words = " ".join(f"{i}\tarchaeologist\tx\tNOUN\t_\t_\t{0 if i == 1 else 1}\t{'root' if i == 1 else 'dep'}\t_\t_"
                          for i in range(1, 41)).replace(" ", "\n")
    text = GOOD + "\n# sent_id = long\n" + long_words + "\n"
    path = _write(tmp_path, text)
    out = tmp_path / "run"
    rc = deps.main(["--conllu", str(path), "--out", str(out), "--quiet", "--model", str(tiny_model_dirs["bert"]),
                    "--min-count", "1", "--strip-subtypes", "--min-offset", "-2", "--max-offset", "2"])
    assert rc == 0
    df = pd.read_csv(out / "results.csv")
    assert {"relation", "layer", "head", "direction", "offset", "value", "n"} <= set(df.columns)
    heads = df[df.probe == "attention-head"]
    assert set(heads.layer) == {1, 2} and set(heads["head"]) == {1, 2, 3, 4}
    assert heads.value.between(0, 1).all()
    assert (df.query("relation == 'all' and probe == 'offset'").n == 11).all()  # long sentence left out
    assert sorted(df.offset.dropna().unique()) == [-2, -1, 0, 1, 2]
    md = (out / "results.md").read_text()
    assert "| relation | count | best head | direction | accuracy | baseline | offset |" in md
    assert "1 longer than" in md and "nmod |" in md
    assert (out / "heads.png").stat().st_size > 1000
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["counts"]["too_long"] == 1 and cfg["counts"]["scored"] == 2


def test_deps_cli_default_runs_on_generated_sentences(tmp_path, tiny_model_dirs):
    out = tmp_path / "gen"
    assert deps.main(["--out", str(out), "--quiet", "--model", str(tiny_model_dirs["bert"]), "--sentences", "12",
                      "--min-count", "1"]) == 0
    df = pd.read_csv(out / "results.csv")
    assert set(df.split) == {"generated-english"}
    rels = set(df.relation)
    assert {"det", "nsubj", "punct", "root"} <= rels
    assert df.query("relation == 'all' and probe == 'offset'").n.iloc[0] >= 12 * 3


# ---- option checks, inputs, hints (in-process) ---------------------------------------------------------------
BAD_OPTIONS = [
    (["--heatmaps", "-1"], "--heatmaps must be at least 0 (got -1)"),
    (["--min-count", "0"], "--min-count must be at least 1 (got 0)"),
    (["--sentences", "0"], "--sentences must be at least 1 (got 0)"),
    (["--limit", "0"], "--limit must be at least 1 (got 0)"),
    (["--batch-size", "0"], "--batch-size must be at least 1 (got 0)"),
    (["--batch-size", "-1"], "--batch-size must be at least 1 (got -1)"),
    (["--max-length", "2"], "--max-length must be at least 3 (got 2)"),
    (["--max-length", "0"], "--max-length must be at least 3 (got 0)"),
    (["--device", "nonsense"], "--device 'nonsense' is not a torch device"),
    (["--device", "cuda:99"], "--device cuda:99"),
    (["--min-offset", "2", "--max-offset", "-1"], "--min-offset 2 is larger than --max-offset -1"),
]


@pytest.mark.parametrize("argv,message", BAD_OPTIONS, ids=[" ".join(a) for a, _ in BAD_OPTIONS])
def test_bad_option_values_are_one_line_before_any_work(tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    # a model that does not exist: had the checks come after loading, the error would be about the model
    rc = deps.main(["--out", str(out), "--quiet", "--model", str(tmp_path / "no-model"), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and message in err[0], err
    assert not out.exists()


def test_facade_raises_the_same_user_errors(tmp_path):
    import probekit as pk

    with pytest.raises(UserError, match=r"--heatmaps must be at least 0 \(got -1\)"):
        pk.deps(heatmaps=-1, model=str(tmp_path / "no-model"))
    with pytest.raises(UserError, match=r"--conllu .* is a folder, not a file"):
        pk.deps(conllu=tmp_path)
    with pytest.raises(UserError, match=r"--conllu .* does not exist"):
        pk.deps(conllu=tmp_path / "missing.conllu")


def test_skip_bad_hint_only_where_the_option_exists(tmp_path, capsys):
    from probekit.corpora.sentences import read_sentences

    text = GOOD.replace("3\tbarks\tbark\tVERB\tVBZ\t_\t0\troot", "3\tbarks\tbark\tVERB\tVBZ\t_\tzero\troot")
    path = _write(tmp_path, text)
    assert deps.main(["--conllu", str(path), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert "(use --skip-bad to skip such sentences)" in capsys.readouterr().err
    for read in (read_conllu, read_sentences):       # corpora of commands without --skip-bad
        with pytest.raises(UserError) as err:
            read(path)
        assert f"{path}:5:" in str(err.value) and "skip-bad" not in str(err.value)


def test_heatmaps_zero_writes_no_figure_and_figures_svg(tmp_path, tiny_model_dirs):
    path = _write(tmp_path, GOOD)
    common = ["--conllu", str(path), "--quiet", "--model", str(tiny_model_dirs["bert"]), "--min-count", "1"]
    assert deps.main([*common, "--out", str(tmp_path / "none"), "--heatmaps", "0"]) == 0
    assert not list((tmp_path / "none").glob("heads.*"))
    assert "No heads figure" in (tmp_path / "none" / "results.md").read_text()
    assert deps.main([*common, "--out", str(tmp_path / "svg"), "--heatmaps", "2", "--figures", "png", "svg"]) == 0
    assert (tmp_path / "svg" / "heads.png").stat().st_size > 1000
    assert "<svg" in (tmp_path / "svg" / "heads.svg").read_text()[:500]


def test_tidy_schema_baselines_have_no_layer_or_head(tmp_path, tiny_model_dirs):
    path = _write(tmp_path, GOOD)
    out = tmp_path / "run"
    assert deps.main(["--conllu", str(path), "--out", str(out), "--quiet", "--model", str(tiny_model_dirs["bert"]),
                      "--min-count", "1"]) == 0
    df = pd.read_csv(out / "results.csv")
    assert list(df.columns[:8]) == ["task", "relation", "direction", "model", "layer", "head", "metric", "value"]
    base = df[df.probe == "offset"]
    assert base.layer.isna().all() and base["head"].isna().all() and (base.baseline == "offset").all()
    heads = df[df.probe == "attention-head"]
    assert df.layer.dtype.kind in "fi" and df["head"].dtype.kind in "fi"     # numbers only, never "mean"
    assert heads.baseline.isna().all() and set(heads.layer) == {1, 2} and set(heads["head"]) == {1, 2, 3, 4}
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["command"] == "deps" and cfg["arguments"]["min_count"] == 1 and cfg["model"]["fingerprint"]
    assert cfg["inputs"] == {"conllu": str(path)} and cfg["counts"]["scored"] == 2


# ---- words that the tokenizer turns into no token ------------------------------------------------------------
ZERO_WIDTH = """\
# text = The dog barks.
1\tThe\tthe\tDET\t_\t_\t3\tdet\t_\t_
2\t\u200b\t_\tX\t_\t_\t3\tdep\t_\t_
3\tdog\tdog\tNOUN\t_\t_\t4\tnsubj\t_\t_
4\tbarks\tbark\tVERB\t_\t_\t0\troot\t_\t_
5\t\u00ad\t_\tX\t_\t_\t4\tdep\t_\t_
6\t.\t.\tPUNCT\t_\t_\t4\tpunct\t_\t_
"""


def test_a_word_without_tokens_keeps_its_unit_and_is_scored(tmp_path, tiny_model_dirs, capsys):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dirs["bert"])
    ids = tok(["\u200b", "\u00ad"], is_split_into_words=True, add_special_tokens=False)["input_ids"]
    assert ids == []                                      # the case: both words vanish in this tokenizer
    path = _write(tmp_path, ZERO_WIDTH)
    out = tmp_path / "run"
    rc = deps.main(["--conllu", str(path), "--out", str(out), "--quiet", "--model", str(tiny_model_dirs["bert"]),
                    "--min-count", "1"])
    err = capsys.readouterr().err
    assert rc == 0 and "Traceback" not in err and f"{path}:1" in err
    df = pd.read_csv(out / "results.csv")
    assert (df.query("relation == 'all'").n == 6).all()   # every word scored, none dropped
    assert (df.query("relation == 'dep'").n == 2).all()


def test_dependency_heads_refuses_a_sentence_whose_words_lost_their_units():
    from probekit.core.examples import Example
    from probekit.core.extraction import Activations, LayerAttention
    from probekit.syntax.dependency_heads import DependencyHeads

    ex = Example(words=["The", "\u200b", "dog"], meta={"heads": [3, 3, 0], "deprels": ["det", "dep", "root"],
                                                           "source": "t.conllu:7"})
    act = Activations(index=0, units=["[CLS]", "The", "dog", "[SEP]"], special=_special(2),
                      word_ids=np.array([-1, 0, 2, -1]), attention=LayerAttention(_map(2, {})))
    a = DependencyHeads(num_layers=1, num_heads=1)
    with pytest.raises(UserError, match=r"t.conllu:7: 3 words but the tokenizer kept 2 .*word 2 '\\u200b'"):
        a.update(act, ex)


def test_generation_options_with_a_treebank_are_refused(tmp_path):
    import probekit as pk

    path = _write(tmp_path, GOOD)
    with pytest.raises(UserError, match=r"--sentences only apply without --conllu"):
        pk.deps(conllu=path, sentences=10)
    assert deps.main(["--conllu", str(path), "--grammar", "agr", "--quiet"]) == 2
