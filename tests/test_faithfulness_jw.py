"""Jain & Wallace's experiments (tau, permutation, adversary) against hand computations and invariants."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from probekit.classifiers.pooling import masked_softmax
from probekit.classifiers.model import Classifier
from probekit.core.encoder import load_encoder
from probekit.core.examples import Example
from probekit.evaluation.jain_wallace import (adversary as jw_adversary, correlation as jw_correlation,
                                              permutation as jw_permutation)
from probekit.evaluation.base import Context
from probekit.evaluation.metrics import LN2, jsd, kendall, tvd
from probekit.evaluation.source import AttentionSource, PoolingSource

TEXTS = ["The old teacher walked slowly to the village school.", "An unbelievably gigantic chrysanthemum!",
         "Nobody knew where the key had gone, so they searched the whole house.", "Wonderful",
         "the cat sat on the mat"]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one intra-op thread (on a loaded 2-core machine, two spinning threads cost ~10× the time)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make(tiny_model_dirs, level="word", mode="frozen", seed=0, head="attention"):
    torch.manual_seed(seed)
    return Classifier(load_encoder(str(tiny_model_dirs["bert"])), ["neg", "pos"], head=head, level=level,
                      encoder_mode=mode).eval()


def examples():
    return [Example(words=None, text=t) for t in TEXTS]


def context(clf, tmp_path, seed=0, **options):
    ex = examples()
    src = PoolingSource(clf, ex, cache_dir=tmp_path / "cache")
    options.setdefault("resamples", 1000)
    return Context(classifier=clf, examples=ex, source=src, seed=seed, batch_size=2, quiet=True, options=options)


class ToySource(AttentionSource):
    """Fixed units [B, U, D], fixed attention scores, a linear output layer."""

    kind = "pooling"

    def __init__(self, units, mask, scores, out):
        self.units, self.mask, self.scores, self.out = units, mask, scores, out
        self.classifier = SimpleNamespace(labels=["a", "b", "c"][:out.out_features], n_classes=out.out_features,
                                          source=SimpleNamespace(name="toy"))

    def __len__(self):
        return len(self.units)

    def batch(self, idx):
        return self.units[idx], self.mask[idx]

    def attention(self, units, mask):
        return masked_softmax(self.scores(units), mask)     # a function of the unit vectors: any batch order

    def output(self, units, mask, alpha):
        pooled = torch.einsum("bu,bud->bd", alpha * mask.to(alpha.dtype), units)
        return torch.softmax(self.out(pooled), -1)


def toy(ignore: bool, B=6, U=7, D=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(B, U, dtype=torch.bool)
    for b in range(B):
        mask[b, 3 + b % 4:] = False                                   # 3…6 real words, then padding
    mask[0, 1] = False                                                 # a gap inside an example
    if ignore:
        units = torch.randn(B, 1, D, generator=g).expand(B, U, D).clone()   # every unit vector equal
    else:
        units = 3 * torch.randn(B, U, D, generator=g)
    units[..., -1] = torch.arange(U, dtype=torch.float32)             # last dim only drives the scores …
    out = nn.Linear(D, 2)
    with torch.no_grad():
        out.weight.copy_(torch.randn(2, D, generator=g) * 2)
        out.weight[:, -1] = 0                                          # … and never the output
        out.bias.zero_()
    return ToySource(units, mask, lambda u: torch.where(u[..., -1] == 2.0, 4.0, 0.0), out)  # α peaked on word 2


def toy_context(src, seed=0, **options):
    options.setdefault("resamples", 1000)
    return Context(classifier=src.classifier, examples=[None] * len(src), source=src, seed=seed, batch_size=4,
                   quiet=True, options=options)


# --- permutation ---------------------------------------------------------------------------------------------

def test_permutation_keeps_the_multiset_and_padding():
    g = torch.Generator().manual_seed(0)
    mask = torch.tensor([[1, 1, 0, 1, 1, 0], [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]], dtype=torch.bool)
    alpha = masked_softmax(torch.randn(3, 6, generator=g), mask)
    perms = jw_permutation.permuted_attention(alpha, mask, 50, torch.Generator().manual_seed(1))
    assert perms.shape == (3, 50, 6)
    assert torch.all(perms[~mask[:, None, :].expand_as(perms)] == 0)
    for b in range(3):
        want = torch.sort(alpha[b][mask[b]]).values
        for p in range(50):
            assert torch.equal(torch.sort(perms[b, p][mask[b]]).values, want)
    # the shuffles move weights (4 real words: 24 orders, so 50 draws give several distinct ones)
    assert len({tuple(perms[0, p].tolist()) for p in range(50)}) > 5
    assert torch.equal(perms[2], alpha[2].expand(50, 6))               # one word: nothing to shuffle


def test_median_tvd_equals_a_loop_over_permutations():
    src = toy(ignore=False)
    units, mask = src.batch(torch.arange(6))
    alpha = src.attention(units, mask)
    med, perms = jw_permutation.median_permutation_tvd(src, units, mask, alpha, 11,
                                                       torch.Generator().manual_seed(3))
    for b in range(6):
        p0 = src.output(units[b:b + 1], mask[b:b + 1], alpha[b:b + 1])[0].detach().numpy()
        d = [0.5 * np.abs(src.output(units[b:b + 1], mask[b:b + 1], perms[b, k:k + 1])[0].detach().numpy()
                          - p0).sum() for k in range(11)]
        assert med[b] == pytest.approx(np.median(d), abs=1e-6)


def test_permutation_run_is_seeded_and_plots(tiny_model_dirs, tmp_path):
    clf = make(tiny_model_dirs)
    a = jw_permutation.run(context(clf, tmp_path, seed=0, permutations=20))
    b = jw_permutation.run(context(clf, tmp_path, seed=0, permutations=20))
    c = jw_permutation.run(context(clf, tmp_path, seed=1, permutations=20))
    pd.testing.assert_frame_equal(a.tables["permutation"], b.tables["permutation"])
    assert not a.tables["permutation"]["value"].equals(c.tables["permutation"]["value"])
    t = a.tables["permutation"]
    assert list(t.columns[:7]) == ["task", "example", "model", "layer", "head", "metric", "value"]
    assert sorted(t["example"]) == list(range(len(TEXTS)))
    assert a.counts["permutation_single_word"] == 1 and t.loc[t["words"] == 1, "value"].isna().all()
    s = a.tables["permutation-summary"]
    mean = s.query("`class` == 'all' and metric == 'mean_median_tvd'")["value"].iloc[0]
    assert mean == pytest.approx(t["value"].mean())
    fig = a.figures["jain-wallace-fig10"]()
    assert fig.axes and fig.axes[0].get_ylabel() == "max attention"


# --- adversary -----------------------------------------------------------------------------------------------

def test_epsilon_max_jsd_by_hand():
    tvds = torch.tensor([[0.01, 0.2, 0.04], [0.3, 0.06, 0.9], [0.0, 0.05, 0.051]])
    jsds = torch.tensor([[0.3, 0.6, 0.5], [0.6, 0.1, 0.2], [0.1, 0.2, 0.69]])
    best, chosen, n_ok = jw_adversary.epsilon_max_jsd(tvds, jsds, 0.05)
    np.testing.assert_allclose(best, [0.5, 0.0, 0.2], atol=1e-7)      # row 2: nothing accepted → original
    np.testing.assert_allclose(chosen, [0.04, 0.0, 0.05], atol=1e-7)
    assert n_ok.tolist() == [2, 0, 2]


def test_adversary_reaches_ln2_when_the_output_ignores_attention():
    src = toy(ignore=True)
    units, mask = src.batch(torch.arange(6))
    alpha = src.attention(units, mask)
    assert float(alpha.max(1).values.min()) > 0.9                      # peaked on word 2
    a, d, j = jw_adversary.adversarial_attention(src, units, mask, alpha, steps=200,
                                                 generator=torch.Generator().manual_seed(0))
    best, chosen, _ = jw_adversary.epsilon_max_jsd(d, j, 0.05)
    assert float(d.max()) < 1e-5                                       # the output cannot move
    assert np.all(best > 0.9 * LN2) and np.all(best <= LN2 + 1e-6)
    # candidates never put mass on padding (or the gap), and are distributions over the real words
    assert torch.all(a[~mask[:, None, :].expand_as(a)] == 0)
    torch.testing.assert_close(a.sum(-1), torch.ones(6, 5))
    # the JSD returned is the metric's JSD of the returned candidates
    torch.testing.assert_close(j, jsd(a, alpha[:, None, :]))


def test_adversary_stays_within_the_bound_when_the_output_needs_attention():
    src = toy(ignore=False)
    units, mask = src.batch(torch.arange(6))
    alpha = src.attention(units, mask)
    a, d, j = jw_adversary.adversarial_attention(src, units, mask, alpha, epsilon=0.01,
                                                 generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(d, tvd(src.output(units[:, None].expand(6, 5, 7, 4).reshape(30, 7, 4),
                                                 mask[:, None].expand(6, 5, 7).reshape(30, 7),
                                                 a.reshape(30, 7)).reshape(6, 5, 2),
                                      src.output(units, mask, alpha)[:, None]))
    ok = d <= 0.05
    assert float(ok.float().mean()) >= 0.5                             # most candidates come back within ε …
    assert float(d[ok].max()) <= 0.01 + 1e-3                           # … and those held at ε by the hinge
    best, chosen, _ = jw_adversary.epsilon_max_jsd(d, j, 0.05)
    assert np.all(chosen <= 0.05)
    assert torch.all(a[~mask[:, None, :].expand_as(a)] == 0)
    free = toy(ignore=True)
    fu, fm = free.batch(torch.arange(6))
    _, fd, fj = jw_adversary.adversarial_attention(free, fu, fm, free.attention(fu, fm), steps=200,
                                                   generator=torch.Generator().manual_seed(0))
    free_best, _, _ = jw_adversary.epsilon_max_jsd(fd, fj, 0.05)
    assert best.mean() < free_best.mean()


def test_adversary_run_tables_figures_and_seed():
    src = toy(ignore=False)
    a = jw_adversary.run(toy_context(src, seed=0, adversary_steps=30))
    b = jw_adversary.run(toy_context(src, seed=0, adversary_steps=30))
    pd.testing.assert_frame_equal(a.tables["adversary"], b.tables["adversary"])
    t = a.tables["adversary"]
    assert (t["chosen_tvd"] <= 0.05).all() and (t["value"] >= 0).all() and (t["value"] <= LN2).all()
    assert a.counts["adversary_candidates"] == 6 * 5
    assert a.figures["jain-wallace-fig11"]().axes[0].get_xlim() == (0.0, 0.7)
    assert a.figures["jain-wallace-fig12"]().axes[0].get_xlim() == (-0.05, 0.7)
    s = a.tables["adversary-summary"]
    assert s.query("`class` == 'all' and metric == 'examples'")["value"].iloc[0] == 6
    med = s[(s["metric"] == "median_max_jsd") & s["n"].notna()].iloc[0]       # the row with its interval
    assert med["n"] == 6 and med["ci_low"] <= med["value"] <= med["ci_high"]
    assert med["value"] == pytest.approx(np.median(t["value"]))


# --- tau ------------------------------------------------------------------------------------------------------

def _hand_gradient(clf, text, detach):
    """|Σ_pieces Σ_d ∂σ(ŷ)/∂e·e| per word through the HF model with inputs_embeds, α held fixed or not."""
    batch = clf.encode([Example(words=None, text=text)], warn=False)
    ids, wid = batch["input_ids"], batch["word_ids"][0]
    e = clf.embedding_layer(ids).detach().requires_grad_(True)
    hs = clf.model(inputs_embeds=e, attention_mask=batch["attention_mask"]).last_hidden_state[0]
    n = len(batch["words"][0])
    units = torch.stack([hs[wid == w].mean(0) for w in range(n)])
    s = clf.head.v(torch.tanh(clf.head.W(units)))[:, 0]
    alpha = torch.softmax(s, 0)
    if detach:
        alpha = alpha.detach()
    p = torch.softmax(clf.head.out(alpha @ units), -1)
    p[p.argmax()].backward()
    tok = (e.grad[0] * e[0].detach()).sum(-1)
    return np.array([abs(float(tok[wid == w].sum())) for w in range(n)])


def test_gradient_importance_by_hand(tiny_model_dirs):
    clf = make(tiny_model_dirs)
    batch = clf.encode(examples()[:3], warn=False)
    pool, _ = jw_correlation.gradient_importance(clf, batch, "pooling")
    full, _ = jw_correlation.gradient_importance(clf, batch, "cls")
    for b, text in enumerate(TEXTS[:3]):
        np.testing.assert_allclose(pool[b], _hand_gradient(clf, text, detach=True), rtol=1e-4, atol=1e-9)
        np.testing.assert_allclose(full[b], _hand_gradient(clf, text, detach=False), rtol=1e-4, atol=1e-9)
    assert not np.allclose(np.concatenate(pool), np.concatenate(full))   # detaching α matters


def test_leave_one_out_by_hand(tiny_model_dirs):
    clf = make(tiny_model_dirs)
    ex = examples()[:3]
    batch = clf.encode(ex, warn=False)
    p0 = clf.predict(ex)[["p_neg", "p_pos"]].to_numpy()
    loo = jw_correlation.leave_one_out(clf, ex, batch, p0, 4)
    for b, words in enumerate(batch["words"]):
        for i in range(len(words)):
            rest = [w for k, w in enumerate(words) if k != i]
            q = clf.predict([Example(words=rest)])[["p_neg", "p_pos"]].to_numpy()[0]
            assert loo[b][i] == pytest.approx(0.5 * np.abs(q - p0[b]).sum(), abs=1e-6)
            assert loo[b][i] == pytest.approx(abs(q[1] - p0[b][1]), abs=1e-6)      # two classes: |Δσ|


def test_token_level_leave_one_out_deletes_the_piece(tiny_model_dirs):
    clf = make(tiny_model_dirs, level="token")
    ex = examples()[1:2]
    batch = clf.encode(ex, warn=False)
    p0 = jw_correlation._forward_probs(clf, batch)
    loo = jw_correlation.leave_one_out(clf, ex, batch, p0, 4)[0]
    ids = batch["input_ids"][0]
    real = torch.nonzero(batch["word_ids"][0] >= 0).view(-1).tolist()
    assert len(loo) == len(real) == len(batch["words"][0])
    for k, t in enumerate(real):
        kept = torch.cat([ids[:t], ids[t + 1:]])[None]
        with torch.no_grad():
            q = torch.softmax(clf(input_ids=kept, attention_mask=torch.ones_like(kept)), -1)[0].numpy()
        assert loo[k] == pytest.approx(0.5 * np.abs(q - p0[0]).sum(), abs=1e-6)


def test_summary_by_hand():
    ctx = SimpleNamespace(classifier=SimpleNamespace(labels=["neg", "pos"], n_classes=2), seed=0,
                          option=lambda name: 1000)
    rows = []
    for ex, (tau, p, pred) in enumerate([(0.5, 0.01, "pos"), (0.1, 0.6, "neg"), (np.nan, np.nan, "pos"),
                                         (-0.2, 0.04, "pos")]):
        for pair in jw_correlation.PAIRS:
            rows += [{"example": ex, "pair": pair, "metric": "tau", "value": tau, "predicted": pred},
                     {"example": ex, "pair": pair, "metric": "p", "value": p, "predicted": pred}]
    s = jw_correlation.summarise(pd.DataFrame(rows), ctx)
    get = lambda cls, m: s.query("pair == 'gradient-loo' and `class` == @cls and metric == @m")["value"].iloc[0]
    assert get("all", "tau_mean") == pytest.approx(0.4 / 3)
    assert get("all", "tau_std") == pytest.approx(np.std([0.5, 0.1, -0.2]))
    assert get("all", "share_p_le_0.05") == pytest.approx(2 / 3)
    row = lambda cls, m: s.query("pair == 'gradient-loo' and `class` == @cls and metric == @m").iloc[0]
    assert get("all", "n_nan") == 1 and row("all", "tau_mean")["n"] == 3
    # the interval of the mean over the 3 defined examples lies within their range and holds the mean
    eps = 1e-12                                          # a mean of resampled floats may round past the range
    assert -0.2 - eps <= row("all", "tau_mean")["ci_low"] <= 0.4 / 3 <= row("all", "tau_mean")["ci_high"] <= 0.5 + eps
    assert get("pos", "tau_mean") == pytest.approx(0.15) and row("neg", "tau_mean")["n"] == 1


def test_tau_run_counts_nan_and_matches_kendall(tiny_model_dirs, tmp_path):
    clf = make(tiny_model_dirs)
    ctx = context(clf, tmp_path)
    out = jw_correlation.run(ctx)
    t = out.tables["tau"]
    assert set(t["pair"]) == set(jw_correlation.PAIRS) and sorted(set(t["example"])) == list(range(len(TEXTS)))
    one = t[(t["words"] == 1)]
    assert one["value"].isna().all() and out.counts["tau_single_word"] == 1
    assert out.counts["tau_nan_gradient-loo"] >= 1
    # example 0's τ(attention, gradient) from the pieces, recomputed here on the batch the run put it in (a tiny
    # random model's gradients are nearly tied, so padding's float rounding alone could reorder them)
    idx = next(i for i in ctx.source.batches(ctx.batch_size) if 0 in i.tolist())
    batch = clf.encode([ctx.examples[i] for i in idx.tolist()], warn=False)
    grads, _ = jw_correlation.gradient_importance(clf, batch, "pooling")
    alpha = ctx.source.all_attention()[0]
    tau = t.query("example == 0 and pair == 'attention-gradient' and metric == 'tau'")["value"].iloc[0]
    assert tau == pytest.approx(kendall(alpha, grads[idx.tolist().index(0)])[0])
    names = [f["quantity"] for f in out.findings]
    assert "mean τ(attention, gradient)" in names and "mean τ(gradient, LOO)" in names
    assert all(f["paper"] for f in out.findings)
    again = jw_correlation.run(context(clf, tmp_path))
    pd.testing.assert_frame_equal(t, again.tables["tau"])


# --- the [CLS] attention source (units are a dict of fixed tensors) ---------------------------------------------

def test_cls_source_runs_every_experiment(tiny_model_dirs):
    from probekit.evaluation.source_cls import ClsSource

    clf = make(tiny_model_dirs, head="cls")
    ex = examples()
    src = ClsSource(clf, ex)
    ctx = Context(classifier=clf, examples=ex, source=src, seed=0, batch_size=2, quiet=True,
                  options={"permutations": 8, "adversary_steps": 20})
    perm = jw_permutation.run(ctx).tables["permutation"]
    multi = perm["words"] > 1
    assert perm.loc[multi, "value"].notna().all() and (perm.loc[multi, "value"] >= 0).all()
    # the shuffled outputs are the source's outputs of the shuffled weights
    units, mask = src.batch(torch.tensor([0, 2]))
    alpha = src.attention(units, mask)
    med, perms = jw_permutation.median_permutation_tvd(src, units, mask, alpha, 4, torch.Generator().manual_seed(0))
    with torch.no_grad():
        one = lambda b, a: src.output(jw_permutation.take(units, torch.tensor([b])), mask[b:b + 1], a)
        want = [np.median([float(tvd(one(b, perms[b, k:k + 1]), one(b, alpha[b:b + 1]))[0]) for k in range(4)])
                for b in range(2)]
    np.testing.assert_allclose(med, want, atol=1e-6)
    grads_before = [p.grad for p in clf.parameters()]
    adv = jw_adversary.run(ctx).tables["adversary"]
    assert (adv["chosen_tvd"] <= 0.05).all() and adv.loc[adv["words"] > 1, "value"].notna().all()
    assert all(p.grad is None for p in clf.parameters()) and all(g is None for g in grads_before)
    tau = jw_correlation.run(ctx).tables["tau"]
    # the cls kind: α is the source's, the gradient the plain model's (nothing to detach)
    batch = clf.encode(ex[:1], warn=False)
    grads, _ = jw_correlation.gradient_importance(clf, batch, "cls")
    want = kendall(src.all_attention()[0], grads[0])[0]
    got = tau.query("example == 0 and pair == 'attention-gradient' and metric == 'tau'")["value"].iloc[0]
    assert got == pytest.approx(want)
