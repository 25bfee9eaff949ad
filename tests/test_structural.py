"""Structural probes: metrics against hand-built trees, and probes that recover a tree embedded in vectors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from probekit.core.errors import UserError
from probekit.probing import structural_probes as sp


def random_tree(n, rng):
    """Heads (1-based, 0 = root) of a random tree over n words."""
    order = rng.permutation(n)
    heads = [0] * n
    for k in range(1, n):
        heads[order[k]] = int(order[rng.integers(0, k)]) + 1
    return heads


def pythagorean_vectors(heads, dim, rng):
    """Vectors whose squared distances are exactly tree distances: each edge gets its own orthonormal
    direction and a word is the sum of the edge directions on its path to the root."""
    n = len(heads)
    basis = np.linalg.qr(rng.normal(size=(dim, dim)))[0][:, :n]     # n orthonormal directions
    vec = np.zeros((n, dim))
    for i in range(n):
        node = i
        while heads[node] > 0:
            vec[i] += basis[:, node]
            node = heads[node] - 1
    return vec


def test_tree_distances_and_depths_by_hand():
    heads = [2, 0, 2, 3]                        # 1 ← 2 (root) → 3 → 4
    d = sp.tree_distances(heads)
    assert d[0, 3] == 3 and d[0, 2] == 2 and d[1, 3] == 2 and np.all(np.diag(d) == 0)
    np.testing.assert_array_equal(sp.tree_depths(heads), [1, 0, 1, 2])


def test_exact_tree_metric_gives_uuas_and_spearman_one():
    rng = np.random.default_rng(0)
    sents = []
    for n in (6, 9, 12, 15):
        heads = random_tree(n, rng)
        sents.append(sp.Sentence.of(pythagorean_vectors(heads, 24, rng), heads))
    pred = [np.round(((s.vectors[:, None] - s.vectors[None]) ** 2).sum(-1), 4) for s in sents]   # fp noise would break ties
    scores = sp.evaluate_distances(sents, pred)
    assert scores["uuas"] == pytest.approx(1.0) and scores["dspr"] == pytest.approx(1.0)
    depth = sp.evaluate_depths(sents, [s.depths for s in sents])
    assert depth["root_acc"] == 1.0 and depth["nspr"] == pytest.approx(1.0)


def test_mst_leaves_punctuation_out():
    heads = [2, 0, 2, 2]
    s = sp.Sentence.of(np.zeros((4, 2)), heads, ["DET", "NOUN", "PUNCT", "VERB"])
    assert sp.gold_edges(heads, s.keep) == {(0, 1), (1, 3)}
    pred = s.distances.copy()
    pred[2] = pred[:, 2] = 0.01                          # punctuation close to everything …
    edges = sp.mst_edges(pred, s.keep)
    assert all(2 not in e for e in edges) and edges == {(0, 1), (1, 3)}   # … yet never in the tree
    assert sp.evaluate_distances([s], [pred])["uuas"] == 1.0


def test_spearman_is_averaged_within_lengths_then_over_lengths():
    rng = np.random.default_rng(1)
    sents = [sp.Sentence.of(np.zeros((n, 2)), random_tree(n, rng)) for n in (5, 5, 7, 60)]
    perfect = [s.distances for s in sents]
    noisy = perfect[:2] + [rng.permutation(perfect[2].ravel()).reshape(perfect[2].shape), perfect[3]]
    rho7 = np.nanmean([__import__("scipy").stats.spearmanr(noisy[2][i], sents[2].distances[i]).statistic
                       for i in range(7)])
    got = sp.evaluate_distances(sents, noisy)["dspr"]
    assert got == pytest.approx((1.0 + rho7) / 2)        # length 5 (two sentences) and 7; 60 is outside 5–50


def test_root_accuracy_counts_every_sentence_as_hewitt():
    """A sentence whose root is punctuation counts (and is missed); one of punctuation only takes its
    shallowest word of all."""
    plain = sp.Sentence.of(np.zeros((3, 2)), [2, 0, 2], ["DET", "NOUN", "PUNCT"])
    punct_root = sp.Sentence.of(np.zeros((3, 2)), [3, 3, 0], ["NOUN", "VERB", "PUNCT"])
    only_punct = sp.Sentence.of(np.zeros((2, 2)), [0, 1], ["PUNCT", "PUNCT"])
    pred = [np.array([1.0, 0.0, 2.0]), np.array([1.0, 2.0, 0.0]), np.array([0.5, 3.0])]
    scores = sp.sentence_scores("depth", [plain, punct_root, only_punct], pred)
    np.testing.assert_array_equal(scores["root_hit"], [1.0, 0.0, 1.0])
    assert sp.evaluate_depths([plain, punct_root, only_punct], pred)["root_acc"] == pytest.approx(2 / 3)


def test_regimen_decays_the_rate_on_a_plateau_and_stops_early():
    """Hewitt & Manning's regimen: ×0.1 whenever the dev loss fails to improve, a stop after 5 such epochs, the
    best dev epoch kept."""
    rng = np.random.default_rng(5)
    sents = [sp.Sentence.of(rng.normal(size=(n, 6)), random_tree(n, rng)) for n in rng.integers(4, 9, size=40)]
    probe, hist = sp.train("depth", sents[:30], sents[30:], rank=6, epochs=40, lr=0.05, seed=0)
    rates = [h["lr"] for h in hist]
    assert rates[0] == pytest.approx(0.05) and min(rates) < 0.05       # noise features: the dev loss stalls
    for prev, cur, nxt in zip(hist, hist[1:], hist[2:]):
        if cur["dev_loss"] >= min(h["dev_loss"] for h in hist[:hist.index(cur)]):
            assert nxt["lr"] == pytest.approx(cur["lr"] * 0.1)
    kept = [h for h in hist if h["kept"]]
    assert len(kept) == 1 and kept[0]["dev_loss"] == min(h["dev_loss"] for h in hist)
    assert len(hist) < 40 and len(hist) - kept[0]["epoch"] == sp.PATIENCE
    dev = sents[30:]
    again = sp.evaluate_depths(dev, sp.predict(probe, dev))   # the kept parameters are the best epoch's
    with torch.no_grad():
        best_loss = float(sp.loss(probe(sp._batch(dev, "depth")[0]), *sp._batch(dev, "depth")[1:], "depth"))
    assert best_loss == pytest.approx(kept[0]["dev_loss"], rel=1e-4) and 0 <= again["root_acc"] <= 1


def test_trained_probes_recover_an_embedded_tree():
    rng = np.random.default_rng(2)
    dim = 16
    mix = np.eye(dim) + 0.3 * rng.normal(size=(dim, dim))          # one linear map the probe must undo

    def make(k):
        out = []
        for _ in range(k):
            heads = random_tree(int(rng.integers(5, 12)), rng)
            out.append(sp.Sentence.of(pythagorean_vectors(heads, dim, rng) @ mix, heads))
        return out
    train, dev = make(150), make(30)
    dist, hist = sp.train("distance", train, dev, rank=dim, epochs=25, lr=0.01, seed=0)
    assert hist[-1]["dev_loss"] < hist[0]["dev_loss"]
    scores = sp.evaluate_distances(dev, sp.predict(dist, dev))
    assert scores["uuas"] > 0.95 and scores["dspr"] > 0.85   # gold distances tie, predictions do not
    baseline = sp.position_baseline("distance", dev)
    assert baseline["uuas"] < scores["uuas"]


def test_distance_probe_matches_the_explicit_formula():
    torch.manual_seed(0)
    probe = sp.DistanceProbe(5, 3)
    h = torch.randn(2, 4, 5)
    t = h @ probe.proj
    explicit = ((t[:, :, None] - t[:, None]) ** 2).sum(-1)
    torch.testing.assert_close(probe(h), explicit, atol=1e-5, rtol=1e-5)
    depth = sp.DepthProbe(5, 3)
    torch.testing.assert_close(depth(h), ((h @ depth.proj) ** 2).sum(-1))


def test_loss_is_normalised_by_squared_length():
    pred = torch.zeros(1, 3, 3)
    gold = torch.ones(1, 3, 3)
    mask = torch.ones(1, 3, 3, dtype=torch.bool)
    assert float(sp.loss(pred, gold, mask, torch.tensor([3.0]), "distance")) == pytest.approx(1.0)
    assert float(sp.loss(pred[:, 0], gold[:, 0], mask[:, 0], torch.tensor([3.0]), "depth")) == pytest.approx(1.0)


CONLLU = """# text = the cat sat .
1\tthe\tthe\tDET\t_\t_\t2\tdet\t_\t_
2\tcat\tcat\tNOUN\t_\t_\t3\tnsubj\t_\t_
3\tsat\tsit\tVERB\t_\t_\t0\troot\t_\t_
4\t.\t.\tPUNCT\t_\t_\t3\tpunct\t_\t_

# text = a dog ran home
1\ta\ta\tDET\t_\t_\t2\tdet\t_\t_
2\tdog\tdog\tNOUN\t_\t_\t3\tnsubj\t_\t_
3\tran\trun\tVERB\t_\t_\t0\troot\t_\t_
4\thome\thome\tADV\t_\t_\t3\tadvmod\t_\t_

"""


def test_command_writes_a_run_and_matches_the_facade(tmp_path, tiny_model_dirs):
    import pandas as pd

    import probekit as pk
    from probekit.structural import main

    tb = tmp_path / "tb.conllu"
    tb.write_text(CONLLU * 3, encoding="utf-8")
    opts = ["--train", str(tb), "--dev", str(tb), "--test", str(tb), "--model", str(tiny_model_dirs["bert"]),
            "--epochs", "2", "--resamples", "200", "--cache-dir", str(tmp_path / "cache"), "--quiet"]
    assert main(opts + ["--out", str(tmp_path / "run"), "--figures", "png", "svg"]) == 0
    csv = pd.read_csv(tmp_path / "run" / "results.csv")
    assert {"uuas", "dspr", "root_acc", "nspr"} <= set(csv["metric"])
    assert set(csv["split"]) == {"dev", "test"} and {"distance-nopos", "depth-nopos"} <= set(csv["probe"])
    uuas = csv[(csv["metric"] == "uuas") & csv["ci_low"].notna()]
    assert len(uuas) and (uuas["ci_low"] <= uuas["value"] + 1e-12).all() and (uuas["n"] == 6).all()
    assert (csv["ci_over"] == "sentences").all()
    md = (tmp_path / "run" / "results.md").read_text()
    cmp = pd.read_csv(tmp_path / "run" / "comparisons.csv")
    assert set(cmp["split"]) == {"test"} and all(s in md for s in cmp["sentence"])
    assert "linear position" in set(cmp["b"])
    assert (tmp_path / "run" / "structural_by_layer.svg").is_file() and (tmp_path / "run" / "tree.png").is_file()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["command"] == "structural"
    res = pk.structural(train=tb, dev=tb, test=tb, model=str(tiny_model_dirs["bert"]), epochs=2, resamples=200,
                        cache_dir=tmp_path / "cache", quiet=True)
    np.testing.assert_allclose(res.frame["value"].to_numpy(dtype=float), csv["value"].to_numpy(dtype=float),
                               rtol=1e-5, atol=1e-6)
    assert main(opts + ["--epochs", "0", "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()
    with pytest.raises(UserError, match="--train .* is a folder"):
        pk.structural(train=tmp_path, dev=tb)
    with pytest.raises(UserError, match="--lr must be a finite number"):
        pk.structural(train=tb, dev=tb, lr=float("nan"))
    with pytest.raises(UserError, match="--lr must be greater than 0"):
        pk.structural(train=tb, dev=tb, lr=0)
    seeded = pk.structural(train=tb, dev=tb, model=str(tiny_model_dirs["bert"]), epochs=2, seeds=2, layers=[1],
                           probes=["depth"], cache_dir=tmp_path / "cache", quiet=True)
    rows = seeded.frame[seeded.frame["layer"].notna()]
    assert (rows["ci_over"] == "seeds").all() and (rows[rows["metric"] == "root_acc"]["n"] == 2).all()
    assert set(seeded.history["seed"]) == {0, 1}
