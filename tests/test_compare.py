"""pk.compare / python -m probekit.compare: CKA estimators, attention JS, the cache never mixing the two models,
and end-to-end runs on tiny models (the same model, a perturbed copy, a different vocabulary)."""
from __future__ import annotations

import importlib
import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

import probekit as pk
from probekit.core.errors import UserError
from probekit.finetuned.attention_change import AttentionChange, jensen_shannon
from probekit.finetuned.cka import StreamingCKA, hsic1, linear_cka

from tiny_models import CORPUS


def _gram_hsic1(X, Y):
    """Song et al.'s unbiased HSIC₁ written literally with n × n Gram matrices (the feature-space form's check)."""
    n = len(X)
    K, L = X @ X.T, Y @ Y.T
    np.fill_diagonal(K, 0)
    np.fill_diagonal(L, 0)
    one = np.ones(n)
    return (np.trace(K @ L) + (one @ K @ one) * (one @ L @ one) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * one @ K @ L @ one) / (n * (n - 3))


def _shared(n, seed=0):
    """Two noisy views of a 10-dimensional signal: CKA well inside (0, 1)."""
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, 10))
    return (Z @ rng.normal(size=(10, 30)) + rng.normal(size=(n, 30)),
            Z @ rng.normal(size=(10, 20)) + 2 * rng.normal(size=(n, 20)))


# --- CKA --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("unbiased", [False, True])
def test_cka_identity_rotation_scaling(unbiased):
    X, Y = _shared(300)
    Q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(30, 30)))
    assert linear_cka(X, X, unbiased=unbiased) == pytest.approx(1.0, abs=1e-12)
    base = linear_cka(X, Y, unbiased=unbiased)
    assert 0.2 < base < 0.95
    assert linear_cka(X @ Q, Y, unbiased=unbiased) == pytest.approx(base, abs=1e-10)
    assert linear_cka(7.5 * X, 0.01 * Y, unbiased=unbiased) == pytest.approx(base, abs=1e-10)
    # not invariant to an arbitrary invertible map: a non-orthogonal stretch changes it
    assert abs(linear_cka(X * np.linspace(0.1, 10, 30), Y, unbiased=unbiased) - base) > 1e-3


def test_hsic1_feature_form_equals_gram_form_and_ignores_shifts():
    X, Y = _shared(60, seed=3)
    assert hsic1(X, Y) == pytest.approx(_gram_hsic1(X, Y), rel=1e-10)
    assert hsic1(X + 5.0, Y - 3.0) == pytest.approx(_gram_hsic1(X, Y), rel=1e-10)


def _sorted_views(n=3000, seed=0):
    """Two views of a signal whose strongest direction also sets the row order (as corpus order does when
    neighbouring sentences are alike)."""
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, 4))
    Z = Z[np.argsort(Z[:, 0])]
    X = np.c_[4 * Z[:, :1], Z[:, 1:]] @ rng.normal(size=(4, 30)) + rng.normal(size=(n, 30))
    Y = np.c_[Z[:, :1], 3 * Z[:, 1:]] @ rng.normal(size=(4, 20)) + rng.normal(size=(n, 20))
    return X, Y


def test_streaming_cka_equals_full_batch_on_sorted_data():
    """Rows whose order follows their content: the accumulated estimate is the full-batch value (to rounding),
    while the mean of HSIC₁ over minibatches taken in that order is far from it."""
    X, Y = _sorted_views()
    full_unbiased, full_biased = linear_cka(X, Y, unbiased=True), linear_cka(X, Y)
    Y = np.c_[Y, np.zeros((len(Y), 10))]      # same width as X, so both layers stack (zeros change nothing)
    acc = StreamingCKA(2, batch_size=256)
    for s in range(0, len(X), 37):            # rows arrive in uneven chunks, as sentences do
        acc.add(np.stack([X[s:s + 37], X[s:s + 37]]), np.stack([Y[s:s + 37], 2 * X[s:s + 37]]))
    value = acc.result()
    assert value[0] == pytest.approx(full_unbiased, abs=1e-9)
    assert value[0] == pytest.approx(full_biased, abs=0.002)
    assert value[1] == pytest.approx(1.0, abs=1e-9)
    assert acc.n_rows == len(X) and acc.n_batches == len(X) // 256
    # the corpus-order minibatch mean (what this replaces) is biased on these data
    chunks = [(X[s:s + 256], Y[s:s + 256]) for s in range(0, len(X) - 255, 256)]
    sums = np.array([[hsic1(x, y), hsic1(x, x), hsic1(y, y)] for x, y in chunks]).mean(0)
    assert abs(sums[0] / math.sqrt(sums[1] * sums[2]) - full_unbiased) > 0.02


def test_streaming_cka_interval_covers_the_value_in_random_order():
    X, Y = _shared(3000, seed=4)
    acc = StreamingCKA(1, batch_size=200)
    for s in range(0, 3000, 50):
        acc.add(X[None, s:s + 50], Y[None, s:s + 50])
    (ci,) = acc.intervals(resamples=999)
    assert ci.estimate == pytest.approx(linear_cka(X, Y, unbiased=True), abs=1e-9)
    assert ci.ci_low < ci.estimate < ci.ci_high and ci.ci_high - ci.ci_low < 0.1
    assert ci.n == 3000 and acc.n_batches == 15
    one = StreamingCKA(1, batch_size=4000)           # one minibatch: no interval, the value all the same
    one.add(X[None], Y[None])
    (ci1,) = one.intervals()
    assert math.isnan(ci1.ci_low) and ci1.estimate == pytest.approx(ci.estimate, abs=1e-9)


def test_cka_bad_shapes():
    with pytest.raises(UserError, match="one row per input"):
        linear_cka(np.ones((5, 2)), np.ones((4, 2)))
    with pytest.raises(UserError, match="at least 4"):
        linear_cka(np.eye(3), np.eye(3), unbiased=True)


# --- Jensen–Shannon ---------------------------------------------------------------------------------------------

def test_js_identical_zero_bounded_by_ln2():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(6), size=(2, 3, 6))               # [L, H, n, n]
    assert np.abs(jensen_shannon(p, p)).max() < 1e-12
    disjoint = jensen_shannon([1.0, 0.0, 0.0], [0.0, 0.5, 0.5])
    assert disjoint == pytest.approx(math.log(2), abs=1e-12)
    q = rng.dirichlet(np.ones(6), size=(2, 3, 6))
    js = jensen_shannon(p, q)
    assert (js > 0).all() and (js <= math.log(2)).all()
    from scipy.spatial.distance import jensenshannon   # scipy's distance is the square root, natural log
    assert js[1, 2, 4] == pytest.approx(jensenshannon(p[1, 2, 4], q[1, 2, 4]) ** 2, rel=1e-9)
    acc = AttentionChange(2, 3)
    acc.add(p, p)
    acc.add(p, q)
    assert acc.result() == pytest.approx(js.mean(-1) / 2, rel=1e-12)


# --- tiny models end to end -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_pair(tiny_model_dirs, tmp_path_factory):
    """(base folder, perturbed copy folder, corpus file): the copy's weights get Gaussian noise."""
    from transformers import AutoModel

    root = tmp_path_factory.mktemp("compare")
    base = tiny_model_dirs["bert"]
    model = AutoModel.from_pretrained(base)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "encoder.layer" in name and p.dim() == 2:
                p.add_(3.0 * p.std() * torch.randn(p.shape, generator=gen))
    perturbed = root / "perturbed"
    model.save_pretrained(perturbed)
    for f in base.iterdir():
        if "token" in f.name or f.name == "vocab.txt":
            shutil.copy(f, perturbed / f.name)
    corpus = root / "corpus.txt"
    corpus.write_text(CORPUS, encoding="utf-8")
    return base, perturbed, corpus


def _run(finetuned, base, corpus, tmp_path, **kw):
    opts = dict(base=str(base), corpus=str(corpus), tasks=["nth_token"], task_options={"nth_token": {
        "n": [1, 2], "corpus": str(corpus)}}, probe_epochs=1, cka_batch_size=64, cache_dir=str(tmp_path / "cache"),
        quiet=True)
    opts.update(kw)
    return pk.compare(str(finetuned), **opts)


def test_compare_same_model_cka_one_js_zero(tiny_pair, tmp_path):
    base, _, corpus = tiny_pair
    res = _run(base, base, corpus, tmp_path)
    assert res.record["same_weights"] is True
    assert np.allclose(res.cka["value"], 1.0, atol=1e-9)
    assert res.js["value"].abs().max() < 1e-9
    assert res.stats["change"].abs().max() < 1e-9
    probe = res.probing[res.probing["metric"] == "accuracy"]
    b = probe[probe["model"] == "base"]["value"].to_numpy()
    f = probe[probe["model"] == "finetuned"]["value"].to_numpy()
    assert np.array_equal(b, f)       # same model, same seed, same cache entry: identical probes
    change = res.probing[res.probing["metric"] == "accuracy_change"]
    assert len(change) and (change["value"] == 0).all() and (change["ci_low"] == 0).all()
    assert "no detectable difference in accuracy between fine-tuned and base" in res.summary()
    assert res.frame["n"].dtype == "Int64" and res.frame[res.frame["task"] == "cka"]["n"].isna().all()


def test_compare_perturbed_lower_cka_written(tiny_pair, tmp_path):
    base, perturbed, corpus = tiny_pair
    res = _run(perturbed, base, corpus, tmp_path)
    cka = res.cka.set_index("layer")["value"]
    assert cka[0] == pytest.approx(1.0, abs=1e-9)   # embeddings were not perturbed
    # the tiny models' layers add little to the residual stream (weights ~ N(0, 0.02)), so CKA stays near 1,
    # but clearly below the same-model value, and the change accumulates with depth
    assert (cka.loc[1:] < 0.999).all() and cka[2] < cka[1]
    assert (res.js["value"] > 1e-4).all() and (res.js["value"] <= math.log(2)).all()
    f = res.frame
    assert list(f.columns[:3]) == ["task", "n", "model"]
    assert set(f["model"]) == {"base-vs-finetuned", "base", "finetuned"}
    assert set(f["task"]) == {"cka", "attention_js", "attention", "nth_token"}
    assert f["layer"].dtype == "Int64" and f[f["task"] == "cka"]["head"].isna().all()
    out = res.write(tmp_path / "run")
    for name in ("results.csv", "summary.md", "config.json", "cka_by_layer.png", "attention_js.png",
                 "attention_stats.png", "probe_nth_token.png"):
        assert (out / name).is_file(), name
    back = pd.read_csv(out / "results.csv")
    assert len(back) == len(f)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["command"] == "compare" and cfg["same_weights"] is False
    assert cfg["model"]["fingerprint"] != cfg["finetuned"]["fingerprint"]
    summary = (out / "summary.md").read_text()
    assert "Lowest: layer" in summary
    rows = res.cka.set_index("layer")
    # every changed layer has an interval around its value; one that clears 1 is named as changed
    assert (rows.loc[1:, "ci_low"] <= rows.loc[1:, "value"]).all()
    assert (rows.loc[1:, "value"] <= rows.loc[1:, "ci_high"]).all()
    assert (rows["n_words"] == res.record["counts"]["cka_words_used"]).all()
    if (rows["ci_high"] < 1).any():
        assert "interval lies below 1" in summary
    assert {"ci_low", "ci_high", "n_words"} <= set(back.columns)
    # the probes' change is paired over the same sentences: fine-tuned minus base, inside its interval
    p = res.probing
    acc = p[p["metric"] == "accuracy"].groupby(["model", "layer", "probe", "split"])
    change = p[p["metric"] == "accuracy_change"]
    assert len(change) == len(acc) // 2
    for r in change.itertuples():
        ft, bs = (acc.get_group((m, r.layer, r.probe, r.split)) for m in ("finetuned", "base"))
        assert r.ci_low <= r.value <= r.ci_high and r.n_sentences > 0
        if ft["n_sentences"].nunique() == 1:     # every sentence has every key: the mean of the keys' accuracies
            assert r.value == pytest.approx(ft["value"].mean() - bs["value"].mean(), abs=1e-6)
    assert "(the largest change)" in summary


def test_cache_never_serves_base_vectors_to_finetuned(tiny_pair, tmp_path):
    """The activation cache keys on the weights' fingerprint: the perturbed model gets its own entry, its own
    vectors, even though both are probed on the same sentences with the same options and display name."""
    from probekit.core.cache import get_activations
    from probekit.core.encoder import load_encoder
    from probekit.corpora.text import read_text

    base, perturbed, corpus = tiny_pair
    examples = read_text(corpus)
    b, f = load_encoder(str(base)), load_encoder(str(perturbed))
    f.name = b.name                                     # same display name: only the weights tell them apart
    sb = get_activations(b, examples, cache_dir=tmp_path)
    sf = get_activations(f, examples, cache_dir=tmp_path)
    assert sb.path != sf.path and len(list(tmp_path.iterdir())) == 2
    assert not np.allclose(sb.hidden(2), sf.hidden(2))
    assert np.allclose(sb.hidden(0), sf.hidden(0))
    # an Encoder whose weights change in place after its fingerprint was taken (fine-tuning in the same
    # process): pk.probe takes the fingerprint afresh, so the changed model gets its own entry
    opts = dict(corpus=str(corpus), n=[1], probes=["linear"], epochs=1, cache_dir=str(tmp_path / "c2"), quiet=True)
    before = pk.probe("nth_token", model=b, **opts)
    with torch.no_grad():
        next(p for n, p in b.model.named_parameters() if "encoder.layer.1" in n).add_(1.0)
    after = pk.probe("nth_token", model=b, **opts)
    assert before.record["cache"] != after.record["cache"]
    assert before.record["model"]["fingerprint"] != after.record["model"]["fingerprint"]


def test_compare_different_vocabulary_one_line_error(tiny_model_dirs, tiny_pair, tmp_path):
    base, _, corpus = tiny_pair
    with pytest.raises(UserError, match="different vocabularies") as err:
        pk.compare(str(tiny_model_dirs["roberta"]), base=str(base), corpus=str(corpus), tasks=[], quiet=True)
    assert "\n" not in str(err.value)


def test_compare_command_bad_input_exit_2(tiny_pair, tmp_path, capsys):
    base, perturbed, corpus = tiny_pair
    main = importlib.import_module("probekit.compare").main
    cases = [
        (["--finetuned", str(tmp_path / "missing")], "does not exist"),
        (["--finetuned", str(corpus)], "is a file"),
        (["--finetuned", str(perturbed), "--base", str(base), "--corpus", str(tmp_path / "no.txt")], "does not exist"),
        (["--finetuned", str(perturbed), "--base", str(base), "--tasks", "no_such_task"], "unknown task"),
        (["--finetuned", str(perturbed), "--base", str(base), "--cka-batch-size", "2"], "at least 4"),
        (["--finetuned", str(perturbed), "--base", str(base), "--limit", "0"], "--limit must be at least 1"),
        ([], "required"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("probekit: error:") and message in err and err.count("\n") == 1, (argv, err)
    assert not (tmp_path / "runs").exists()


def test_compare_classifier_folder(tiny_model_dirs, tmp_path):
    """A classify --finetune folder: its encoder/ is the fine-tuned model, its record names the base."""
    from probekit.classifiers.model import Classifier
    from probekit.classifiers.saved import save_classifier
    from probekit.core.encoder import load_encoder

    base = str(tiny_model_dirs["bert"])
    enc = load_encoder(base)
    clf = Classifier(enc, ["a", "b"], head="mean", encoder_mode="finetune")
    with torch.no_grad():
        for n, p in enc.model.named_parameters():
            if "encoder.layer.1" in n:
                p.mul_(1.5)
    save_classifier(clf, tmp_path / "clf")
    res = pk.compare(str(tmp_path / "clf"), corpus=None, limit=40, tasks=[], cka_batch_size=64, quiet=True)
    assert res.record["inputs"]["finetuned"]["kind"] == "classifier"
    assert res.record["model"]["source"] == base          # the base came from classifier.json
    cka = res.cka.set_index("layer")["value"]
    assert cka[0] == pytest.approx(1.0, abs=1e-9) and cka[1] == pytest.approx(1.0, abs=1e-9) and cka[2] < 1.0
    assert res.probing is None and "nth_token" not in set(res.frame["task"])
    assert res.record["same_weights"] is False
    # the comparison sees the inputs the classifier was trained on: its max_length, unless one is given
    assert res.record["arguments"]["max_length"] == res.record["inputs"]["finetuned"]["max_length"]
    short = Classifier(load_encoder(base), ["a", "b"], head="mean", encoder_mode="finetune", max_length=6)
    save_classifier(short, tmp_path / "short")
    cut = pk.compare(str(tmp_path / "short"), corpus=None, limit=40, tasks=[], cka_batch_size=64, quiet=True)
    assert cut.record["arguments"]["max_length"] == 6 and cut.record["counts"]["n_truncated"] > 0
    whole = pk.compare(str(tmp_path / "short"), corpus=None, limit=40, tasks=[], cka_batch_size=64, quiet=True,
                       max_length=128)
    assert whole.record["arguments"]["max_length"] == 128
    assert whole.record["counts"]["n_truncated"] < cut.record["counts"]["n_truncated"]
    frozen = Classifier(load_encoder(base), ["a", "b"], head="mean", encoder_mode="frozen")
    save_classifier(frozen, tmp_path / "frozen")
    with pytest.raises(UserError, match="train one with --finetune"):
        pk.compare(str(tmp_path / "frozen"), tasks=[], quiet=True)


def test_read_corpus_every_form(tmp_path):
    """Text, CoNLL-U, a classifier's JSONL and a named set (under --data-root) all become Examples; --limit keeps a
    seeded sample in file order."""
    from probekit.finetuned.pair import read_corpus

    (tmp_path / "s.txt").write_text("the cat sat .\n\na dog ran\n", encoding="utf-8")
    (tmp_path / "s.conllu").write_text("1\tcats\tcat\tNOUN\t_\t_\t2\tnsubj\t_\t_\n2\tsleep\tsleep\tVERB\t_\t_\t0\t"
                                       "root\t_\t_\n\n", encoding="utf-8")
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"text": f"text {i}", "label": "a"}) + "\n"
                                              for i in range(5)), encoding="utf-8")
    rt = tmp_path / "data" / "rt-sentence-polarity"
    rt.mkdir(parents=True)
    for name in ("neg", "pos"):
        (rt / f"rt-polarity.{name}").write_text("".join(f"{name} sentence {i}\n" for i in range(20)))
    text, _ = read_corpus(str(tmp_path / "s.txt"))
    assert [ex.words for ex in text] == [["the", "cat", "sat", "."], ["a", "dog", "ran"]]
    assert read_corpus(str(tmp_path / "s.conllu"))[0][0].words == ["cats", "sleep"]
    texts, how = read_corpus(str(tmp_path / "d.jsonl"), limit=3)
    kept = [int(ex.text.split()[1]) for ex in texts]
    assert len(kept) == 3 and kept == sorted(kept) and "classifier data" in how
    assert [ex.text for ex in read_corpus(str(tmp_path / "d.jsonl"), limit=3, seed=0)[0]] == [ex.text for ex in texts]
    dev, how = read_corpus("rt:dev", data_root=str(tmp_path / "data"))
    assert len(dev) == 4 and how == "named set rt:dev"
    generated, how = read_corpus(None, limit=7)
    assert len(generated) == 7 and "generated" in how
