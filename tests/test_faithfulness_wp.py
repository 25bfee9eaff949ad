"""Wiegreffe & Pinter's retraining tests on a tiny frozen classifier: uniform, seeds, diagnostic, e2e adversary."""
from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest
import torch

from probekit.classifiers.model import Classifier
from probekit.core.encoder import load_encoder
from probekit.core.examples import Example
from probekit.evaluation.wiegreffe_pinter import (adversary as wp_adversary, diagnostic as wp_diagnostic,
                                                  retrain as wp_retrain)
from probekit.evaluation.base import Context
from probekit.evaluation.source import PoolingSource, fixed_features
from probekit.evaluation.wiegreffe_pinter.common import UniformHead, build, fit, head_outputs, labels_of, shared

POS = "good great wonderful lovely happy".split()
NEG = "bad awful terrible sad boring".split()
FILL = "the old teacher walked to the village school every morning".split()
BASE_SEED = 7


def _examples(n, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        label = rng.choice(["neg", "pos"])
        words = rng.sample(FILL, rng.randint(3, 8))
        words.insert(rng.randrange(len(words) + 1), rng.choice(POS if label == "pos" else NEG))
        out.append(Example(words=words, meta={"label": label}))
    return out


@pytest.fixture(scope="module")
def setup(tiny_model_dirs, tmp_path_factory):
    """A frozen tiny-BERT attention classifier whose head was trained exactly as the seeds experiment trains
    (same factory, options and seed BASE_SEED), its data, and the activation cache folder."""
    cache = tmp_path_factory.mktemp("wp_cache")
    clf = Classifier(load_encoder(str(tiny_model_dirs["bert"])), ["neg", "pos"], head="attention").eval()
    train, dev, ev = _examples(96, 1), _examples(32, 2), _examples(24, 3)
    ctx = make_ctx(clf, train, dev, ev, cache)
    feats = {s: fixed_features(clf, exs, cache_dir=cache).float() for s, exs in (("train", train), ("dev", dev))}
    clf.head = build(wp_retrain._attention_head(ctx, feats["train"].flat.shape[1]), BASE_SEED)
    fit(ctx, clf.head, feats["train"], feats["dev"], BASE_SEED, y_train=labels_of(train, clf.labels, "train"),
        y_dev=labels_of(dev, clf.labels, "dev"))
    return clf, train, dev, ev, cache


def make_ctx(clf, train, dev, ev, cache, seed=0, **options):
    options = {"epochs": 6, "adversary_epochs": 6, "resamples": 1000, **options}
    return Context(classifier=clf, examples=ev, source=PoolingSource(clf, ev, cache_dir=cache), seed=seed,
                   batch_size=32, quiet=True, train=train, dev=dev, cache_dir=cache, options=options)


def ctx_of(setup, seed=0, **options):
    clf, train, dev, ev, cache = setup
    return make_ctx(clf, train, dev, ev, cache, seed=seed, **options)


def value(table, **where):
    sel = table
    for k, v in where.items():
        sel = sel[sel[k].isna()] if v is None else sel[sel[k] == v]
    assert len(sel) == 1, (where, len(sel))
    return float(sel["value"].iloc[0])


# --- uniform --------------------------------------------------------------------------------------------------

def test_uniform_head_weights_are_one_over_n_on_real_words_and_zero_on_padding():
    head = UniformHead(4, 2, dropout=0.0).eval()
    units = torch.randn(3, 5, 4)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 1, 0, 0]], dtype=torch.bool)
    units[~mask] = 100.0
    logits, alpha, extra = head(units, mask)
    expected = torch.tensor([[.2] * 5, [.5, .5, 0, 0, 0], [.5, 0, .5, 0, 0]])
    assert torch.allclose(alpha, expected)
    pooled = torch.stack([units[b][mask[b]].mean(0) for b in range(3)])
    assert torch.allclose(extra["pooled"], pooled)
    assert torch.allclose(logits, head.out(pooled))


def test_uniform_experiment_compares_with_the_trained_head(setup):
    out = wp_retrain.run_uniform(ctx_of(setup))
    t = out.tables["uniform"]
    clf, _, _, ev, _ = setup
    base = clf.predict(ev)
    y = np.array([e.meta["label"] == "pos" for e in ev], dtype=int)
    acc_base = float(((base["label"] == "pos").astype(int).to_numpy() == y).mean())
    assert value(t, weights="trained", split="eval", metric="accuracy", example=None) == pytest.approx(acc_base)
    tvd = t[(t["metric"] == "tvd_to_base") & t["example"].notna()]
    assert len(tvd) == len(ev) and tvd["value"].between(0, 1).all()
    assert value(t, metric="tvd_to_base", example=None) == pytest.approx(tvd["value"].mean())
    quantities = [f["quantity"] for f in out.findings]
    assert "macro-F1 drop with uniform attention" in quantities
    assert next(f["paper"] for f in out.findings if f["quantity"] == "macro-F1, uniform attention") == "SST: 0.822"


def test_retraining_needs_train_and_dev_and_a_pooling_source(setup):
    clf, train, dev, ev, cache = setup
    ctx = make_ctx(clf, None, dev, ev, cache)
    for fn in (wp_retrain.run_uniform, wp_retrain.run_seeds, wp_diagnostic.run, wp_adversary.run):
        assert fn(ctx).skipped.startswith("needs --train and --dev")
    ctx = make_ctx(clf, train, dev, ev, cache)
    ctx.source.kind = "cls"          # an instance attribute: the [CLS] attention is not a pooling head
    assert "pooling" in wp_retrain.run_seeds(ctx).skipped


# --- seeds ----------------------------------------------------------------------------------------------------

def test_seeds_identical_to_the_base_training_give_zero_jsd(setup):
    out = wp_retrain.run_seeds(ctx_of(setup, seeds=[BASE_SEED] * 5))
    t = out.tables["seeds"]
    per = t[t["example"].notna()]
    # zero up to the rounding of the stacked heads' batched products (classify.stacked)
    assert (per.loc[per["metric"] == "jsd_median_over_seeds", "value"].abs() < 1e-7).all()
    assert (per.loc[per["metric"] == "tvd_mean_over_seeds", "value"].abs() < 1e-6).all()
    assert abs(out.findings[0]["value"]) < 1e-7


def test_other_seeds_move_attention_and_the_yardstick_is_shared(setup):
    ctx = ctx_of(setup, seeds=5)
    out = wp_retrain.run_seeds(ctx)
    t = out.tables["seeds"]
    jsd = t[(t["metric"] == "jsd_median_over_seeds") & t["example"].notna()]["value"].to_numpy()
    assert len(jsd) == len(setup[3]) and (jsd > 0).all() and (jsd <= np.log(2) + 1e-9).all()
    median = value(t, metric="jsd_median_over_seeds", example=None, bin=None)
    assert median == pytest.approx(np.median(jsd)) and shared(ctx)["wp:seed_jsd"] == median
    assert t["seed"].dropna().nunique() == 5 and out.counts["seeds"] == 5
    fig = out.figures["wiegreffe-pinter-fig2"]()
    assert fig.axes[0].get_xlim() == (-0.05, 0.7) and "JSD" in fig.axes[0].get_xlabel()


# --- diagnostic ----------------------------------------------------------------------------------------------

def test_imposed_weights_are_the_ones_given(setup):
    clf, _, _, ev, cache = setup
    words = wp_diagnostic.word_embeddings(ctx_of(setup))["eval"]
    src = PoolingSource(clf, ev, cache_dir=cache)
    base_alpha, _ = head_outputs(clf.head, src.features)
    head = wp_diagnostic.DiagnosticHead(words.flat.shape[1], 2, weights="imposed").eval()
    alpha, _ = head_outputs(head, wp_diagnostic.with_weights(words, base_alpha))
    assert torch.allclose(alpha, base_alpha, atol=1e-6)
    # the word vectors are the mean of each word's sub-token input embeddings
    enc = clf.encode(ev[:1])
    first = enc["word_ids"][0] == 0
    emb = clf.embedding_layer(enc["input_ids"][0][first]).mean(0)
    assert torch.allclose(words.batch(torch.tensor([0]))[0][0, 0], emb, atol=1e-6)


def test_adversary_then_diagnostic_in_one_context(setup):
    ctx = ctx_of(setup, lambdas=(0.0, 1.0))
    ctx_alone = ctx_of(setup)
    alone = wp_diagnostic.run(ctx_alone)
    assert alone.counts["adversary_missing"] == 1 and "adversary" not in set(alone.tables["diagnostic"]["weights"])
    wp_adversary.run(ctx)
    out = wp_diagnostic.run(ctx)
    t = out.tables["diagnostic"]
    assert out.counts["adversary_missing"] == 0
    assert {"trained", "uniform", "base", "adversary", "classifier"} <= set(t["weights"])
    assert all(out.counts[f"{s}_unit_mismatch"] == 0 for s in ("train", "dev", "eval"))
    # identical uniform rows with or without the adversary: same seed, same data
    u = lambda tab: tab[tab["weights"] == "uniform"].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(u(t), u(alone.tables["diagnostic"]))


# --- end-to-end adversary -----------------------------------------------------------------------------------

def test_adversary_keeps_predictions_at_zero_lambda_and_moves_attention_at_large_lambda(setup):
    out = wp_adversary.run(ctx_of(setup, lambdas=(0.0, 5.0), adversary_epochs=15))
    t = out.tables["e2e-adversary"]
    mean = lambda lam, m: value(t, **{"lambda": lam, "metric": m, "split": "eval", "example": None})  # noqa: E731
    assert mean(0.0, "tvd") < 0.05
    assert mean(5.0, "jsd") > mean(0.0, "jsd") + 0.05
    assert mean(5.0, "jsd") <= np.log(2)
    per = t[(t["lambda"] == 0.0) & (t["metric"] == "tvd") & t["example"].notna()]
    assert mean(0.0, "tvd") == pytest.approx(per["value"].mean())
    row = t[(t["lambda"] == 5.0) & (t["metric"] == "jsd") & t["example"].isna() & (t["split"] == "eval")].iloc[0]
    assert row["ci_low"] <= row["value"] <= row["ci_high"] and row["n"] == len(per)
    fig = out.figures["wiegreffe-pinter-fig4"]()
    assert fig.axes[0].get_xlim() == (-0.05, 0.7)


def test_same_seed_same_tables(setup):
    a = wp_adversary.run(ctx_of(setup, lambdas=(0.5,), adversary_epochs=3)).tables["e2e-adversary"]
    b = wp_adversary.run(ctx_of(setup, lambdas=(0.5,), adversary_epochs=3)).tables["e2e-adversary"]
    pd.testing.assert_frame_equal(a, b)
    c = wp_adversary.run(ctx_of(setup, seed=1, lambdas=(0.5,), adversary_epochs=3)).tables["e2e-adversary"]
    assert not a["value"].equals(c["value"])
    s1 = wp_retrain.run_seeds(ctx_of(setup, seeds=2, epochs=2)).tables["seeds"]
    s2 = wp_retrain.run_seeds(ctx_of(setup, seeds=2, epochs=2)).tables["seeds"]
    pd.testing.assert_frame_equal(s1, s2)
