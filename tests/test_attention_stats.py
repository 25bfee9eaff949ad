"""Clark et al. §3 statistics on hand-built attention maps: every formula, its denominators and smoothing,
per-input weighting, streaming, and the Jensen–Shannon head distances against scipy."""
import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy as scipy_entropy

import probekit.heads.statistics as st
from probekit.heads.statistics import (AttentionStatistics, SpecialTokens, distance_frame, input_stats, mds_map,
                                      unit_classes)

BERT = SpecialTokens("[CLS]", "[SEP]")

# One head, units [CLS] a . [SEP]; rows are queries.
UNITS = ["[CLS]", "a", ".", "[SEP]"]
SPECIAL = [True, False, False, True]
A = np.array([[0.5, 0.25, 0.0, 0.25],
              [0.1, 0.2, 0.3, 0.4],
              [0.0, 0.0, 0.0, 1.0],
              [0.0, 0.0, 0.5, 0.5]])


def stats_of(maps, units=UNITS, special=SPECIAL, specials=BERT):
    return input_stats(np.asarray(maps)[None, None] if np.ndim(maps) == 2 else maps,
                       *unit_classes(units, special, specials))


def test_every_formula_on_a_hand_computed_map():
    s = {k: (None if v is None else float(v[0, 0])) for k, v in stats_of(A).items()}
    assert s["cls"] == pytest.approx((0.5 + 0.1 + 0 + 0) / 4)
    assert s["sep"] == pytest.approx((0.25 + 0.4 + 1.0 + 0.5) / 4)
    assert s["punct"] == pytest.approx((0.0 + 0.3 + 0.0 + 0.5) / 4)
    assert s["self"] == pytest.approx((0.5 + 0.2 + 0.0 + 0.5) / 4)
    assert s["prev"] == pytest.approx((0.1 + 0.0 + 0.5) / 4)        # α[i, i-1], first row has none
    assert s["next"] == pytest.approx((0.25 + 0.3 + 1.0) / 4)       # α[i, i+1], last row has none
    assert s["sep_sep"] == pytest.approx(0.5 / 1)                   # one [SEP] row
    assert s["rest_sep"] == pytest.approx((0.25 + 0.4 + 1.0) / 3)   # three other rows
    assert s["max_weight"] == pytest.approx((0.5 + 0.4 + 1.0 + 0.5) / 4)
    assert s["uniform_entropy"] == pytest.approx(np.log(4))
    smooth = 0.9999 * A + 1e-4 / 4
    rows = [scipy_entropy(r) for r in smooth]                      # nats
    # row entropies are summed in float32, like the maps themselves (a few ulps)
    assert s["entropy"] == pytest.approx(np.mean(rows), rel=1e-6)
    assert s["entropy_cls"] == pytest.approx(rows[0], rel=1e-6)


def test_sep_to_sep_divides_by_the_number_of_sep_rows_not_two():
    # RoBERTa-style pair: <s> a </s> </s> b </s> — three separator rows.
    units = ["<s>", "a", "</s>", "</s>", "b", "</s>"]
    special = [True, False, True, True, False, True]
    rng = np.random.default_rng(0)
    M = rng.random((6, 6))
    M /= M.sum(1, keepdims=True)
    s = stats_of(M, units, special, SpecialTokens("<s>", "</s>"))
    seps = [2, 3, 5]
    others = [0, 1, 4]
    assert s["sep_sep"][0, 0] == pytest.approx(M[np.ix_(seps, seps)].sum() / 3)
    assert s["rest_sep"][0, 0] == pytest.approx(M[np.ix_(others, seps)].sum() / 3)
    assert s["cls"][0, 0] == pytest.approx(M[:, 0].sum() / 6)
    # if every row sends everything to the separators, both are exactly 1
    M2 = np.zeros((6, 6))
    M2[:, seps] = 1 / 3
    s2 = stats_of(M2, units, special, SpecialTokens("<s>", "</s>"))
    assert s2["sep_sep"][0, 0] == pytest.approx(1.0) and s2["rest_sep"][0, 0] == pytest.approx(1.0)


def test_special_tokens_are_the_models_own_and_only_when_marked_special():
    units = ["[CLS]", "[SEP]", "Ġ.", "▁,", "##.", "[SEP]"]
    cls, sep, punct = unit_classes(units, [True, False, False, False, False, True], BERT)
    assert cls.tolist() == [True, False, False, False, False, False]
    assert sep.tolist() == [False, False, False, False, False, True]   # the text "[SEP]" is a word here
    assert punct.tolist() == [False, False, True, True, False, False]


def test_special_tokens_of_real_tokenizers():
    from tiny_models import make_tokenizer

    assert SpecialTokens.of(make_tokenizer("bert")) == SpecialTokens("[CLS]", "[SEP]")
    assert SpecialTokens.of(make_tokenizer("roberta")) == SpecialTokens("<s>", "</s>")


def test_entropy_of_uniform_attention_is_the_uniform_reference_and_undefined_stats_are_skipped():
    n = 7
    U = np.full((2, 3, n, n), 1 / n)
    s = input_stats(U, np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool))
    assert np.allclose(s["entropy"], np.log(n)) and np.allclose(s["uniform_entropy"], np.log(n))
    assert s["sep_sep"] is None and s["entropy_cls"] is None   # no [SEP] rows, no [CLS]
    assert np.allclose(s["rest_sep"], 0.0) and np.allclose(s["cls"], 0.0)
    # a one-hot row: entropy of the smoothed row by hand
    one = np.eye(n)[None, None]
    e = input_stats(one, np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool))["entropy"][0, 0]
    big, small = 0.9999 + 1e-4 / n, 1e-4 / n
    assert e == pytest.approx(-(big * np.log(big) + (n - 1) * small * np.log(small)), abs=1e-8)   # float32 sums


def random_maps(rng, L, H, n, sharp=1.0):
    x = rng.normal(size=(L, H, n, n)) * sharp
    a = np.exp(x)
    return (a / a.sum(-1, keepdims=True)).astype(np.float32)


def make_inputs(rng, lengths, L=2, H=3):
    out = []
    for n in lengths:
        units = ["[CLS]"] + [rng.choice(["w", ".", ","]) for _ in range(n - 2)] + ["[SEP]"]
        special = [True] + [False] * (n - 2) + [True]
        out.append((units, special, random_maps(rng, L, H, n, sharp=2.0)))
    return out


def test_each_input_weighs_the_same_and_streaming_equals_all_at_once():
    rng = np.random.default_rng(1)
    inputs = make_inputs(rng, [5, 12, 30, 8])
    acc = AttentionStatistics(2, 3, BERT, similarity=False)
    for units, special, a in inputs:
        acc.add(units, special, a)
    per = [input_stats(a, *unit_classes(u, s, BERT)) for u, s, a in inputs]
    means = acc.means()
    for name in st.STATS:
        expected = np.mean([p[name] for p in per], axis=0)   # mean of per-input means, not pooled over rows
        assert np.allclose(means[name], expected), name
    # pooled over all rows would differ: the long input would dominate
    pooled = sum(np.diagonal(a.astype(float), axis1=2, axis2=3).sum(-1) for _, _, a in inputs) / 55
    assert not np.allclose(means["self"], pooled)
    # weights: doubling one input's weight equals adding it twice
    w = AttentionStatistics(2, 3, BERT, similarity=False)
    twice = AttentionStatistics(2, 3, BERT, similarity=False)
    for k, (u, s, a) in enumerate(inputs):
        w.add(u, s, a, weight=2.0 if k == 2 else 1.0)
        for _ in range(2 if k == 2 else 1):
            twice.add(u, s, a)
    for name in st.STATS:
        assert np.allclose(w.means()[name], twice.means()[name])


def test_frame_is_tidy_and_numbered_from_one():
    rng = np.random.default_rng(2)
    acc = AttentionStatistics(2, 3, BERT, similarity=False)
    for u, s, a in make_inputs(rng, [6, 9]):
        acc.add(u, s, a)
    df = acc.frame()
    assert list(df.columns) == ["layer", "head", "metric", "value"]
    assert sorted(df["layer"].unique()) == [1, 2] and sorted(df["head"].unique()) == [1, 2, 3]
    assert len(df) == 2 * 3 * len(st.STATS)
    m = acc.means()
    row = df[(df.layer == 2) & (df["head"] == 3) & (df.metric == "prev")]["value"].item()
    assert row == pytest.approx(m["prev"][1, 2])


def test_attention_stats_analysis_reads_example_weights_and_the_similarity_limit():
    """The Analysis form: update(act, example) weighs by example.meta["weight"], result() is the tidy table."""
    from types import SimpleNamespace

    from probekit.core.analysis import Analysis
    from probekit.core.examples import Example
    from probekit.heads.statistics import AttentionStats

    rng = np.random.default_rng(6)
    inputs = make_inputs(rng, [5, 9, 14])
    weights = [1.0, 3.0, 0.5]
    acc = AttentionStats(num_layers=2, num_heads=3, specials=BERT, similarity_limit=2, model="m")
    ref = AttentionStatistics(2, 3, BERT)
    assert isinstance(acc, Analysis) and acc.level == "token" and acc.needs_attention and not acc.needs_hidden
    for k, ((u, s, a), w) in enumerate(zip(inputs, weights)):
        act = SimpleNamespace(units=u, special=s, attention=SimpleNamespace(array=a), index=k, truncated=k == 0)
        acc.update(act, Example(words=["x"], meta={"weight": w}))
        ref.add(u, s, a, weight=w, similarity=k < 2)
    df = acc.result()
    assert list(df.columns[:6]) == ["task", "model", "layer", "head", "metric", "value"]
    assert (df["task"] == "attention").all() and (df["model"] == "m").all() and str(df["head"].dtype) == "Int64"
    expected = ref.frame()
    assert np.allclose(df["value"].to_numpy(float), expected["value"].to_numpy(float), equal_nan=True)
    unweighted = AttentionStatistics(2, 3, BERT, similarity=False)
    for u, s, a in inputs:
        unweighted.add(u, s, a)
    assert not np.allclose(acc.means()["self"], unweighted.means()["self"])   # the weights were used
    assert acc.n_similarity_inputs == 2 and acc.n_truncated == 1
    assert np.allclose(acc.head_distances(), ref.head_distances())
    with pytest.raises(ValueError, match="encoder or num_layers"):
        AttentionStats()


def reference_js(inputs, L, H):
    """Mean over inputs of the mean over rows of scipy's jensenshannon² (nats), with 1e-3 smoothing."""
    K = L * H
    D = np.zeros((K, K))
    for _, _, a in inputs:
        n = a.shape[-1]
        P = 0.999 * a.reshape(K, n, n).astype(np.float64) + 0.001 / n
        for i in range(K):
            for j in range(K):
                D[i, j] += np.mean(jensenshannon(P[i], P[j], axis=1) ** 2)
    return D / len(inputs)


def test_head_distances_match_scipy_and_are_symmetric_with_zero_diagonal(monkeypatch):
    rng = np.random.default_rng(3)
    inputs = make_inputs(rng, [4, 11, 7, 23, 5, 70])   # 70² weights per head: more than one block of the kernel
    acc = AttentionStatistics(2, 3, BERT)
    for u, s, a in inputs:
        acc.add(u, s, a)
    D = acc.head_distances()
    assert np.allclose(D, reference_js(inputs, 2, 3), atol=2e-6)
    assert np.allclose(D, D.T) and np.all(np.diag(D) == 0)
    assert (D[~np.eye(6, dtype=bool)] > 0).all()
    # flushing after every input (streaming) gives the same matrix as one pass over a big buffer
    monkeypatch.setattr(st, "_JS_BUFFER_ELEMENTS", 1)
    small = AttentionStatistics(2, 3, BERT)
    for u, s, a in inputs:
        small.add(u, s, a)
    assert np.allclose(small.head_distances(), D, atol=1e-6)
    # inputs left out of the head distances still count for every other statistic
    part = AttentionStatistics(2, 3, BERT)
    for k, (u, s, a) in enumerate(inputs):
        part.add(u, s, a, similarity=k < 2)
    assert part.n_inputs == 6 and part.n_similarity_inputs == 2
    assert np.allclose(part.head_distances(), reference_js(inputs[:2], 2, 3), atol=2e-6)
    assert np.allclose(part.means()["entropy"], acc.means()["entropy"])


def test_head_distances_weigh_inputs_and_take_float16_maps():
    rng = np.random.default_rng(5)
    inputs = make_inputs(rng, [6, 15, 9])
    weighted, twice = AttentionStatistics(2, 3, BERT), AttentionStatistics(2, 3, BERT)
    for k, (u, s, a) in enumerate(inputs):
        weighted.add(u, s, a, weight=2.0 if k == 1 else 1.0)
        for _ in range(2 if k == 1 else 1):
            twice.add(u, s, a)
    assert np.allclose(weighted.head_distances(), twice.head_distances(), atol=1e-7)
    assert not np.allclose(weighted.head_distances(), reference_js(inputs, 2, 3), atol=1e-4)
    # half-precision maps (as a float16 cache stores them) give the distances of the same values in float64
    half = [(u, s, a.astype(np.float16)) for u, s, a in inputs]
    acc = AttentionStatistics(2, 3, BERT)
    for u, s, a in half:
        acc.add(u, s, a)
    assert np.allclose(acc.head_distances(), reference_js(half, 2, 3), atol=2e-6)


def test_identical_heads_have_zero_distance_and_mds_keeps_them_together():
    rng = np.random.default_rng(4)
    inputs = []
    for n in (6, 9, 13):
        a = random_maps(rng, 2, 3, n, sharp=3.0)
        a[1, 2] = a[0, 0]                                  # head 2-3 copies head 1-1
        inputs.append((["[CLS]"] + ["w"] * (n - 2) + ["[SEP]"], [True] + [False] * (n - 2) + [True], a))
    acc = AttentionStatistics(2, 3, BERT)
    for u, s, a in inputs:
        acc.add(u, s, a)
    D = acc.head_distances()
    assert D[0, 5] == pytest.approx(0.0, abs=1e-6) and D[5, 0] == pytest.approx(0.0, abs=1e-6)
    coords = mds_map(D, seed=0)
    assert coords.shape == (6, 2)
    gaps = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    assert gaps[0, 5] < 0.05 * gaps[~np.eye(6, dtype=bool)].max()
    assert np.allclose(mds_map(D, seed=0), coords)         # fixed random_state → same map
    df = distance_frame(D, 3)
    assert len(df) == 36
    assert df[(df.layer_a == 1) & (df.head_a == 1) & (df.layer_b == 2) & (df.head_b == 3)]["value"].item() == D[0, 5]


def test_shape_mismatch_is_an_error():
    acc = AttentionStatistics(2, 3, BERT)
    with pytest.raises(ValueError):
        acc.add(["[CLS]", "a"], [True, False], np.full((2, 3, 3, 3), 1 / 3))
