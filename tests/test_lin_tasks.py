"""Lin et al. data: auxiliary/subject split rules, A1–A4 / R1–R8 templates, determinism, the data CLI, and
``python -m probekit.probe --task auxiliary|subject`` end to end on a tiny model."""
from __future__ import annotations

import json

import pandas as pd
import pytest

import importlib

data_cli = importlib.import_module("probekit.data")  # the command module (pk.data is the function)
from probekit.corpora.conditions import CONDITIONS, PART_OF, generate_condition, generate_items, parse_conditions
from probekit.probe import main as probe_main
from probekit.probing.registry import build_data
from probekit.core.errors import UserError
from probekit.corpora.grammar import Grammar


def build(task, seed=0, sizes=(60, 20, 20)):
    return build_data(task, seed=seed, split_sizes=sizes)


def by_split(d):
    return {s: [d.examples[i] for i in d.split_indices(s)] for s in d.splits}


# --- main auxiliary --------------------------------------------------------------------------------------------

def test_auxiliary_splits_follow_the_rule():
    d = build("auxiliary", sizes=(200, 60, 60))
    splits = by_split(d)
    assert d.splits == ["train", "dev", "gen"] and [len(splits[s]) for s in d.splits] == [200, 60, 60]
    for split, exs in splits.items():
        for ex in exs:
            t = ex.meta["targets"][0]
            assert ex.tags.count("MAux") == 1 and ex.tags[t] == "MAux"
            before = ex.tags[:t]
            if split == "gen":      # the subject's relative clause puts another auxiliary first
                assert "Rel" in before and "Aux" in before
            else:                   # no relative clause and no other auxiliary before the main one
                assert "Rel" not in before and "Aux" not in before
    # train has relative clauses too, but only after the main auxiliary (on the object or a PP noun)
    assert any("Rel" in ex.tags for ex in splits["train"])
    keys = [tuple(ex.words) for ex in d.examples]
    assert len(set(keys)) == len(keys)          # train, dev and gen never share a sentence


def test_subject_splits_follow_the_rule():
    d = build("subject", sizes=(200, 60, 60))
    splits = by_split(d)
    assert d.splits == ["train", "dev", "gen_compound", "gen_possessive"]
    for split, exs in splits.items():
        assert len(exs) == (200 if split == "train" else 60)
        for ex in exs:
            t = ex.meta["targets"][0]
            assert ex.tags[t] == "MN" and ex.tags.count("MN") == 1
            nouns_before = [tag for tag in ex.tags[:t] if tag in ("MN", "N", "NMod", "NPoss")]
            if split in ("train", "dev"):
                assert nouns_before == []
            elif split == "gen_compound":
                assert nouns_before == ["NMod"] and ex.tags[t - 1] == "NMod" and "'s" not in ex.words
            else:
                assert "NMod" not in nouns_before and nouns_before[-1] == "NPoss"
                poss = ex.tags.index("Poss")
                assert ex.words[poss] == "'s" and ex.tags[poss - 1] == "NPoss" and poss < t


def test_subject_modifiers_are_also_training_head_nouns():
    """Compound modifiers and possessors are words that head training subjects too: word identity alone
    cannot tell the head noun in the generalization splits."""
    g = Grammar.load("sbjn")
    words = {tag: {r.children[0].symbol for r in g.rules[tag]} for tag in ("MN", "NMod", "NPoss")}
    assert words["NMod"] <= words["MN"] and words["NPoss"] <= words["MN"]
    d = build("subject", sizes=(400, 10, 40))
    heads = {ex.words[ex.meta["targets"][0]] for ex in by_split(d)["train"]}
    for split in ("gen_compound", "gen_possessive"):
        for ex in by_split(d)[split]:
            t = ex.meta["targets"][0]
            mods = [w for w, tag in zip(ex.words[:t], ex.tags[:t]) if tag in ("NMod", "NPoss")]
            assert mods and ex.words[t] not in mods
    assert len(heads & words["NMod"]) >= 5


def test_generation_is_deterministic_in_the_seed():
    for task in ("auxiliary", "subject"):
        a, b, c = build(task, 3), build(task, 3), build(task, 4)
        assert [e.words for e in a.examples] == [e.words for e in b.examples]
        assert [e.meta for e in a.examples] == [e.meta for e in b.examples]
        assert [e.words for e in a.examples] != [e.words for e in c.examples]
    x, y = generate_items(["A3", "R5"], 20, seed=1), generate_items(["A3", "R5"], 20, seed=1)
    assert [i.record() for i in x] == [i.record() for i in y]
    assert [i.words for i in x] != [i.words for i in generate_items(["A3", "R5"], 20, seed=2)]


# --- A1–A4 and R1–R8 -------------------------------------------------------------------------------------------

N = {"N_sg", "N_pl", "N_m", "N_f"}
TEMPLATES = {   # tag patterns (N = any noun tag, S = the source word) as Lin et al.'s Table 2 defines them
    "A1": "Det N P Det N S VI", "A2": "Det N P Det N S VI",
    "A3-srel": "Det N Rel Modal VT Det N S VI", "A3-orel": "Det N Rel Det N Modal VT S VI",
    "A4-srel": "Det N Rel Modal VT Det N S VI", "A4-orel": "Det N Rel Det N Modal VT S VI",
    "R1": "Det N Modal VT Det N By S", "R2": "Det N Modal VT Det N By S",
    "R3": "Det N Rel Modal VT Det N Modal VT S", "R4": "Det N Rel Modal VT Det N Modal VT S",
    **{f"R{i}": "Det N Rel Modal VT Det N Modal VT Det N By S" for i in range(5, 9)},
}
# distractor → does it agree with the subject (number for A, gender for R)? In sentence order.
MATCH = {"A1": [True], "A2": [False], "A3": [True], "A4": [False], "R1": [True], "R2": [False],
         "R3": [True], "R4": [False], "R5": [True, True], "R6": [False, True], "R7": [True, False],
         "R8": [False, False]}   # R5–R8: [relative-clause distractor, object distractor]


def feature(tag):
    return tag.split("_")[1]


def lemma(word, tag):
    irregular = {"wolves": "wolf", "mice": "mouse", "foxes": "fox"}
    return irregular.get(word, word[:-1]) if tag == "N_pl" else word


@pytest.mark.parametrize("name", list(CONDITIONS))
def test_conditions_match_the_reference_tables(name):
    items = generate_condition(name, 40, seed=0)
    assert len(items) == 40 and len({tuple(i.words) for i in items}) == 40
    assert {i.part for i in items} == set(CONDITIONS[name].parts)
    for it in items:
        pattern = " ".join("N" if t in N else "S" if k == it.source else t for k, t in enumerate(it.tags))
        assert pattern == TEMPLATES[it.part], (it.part, it.words)
        assert it.correct == [0, 1]
        assert len(it.distractors) == (2 if name in ("R5", "R6", "R7", "R8") else 1)
        subject = feature(it.tags[1])
        for g in it.distractors:
            assert [it.tags[g[0]], it.tags[g[1]][:2]] == ["Det", "N_"] and g[1] == g[0] + 1
        assert [feature(it.tags[g[1]]) == subject for g in it.distractors] == MATCH[name]
        source = it.words[it.source]
        if name.startswith("A"):   # the matrix auxiliary agrees with the subject
            assert source == {"sg": "does", "pl": "do"}[subject]
        else:                      # the reflexive agrees with the subject
            assert source == {"m": "himself", "f": "herself"}[subject]
        nouns = [lemma(it.words[g[1]], it.tags[g[1]]) for g in [it.correct] + it.distractors]
        assert len(set(nouns)) == len(nouns)   # distinct nouns ("the cat near the cats" is not generated)
    if len(CONDITIONS[name].parts) == 2:   # A3/A4: half subject relatives, half object relatives
        assert sum(i.part.endswith("srel") for i in items) == 20


def test_both_numbers_and_genders_occur():
    items = generate_items(parse_conditions("A1 R1"), 60, seed=0)
    assert {feature(i.tags[1]) for i in items if i.condition == "A1"} == {"sg", "pl"}
    assert {feature(i.tags[1]) for i in items if i.condition == "R1"} == {"m", "f"}


def test_parse_conditions():
    assert parse_conditions(None) == list(CONDITIONS)
    assert parse_conditions(["agreement"]) == ["A1", "A2", "A3", "A4"]
    assert parse_conditions("r5, a3-SREL R5") == ["R5", "A3-srel"]
    assert set(PART_OF) >= {"A3-srel", "A4-orel", "R8"}
    with pytest.raises(UserError, match="unknown condition 'A9'"):
        parse_conditions(["A9"])


# --- python -m probekit.data -----------------------------------------------------------------------------------

def test_data_cli_writes_valid_json_lines(tmp_path, capsys):
    out = tmp_path / "d"
    assert data_cli.main(["--task", "subject", "--out", str(out), "--split-sizes", "8,3,2", "--quiet"]) == 0
    recs = [json.loads(line) for line in (out / "subject.jsonl").read_text().splitlines()]
    assert [r["split"] for r in recs] == ["train"] * 8 + ["dev"] * 3 + ["gen_compound"] * 2 + ["gen_possessive"] * 2
    for r in recs:
        assert r["sentence"] == " ".join(r["words"]) and len(r["tags"]) == len(r["words"])
        assert r["tags"][r["target"]] == "MN" and len(r["heads"]) == len(r["words"])
    assert json.loads((out / "config.json").read_text())["counts"]["gen_possessive"] == 2

    assert data_cli.main(["--task", "agreement", "--out", str(out), "--sentences", "4", "--tsv",
                          "--conditions", "A1", "A3", "--quiet"]) == 2          # a second run is refused …
    assert data_cli.main(["--task", "agreement", "--out", str(out), "--sentences", "4", "--tsv",
                          "--conditions", "A1", "A3", "--quiet", "--overwrite"]) == 0   # … unless asked for
    assert not (out / "subject.jsonl").exists()                     # and replaces the old run whole
    recs = [json.loads(line) for line in (out / "agreement.jsonl").read_text().splitlines()]
    assert [r["part"] for r in recs] == ["A1"] * 4 + ["A3-srel"] * 2 + ["A3-orel"] * 2
    for r in recs:
        assert r["tags"][r["source"]].startswith("MAux") and r["correct"] == [0, 1]
        assert all(r["tags"][g[-1]].startswith("N_") for g in r["distractors"])
    lines = (out / "A3.tsv").read_text().splitlines()
    assert len(lines) == 4 and all(len(line.split("\t")) == 4 for line in lines)

    corpus = tmp_path / "c.txt"
    corpus.write_text("".join(f"sentence number {i} is here .\n" for i in range(12)))
    assert data_cli.main(["--task", "nth_token", "--out", str(tmp_path / "n"), "--n", "1,2", "--corpus",
                          str(corpus), "--quiet"]) == 0
    first = json.loads((tmp_path / "n" / "nth_token.jsonl").read_text().splitlines()[0])
    assert first["targets"] == {"n=1": 0, "n=2": 1}


@pytest.mark.parametrize("argv, message", [
    (["--task", "nope"], "unknown task 'nope'"),
    (["--task", "agreement", "--conditions", "R1"], "not of --task agreement"),
    (["--task", "auxiliary", "--split-sizes", "5,0,1"], "three positive counts"),
    (["--task", "auxiliary", "--split-sizes", "200,50"], "three positive counts"),
    (["--task", "nth_token", "--sentences", "10", "--tsv"], "--sentences, --tsv only apply to --task agreement"),
    (["--task", "subject", "--conditions", "A1"], "--conditions only apply to --task agreement"),
    (["--task", "nth_token", "--sentences", "0"], "--sentences only apply"),
    (["--task", "agreement", "--size", "paper"], "--size: not an option of --task agreement"),
    (["--task", "agreement", "--sentences", "0"], "--sentences must be at least 1 (got 0)"),
    (["--task", "reflexive", "--seed", "x"], "--seed"),
])
def test_data_cli_errors(tmp_path, capsys, argv, message):
    assert data_cli.main(argv + ["--out", str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


# --- python -m probekit.probe --task auxiliary / subject -------------------------------------------------------

@pytest.mark.parametrize("task, splits", [("auxiliary", {"train", "dev", "gen"}),
                                          ("subject", {"train", "dev", "gen_compound", "gen_possessive"})])
def test_probe_cli_end_to_end(tiny_model_dirs, tmp_path, task, splits):
    out = tmp_path / "run"
    argv = ["--task", task, "--model", str(tiny_model_dirs["bert"]), "--split-sizes", "40,12,12",
            "--epochs", "1", "--probes", "linear", "--no-cache", "--out", str(out), "--quiet"]
    assert probe_main(argv) == 0
    df = pd.read_csv(out / "results.csv")
    assert set(df["split"]) == splits and df["task"].eq(task).all()
    assert sorted(df[df.probe == "linear"]["layer"].unique()) == [0, 1, 2]
    assert df["value"].between(0, 1).all()
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["splits"] == {s: (40 if s == "train" else 12) for s in splits}
    md = (out / "results.md").read_text()
    assert all(f"| linear | {s} |" in md for s in splits)
    assert (out / "accuracy_by_layer.png").stat().st_size > 0
