"""Serrano & Smith's erasure tests against hand computations, and the [CLS]-attention source against the model."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from probekit.classifiers.model import Classifier
from probekit.core.encoder import load_encoder
from probekit.core.errors import UserError
from probekit.core.examples import Example
from probekit.evaluation.base import Context
from probekit.evaluation.source import AttentionSource, PoolingSource
from probekit.evaluation.source_cls import ClsSource
from probekit.evaluation.serrano_smith.erasure import erase, run_single, single_weight
from probekit.evaluation.serrano_smith.sets import run_sets

TEXTS = ["The old teacher walked slowly to the village school.", "An unbelievably gigantic chrysanthemum!",
         "Nobody knew where the key had gone, so they searched the whole house.", "Hello",
         "The quick brown fox jumps over the lazy dog."]


class ToySource(AttentionSource):
    """A hand-built head: one number h_t per word, logits = [0, Σ α_t h_t + bias]. A weight of None marks a
    gap in the mask (a word lost to truncation). Units are a dict, as ClsSource's are."""

    kind = "toy"

    def __init__(self, h, alpha, bias=-0.1):
        U = max(len(r) for r in h)
        self.h = torch.zeros(len(h), U)
        self.a = torch.zeros(len(h), U)
        self.m = torch.zeros(len(h), U, dtype=torch.bool)
        for i, (hr, ar) in enumerate(zip(h, alpha)):
            for t, (x, w) in enumerate(zip(hr, ar)):
                self.h[i, t] = float(x)
                self.a[i, t] = 0.0 if w is None else float(w)
                self.m[i, t] = w is not None
        self.bias = bias
        self.classifier = SimpleNamespace(n_classes=2)
        self.calls = 0

    def __len__(self):
        return len(self.h)

    def batch(self, idx):
        idx = torch.as_tensor(idx)
        return {"h": self.h[idx], "a": self.a[idx]}, self.m[idx]

    def attention(self, units, mask):
        return units["a"]

    def output(self, units, mask, alpha):
        self.calls += 1
        x = (alpha * mask * units["h"]).sum(1) + self.bias
        return torch.softmax(torch.stack([torch.zeros_like(x), x], 1), 1)


def ctx_for(source, seed=0, batch_size=8, **options):
    options.setdefault("resamples", 1000)
    return Context(classifier=SimpleNamespace(source=None, n_classes=2), examples=[None] * len(source),
                   source=source, seed=seed, batch_size=batch_size, quiet=True, options=options)


def value(table, **where):
    sel = table
    for k, v in where.items():
        sel = sel[sel[k] == v]
    assert len(sel) == 1, where
    return sel["value"].iloc[0]


# --- erasure --------------------------------------------------------------------------------------------------

def test_erase_renormalises_to_one_and_keeps_proportions():
    g = torch.Generator().manual_seed(0)
    alpha = torch.rand(6, 7, generator=g)
    alpha[:, 5:] = 0                                     # padding
    alpha = alpha / alpha.sum(1, keepdim=True)
    pos = torch.tensor([0, 1, 2, 3, 4, 0])
    out = erase(alpha, pos)
    torch.testing.assert_close(out.sum(1), torch.ones(6))
    assert (out[torch.arange(6), pos] == 0).all() and (out[:, 5:] == 0).all()
    keep = torch.ones_like(alpha, dtype=torch.bool)
    keep[torch.arange(6), pos] = False
    expected = torch.where(keep, alpha, 0) / (1 - alpha[torch.arange(6), pos])[:, None]
    torch.testing.assert_close(out, expected)
    # everything erased: the zero vector (a bias-only decision), not NaN
    one = torch.tensor([[1.0, 0.0]])
    assert torch.equal(erase(one, torch.tensor([0])), torch.zeros(1, 2))


# --- single weight --------------------------------------------------------------------------------------------

def test_random_word_is_never_the_top_word():
    # n = 2, n = 3, n = 5 (top last, first, middle) and a gap in the mask (a word lost to truncation)
    h = [[1, -1], [-1, 1], [1, 2, 3], [3, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 2, 3, 4]]
    a = [[0.3, 0.7], [0.7, 0.3], [0.2, 0.3, 0.5], [0.6, 0.1, 0.1, 0.1, 0.1], [0.1, 0.1, 0.6, 0.1, 0.1],
         [0.5, None, 0.2, 0.3]]
    src = ToySource(h, a)
    seen = {i: set() for i in range(len(h))}
    for seed in range(60):
        frame = single_weight(ctx_for(src, seed=seed, batch_size=4))
        assert (frame["random_word"] != frame["top_word"]).all()
        for row in frame.itertuples():
            seen[row.example].add(row.random_word)
            assert src.m[row.example, row.random_word]            # a real word
    assert seen[0] == {0} and seen[1] == {1}                       # n = 2: always the other word
    assert seen[2] == {0, 1} and seen[3] == {1, 2, 3, 4} and seen[4] == {0, 1, 3, 4}
    assert seen[5] == {2, 3}                                       # never the gap (1), never the top (0)


def test_single_weight_against_hand_computation():
    src = ToySource([[5.0, 0.5, -1.0], [2.0]], [[0.2, 0.5, 0.3], [1.0]])
    out = run_single(ctx_for(src, seed=3))
    assert out.counts["length_1_excluded"] == 1 and out.counts["examples"] == 1
    t = out.tables["single-weight"]
    r = int(t[t["example"] == 0]["random_word"].iloc[0])
    assert r in (0, 2) and int(t[t["example"] == 0]["top_word"].iloc[0]) == 1

    def probs(alpha):
        x = float(np.dot(alpha, [5.0, 0.5, -1.0])) - 0.1
        e = np.exp([0.0, x])
        return e / e.sum()

    def js(p, q):
        m = (p + q) / 2
        return 0.5 * np.sum(p * np.log(p / m)) + 0.5 * np.sum(q * np.log(q / m))

    a = np.array([0.2, 0.5, 0.3])
    p = probs(a)
    p_top = probs(np.array([0.2, 0, 0.3]) / 0.5)
    ar = a.copy()
    ar[r] = 0
    p_r = probs(ar / ar.sum())
    assert value(t, example=0, metric="js_top") == pytest.approx(js(p, p_top), abs=1e-6)
    assert value(t, example=0, metric="delta_js") == pytest.approx(js(p, p_top) - js(p, p_r), abs=1e-6)
    assert value(t, example=0, metric="weight_difference") == pytest.approx(0.5 - a[r], abs=1e-7)
    # zeroing word 1 leaves x = (2 - 0.6) - 0.1 > 0: no flip; zeroing word 0 gives x = -0.0625 - 0.1: a flip
    assert value(t, example=0, metric="flip_top") == 0
    assert value(t, example=0, metric="flip_random") == int(r == 0)
    flips = out.tables["single-weight-flips"]
    counts = flips[flips["metric"] == "count"]
    assert counts["value"].sum() == 1
    assert value(counts, top_flips=False, random_flips=(r == 0)) == 1
    found = {f["quantity"]: f["value"] for f in out.findings}
    assert found["share of examples whose decision flips when the top word is zeroed"] == 0
    assert found["share of examples whose decision flips when a random other word is zeroed"] == int(r == 0)
    for make in out.figures.values():
        assert make().axes


# --- sets -----------------------------------------------------------------------------------------------------

def toy_sets():
    # example 0: attention order erases 0.5 (h 0.5), then 0.3 (h -1) and flips only at the last word (k = 3);
    #            gradient (∝ h) and gradient × α erase h = 5 first: x = (0.5·0.5 - 0.3)/0.8 - 0.1 < 0, k = 1
    # example 1: all h > 0, so only the all-erased step (x = bias = -0.1) flips: k = n = 2 in every order
    # example 2: one word: excluded everywhere
    return ToySource([[5.0, 0.5, -1.0], [1.0, 2.0], [3.0]], [[0.2, 0.5, 0.3], [0.5, 0.5], [1.0]])


def test_sets_hand_computed_flip_steps():
    out = run_sets(ctx_for(toy_sets(), seed=1, random_draws=5))
    t = out.tables["sets"]
    assert out.counts["length_1_excluded"] == 1 and out.counts["examples"] == 2
    assert value(t, example=0, ordering="attention", metric="items_removed") == 3
    assert value(t, example=0, ordering="gradient", metric="items_removed") == 1
    assert value(t, example=0, ordering="gradient-x-attention", metric="items_removed") == 1
    assert value(t, example=0, ordering="gradient", metric="fraction_removed") == pytest.approx(1 / 3)
    assert value(t, example=0, ordering="gradient", metric="mass_removed") == pytest.approx(0.2)
    assert value(t, example=1, ordering="attention", metric="fraction_removed") == 1.0
    ranking = {r["method"]: r for r in out.ranking}
    assert set(ranking) == {"attention", "gradient", "gradient-x-attention", "random"}
    assert ranking["gradient"]["median_fraction_removed"] == pytest.approx((1 / 3 + 1) / 2)
    assert ranking["attention"]["median_fraction_removed"] == pytest.approx(1.0)
    # every ordering (and every random draw) flips on both examples, so the medians are paired over both
    assert out.counts["every_ordering_flips"] == 2 and all(r["n"] == 2 for r in ranking.values())
    assert {r["tier"] for r in ranking.values()} <= {1, 2, 3, 4}
    pair = out.tables["sets-pairwise"]
    assert value(pair, first="attention", second="gradient", metric="second_sooner") == 1
    assert value(pair, first="attention", second="gradient", metric="tie") == 1
    found = {f["quantity"]: f["value"] for f in out.findings}
    assert found["share of examples where gradient order flips sooner than attention order"] == 0.5
    for make in out.figures.values():
        assert make().axes


def test_sets_never_flip_is_counted_and_excluded():
    src = ToySource([[5.0, 0.5, -1.0], [1.0, 2.0]], [[0.2, 0.5, 0.3], [0.5, 0.5]], bias=0.1)
    out = run_sets(ctx_for(src, random_draws=5))
    # bias +0.1: example 1 never flips in any ordering; example 0's all-erased step no longer flips either,
    # so attention order never flips; gradient order: k = 1 gives x = -0.0625 + 0.1 > 0, k = 2 gives -0.9
    assert out.counts["never_flip_attention"] == 2 and out.counts["never_flip_gradient"] == 1
    t = out.tables["sets"]
    summ = t[t["example"].isna()]
    get = lambda o, m, agg: summ[(summ["ordering"] == o) & (summ["metric"] == m)
                                 & summ["aggregate"].str.startswith(agg)]["value"].item()
    assert get("attention", "never_flip_share", "examples") == 1.0
    assert get("random", "never_flip_share", "examples") >= 0.5
    # no example flips in every ordering: the paired medians are undefined (n = 0) and say so …
    ranking = {r["method"]: r for r in out.ranking}
    assert out.counts["every_ordering_flips"] == 0 and np.isnan(ranking["gradient"]["median_fraction_removed"])
    assert ranking["gradient"]["n"] == 0
    # … while Serrano & Smith's per-ordering median (its own flipping examples) stays in the table, labelled
    assert get("gradient", "median_fraction_removed", "examples where this ordering flips") == pytest.approx(2 / 3)


def test_sets_random_orders_are_seeded_permutations_and_batched():
    h = [list(np.linspace(-1, 1, n)) for n in (2, 4, 6, 3)]
    a = [list(np.full(len(r), 1 / len(r))) for r in h]
    first = run_sets(ctx_for(ToySource(h, a, bias=0.05), seed=7, batch_size=1, random_draws=6))
    src = ToySource(h, a, bias=0.05)
    second = run_sets(ctx_for(src, seed=7, batch_size=4, random_draws=6))
    pd.testing.assert_frame_equal(first.tables["sets"], second.tables["sets"])
    pd.testing.assert_frame_equal(first.tables["sets-pairwise"], second.tables["sets-pairwise"])
    # one batched output call per step (plus the original output and the gradient), not one per row
    assert src.calls == 1 + 1 + 6
    other = run_sets(ctx_for(ToySource(h, a, bias=0.05), seed=8, batch_size=4, random_draws=6))
    rnd = lambda o: o.tables["sets"][o.tables["sets"]["ordering"].fillna("").str.startswith("random")]
    assert not rnd(first)["value"].equals(rnd(other)["value"])
    with pytest.raises(UserError, match="random-draws"):
        run_sets(ctx_for(src, random_draws=0))


# --- on real (tiny) classifiers -------------------------------------------------------------------------------

def make(tiny_model_dirs, arch="bert", head="attention", labels=("neg", "pos", "mid")):
    torch.manual_seed(0)
    return Classifier(load_encoder(str(tiny_model_dirs[arch])), list(labels), head=head).eval()


def examples():
    return [Example(words=None, text=t) for t in TEXTS]


def test_pooling_source_runs_and_is_deterministic(tiny_model_dirs, tmp_path):
    clf = make(tiny_model_dirs)
    src = PoolingSource(clf, examples(), cache_dir=tmp_path)
    ctx = Context(classifier=clf, examples=examples(), source=src, seed=0, batch_size=2, quiet=True,
                  options={"resamples": 1000})
    a, b = run_single(ctx), run_single(ctx)
    pd.testing.assert_frame_equal(a.tables["single-weight"], b.tables["single-weight"])
    assert a.counts["length_1_excluded"] == 1            # "Hello"
    s1, s2 = run_sets(ctx), run_sets(ctx)
    pd.testing.assert_frame_equal(s1.tables["sets"], s2.tables["sets"])
    t = s1.tables["sets"]
    assert list(t.columns[:8]) == ["task", "example", "ordering", "aggregate", "model", "layer", "head", "metric"]
    frac = t[(t["metric"] == "fraction_removed") & t["example"].notna()]["value"].dropna()
    assert ((frac > 0) & (frac <= 1)).all()


@pytest.mark.parametrize("arch", ["bert", "roberta"])
def test_cls_source_reproduces_the_classifier(tiny_model_dirs, arch):
    clf = make(tiny_model_dirs, arch, head="cls")
    src = ClsSource(clf, examples(), batch_size=2)
    units, mask = src.batch(torch.arange(len(TEXTS)))
    alpha = src.attention(units, mask)
    torch.testing.assert_close(alpha.sum(1), torch.ones(len(TEXTS)))
    assert (alpha[~mask] == 0).all()
    p = src.output(units, mask, alpha)
    real = clf.predict(examples())[[f"p_{c}" for c in clf.labels]].to_numpy()
    np.testing.assert_allclose(p.detach().numpy(), real, atol=1e-5)
    # the same α as attribution's attention-cls (word sums of the renormalised head-mean row)
    from probekit.attribution.internal import attention_cls
    from probekit.attribution.words import to_words

    batch = clf.encode(examples(), warn=False)
    att, _ = attention_cls(clf, batch, None)
    for b in range(len(TEXTS)):
        w = to_words(att[b], batch["word_ids"][b], len(batch["words"][b]))
        np.testing.assert_allclose(alpha[b, :len(w)].numpy(), w, atol=1e-6)
    # an erased word: every head's row still sums to 1, the word's pieces get 0, the output moves
    erased = erase(alpha, torch.zeros(len(TEXTS), dtype=torch.long))
    rows = src.imposed_rows(units, mask, erased)
    many = mask.sum(1) > 1                                  # "Hello" erased whole: only the specials are left
    torch.testing.assert_close(rows.sum(-1)[many], torch.ones(rows.shape[:2])[many])
    special = units["attn"] * ((units["unit_of"] < 0) & units["real"]).unsqueeze(1)
    torch.testing.assert_close(rows[~many], special[~many])
    assert (rows.transpose(1, 2)[units["unit_of"] == 0] == 0).all()
    q = src.output(units, mask, erased)
    torch.testing.assert_close(q.sum(1), torch.ones(len(TEXTS)))
    # independently: Hugging Face's own last layer on the fixed layer L-1 states, with an additive [B, H, T, T]
    # mask that turns the [CLS] query's softmax into the imposed rows (log of their ratio to the original)
    model = clf.encoder.model
    before = model.config._attn_implementation
    model.set_attn_implementation("eager")
    T = units["hidden"].shape[1]
    enc = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.no_grad():
        hidden = model(**enc, output_hidden_states=True).hidden_states[-2]
    assert hidden.shape[1] == T
    add = torch.zeros(len(TEXTS), rows.shape[1], T, T)
    add[~units["real"][:, None, None, :].expand_as(add)] = torch.finfo(torch.float32).min
    ratio = rows / units["attn"].clamp_min(1e-30)
    add[:, :, 0, :] = torch.where(units["real"][:, None, :], torch.log(ratio.clamp_min(1e-30)),
                                  torch.finfo(torch.float32).min)
    with torch.no_grad():
        out = model.encoder.layer[-1](hidden, attention_mask=add)
        out = out[0] if isinstance(out, tuple) else out
    model.set_attn_implementation(before)
    mine = src.cls_vector(units, mask, erased).detach()
    torch.testing.assert_close(mine[many], out[:, 0][many], atol=1e-5, rtol=1e-5)
    assert (mine - src.cls_vector(units, mask, alpha)).abs().max() > 1e-3
    # the gradient flows to α, and both experiments run on this source
    ctx = Context(classifier=clf, examples=examples(), source=src, seed=0, batch_size=2, quiet=True,
                  options={"resamples": 1000})
    assert run_sets(ctx).counts["examples"] == 4 and run_single(ctx).counts["examples"] == 4


def test_cls_source_refuses_what_it_cannot_recompute(tiny_model_dirs, monkeypatch):
    with pytest.raises(UserError, match="--head cls"):
        ClsSource(make(tiny_model_dirs, head="attention"), examples())
    plain = make(tiny_model_dirs, "distilbert", head="cls")     # an encoder outside the attention interface
    monkeypatch.setattr(type(plain.encoder.model), "_supports_attention_backend", False)
    with pytest.raises(UserError, match="attention interface") as err:
        ClsSource(plain, examples())
    assert "\n" not in str(err.value) and "DistilBertModel" in str(err.value)
    torch.manual_seed(0)
    low = Classifier(load_encoder(str(tiny_model_dirs["bert"])), ["a", "b"], head="cls", layer=1)
    with pytest.raises(UserError, match="layer"):
        ClsSource(low, examples())
