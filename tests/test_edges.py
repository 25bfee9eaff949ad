"""Edge probing: the scalar mix, the layer summaries, a probe that finds the one informative layer, the command."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from probekit.core.errors import UserError
from probekit.probing import edge_probe as ep

from test_structural import CONLLU


def test_scalar_mix_weights_sum_to_one_and_mix_linearly():
    mix = ep.ScalarMix(4)
    with torch.no_grad():
        mix.logits.copy_(torch.tensor([0.3, -1.0, 2.0, 0.0]))
        mix.gamma.fill_(1.5)
    w = mix.weights()
    assert float(w.detach().sum()) == pytest.approx(1.0)
    layers = torch.randn(4, 3, 5)
    torch.testing.assert_close(mix(layers), 1.5 * (w[:, None, None] * layers).sum(0))


def test_center_of_gravity_and_expected_layer():
    assert ep.center_of_gravity([0, 0, 1, 0]) == 2.0                       # a one-hot mix sits at its layer
    assert ep.center_of_gravity([0.5, 0, 0, 0.5]) == 1.5
    # cumulative scores 0.2, 0.6, 0.7, 0.7: Δ = 0.4, 0.1, 0 at layers 1, 2, 3 → (1·0.4 + 2·0.1) / 0.5
    assert ep.expected_layer([0.2, 0.6, 0.7, 0.7]) == pytest.approx(1.2)
    assert np.isnan(ep.expected_layer([0.5, 0.5, 0.5]))


def test_self_attentive_pooling_ignores_padding_and_each_span_has_its_own():
    probe = ep.EdgeProbe(1, 4, 2, pair=True, proj=3)
    x = torch.randn(2, 3, 3)
    mask = torch.tensor([[True, False, False], [True, True, False]])
    pooled = probe.pool(x, mask)
    torch.testing.assert_close(pooled[0], x[0, 0])                        # one real word: its own vector
    x2 = x.clone()
    x2[:, 2] = 1e4                                                        # padding changes nothing
    torch.testing.assert_close(probe.pool(x2, mask), pooled)
    # Tenney et al.: a projection and a pooling per span, and a Tanh MLP
    assert len(probe.proj) == 2 and probe.proj[0].weight.data_ptr() != probe.proj[1].weight.data_ptr()
    assert not torch.allclose(probe.pool(x, mask, 1), pooled)
    assert isinstance(probe.mlp[1], torch.nn.Tanh) and probe.mlp[3].p == pytest.approx(0.3)


def test_scores_micro_f1_per_label_decisions_and_fast_macro_f1():
    from sklearn.metrics import f1_score

    prob = np.array([[0.9, 0.6, 0.1], [0.2, 0.3, 0.4], [0.1, 0.8, 0.7]])
    gold = np.array([0, 2, 2])
    # decisions > 0.5: row 0 {0, 1} (tp 1, fp 1), row 1 {} (fn 1), row 2 {1, 2} (tp 1, fp 1) → 2·2/(4 + 2 + 1)
    sc = ep.scores(prob, gold, 3)
    assert sc["micro_f1"] == pytest.approx(4 / 7)
    assert sc["accuracy"] == pytest.approx(2 / 3)
    rng = np.random.default_rng(0)
    for _ in range(5):
        g, p = rng.integers(0, 6, 50), rng.integers(0, 6, 50)
        assert ep.macro_f1(p, g, 7) == pytest.approx(f1_score(g, p, average="macro", labels=list(range(7)),
                                                               zero_division=0))


def test_mix_finds_the_informative_layer():
    rng = np.random.default_rng(0)
    n, dim, L = 600, 8, 4
    labels = rng.integers(0, 3, size=n)
    table = torch.from_numpy(rng.normal(size=(L, n, dim)).astype(np.float32))
    table[2, :, :3] += 4 * torch.nn.functional.one_hot(torch.from_numpy(labels), 3).float()   # only layer 2 knows
    items = [([i], [], str(labels[i])) for i in range(n)]
    tr, dv = ep.build_targets(items[:450]), ep.build_targets(items[450:])
    probe = ep.train_probe(table, table, list(range(L)), tr, dv, pair=False, epochs=20, lr=3e-3, seed=0)
    assert int(probe.mix.weights().argmax()) == 2
    assert ep.scores(ep.predict(probe, table, dv), dv.labels, 3)["accuracy"] > 0.8
    probe0 = ep.train_probe(table, table, [0], tr, dv, pair=False, epochs=20, lr=3e-3, seed=0)
    assert ep.scores(ep.predict(probe0, table[[0]], dv), dv.labels, 3)["accuracy"] < 0.6   # near chance


def test_build_targets_pads_pairs_and_drops_unseen_dev_labels():
    tr = ep.build_targets([([0], [1, 2], "a"), ([3], [4], "b")])
    assert tr.spans.shape == (2, 2, 2) and tr.spans[1, 1, 1] == -1 and tr.classes == ["a", "b"]
    dv = ep.build_targets([([0], [1], "a"), ([2], [3], "zzz")], tr.classes, width=2)
    assert len(dv) == 1 and dv.labels.tolist() == [0]


def test_command_matches_facade(tmp_path, tiny_model_dirs):
    import probekit as pk
    from probekit.edges import main

    tb = tmp_path / "tb.conllu"
    tb.write_text(CONLLU * 3, encoding="utf-8")
    opts = ["--train", str(tb), "--dev", str(tb), "--test", str(tb), "--model", str(tiny_model_dirs["bert"]),
            "--epochs", "1", "--resamples", "200", "--cache-dir", str(tmp_path / "c"), "--quiet"]
    assert main(opts + ["--out", str(tmp_path / "run")]) == 0
    csv = pd.read_csv(tmp_path / "run" / "results.csv")
    w = csv[(csv["metric"] == "mix_weight") & (csv["task"] == "upos")]
    assert len(w) == 3 and w["value"].sum() == pytest.approx(1.0, abs=1e-5)    # tiny BERT: layers 0…2
    assert set(csv["metric"]) >= {"micro_f1", "accuracy", "macro_f1", "center_of_gravity", "expected_layer"}
    assert "layer-nopos" in set(csv["probe"]) and {"dev", "test"} <= set(csv["split"])
    f1 = csv[(csv["metric"] == "micro_f1") & (csv["probe"] == "layer")]
    macro = csv[(csv["metric"] == "macro_f1") & (csv["probe"] == "layer")]
    for rows in (f1, macro):
        assert (rows["ci_over"] == "sentences").all() and (rows["ci_low"] <= rows["value"] + 1e-12).all()
        assert (rows["value"] <= rows["ci_high"] + 1e-12).all()
        assert (rows[rows["task"] == "upos"]["n"] == 6).all()            # 6 sentences (of 4 words)
    cmp = pd.read_csv(tmp_path / "run" / "comparisons.csv")
    md = (tmp_path / "run" / "results.md").read_text()
    assert set(cmp["split"]) == {"test"} and all(s in md for s in cmp["sentence"])
    res = pk.edges(train=tb, dev=tb, test=tb, model=str(tiny_model_dirs["bert"]), epochs=1, resamples=200,
                   cache_dir=tmp_path / "c", quiet=True)
    np.testing.assert_allclose(res.frame["value"].to_numpy(float), csv["value"].to_numpy(float), rtol=1e-5,
                               equal_nan=True)
    with pytest.raises(UserError, match="--gap-train is required"):
        pk.edges(tasks=["coref"])
    assert main(opts + ["--epochs", "0", "--out", str(tmp_path / "bad")]) == 2
    seeded = pk.edges(train=tb, dev=tb, model=str(tiny_model_dirs["bert"]), epochs=1, seeds=2,
                      cache_dir=tmp_path / "c", quiet=True)
    f = seeded.frame
    assert (f[f["metric"] == "accuracy"]["ci_over"] == "seeds").all()
    assert (f[f["metric"] == "center_of_gravity"]["n"] == 2).all()


def test_sentence_bootstrap_recomputes_each_score_from_summed_sentence_counts():
    from probekit.probing import edges_compare as ec

    rng = np.random.default_rng(0)
    n, C = 300, 4
    gold = rng.integers(0, C, n)
    prob = rng.random((n, C))
    prob[np.arange(n), gold] += rng.random(n) < 0.6                       # right about 60 % of the time
    prob /= prob.sum(1, keepdims=True) / 1.2
    sentence = np.sort(rng.integers(0, 40, n))
    part = ec.parts(prob, gold, sentence, C)
    full = ep.scores(prob, gold, C)
    for metric in ("micro_f1", "accuracy", "macro_f1"):
        row = ec.row_interval(metric, [full[metric]], [part], seed=0, resamples=500)
        table = ec._per_sentence(metric, part)
        point = float(ec.AGGREGATES[metric][1](table.sum(0)))
        assert point == pytest.approx(full[metric], abs=1e-12)           # the summed counts give the score
        assert row["ci_over"] == "sentences" and row["n"] == len(np.unique(sentence))
        assert row["ci_low"] < full[metric] < row["ci_high"]
    # paired over sentences: a probe against itself differs by exactly 0; a worse one is detected
    same = ec.difference("macro_f1", part, part, resamples=500)
    assert same.estimate == 0 and same.ci_low == same.ci_high == 0
    worse = prob.copy()
    worse[np.arange(n), gold] *= np.where(rng.random(n) < 0.5, 0.1, 1.0)
    d = ec.difference("accuracy", part, ec.parts(worse, gold, sentence, C), resamples=500)
    assert d.estimate > 0 and d.ci_low > 0 and d.n == len(np.unique(sentence))
    # two classes (coref): the F1 of class 1 gets its interval from the same summed counts
    gold2 = (gold % 2).astype(int)
    prob2 = np.column_stack([prob[:, 0] + prob[:, 2], prob[:, 1] + prob[:, 3]])
    part2, full2 = ec.parts(prob2, gold2, sentence, 2), ep.scores(prob2, gold2, 2)
    table = ec._per_sentence("f1", part2)
    assert float(ec.AGGREGATES["f1"][1](table.sum(0))) == pytest.approx(full2["f1"], abs=1e-12)
    row = ec.row_interval("f1", [full2["f1"]], [part2], seed=0, resamples=500)
    assert row["ci_over"] == "sentences" and row["ci_low"] < full2["f1"] < row["ci_high"]
