"""ERASER comprehensiveness, sufficiency, flips and plausibility against hand computations on a model whose
answer is known: ``--encoder none`` with a mean head where only the word "dog" has a non-zero embedding."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from probekit.classifiers.model import Classifier
from probekit.core.encoder import load_encoder
from probekit.core.examples import Example
from probekit.evaluation.base import Context
from probekit.evaluation.eraser import metrics as em
from probekit.evaluation.eraser.experiment import Evaluator, Unit, bin_size, first_flips, rank, run

W, BIAS = 4.0, -0.1
SENT = "the old teacher dog walked slowly to the village school".split()     # 10 one-piece words, dog at 3


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def p_pos(kept):
    """The hand-built model: logit(pos) − logit(neg) = W·[dog kept]/|kept| + BIAS (mean of the word vectors)."""
    kept = list(kept)
    return sigmoid((W * ("dog" in kept) / len(kept) if kept else 0.0) + BIAS)


@pytest.fixture(scope="module")
def dog_model(tiny_model_dirs):
    clf = Classifier(load_encoder(str(tiny_model_dirs["bert"])), ["neg", "pos"], head="mean", encoder_mode="none")
    dog = clf.tokenizer.convert_tokens_to_ids("dog")
    with torch.no_grad():
        clf.embedding_layer.weight.zero_()
        clf.embedding_layer.weight[dog, 0] = 1.0
        clf.head.out.weight.zero_()
        clf.head.out.weight[1, 0] = W
        clf.head.out.bias.copy_(torch.tensor([0.0, BIAS]))
    return clf.eval()


def context(clf, examples, **kw):
    return Context(classifier=clf, examples=examples, source=None, quiet=True, options={"resamples": 1000}, **kw)


def rows(table, **where):
    t = table[table["aggregate"].isna()] if "example" in where else table
    for k, v in where.items():
        t = t[t[k] == v]
    return t


def test_bin_size_rounding():
    assert [bin_size(k, 10) for k in (1, 5, 10, 20, 50)] == [1, 1, 1, 2, 5]
    assert bin_size(5, 20) == 1              # 0.05·20 is 1.0000000000000002 in floats; exact arithmetic gives 1
    assert bin_size(20, 7) == 2 and bin_size(50, 3) == 2 and bin_size(1, 250) == 3 and bin_size(2.5, 40) == 1
    assert bin_size(50, 1) == 1 and bin_size(100, 5) == 5 and bin_size(1, 0) == 0


def test_rank_by_hand():
    np.testing.assert_array_equal(rank([0.1, np.nan, 0.5, 0.1, -2.0]), [2, 0, 3, 4, 1])   # NaN last, ties in order


def test_eraser_plausibility_definitions_by_hand():
    """Each against ERASER's rationale_benchmark/metrics.py, worked out by hand."""
    r = [1, 0, 1, 0]
    # AUPRC (ERASER's _auprc): trapezoid under sklearn's PR curve. Scores rank 0(+) 1(−) 3(−) 2(+); the curve's
    # (recall, precision) points are (1, 1/2) (1/2, 1/3) (1/2, 1/2) (1/2, 1) (0, 1): ½·(1/2 + 1/3)/2 + ½·1 = 17/24,
    # where average precision is (1 + 2/4)/2 = 3/4
    assert em.auprc([0.9, 0.8, 0.1, 0.7], r) == pytest.approx(17 / 24)
    assert em.average_precision([0.9, 0.8, 0.1, 0.7], r) == pytest.approx(0.75)
    # all scores tied: AP is the base rate, the trapezoid from (1, 1/4) to (0, 1) is (1/4 + 1)/2
    assert em.average_precision([0, 0, 0, 0], [1, 0, 0, 0]) == pytest.approx(0.25)
    assert em.auprc([0, 0, 0, 0], [1, 0, 0, 0]) == pytest.approx(0.625)
    # NaN scores count as the lowest; single-class rationales: no AP (ERASER discards them), AUPRC still defined
    assert em.average_precision([np.nan, 0.5, 0.2], [1, 0, 1]) == pytest.approx((0.5 + 2 / 3) / 2)
    assert math.isnan(em.average_precision([0.3, 0.2], [1, 1])) and em.auprc([0.3, 0.2], [1, 1]) == 1.0
    assert math.isnan(em.auprc([0.3, 0.2], [0, 0]))
    # hard predictions: the top-|r| words; spans are maximal runs (end exclusive)
    np.testing.assert_array_equal(em.hard_prediction([2, 0, 1, 3], r), [True, False, True, False])
    assert em.spans([1, 1, 0, 0, 1, 0]) == [(0, 2), (4, 5)] and em.spans([0, 0]) == []
    p1, t1 = [1, 1, 0, 0, 1, 0], [1, 1, 1, 0, 0, 0]      # spans (0,2) and (4,5) vs (0,3): IOU 2/3 (hit) and 0
    p2, t2 = [0, 1, 1, 1], [1, 1, 0, 0]                  # (1,4) vs (0,2): IOU 1/4, a miss
    assert em.iou_counts(p1, t1) == (1, 2, 1) and em.iou_counts(p2, t2) == (0, 1, 1)
    assert em.iou_counts([0, 1, 1, 0], [1, 1, 1, 1]) == (1, 1, 1)            # IOU exactly 0.5 counts
    iou = np.array([em.iou_counts(p1, t1), em.iou_counts(p2, t2)], dtype=float)
    # micro: P = 1/3, R = 1/2 → F1 2/5; macro: mean P = (1/2 + 0)/2, mean R = (1 + 0)/2 → F1 of 1/4 and 1/2 = 1/3
    assert em.micro_f1(iou) == pytest.approx(0.4) and em.macro_iou_f1(iou) == pytest.approx(1 / 3)
    tok = np.array([em.token_counts(p1, t1), em.token_counts(p2, t2)], dtype=float)
    assert tok.tolist() == [[2, 3, 3], [1, 3, 2]]
    # token F1: macro = mean of (2/3, F1(1/3, 1/2) = 2/5); micro = F1(3/6, 3/5) = 6/11
    assert em.macro_token_f1(tok) == pytest.approx((2 / 3 + 0.4) / 2)
    assert em.micro_f1(tok) == pytest.approx(6 / 11)


def test_unit_keeps_order_segments_and_drops_cut_words():
    u = Unit(Example(words=["a", "b", "c"], words_b=["d", "e"]), ["a", "b", "c", "d"])   # "e" was cut off
    ex = u.keep([3, 0, 2])
    assert ex.words == ["a", "c"] and ex.words_b == ["d"]
    assert u.keep([]).words == [] and u.keep([]).words_b == []
    t = Unit(Example(words=None, text="x y z"), ["x", "y", "z"]).keep([2, 0])
    assert t.words == ["x", "z"] and t.words_b is None


def test_comprehensiveness_sufficiency_and_flips_by_hand(dog_model):
    examples = [Example(words=SENT), Example(words="the old teacher".split())]
    out = run(context(dog_model, examples, methods=["occlusion", "grad-input", "gradient"]))
    table = out.tables["eraser"]
    # occlusion and grad-input rank dog first (the others tie: word order); the gradient norm is the same for
    # every one-piece word of a mean head, so it keeps word order and meets dog at the 4th word
    orders = {"occlusion": [3, 0, 1, 2, 4, 5, 6, 7, 8, 9], "grad-input": [3, 0, 1, 2, 4, 5, 6, 7, 8, 9],
              "gradient": list(range(10))}
    full = p_pos(SENT)
    for m, order in orders.items():
        comps, suffs = [], []
        for k, c in zip((1, 5, 10, 20, 50), (1, 1, 1, 2, 5)):
            kept = [SENT[i] for i in sorted(order[c:])]
            top = [SENT[i] for i in sorted(order[:c])]
            comps.append(full - p_pos(kept))
            suffs.append(full - p_pos(top))
            got = rows(table, example=0, method=m, k=k)
            assert got["words"].tolist() == [c, c] and got["n_words"].tolist() == [10, 10]
            assert got.set_index("metric")["value"]["comprehensiveness"] == pytest.approx(comps[-1], abs=1e-6)
            assert got.set_index("metric")["value"]["sufficiency"] == pytest.approx(suffs[-1], abs=1e-6)
        aopc = rows(table, example=0, method=m).set_index("metric")["value"]
        assert aopc["aopc_comprehensiveness"] == pytest.approx(np.mean(comps), abs=1e-6)
        assert aopc["aopc_sufficiency"] == pytest.approx(np.mean(suffs), abs=1e-6)
    flips = rows(table, example=0, metric="flip_fraction").set_index("method")["value"]
    assert flips["occlusion"] == pytest.approx(0.1) and flips["gradient"] == pytest.approx(0.4)
    # no dog: predicted neg, and no deletion (not even of every word) changes the output
    assert np.allclose(rows(table, example=1, metric="comprehensiveness")["value"], 0.0, atol=1e-7)
    # ERASER counts the never-flip example as 1 (all its words removed); the flipped-only variant leaves it out
    assert (rows(table, example=1, metric="flip_fraction")["value"] == 1.0).all()
    assert rows(table, example=1, metric="flip_fraction_flipped")["value"].isna().all()
    assert out.counts["never_flip_occlusion"] == 1 and out.counts["never_flip_random"] == 1
    rank_rows = {r["method"]: r for r in out.ranking}
    assert set(rank_rows) == {"occlusion", "grad-input", "gradient", "random"}
    assert rank_rows["occlusion"]["flip_fraction"] == pytest.approx((0.1 + 1.0) / 2)
    assert rank_rows["occlusion"]["flip_fraction_flipped"] == pytest.approx(0.1)
    agg = lambda metric: table[(table["aggregate"].notna()) & (table["method"] == "gradient")
                               & (table["metric"] == metric) & table["k"].isna()]
    assert agg("flip_fraction")["value"].item() == pytest.approx(0.7) and agg("flip_fraction")["n"].item() == 2
    assert agg("flip_fraction_flipped")["value"].item() == pytest.approx(0.4)
    assert agg("flip_fraction_flipped")["n"].item() == 1
    row = agg("aopc_comprehensiveness").iloc[0]
    assert row["ci_low"] <= row["value"] <= row["ci_high"] and row["n"] == 2 and row["tier"] >= 1
    assert any(f["quantity"].startswith("decision-flip fraction (ERASER") for f in out.findings)
    # every finding with an interval holds its value inside it
    assert all(np.isnan(f["ci_low"]) or f["ci_low"] <= f["value"] <= f["ci_high"] for f in out.findings)
    fig = out.figures["eraser-curves"]()
    assert [ax.get_ylabel() for ax in fig.axes][:2] == ["comprehensiveness: Δ p(ŷ)", "sufficiency: Δ p(ŷ)"]


def test_flip_cap_counts_unreached_flips_as_never(dog_model):
    clf = dog_model
    units = [Unit(Example(words=SENT), SENT)]
    ev = Evaluator(clf, units, batch_size=8)
    pairs = [(0, "first", np.array([3, 0, 1, 2, 4, 5, 6, 7, 8, 9])), (0, "order", np.arange(10))]
    assert first_flips(ev, pairs, np.array([1])) == {0: 1, 1: 4}
    assert first_flips(ev, pairs, np.array([1]), max_words=2) == {0: 1, 1: None}


def test_plausibility_and_exclusions(dog_model):
    r = [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    examples = [Example(words=SENT, meta={"rationale": r}),
                Example(words=SENT, meta={"rationale": [0] * 10}),       # a normal post: empty rationale
                Example(words=SENT)]
    out = run(context(dog_model, examples, rationales=True, methods=["occlusion", "gradient"]))
    table = out.tables["eraser"]
    f1 = rows(table, example=0, metric="token_f1").set_index("method")["value"]
    ap = rows(table, example=0, metric="average_precision").set_index("method")["value"]
    pr = rows(table, example=0, metric="auprc").set_index("method")["value"]
    assert f1["occlusion"] == 1.0 and f1["gradient"] == 0.0           # top-1 = dog vs the first word
    assert ap["occlusion"] == pytest.approx(1.0) and ap["gradient"] == pytest.approx(0.1)   # all tie: base rate
    # ERASER's AUPRC of all-tied scores: the trapezoid from (recall 1, precision 0.1) to (0, 1)
    assert pr["occlusion"] == pytest.approx(1.0) and pr["gradient"] == pytest.approx(0.55)
    iou = rows(table, example=0, metric="iou_f1").set_index("method")["value"]
    assert iou["occlusion"] == 1.0 and iou["gradient"] == 0.0
    assert rows(table, example=1, metric="token_f1")["value"].isna().all()
    assert out.counts["empty_rationale"] == 1 and out.counts["no_rationale"] == 1
    ranking = {x["method"]: x for x in out.ranking}
    assert ranking["occlusion"]["token_f1"] == 1.0 and ranking["occlusion"]["token_f1_micro"] == 1.0
    assert ranking["gradient"]["auprc"] == pytest.approx(0.55) and "average_precision" in ranking["random"]
    assert ranking["occlusion"]["iou_f1_micro"] == 1.0 and ranking["occlusion"]["token_f1_n"] == 1
    assert any(f["quantity"].startswith("examples left out of plausibility") for f in out.findings)


def test_every_method_and_determinism(dog_model):
    examples = [Example(words=SENT), Example(words=None, text="the dog walked to the river")]
    a = run(context(dog_model, examples, seed=3))
    b = run(context(dog_model, examples, seed=3))
    from probekit.attribution import registry

    assert list(a.tables["eraser"]["method"].unique()) == registry.applicable(dog_model) + ["random"]
    pd.testing.assert_frame_equal(a.tables["eraser"], b.tables["eraser"])
    assert a.ranking == b.ranking
    c = run(context(dog_model, examples, seed=4, methods=["occlusion"]))
    occ = lambda o: o.tables["eraser"][o.tables["eraser"]["method"] == "occlusion"].reset_index(drop=True)
    pd.testing.assert_frame_equal(occ(a), occ(c))                     # the seed moves only the random ranking
    cols = ["task", "example", "method", "k", "model", "layer", "head", "metric", "value"]
    assert list(a.tables["eraser"].columns[:len(cols)]) == cols
    # removing nothing changes nothing: p(ŷ|x) of the text example equals the classifier's own
    assert dog_model.predict(examples[1:])["probability"].item() == pytest.approx(p_pos(
        "the dog walked to the river".split()))


def test_contextual_classifier_against_one_by_one_deletion(tiny_model_dirs):
    """A frozen tiny encoder with an attention head: every deletion re-encodes the kept words in context, so
    check the batched, cached sweep against deleting words one example at a time through ``predict``."""
    torch.manual_seed(1)
    clf = Classifier(load_encoder(str(tiny_model_dirs["bert"])), ["neg", "pos"], head="attention").eval()
    texts = ["The old teacher walked slowly to the village school.", "A young doctor helped the tired farmer."]
    examples = [Example(words=None, text=t) for t in texts]
    out = run(context(clf, examples, methods=["pooling", "occlusion"], batch_size=3))
    table = out.tables["eraser"]
    from probekit.attribution.attribute import attribute
    from probekit.attribution.occlusion import empty_input

    frame = attribute(clf, data=examples, methods=["pooling"], quiet=True).frame
    for e in range(2):
        g = frame[frame["example"] == e]
        words, order = g["word"].tolist(), rank(g["score"].to_numpy())
        p = lambda kept: clf.predict([Example(words=[words[i] for i in sorted(kept)])])
        y = g["prediction"].iloc[0]
        p0 = p(range(len(words)))[f"p_{y}"].item()
        assert p0 == pytest.approx(g["probability"].iloc[0], abs=1e-6)      # removing nothing changes nothing
        c = bin_size(20, len(words))
        got = rows(table, example=e, method="pooling", k=20).set_index("metric")["value"]
        assert got["comprehensiveness"] == pytest.approx(p0 - p(order[c:])[f"p_{y}"].item(), abs=1e-5)
        assert got["sufficiency"] == pytest.approx(p0 - p(order[:c])[f"p_{y}"].item(), abs=1e-5)
        with torch.no_grad():                              # every word deleted: [CLS] [SEP], as occlusion does
            empty = clf.labels[int(clf(**empty_input(clf)).argmax())]
        label = lambda s: p(order[s:])["label"].item() if s < len(words) else empty
        flip = next((s for s in range(1, len(words) + 1) if label(s) != y), None)
        want = np.nan if flip is None else flip / len(words)
        np.testing.assert_allclose(rows(table, example=e, method="pooling", metric="flip_fraction_flipped")["value"],
                                   want)
        np.testing.assert_allclose(rows(table, example=e, method="pooling", metric="flip_fraction")["value"],
                                   1.0 if flip is None else want)
    assert any(f["quantity"] == "AOPC comprehensiveness of the pooling attention" for f in out.findings)
