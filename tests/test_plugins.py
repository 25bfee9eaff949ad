"""Plug-ins of every family from one file of the user's: an experiment and a probe registered there appear in the
command-line choices and run through ``pk.faithfulness`` / ``pk.probe``; probes are scikit-learn estimators."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

import probekit as pk
from probekit.core import plugins
from probekit.core.errors import UserError
from probekit.core.examples import Example
from probekit.evaluation import experiments
from probekit.probing import base as probe_base

PLUGIN = '''
"""A user's experiment and probe in one file of their own."""
import numpy as np
import torch

from probekit.core.options import option, positive
from probekit.evaluation.base import Outcome, finding
from probekit.evaluation.experiment import Experiment
from probekit.evaluation.experiments import register as register_experiment
from probekit.probing.base import SelectionProbeBase, as_targets, register as register_probe


@register_experiment
class LongWords(Experiment):
    """The share of words with at least --min-chars characters (needs no attention and no training)."""

    name = "long-words"
    paper = "A user (2026): how many words are long?"
    needs_source = False
    min_chars: int = option(6, "characters a long word has at least", check=positive)

    def run(self, ctx):
        words = [w for ex in ctx.examples for w in ctx.classifier.encode([ex], warn=False)["words"][0]]
        share = float(np.mean([len(w) >= self.min_chars for w in words]))
        return Outcome(self.name, findings=[finding(self.name, "long-word share", share, "share of words")])


@register_probe
class CentroidProbe(SelectionProbeBase):
    """Scores a word by its dot product with the mean vector of the training targets (one mean per key)."""

    name = "centroid"
    summary = "dot product with the mean target vector"

    def __init__(self, scale: float = 1.0, seed: int = 0):
        self.scale, self.seed = scale, seed

    def fit(self, X, y, dev=None):
        y = as_targets(y)
        vectors, _ = X.batch(torch.arange(len(X)))
        self.centroid_ = np.stack([vectors[y[:, k] >= 0, y[y[:, k] >= 0, k]].mean(0).numpy()
                                   for k in range(y.shape[1])])
        return self

    def predict_log_proba(self, X):
        vectors, cand = X.batch(torch.arange(len(X)))
        s = self.scale * torch.einsum("nud,kd->nuk", vectors.float(), torch.from_numpy(self.centroid_).float())
        s = s.masked_fill(~cand[..., None], float("-inf"))
        return torch.log_softmax(s, dim=1).numpy()
'''


@pytest.fixture
def plugin(tmp_path):
    """The plug-in file; every registry and the loader's memory are restored afterwards."""
    before = {family: dict(reg) for family, reg in plugins.REGISTRIES.items()}
    loaded = dict(plugins._LOADED)
    path = tmp_path / "mine.py"
    path.write_text(PLUGIN)
    yield path
    for family, reg in plugins.REGISTRIES.items():
        # what was there, plus built-ins whose modules were first imported during the test (they register
        # once per process); the plug-in's own classes go
        kept = dict(before.get(family, {}))
        kept.update({n: c for n, c in reg.items() if n not in kept and c.__module__.startswith("probekit.")})
        reg.clear()
        reg.update(kept)
    plugins._LOADED.clear()
    plugins._LOADED.update(loaded)


def _classifier(tiny_model_dirs, tmp_path):
    from probekit.classifiers.model import Classifier
    from probekit.classifiers.saved import save_classifier

    torch.manual_seed(0)
    clf = Classifier(pk.load_encoder(str(tiny_model_dirs["bert"])), ["neg", "pos"], head="attention",
                     level="word").eval()
    return clf, save_classifier(clf, tmp_path / "clf")


def test_a_users_experiment_from_a_file_is_a_choice_and_runs(tiny_model_dirs, plugin, tmp_path, capsys):
    from probekit.faithfulness import build_parser, main

    assert "long-words" not in experiments.names()
    help_text = build_parser(["--plugin", str(plugin)]).format_help()
    assert "long-words" in help_text and "--min-chars" in help_text
    clf, clf_dir = _classifier(tiny_model_dirs, tmp_path)
    rows = [{"text": "A wonderfully unexpected film.", "label": "pos"}, {"text": "Bad and dull.", "label": "neg"}]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    words = [w for r in rows for w in clf.encode([Example(words=None, text=r["text"])], warn=False)["words"][0]]
    out = tmp_path / "run"
    assert main(["--classifier", str(clf_dir), "--data", str(data), "--plugin", str(plugin), "--experiments",
                 "long-words", "--min-chars", "4", "--out", str(out), "--quiet"]) == 0
    findings = pd.read_csv(out / "findings.csv")
    assert findings["value"].tolist() == pytest.approx([np.mean([len(w) >= 4 for w in words])])
    assert "## long-words: A user (2026): how many words are long?" in (out / "summary.md").read_text()
    assert json.loads((out / "config.json").read_text())["arguments"]["options"]["min_chars"] == 4
    # pk.faithfulness after pk.load_plugin (loading again registers nothing new), with its own option's default
    assert sorted(pk.load_plugin(plugin)) == ["centroid", "long-words"]
    res = pk.faithfulness(clf, str(data), experiments=["long-words"], quiet=True)
    assert res["long-words"].findings[0]["value"] == pytest.approx(np.mean([len(w) >= 6 for w in words]))
    assert "long-words" in set(pk.list_experiments()["name"])
    with pytest.raises(UserError, match="--min-chars must be at least 1"):
        pk.faithfulness(clf, str(data), experiments=["long-words"], min_chars=0, quiet=True)


def test_a_users_probe_from_a_file_is_a_choice_and_trains_on_every_layer(tiny_model_dirs, plugin, tmp_path):
    from probekit.corpora.grammar import Grammar, generate
    from probekit.probe import build_parser, main

    model = str(tiny_model_dirs["bert"])
    corpus = tmp_path / "sents.txt"
    sents = generate(Grammar.load("english"), 60, seed=5, keep=lambda s: 6 <= len(s.words) <= 20)
    corpus.write_text("\n".join(" ".join(s.words) for s in sents) + "\n", encoding="utf-8")
    argv = ["--task", "nth_token", "--model", model, "--corpus", str(corpus), "--n", "1,2", "--epochs", "1",
            "--plugin", str(plugin),
            "--probes", "centroid", "--out", str(tmp_path / "run"), "--cache-dir",
            str(tmp_path / "cache"), "--quiet"]
    assert main(argv) == 0
    assert "centroid" in build_parser().format_help()
    df = pd.read_csv(tmp_path / "run" / "results.csv")
    assert set(df["probe"]) == {"centroid", "centroid-nopos"}
    mine = df[(df["probe"] == "centroid") & (df["metric"] == "accuracy")]
    assert sorted(mine["layer"].unique()) == [0, 1, 2] and mine["value"].between(0, 1).all()
    res = pk.probe("nth_token", model=model, corpus=str(corpus), n=[1], probes=["centroid"], plugin=[str(plugin)],
                   quiet=True, cache_dir=str(tmp_path / "cache"))
    assert set(res.frame["probe"]) >= {"centroid"} and "centroid" in set(pk.list_probes()["name"])


def _sentences(n, seed=0):
    from test_linear_probe import noisy

    return noisy(n, seed, signal=3.0)


@pytest.mark.parametrize("name", ["linear", "mlp", "logreg"])
def test_probes_are_scikit_learn_estimators(name):
    from sklearn.base import clone
    from sklearn.model_selection import KFold, cross_val_score

    from probekit.probing.kinds import make

    X, y = _sentences(90)
    probe = make(name, epochs=3, seed=1)
    scores = cross_val_score(probe, X, y, cv=KFold(3))
    assert scores.shape == (3,) and np.all((scores > 0.5) & (scores <= 1))   # chance is about 1/6
    fitted = clone(probe).fit(X[:60], y[:60])
    assert fitted is not probe and isinstance(fitted.score(X[60:], y[60:]), float)
    p = fitted.predict_proba(X[60:])
    real = (X[60:].candidate & (X[60:].index >= 0)).numpy()
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)            # a distribution over each sentence's words
    assert (p[~real] == 0).all()
    assert (fitted.predict(X[60:]) == p.argmax(1)).all()
    params = probe.get_params()
    assert clone(probe).set_params(seed=7).get_params() == {**params, "seed": 7}


def test_structural_probe_is_an_estimator_and_registration_checks_the_class():
    from sklearn.base import clone

    from probekit.probing.kinds import get_probe, probe_names
    from probekit.probing.structural_probes import Sentence, tree_depths

    assert probe_names("sentences")[:3] == ["linear", "mlp", "logreg"] and probe_names("trees") == ["distance",
                                                                                                   "depth"]
    g = np.random.default_rng(0)
    heads = [[0, 1, 2, 3], [2, 0, 2, 3], [0, 1, 1, 3]]
    sents = []
    for h in heads * 8:              # vectors that carry each word's depth on one axis
        v = g.normal(size=(len(h), 6)).astype(np.float32) * 0.1
        v[:, 0] += np.asarray(tree_depths(h), dtype=np.float32)
        sents.append(Sentence.of(v, h))
    probe = get_probe("depth")(rank=2, epochs=30, seed=0)
    assert clone(probe).get_params() == probe.get_params()
    assert probe.fit(sents[:16], dev=sents[16:]) is probe
    assert 0 <= probe.score(sents[16:]) <= 1 and len(probe.predict(sents[16:])) == 8
    with pytest.raises(TypeError, match="implement predict_log_proba"):
        probe_base.register(type("Nothing", (probe_base.SelectionProbeBase,), {"name": "nothing",
                                                                            "fit": lambda self, X, y: self}))
    with pytest.raises(TypeError, match="implement run"):
        experiments.register(type("Idle", (pk.Experiment,), {"name": "idle"}))


def test_experiments_describe_themselves_and_dependencies_order_the_run():
    table = pk.list_experiments().set_index("name")
    assert list(table.index[:10]) == ["tau", "permutation", "adversary", "single-weight", "sets", "uniform",
                                      "seeds", "e2e-adversary", "diagnostic", "eraser"]
    assert table.loc["seeds", "needs_training"] and not table.loc["eraser", "needs_source"]
    assert table.loc["eraser", "metrics"]["aopc_sufficiency"] == "lower"
    assert table.loc["permutation", "options"] == {"resamples": 9999, "permutations": 100}
    assert experiments.in_order(["diagnostic", "tau", "e2e-adversary"]) == ["e2e-adversary", "diagnostic", "tau"]
    assert experiments.in_order(["diagnostic", "tau"]) == ["diagnostic", "tau"]


def test_a_registered_attack_runs_in_pk_attack(tiny_model_dirs, plugin, tmp_path):
    from probekit.attacks import base as attack_base

    def drop_last(examples, seed=0):
        """Every example without its last word."""
        return [Example(words=None, text=" ".join(ex.text.split()[:-1]), meta=dict(ex.meta)) for ex in examples]

    attack_base.transform("drop-last", drop_last, random=False)
    assert "drop-last" in set(pk.list_attacks()["name"])
    clf, _ = _classifier(tiny_model_dirs, tmp_path)
    labelled = [Example(words=None, text=t, meta={"label": l}) for t, l in
                [("A wonderfully unexpected film today", "pos"), ("Bad and dull throughout", "neg"),
                 ("Quite good really", "pos")]]
    res = pk.attack(clf, labelled, attacks=["drop-last"], draws=1, quiet=True, resamples=1000)
    got = res.frame[(res.frame["setting"] == "drop-last") & (res.frame["metric"] == "accuracy")
                    & res.frame["aggregate"].isna()]["value"]
    want = (clf.predict(drop_last(labelled))["label"] == [ex.meta["label"] for ex in labelled]).mean()
    assert got.tolist() == pytest.approx([want])
    with pytest.raises(TypeError, match="implement apply"):
        attack_base.register(type("Idle", (pk.Attack,), {"name": "idle"}))


def test_edge_probe_is_an_estimator_that_cross_validates():
    from sklearn.model_selection import KFold, cross_val_score

    from probekit.probing.edge_probe import Spans, build_targets
    from probekit.probing.kinds import make

    g = np.random.default_rng(0)
    labels = ["A", "B", "C"]
    gold = g.integers(0, 3, size=60)
    table = torch.from_numpy(g.normal(size=(2, 60, 8)).astype(np.float32))
    table[:, np.arange(60), gold] += 3.0               # a word's label shows on one dimension, in both layers
    X = Spans(table, build_targets([([i], [], labels[c]) for i, c in enumerate(gold)], classes=labels))
    probe = make("edge", epochs=8, lr=2e-2, batch_size=10, val_interval=3, seed=0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        scores = cross_val_score(probe, X, cv=KFold(2))
        fitted = probe.fit(X[:40])
    finally:
        torch.set_num_threads(threads)
    assert scores.shape == (2,) and np.all(scores > 0.6)           # micro-F1; all-negative decisions give 0
    p = fitted.predict_proba(X[40:])
    assert p.shape == (20, 3) and ((p > 0) & (p < 1)).all()       # one sigmoid per label
    assert (fitted.predict(X[40:]) == p.argmax(1)).all() and isinstance(fitted.score(X[40:]), float)
