"""Structural probes: metrics against hand-built trees, and probes that recover a tree embedded in vectors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from probekit.core.errors import UserError
from probekit.probing import structural as sp


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
    opts = ["--train", str(tb), "--dev", str(tb), "--model", str(tiny_model_dirs["bert"]), "--epochs", "2",
            "--cache-dir", str(tmp_path / "cache"), "--quiet"]
    assert main(opts + ["--out", str(tmp_path / "run"), "--figures", "png", "svg"]) == 0
    csv = pd.read_csv(tmp_path / "run" / "results.csv")
    assert {"uuas", "dspr", "root_acc", "nspr"} <= set(csv["metric"])
    assert (tmp_path / "run" / "structural_by_layer.svg").is_file() and (tmp_path / "run" / "tree.png").is_file()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["command"] == "structural"
    res = pk.structural(train=tb, dev=tb, model=str(tiny_model_dirs["bert"]), epochs=2,
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
