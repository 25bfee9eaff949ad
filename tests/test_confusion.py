"""Confusion scores: a hand-computed example, chance under uniform attention (synthetic and through a real
model whose attention is made uniform), no-distractor items, streaming/pooling, --data errors, the CLI."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import importlib

import probekit as pk

confusion = importlib.import_module("probekit.confusion")  # the command module (pk.confusion is the function)
from probekit.corpora.conditions import read_items
from probekit.heads.confusion import (ConfusionScores, chance_level, confusion_bits, group_mass, item_scores,
                                      score_items)
from probekit.core.encoder import load_encoder
from probekit.core.errors import UserError
from probekit.core.extraction import extract
from probekit.corpora.conditions import Item


def test_hand_computed_example():
    # one layer, two heads, units: [CLS] the cat near the dog does [SEP]; source = "does" (unit 6)
    A = np.zeros((1, 2, 8, 8))
    A[0, 0, 6] = [0.1, 0.3, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]   # correct 0.4, distractor 0.2
    A[0, 1, 6] = [0.2, 0.05, 0.05, 0.1, 0.2, 0.2, 0.1, 0.1]  # correct 0.1, distractor 0.4
    mean, per_head = item_scores(A, 6, [[1, 2], [4, 5]])
    # head mean: correct (0.4+0.1)/2 = 0.25, distractor (0.2+0.4)/2 = 0.3 → p = 0.25/0.55 = 5/11
    assert mean == pytest.approx([math.log2(11 / 5)], abs=1e-12)
    # per head: p = 0.4/0.6 = 2/3 and 0.1/0.5 = 1/5
    assert per_head.shape == (1, 2)
    assert per_head[0] == pytest.approx([math.log2(3 / 2), math.log2(5)], abs=1e-12)
    # the head mean averages attention, not scores
    assert mean[0] != pytest.approx(per_head.mean())


@pytest.mark.parametrize("groups, chance", [([[1, 2], [4, 5]], 1.0), ([[1, 2], [4, 5], [7, 8]], math.log2(3)),
                                            ([[1], [2, 3, 4]], 2.0)])
def test_uniform_attention_scores_exactly_chance(groups, chance):
    U = 11
    A = np.full((3, 4, U, U), 1.0 / U)
    mean, per_head = item_scores(A, 9, groups)
    assert chance_level([len(g) for g in groups]) == pytest.approx(chance, abs=1e-15)
    assert np.allclose(mean, chance, rtol=0, atol=1e-12) and np.allclose(per_head, chance, rtol=0, atol=1e-12)


def test_no_distractor_gives_zero_and_floors_keep_scores_finite():
    A = np.random.default_rng(0).dirichlet(np.ones(6), size=(2, 3, 6))
    mean, per_head = item_scores(A, 5, [[1, 2]])
    assert (mean == 0).all() and (per_head == 0).all() and not np.signbit(mean).any()
    assert chance_level([2]) == 0.0
    # attention that underflowed to exactly zero: finite, maximal confusion; all-zero groups: chance by group
    assert np.isfinite(confusion_bits(np.array([0.0, 1.0]))) and confusion_bits(np.array([0.0, 1.0])) > 100
    assert confusion_bits(np.array([0.0, 0.0, 0.0])) == pytest.approx(math.log2(3))
    assert group_mass(np.array([[0.5, 0.25, 0.25]]), [[0], [1, 2]]).tolist() == [[0.5, 0.5]]


def test_scores_accumulate_pool_and_name_best_heads():
    s = ConfusionScores(2, 3)
    per_head = np.array([[0.9, 0.8, 0.7], [0.6, 0.05, 0.5]])
    s.add(["A3-srel", "A3"], np.array([1.0, 2.0]), per_head, 1.0)
    s.add(["A3-orel", "A3"], np.array([3.0, 4.0]), per_head + 1, 1.0)
    assert s.n == {"A3-srel": 1, "A3": 2, "A3-orel": 1}
    assert s.by_layer("A3").tolist() == [2.0, 3.0] and s.mean("A3") == 2.5 and s.mean("A3-srel") == 1.5
    assert s.sem("A3") == pytest.approx([1.0, 1.0])    # sd √2 over two items, / √2
    assert s.best_heads("A3-srel") == [(2, 2, 0.05), (2, 3, 0.5), (2, 1, 0.6)]   # 1-based layer-head
    df = s.tidy("m")
    assert list(df.columns) == ["task", "condition", "model", "layer", "head", "metric", "value", "aggregate"]
    assert len(df[(df.condition == "A3") & (df.metric == "confusion") & df["head"].notna()]) == 6
    row = df[(df.condition == "A3") & df.layer.isna() & (df.metric == "confusion")]
    assert row["value"].tolist() == [2.5] and row["aggregate"].tolist() == ["all layers"]
    assert df["layer"].dtype == "Int64" and df["head"].dtype == "Int64"


def test_heads_with_almost_no_candidate_mass_are_not_best_heads():
    """A head that sends ~2e-7 of its attention to the candidates scores 0.000 after renormalising; it must
    not be ranked, and is counted."""
    from probekit.report.confusion_report import heads_table

    s = ConfusionScores(2, 2, min_mass=0.01)
    per_head = np.array([[0.0, 0.4], [0.9, 0.2]])            # head 1-1 looks perfect ...
    mass = np.array([[2e-7, 0.3], [0.5, 0.005]])             # ... on almost no attention; 2-2 too little as well
    s.add(["A3-orel", "A3"], np.array([0.5, 0.5]), per_head, 1.0, candidate_mass=mass)
    assert s.low_mass("A3-orel").tolist() == [[True, False], [False, True]]
    assert s.best_heads("A3-orel") == [(1, 2, 0.4), (2, 1, 0.9)]
    assert heads_table(s).set_index("condition").loc["A3 (object relatives)", "low-mass heads left out"] == 2
    df = s.tidy("m")
    m = df[(df.metric == "candidate_mass") & df["head"].notna() & (df.condition == "A3")]
    assert m["value"].tolist() == pytest.approx(mass.ravel().tolist())
    low = df[(df.metric == "low_mass_heads") & (df.condition == "A3")]["value"]
    assert low.tolist() == [2]
    s0 = ConfusionScores(2, 2, min_mass=0.0)
    s0.add(["A3"], np.array([0.5, 0.5]), per_head, 1.0, candidate_mass=mass)
    assert s0.best_heads("A3", 1) == [(1, 1, 0.0)]          # threshold 0 ranks every head again


# --- --data files ----------------------------------------------------------------------------------------------

def test_read_items_formats(tmp_path):
    p = tmp_path / "mine.tsv"
    p.write_text("the cat near the dog does sleep\t5\t0 1\t3 4\n\nthe cat does sleep\t2\t0 1\t\n"
                 "the cat does sleep\t2\t0 1\n")
    items = read_items(p)
    assert [(i.source, i.correct, i.distractors) for i in items] == [(5, [0, 1], [[3, 4]]), (2, [0, 1], []),
                                                                     (2, [0, 1], [])]
    assert {i.condition for i in items} == {"mine"}


@pytest.mark.parametrize("line, message", [
    ("only two\tfields", "expected 4 tab-separated fields"),
    ("the cat sleeps\tx\t0 1\t", "source index must be whitespace-separated integers"),
    ("the cat sleeps\t2\t0 1\t7", "index 7 is outside the sentence's 3 words"),
    ("the cat sleeps\t2\t\t", "correct group is empty"),
    ("the cat sleeps\t1\t0 1\t", "an index appears twice"),
    ("a\tb\tc\td\te", "got 5"),
])
def test_malformed_data_line_is_one_error_with_file_and_line(tiny_model_dirs, tmp_path, capsys, line, message):
    p = tmp_path / "items.tsv"
    p.write_text("the cat near the dog does sleep\t5\t0 1\t3 4\n\n" + line + "\n")
    with pytest.raises(UserError, match="items.tsv:3"):
        read_items(p)
    out = tmp_path / "run"
    code = confusion.main(["--data", str(p), "--model", str(tiny_model_dirs["bert"]), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and f"{p}:3:" in err and message in err and err.count("\n") == 1
    assert not out.exists()


# --- through a model -------------------------------------------------------------------------------------------

def uniform_encoder(path):
    """The tiny model with query and key weights zeroed: every attention row is uniform over the tokens."""
    enc = load_encoder(str(path), attention=True)
    for name, p in enc.model.named_parameters():
        if ".query." in name or ".key." in name:
            p.data.zero_()
    return enc


def test_uniform_attention_through_the_model_gives_chance(tiny_model_dirs):
    enc = uniform_encoder(tiny_model_dirs["bert"])
    words = "the old teacher helped the farmer and the dog".split()
    assert all(len(enc.tokenizer.tokenize(w)) == 1 for w in words)   # equal groups at token level too
    items = [Item(words, 3, [0, 1, 2], [[4, 5], [7, 8]], "x", "x"),       # 3 correct of 7 → −log2(3/7)
             Item(words, 6, [7, 8], [[0, 1]], "y", "y"),
             Item(words[:6], 3, [4, 5], [], "z", "z")]
    scores, skipped = score_items(enc, items, batch_size=2)
    assert skipped == 0
    for name, chance in (("x", math.log2(7 / 3)), ("y", 1.0), ("z", 0.0)):
        assert scores.chance(name) == pytest.approx(chance, abs=1e-12)
        assert np.allclose(scores.by_layer(name), chance, atol=1e-5)
        assert np.allclose(scores.by_head(name), chance, atol=1e-5)


def test_scores_use_word_alignment(tiny_model_dirs):
    """Split words: groups are summed over all pieces of their words (word-level attention, via word_ids)."""
    enc = load_encoder(str(tiny_model_dirs["bert"]), attention=True)
    words = "the archaeologist photographed the unbelievably gigantic chrysanthemum himself".split()
    assert len(enc.tokenizer.tokenize("chrysanthemum")) > 1
    item = Item(words, 7, [0, 1], [[3, 6]], "c", "c")
    scores, _ = score_items(enc, [item])
    act = next(extract(enc, [item.to_example()], hidden=False, attention=True))
    unit = {int(w): u for u, w in enumerate(act.word_ids) if w >= 0}
    rows = act.attention.array[:, :, unit[7], :].astype(np.float64).mean(1)          # [L, U]
    a = rows[:, [unit[0], unit[1]]].sum(-1)
    b = rows[:, [unit[3], unit[6]]].sum(-1)
    assert np.allclose(scores.by_layer("c"), -np.log2(a / (a + b)), atol=1e-9)


def test_confusion_cli_end_to_end(tiny_model_dirs, tmp_path, capsys):
    data = tmp_path / "A3.tsv"      # named like a built-in condition: kept apart from it
    data.write_text("the cat near the dog does sleep\t5\t0 1\t3 4\nthe cat does sleep\t2\t0 1\t\n")
    out = tmp_path / "run"
    argv = ["--conditions", "A3", "R5", "--sentences", "6", "--data", str(data), "--model",
            str(tiny_model_dirs["bert"]), "--out", str(out)]
    assert confusion.main(argv) == 0
    assert "| R5 |" in capsys.readouterr().out
    df = pd.read_csv(out / "results.csv")
    assert set(df["condition"]) == {"A3", "A3-srel", "A3-orel", "R5", "A3.tsv"}
    n = df[df.layer.isna() & (df.metric == "n_items")].set_index("condition")["value"]
    assert n.to_dict() == {"A3": 6, "A3-srel": 3, "A3-orel": 3, "R5": 6, "A3.tsv": 2}
    chance = df[df.metric == "chance"].set_index("condition")["value"]
    assert chance["A3"] == 1.0 and chance["R5"] == pytest.approx(math.log2(3), abs=1e-5) and chance["A3.tsv"] == 0.5
    per_head = df[(df.condition == "R5") & df["head"].notna() & (df.metric == "confusion")]
    assert len(per_head) == 2 * 4 and (per_head["value"] >= 0).all()
    mass = df[(df.condition == "R5") & df["head"].notna() & (df.metric == "candidate_mass")]["value"]
    assert len(mass) == 2 * 4 and mass.between(0, 1 + 1e-6).all()
    md = (out / "results.md").read_text()
    for text in ("A3 (subject relatives)", "A3 (object relatives)", "| R5 | ✓ | ✓ | ✓ |", "1.570",
                 "Heads with the lowest confusion", "External items", "low-mass heads left out",
                 "Candidate mass by layer"):
        assert text in md
    assert (out / "confusion_by_layer.png").stat().st_size > 0
    assert json.loads((out / "config.json").read_text())["counts"]["A3"] == 6


@pytest.mark.parametrize("options, message", [
    ({"sentences": 0}, "--sentences must be at least 1 (got 0)"),
    ({"batch_size": -1}, "--batch-size must be at least 1"),
    ({"max_length": 0}, "--max-length must be at least 3"),
    ({"device": "cuda:5"}, "--device cuda:5"),
    ({"min_mass": -1}, "--min-mass must be at least 0"),
    ({"conditions": ["A9"]}, "unknown condition 'A9'"),
])
def test_bad_values_are_one_line_exit_2(tiny_model_dirs, tmp_path, capsys, options, message):
    import re

    with pytest.raises(UserError, match=re.escape(message)):
        pk.confusion(model=str(tiny_model_dirs["bert"]), **options)
    flags = []
    for k, v in options.items():
        flags += [f"--{k.replace('_', '-')}", *(v if isinstance(v, list) else [str(v)])]
    out = tmp_path / "run"
    assert confusion.main(["--model", str(tiny_model_dirs["bert"]), "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not out.exists()


def test_non_utf8_or_folder_data_is_one_line_with_file_and_line(tiny_model_dirs, tmp_path, capsys):
    p = tmp_path / "items.tsv"
    p.write_bytes("the cat does sleep\t2\t0 1\t\nthe caf\xe9 does sleep\t2\t0 1\t\n".encode("latin-1"))
    out = tmp_path / "run"
    assert confusion.main(["--data", str(p), "--model", str(tiny_model_dirs["bert"]), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{p}:2: not UTF-8" in err and err.count("\n") == 1 and "Traceback" not in err and not out.exists()
    with pytest.raises(UserError, match="is a folder, not a file"):
        pk.confusion(data=[tmp_path])
