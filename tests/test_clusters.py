"""Layer clustering: the scores on vectors whose clusters are known, and the command against the facade."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from probekit.core.errors import UserError
from probekit.probing.clusters import _layer_scores, word_labels

from test_structural import CONLLU


def test_separated_clusters_score_high_and_shuffled_labels_low():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 8)) * 10
    y = np.repeat(np.array(["A", "B", "C", "D"]), 50)
    X = centres[np.repeat(np.arange(4), 50)] + rng.normal(size=(200, 8))
    nmi, sil = _layer_scores(X, y, 4, seed=0, silhouette_sample=200)
    assert nmi > 0.95 and sil > 0.5
    nmi_r, sil_r = _layer_scores(X, rng.permutation(y), 4, seed=0, silhouette_sample=200)
    assert nmi_r < 0.1 and sil_r < 0.05


def test_word_labels_for_each_scheme():
    from probekit.core.examples import Example

    ex = Example(words=["a", "b", "c"], tags=["DET", "NOUN", "VERB"],
                 meta={"deprels": ["det", "nmod:poss", "root"], "targets": [0, 2]})
    assert word_labels([ex], "upos") == [["DET", "NOUN", "VERB"]]
    assert word_labels([ex], "deprel") == [["det", "nmod", "root"]]
    assert word_labels([ex], "target", [{"n": 1}, {"n": 3}]) == [["n=1", "other", "n=3"]]


def test_command_matches_facade_and_refuses_bad_input(tmp_path, tiny_model_dirs):
    import probekit as pk
    from probekit.clusters import main

    tb = tmp_path / "tb.conllu"
    tb.write_text(CONLLU * 4, encoding="utf-8")
    opts = ["--conllu", str(tb), "--model", str(tiny_model_dirs["bert"]), "--cache-dir", str(tmp_path / "c"),
            "--quiet", "--words", "the", "a"]
    assert main(opts + ["--out", str(tmp_path / "run")]) == 0
    csv = pd.read_csv(tmp_path / "run" / "results.csv")
    assert set(csv["subset"]) == {"all", "words: a, the"}
    assert (tmp_path / "run" / "projection_words.png").is_file()
    res = pk.clusters(conllu=tb, model=str(tiny_model_dirs["bert"]), cache_dir=tmp_path / "c", quiet=True,
                      words=["the", "a"])
    np.testing.assert_allclose(res.frame["value"].to_numpy(float), csv["value"].to_numpy(float), rtol=1e-5)
    points = res.points[(res.points["subset"] == "all") & (res.points["layer"] == 0)]
    assert len(points) == 8 * 4                                     # every word of the corpus, once per layer
    with pytest.raises(UserError, match="fewer than 2 occurrences"):
        pk.clusters(conllu=tb, words=["zebra"], model=str(tiny_model_dirs["bert"]), quiet=True)
    with pytest.raises(UserError, match="--conllu FILE .* or --task"):
        pk.clusters()
    assert main(opts + ["--max-points", "1", "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()
