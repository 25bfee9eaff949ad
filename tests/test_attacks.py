"""Attacks: Si et al.'s generators on hand-made items, key-word attacks on a tiny classifier, the command."""
from __future__ import annotations

import copy
import json
from collections import Counter

import numpy as np
import pytest
import torch

import probekit as pk
from probekit.attacks.multiple_choice import perturbations as mc
from probekit.attacks import perturb
from probekit.attribution import registry
from probekit.attribution.occlusion import occlusion
from probekit.attribution.words import model_inputs
from probekit.corpora.labelled import load_split, read_jsonl
from probekit.corpora.multiple_choice import MCItem, read_mc, write_mc_jsonl
from probekit.classifiers.model import Classifier
from probekit.classifiers.saved import save_classifier
from probekit.core.encoder import load_encoder
from probekit.core.errors import UserError
from probekit.core.examples import Example


def _items(n=12):
    out = []
    for i in range(n):
        out.append(MCItem(passage=f"Story {i}. The old teacher walked slowly to the village school, and Mary "
                                  f"believed the child had found a letter.",
                          question=f"Where did the teacher walk on day {i}?",
                          options=[f"to the river bank {i}", "to the village school", f"into the old house {i}",
                                   "over the lazy dog"],
                          answer=1 if i % 2 else 3, id=f"s{i}", meta={"source": f"hand:{i}"}))
    return out


def _bag(text):
    return Counter(text.split())


def _tail(text, head):
    assert text.startswith(head + " ")
    return text[len(head) + 1:]


# --- Si et al.'s generators -----------------------------------------------------------------------------------

def test_add_sent_to_passage_appends_shuffled_question_and_a_wrong_option():
    items = _items()
    before = copy.deepcopy(items)
    out = mc.add_sent_to_passage(items, seed=3)
    assert items == before                                        # inputs untouched
    for it, new in zip(items, out):
        w = new.meta["attack_option"]
        assert w != it.answer and 0 <= w < len(it.options)
        added = _tail(new.passage, it.passage)
        assert _bag(added) == _bag(f"{it.question} {it.options[w]}")     # exactly the words, nothing else
        assert new.options == it.options and new.question == it.question and new.answer == it.answer
        assert new.meta["attack"] == "AddSent2Pas-Shuffle" and new.meta["source"] == it.meta["source"]
    # shuffled, not copied: over 12 items at least one order differs
    assert any(_tail(n.passage, i.passage) != f"{i.question} {i.options[n.meta['attack_option']]}"
               for i, n in zip(items, out))


def test_add_sent_to_option_extends_only_that_wrong_option():
    items = _items()
    out = mc.add_sent_to_option(items, seed=0)
    for it, new in zip(items, out):
        w = new.meta["attack_option"]
        assert w != it.answer
        assert new.options[it.answer] == it.options[it.answer]   # the correct option is never altered
        assert all(new.options[j] == it.options[j] for j in range(4) if j != w)
        assert _bag(_tail(new.options[w], it.options[w])) == _bag(f"{it.question} {it.options[w]}")
        assert new.passage == it.passage and new.answer == it.answer


def test_add_answer_to_option_appends_the_shuffled_correct_answer_to_a_wrong_option():
    items = _items()
    out = mc.add_answer_to_option(items, seed=0)
    for it, new in zip(items, out):
        w = new.meta["attack_option"]
        assert w != it.answer
        assert new.options[it.answer] == it.options[it.answer]
        assert _bag(_tail(new.options[w], it.options[w])) == _bag(it.options[it.answer])
        assert new.passage == it.passage and new.question == it.question and new.answer == it.answer


@pytest.mark.parametrize("name", list(mc.ATTACKS) + ["P-Shuffle", "Q-Shuffle", "PQ-Shuffle"])
def test_seeds_reproduce_and_differ(name):
    fn = {**mc.ATTACKS, **mc.TRAINING}[name]
    items = _items()
    assert fn(items, seed=5) == fn(items, seed=5)
    assert fn(items, seed=5) != fn(items, seed=6)


def test_wrong_option_is_drawn_among_all_wrong_options():
    out = mc.add_sent_to_passage(_items(40), seed=0)
    by_answer = {a: {n.meta["attack_option"] for n in out if n.answer == a} for a in (1, 3)}
    assert by_answer == {1: {0, 2, 3}, 3: {0, 1, 2}}


def test_unanswerable_transforms():
    items = _items(4)
    for name, fn in mc.TRAINING.items():
        out = fn(items, seed=1)
        for it, new in zip(items, out):
            assert new.options == it.options and new.answer == it.answer and new.meta["attack"] == name
            p, q = name.split("-")[0].startswith("P") or name.startswith("PQ"), "Q" in name.split("-")[0]
            if name.endswith("Remove"):
                assert new.passage == (mc.REMOVED if p else it.passage)
                assert new.question == (mc.REMOVED if q else it.question)
            else:
                assert _bag(new.passage) == _bag(it.passage) and (new.passage != it.passage) == p
                assert _bag(new.question) == _bag(it.question) and (new.question != it.question) == q


def test_bad_items_are_refused():
    bad = MCItem(passage="p", question="q", options=["only one"], answer=0, meta={"source": "f.jsonl:3"})
    with pytest.raises(UserError, match="f.jsonl:3"):
        mc.add_sent_to_passage([bad])


# --- perturbations and key-word attacks ---------------------------------------------------------------------

def test_rounding_of_k_percent():
    assert [perturb.n_selected(k, 20) for k in (1, 2, 5, 10)] == [1, 1, 1, 2]
    assert perturb.n_selected(10, 21) == 3 and perturb.n_selected(1, 1) == 1 and perturb.n_selected(5, 0) == 0
    assert perturb.n_selected(100, 7) == 7


def test_top_and_random_indices():
    assert list(perturb.top_indices([0.1, 0.9, 0.3, 0.9], 2)) == [1, 3]       # ties: earlier first
    assert list(perturb.top_indices([0.1, 0.9, 0.3, 0.9], 1)) == [1]
    a = perturb.random_indices(30, 5, np.random.default_rng(4))
    assert list(a) == list(perturb.random_indices(30, 5, np.random.default_rng(4)))
    assert list(a) != list(perturb.random_indices(30, 5, np.random.default_rng(5)))
    assert len(set(a)) == 5


def test_word_shuffle_and_distractor():
    exs = [Example(words=None, text="a good film", meta={"label": "pos"}),
           Example(words=["bad", "dull", "plot"], meta={"label": "neg"}),
           Example(words=["x", "y"], words_b=["p", "q", "r"], meta={"label": "neg"})]
    sh = perturb.word_shuffle(exs, seed=0)
    assert _bag(sh[0].text) == _bag("a good film") and sh[0].words is None
    assert Counter(sh[2].words) == Counter(["x", "y"]) and Counter(sh[2].words_b) == Counter(["p", "q", "r"])
    d = perturb.append_distractor(exs, seed=0)
    src = d[0].meta["distractor_from"]
    assert exs[src].meta["label"] != "pos"
    assert d[0].text.startswith("a good film ")
    assert _bag(d[0].text[len("a good film "):]) == Counter(perturb._all_words(exs[src]))
    assert d[1].meta["distractor_from"] == 0 and d[1].words[:3] == ["bad", "dull", "plot"]
    assert d[2].words == ["x", "y"] and d[2].words_b[:3] == ["p", "q", "r"]      # appended to the pair's 2nd
    assert all(ex.meta.get("attack") is None for ex in exs)                       # inputs untouched


@pytest.fixture(scope="module")
def clf(tiny_model_dirs):
    torch.manual_seed(0)
    return Classifier(load_encoder(str(tiny_model_dirs["bert"])), ["neg", "pos"], head="attention").eval()


TEXTS = [("The old teacher walked slowly to the gigantic village school.", "pos"),
         ("A young doctor helped the gigantic tired farmer.", "neg"),
         ("Mary believed the gigantic child.", "pos"),
         ("The quick brown fox jumps over the lazy gigantic dog.", "neg"),
         ("Peter thought that the weather would change.", "pos")]


def _examples():
    return [Example(words=None, text=t, meta={"label": l, "source": f"hand:{i}"}) for i, (t, l) in enumerate(TEXTS)]


@pytest.fixture
def known_score(monkeypatch):
    """A method scoring 1 for the word 'gigantic', 0.5 for 'the', 0 otherwise (registered for this test only)."""
    def fn(classifier, batch, target, **_):
        W = max(len(w) for w in batch["words"])
        s = torch.zeros(len(batch["words"]), W)
        for b, ws in enumerate(batch["words"]):
            for i, w in enumerate(ws):
                s[b, i] = 1.0 if w == "gigantic" else 0.5 if w.lower() == "the" else 0.0
        return s, {}

    m = registry.Method("known", fn, "word", False, "sum", lambda c: True, "", "test")
    monkeypatch.setitem(registry.METHODS, "known", m)
    return "known"


def test_deleting_the_top_word_removes_it(clf, known_score, tmp_path):
    exs = _examples()
    res = pk.attack(clf, exs, draws=2, ks=[1], method=known_score, attacks=["delete", "mask"],
                    augment=tmp_path / "aug.jsonl", quiet=True)
    rows = [json.loads(l) for l in (tmp_path / "aug.jsonl").read_text().splitlines()]
    deleted = [r for r in rows if r["attack"] == "delete-top-1%"]
    masked = [r for r in rows if r["attack"] == "mask-top-1%"]
    assert len(deleted) == len(masked) == len(exs)
    words = [clf.encode([e], warn=False)["words"][0] for e in exs]
    for ex_words, d, m in zip(words, deleted, masked):
        top = ex_words.index("gigantic") if "gigantic" in ex_words else \
            next(i for i, w in enumerate(ex_words) if w.lower() == "the")
        assert d["words"] == ex_words[:top] + ex_words[top + 1:]                  # exactly that word gone
        assert m["words"] == ex_words[:top] + ["[MASK]"] + ex_words[top + 1:]
    # the tidy table's flip rate is what the classifier does on those inputs
    pred0 = perturb.predict_ids(clf, exs)
    predd = perturb.predict_ids(clf, [Example(words=d["words"], meta={}) for d in deleted])
    got = res.frame.query("setting == 'delete-top' and metric == 'flip_rate'")["value"].iloc[0]
    assert got == pytest.approx(np.mean(pred0 != predd))
    # round trip through classify's reader: same words, same labels
    back = read_jsonl(tmp_path / "aug.jsonl")
    assert [b.words for b in back] == [r["words"] for r in rows]
    assert [b.meta["label"] for b in back] == [e.meta["label"] for e in exs] * 2


def test_deletion_matches_occlusion(clf):
    """p(x) − p(x with the word deleted by the attack) is the occlusion score of that word."""
    exs = _examples()
    batch = clf.encode(exs, warn=False)
    with torch.no_grad():
        p = torch.softmax(clf(**model_inputs(batch)), -1)
    target = p.argmax(1)
    scores, _ = occlusion(clf, batch, target, examples=exs)
    for b, ex in enumerate(exs):
        words = batch["words"][b]
        v = perturb.delete_words(ex, words, [2])
        with torch.no_grad():
            q = torch.softmax(clf(**model_inputs(clf.encode([v], warn=False))), -1)[0, target[b]]
        assert float(scores[b, 2]) == pytest.approx(float(p[b, target[b]] - q), abs=1e-6)


def test_random_draws_reproduce(clf, known_score):
    kw = dict(draws=2, ks=[5, 10], method=known_score, attacks=["delete", "word-shuffle"], quiet=True,
              resamples=1000)
    res = pk.attack(clf, _examples(), seed=1, **kw)
    a = res.frame
    b = pk.attack(clf, _examples(), seed=1, **kw).frame
    assert a.drop(columns=[]).equals(b)
    # each setting's drop from intact: intact accuracy − mean accuracy over the draws, with a paired interval
    acc = lambda q: a.query(q, engine="python")["value"].iloc[0]
    intact = acc("setting == 'intact' and metric == 'accuracy'")
    for setting, k in (("delete-random", 5), ("delete-top", 10)):
        drop = a.query(f"setting == '{setting}' and k == {k} and metric == 'accuracy_drop'", engine="python").iloc[0]
        att = acc(f"setting == '{setting}' and k == {k} and metric == 'accuracy' and "
                  f"draw.isna() and (aggregate.isna() or aggregate.str.startswith('mean'))")
        assert drop["value"] == pytest.approx(intact - att)
        assert drop["n"] == len(_examples()) and (drop["ci_low"] <= drop["value"] <= drop["ci_high"])
    gap = a.query("setting == 'delete-top' and k == 5 and metric == 'top_minus_random_drop'", engine="python")
    assert len(gap) == 1 and np.isfinite(gap["value"].iloc[0])
    assert "## Drops from intact" in res.summary() and "word-shuffle" in res.summary().split("## Drops")[1]
    r = a.query("setting == 'delete-random' and aggregate.notna() and metric in ['accuracy', 'flip_rate']",
                engine="python")
    assert set(r["aggregate"]) == {"mean over 2 draws", "std over 2 draws"}
    draws = a.query("setting == 'delete-random' and metric == 'accuracy' and k == 5 and draw.notna()",
                    engine="python")["value"]
    mean = r.query("metric == 'accuracy' and k == 5 and aggregate.str.startswith('mean')",
                   engine="python")["value"].iloc[0]
    assert mean == pytest.approx(draws.mean())


def test_command_writes_run_and_refuses_bad_input(clf, tmp_path, capsys):
    from probekit.attack import main

    folder = tmp_path / "clf"
    save_classifier(clf, folder)
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": l}) + "\n" for t, l in TEXTS))
    for argv, msg in ((["--draws", "0"], "--draws"), (["--ks", "0"], "--ks"), (["--ks", "120"], "--ks"),
                      (["--attacks", "nope"], "--attacks"), (["--train", str(data), "--dev", str(data)],
                                                             "multiple-choice"),
                      (["--method", "nope"], "--methods")):
        rc = main(["--classifier", str(folder), "--data", str(data), "--out", str(tmp_path / "o"), *argv])
        err = capsys.readouterr().err
        lines = [l for l in err.splitlines() if "probekit" in l or "Traceback" in l]    # not HF's loading bar
        assert rc == 2 and msg in err and len(lines) == 1 and lines[0].startswith("probekit: error:"), (argv, err)
    rc = main(["--classifier", str(tmp_path / "missing"), "--data", str(data), "--out", str(tmp_path / "o")])
    assert rc == 2 and not (tmp_path / "o").exists()
    rc = main(["--classifier", str(folder), "--data", str(data), "--out", str(tmp_path / "o"), "--draws", "2",
               "--ks", "10", "--method", "occlusion", "--quiet"])
    assert rc == 0
    out = tmp_path / "o"
    assert {"results.csv", "table.csv", "summary.md", "keyword_curve.png", "config.json"} <= {
        p.name for p in out.iterdir()}
    frame = __import__("pandas").read_csv(out / "results.csv")
    assert list(frame.columns[:3]) == ["task", "dataset", "setting"]
    assert {"model", "layer", "head", "metric", "value"} <= set(frame.columns)


def test_classify_trains_on_original_plus_augmented(tmp_path, tiny_model_dirs):
    from probekit.classify import main

    rows = [(t, l) for t, l in TEXTS] * 4
    a, b, dev = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "dev.jsonl"
    a.write_text("".join(json.dumps({"text": t, "label": l}) + "\n" for t, l in rows))
    perturb.write_jsonl([Example(words=t.split()[1:], meta={"label": l, "attack": "delete"}) for t, l in rows], b)
    dev.write_text("".join(json.dumps({"text": t, "label": l}) + "\n" for t, l in TEXTS))
    both = load_split([str(a), str(b)], what="--train")
    assert len(both) == 2 * len(rows) and both[-1].words == TEXTS[-1][0].split()[1:]
    out = tmp_path / "run"
    rc = main(["--train", str(a), str(b), "--dev", str(dev), "--out", str(out), "--model",
               str(tiny_model_dirs["bert"]), "--epochs", "1", "--no-cache", "--no-baselines", "--quiet"])
    assert rc == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["counts"]["train_examples"] == 2 * len(rows)
    assert cfg["inputs"]["train"] == [str(a), str(b)]


# --- multiple choice end to end (tiny model) -----------------------------------------------------------------

def test_mc_attack_table_and_augment_round_trip(tiny_model_dirs, tmp_path):
    from probekit.classifiers.multiple_choice.train import build_model, evaluate_mc

    model = build_model(str(tiny_model_dirs["bert"]), max_length=64, seed=0)
    items = _items(6)
    for it in items:
        it.passage = "The old teacher walked to the village school."
    res = pk.attack(model, items, draws=2, augment=tmp_path / "aug.jsonl", quiet=True)
    t = res.table.set_index("setting")
    assert list(t.index) == ["intact", *mc.ATTACKS, "random guess", "longest baseline"]
    value = res.frame.set_index("setting")["value"]
    assert value["intact"] == pytest.approx(evaluate_mc(model, items)["accuracy"])
    assert value["random guess"] == pytest.approx(0.25) and t.loc["random guess", "data"] == "0.250"
    accs = [evaluate_mc(model, mc.add_sent_to_option(items, s))["accuracy"] for s in (0, 1)]
    assert t.loc["AddSent2Opt-Shuffle", "data"] == f"{np.mean(accs):.3f} ± {np.std(accs, ddof=1):.3f}"
    back = read_mc(tmp_path / "aug.jsonl")
    assert len(back) == 3 * len(items)
    assert [b.options for b in back[:6]] == [n.options for n in mc.add_sent_to_passage(items, 0)]
    assert [b.answer for b in back] == [it.answer for it in items] * 3


def test_mc_unanswerable_retraining_checkpoints_and_resumes(tiny_model_dirs, tmp_path):
    from probekit.classifiers.multiple_choice.train import build_model

    model = build_model(str(tiny_model_dirs["bert"]), max_length=64, seed=0)
    items = _items(4)
    for it in items:
        it.passage = "The old teacher walked to the village school."
    kw = dict(train=items, dev=items, unanswerable=["P-Shuffle", "Q-Remove"], epochs=1, max_length=64, draws=1,
              attacks=["AddSent2Pas-Shuffle"], checkpoints=tmp_path / "ck", quiet=True)
    first = pk.attack(model, items, **kw)
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["P-Shuffle", "Q-Remove"]
    t = first.table.set_index("setting")
    assert {"trained on P-Shuffle", "trained on Q-Remove"} <= set(t.index)
    assert t.loc["trained on Q-Remove", "group"] == "un-answerable training"
    again = pk.attack(model, items, **kw)            # every epoch already finished: resumed, same numbers
    assert again.table.equals(first.table)
    with pytest.raises(UserError, match="--unanswerable"):
        pk.attack(model, items, **{**kw, "unanswerable": ["X-Shuffle"]})


def test_limit_is_a_seeded_sample_in_file_order():
    from probekit.attacks.attack import _datasets

    rows = list(range(100))                 # a sorted file: the first N would all be one class
    a = _datasets("x", lambda s: rows, 10, seed=0)["x"]
    assert a == sorted(a) and len(set(a)) == 10 and max(a) >= 50
    assert a == _datasets("x", lambda s: rows, 10, seed=0)["x"] != _datasets("x", lambda s: rows, 10, seed=1)["x"]
    assert _datasets("x", lambda s: rows, 500, seed=0)["x"] == rows


def test_retrainings_copy_the_attacked_models_training_settings(tmp_path):
    import json

    from probekit.attacks.attack import training_options

    (tmp_path / "config.json").write_text(json.dumps({"arguments": {
        "task": "multiple-choice", "epochs": 3, "lr": 5e-5, "head_lr": 1e-3, "batch_size": 4, "max_length": 384,
        "micro_batch": 8, "weight_decay": 0.01, "warmup": 0.1, "seed": 7, "train": "mc160:train"}}))
    got = training_options(tmp_path, epochs=None, lr=2e-5, max_length=None)
    assert got == {"epochs": 3, "lr": 2e-5, "head_lr": 1e-3, "batch_size": 4, "max_length": 384, "micro_batch": 8,
                   "weight_decay": 0.01, "warmup": 0.1}
    # a model passed in memory (no folder) or a folder without a run record: only what was given
    assert training_options(None, epochs=2, lr=None) == {"epochs": 2}
    assert training_options(tmp_path / "nothing", epochs=None) == {}


def test_a_model_no_better_than_its_baseline_is_flagged():
    import pandas as pd

    from probekit.attacks.attack import AttackResult

    def mc_result(intact):
        frame = pd.DataFrame({"dataset": ["mc160:test"] * 3, "setting": ["intact", "random guess", "longest baseline"],
                              "value": [intact, 0.25, 0.325]})
        return AttackResult(frame, {"arguments": {"draws": 5}}, frame, "multiple-choice", [])

    (caution,) = mc_result(0.237).cautions()
    assert caution.startswith("mc160:test: the model on intact data (0.237) is not above the longest-option "
                              "baseline (0.325)")
    assert "**Caution:** mc160:test" in mc_result(0.237).summary()
    assert mc_result(0.6).cautions() == []
    frame = pd.DataFrame({"dataset": ["rt:test"] * 2, "setting": ["intact", "intact"],
                          "metric": ["accuracy", "flip_rate"], "value": [0.55, 0.0]})
    clf = AttackResult(frame, {}, frame, "classifier", [], chance={"rt:test": 0.6})
    assert clf.cautions() == ["rt:test: the model on intact data (0.550) is not above the majority class (0.600); "
                              "a drop under attack says little about this model."]
    assert AttackResult(frame, {}, frame, "classifier", [], chance={"rt:test": 0.5}).cautions() == []
    # above the baseline, but by less than the intact accuracy's interval: cautioned too
    wide = frame.assign(ci_low=[0.45, np.nan], ci_high=[0.65, np.nan])
    (caution,) = AttackResult(wide, {}, wide, "classifier", [], chance={"rt:test": 0.5}).cautions()
    assert "(0.550, 95% CI 0.450…0.650) is not detectably above the majority class (0.500)" in caution
    narrow = frame.assign(ci_low=[0.52, np.nan], ci_high=[0.58, np.nan])
    assert AttackResult(narrow, {}, narrow, "classifier", [], chance={"rt:test": 0.5}).cautions() == []
