"""Probe rigor: control tasks and selectivity, MDL online code, seeds, and the scikit-learn logreg probe."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import probekit as pk
from probekit.core.examples import Example
from probekit.probing.control import control_targets, preference
from probekit.probing.logreg import LogRegProbe
from probekit.probing.mdl import PERCENTS, block_boundaries, online_codelength, uniform_bits
from probekit.probing.registry import ProbingData
from probekit.probing.selection import SelectionProbe, Sentences


class FakeStore:
    """Word ids / special flags of sentences laid out as [CLS] w0 … wn [SEP]."""

    def __init__(self, examples):
        self.spans, ids, special, pos = [], [], [], 0
        for ex in examples:
            w = [-1] + list(range(ex.n_words)) + [-1]
            self.spans.append(slice(pos, pos + len(w)))
            ids += w
            special += [True] + [False] * ex.n_words + [True]
            pos += len(w)
        self.word_ids, self.special = np.array(ids), np.array(special)

    def rows(self, i):
        return self.spans[i]


VOCAB = [f"w{i}" for i in range(40)]


def make_examples(n, seed=0, length=(4, 9)):
    rng = np.random.default_rng(seed)
    return [Example(words=[VOCAB[j] for j in rng.integers(0, len(VOCAB), rng.integers(*length))],
                    meta={"split": "train", "targets": [0]}) for _ in range(n)]


def test_control_is_a_function_of_the_word_type_and_stable_under_the_seed():
    examples = make_examples(60)
    data = ProbingData(examples, [{}], ["train"])
    store = FakeStore(examples)
    targets = np.ones((60, 1), dtype=np.int64)
    a, b = control_targets(store, data, targets, seed=3), control_targets(store, data, targets, seed=3)
    assert (a == b).all()
    assert (a != control_targets(store, data, targets, seed=4)).any()
    for i, ex in enumerate(examples):     # the chosen word is the one whose type has the highest preference
        chosen = ex.words[a[i, 0] - 1]
        assert preference(chosen, 0, 3) == max(preference(w, 0, 3) for w in ex.words)
    assert preference("Dog", 0, 1) == preference("dog", 0, 1)
    assert (control_targets(store, data, np.full((60, 1), -1), seed=3) == -1).all()


def synthetic(n, seed, informative):
    """Word vectors: one-hot position if ``informative``, else one-hot word type; targets = position 2."""
    rng = np.random.default_rng(seed)
    examples = make_examples(n, seed, length=(5, 9))
    D = len(VOCAB) + 10
    lengths = [ex.n_words for ex in examples]
    U = max(lengths)
    flat, index = [], torch.full((n, U), -1)
    for i, ex in enumerate(examples):
        for u, w in enumerate(ex.words):
            v = np.zeros(D, dtype=np.float32)
            if informative:
                v[len(VOCAB) + u] = 1.0
            else:
                v[VOCAB.index(w)] = 1.0
            v += rng.normal(0, 0.01, D).astype(np.float32)
            index[i, u] = len(flat)
            flat.append(v)
    data = Sentences(torch.tensor(np.array(flat)), index, index >= 0)
    return examples, data, np.full((n, 1), 2, dtype=np.int64)


def test_selectivity_goes_the_right_way():
    """Vectors encoding position solve the task, not the (type-memorising) control; type vectors the reverse."""
    results = {}
    for informative in (True, False):
        examples, train, y = synthetic(300, 0, informative)
        dev_ex, dev, ydev = synthetic(150, 1, informative)
        ctrl = [np.array([[int(np.argmax([preference(w, 0, 0) for w in ex.words]))] for ex in exs])
                for exs in (examples, dev_ex)]
        probe = SelectionProbe(kind="linear", epochs=30, lr=0.05, dropout=0.0)
        probe.fit(train, np.hstack([y, ctrl[0]]), dev=(dev, np.hstack([ydev, ctrl[1]])))
        acc = probe.accuracies(dev, np.hstack([ydev, ctrl[1]]))
        results[informative] = acc[0] - acc[1]
    assert results[True] > 0.3 > results[False]


def test_mdl_block_boundaries_as_specified():
    assert len(PERCENTS) == 11 and PERCENTS[0] == 0.1 and PERCENTS[-1] == 100
    assert block_boundaries(2000) == [2, 4, 8, 16, 32, 64, 125, 250, 500, 1000, 2000]
    # floored as Voita & Titov's code (int(fraction · n)): 0.8 % of 1,190 is 9.52 → 9, 6.25 % is 74.375 → 74
    assert block_boundaries(1190) == [1, 2, 4, 9, 19, 38, 74, 148, 297, 595, 1190]
    b = block_boundaries(50)
    assert b == sorted(set(b)) and b[0] == 1 and b[-1] == 50


def test_mdl_of_perfectly_fitted_data_approaches_the_first_block():
    examples, train, y = synthetic(400, 0, True)
    code = online_codelength(lambda: SelectionProbe(kind="linear", epochs=60, lr=0.2, dropout=0.0,
                                                    weight_decay=0.0), train, y, seed=0)
    assert code["boundaries"].tolist() == block_boundaries(400)
    assert code["uniform_bits"][0] == pytest.approx(uniform_bits(train).sum())
    first = code["first_block_bits"][0]
    assert first <= code["online_bits"][0] < first + 0.05 * code["uniform_bits"][0]
    assert code["uniform_bits"][0] / code["online_bits"][0] > 10


def test_logreg_probe_on_separable_data_is_perfect():
    _, train, y = synthetic(200, 0, True)
    _, dev, ydev = synthetic(100, 1, True)
    probe = LogRegProbe().fit(train, y)
    assert probe.accuracies(dev, ydev)[0] == 1.0
    logp = probe.predict_log_proba(dev)
    assert np.allclose(np.exp(logp).sum(1), 1.0)


def test_seeds_control_mdl_rows(tiny_model_dirs, tmp_path):
    r = pk.probe("auxiliary", model=str(tiny_model_dirs["bert"]), split_sizes="40,12,12", epochs=1, seeds=2,
                 control=True, mdl=True, probes=["linear"], quiet=True, no_cache=True)
    df = r.frame
    assert sorted(df["seed"].unique()) == [0, 1]
    acc = df[df["metric"] == "accuracy"]
    assert acc.groupby(["layer", "probe", "split"]).size().eq(2).all()      # one row per seed
    merged = acc.merge(df[df["metric"] == "control_accuracy"], on=["layer", "probe", "split", "seed"])
    sel = df[df["metric"] == "selectivity"].merge(merged, on=["layer", "probe", "split", "seed"])
    assert np.allclose(sel["value"], sel["value_x"] - sel["value_y"])
    assert {"online_codelength_kbits", "compression", "control_compression"} <= set(df["metric"])
    from probekit.report.probe_report import markdown_report
    md = markdown_report(df, r.key_names)
    assert "±" in md and "Selectivity" in md and "compression" in md.lower()
    assert "kbits of 1024 bits" in md and "floored as Voita & Titov's code" in md
    run = r.write(tmp_path / "run")
    assert (run / "accuracy_by_layer.png").stat().st_size > 0


def test_seeds_must_be_positive(tiny_model_dirs):
    from probekit.core.errors import UserError

    with pytest.raises(UserError, match="--seeds"):
        pk.probe("auxiliary", model=str(tiny_model_dirs["bert"]), seeds=0, quiet=True)
