"""The schedule of ERASER's and occlusion's deletion variants (each distinct input run once, passes grouped by
token count without padding) and of its intervals (vectorized bootstrap statistics) gives the numbers of the
plain way: one variant at a time, one resample at a time."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from probekit.attribution import occlusion
from probekit.classifiers.model import Classifier
from probekit.core.encoder import load_encoder
from probekit.core.examples import Example
from probekit.evaluation.base import Context
from probekit.evaluation.eraser import experiment
from probekit.evaluation.eraser import metrics as em
from probekit.evaluation.eraser.report import indexed

TEXTS = ["The old teacher walked slowly to the village school.", "A young doctor helped the tired farmer.",
         "Rain."]


@pytest.fixture(scope="module")
def clf(tiny_model_dirs):
    torch.manual_seed(1)
    return Classifier(load_encoder(str(tiny_model_dirs["bert"])), ["neg", "pos"], head="attention").eval()


def one_at_a_time(classifier, examples, batch_size, **_):
    """The reference: every variant encoded and run alone (no batch, no padding, no memo)."""
    out = np.zeros((len(examples), classifier.n_classes))
    with torch.no_grad():
        for j, ex in enumerate(examples):
            words = (ex.words or []) + (ex.words_b or [])
            batch = classifier.encode([ex], warn=False) if words else occlusion.empty_input(classifier)
            out[j] = torch.softmax(classifier(**occlusion.model_inputs(batch)).float(), -1).numpy()[0]
    return out


class Passes:
    """Counts the rows and padding of every forward pass of a classifier."""

    def __init__(self, classifier):
        self.rows, self.padded = 0, 0
        self.handle = classifier.register_forward_pre_hook(self, with_kwargs=True)

    def __call__(self, module, args, kwargs):
        mask = kwargs["attention_mask"]
        self.rows += mask.shape[0]
        self.padded += int((mask == 0).sum())


def leave_one_out(words):
    return [Example(words=[w for j, w in enumerate(words) if j != i]) for i in range(len(words))]


def test_each_distinct_variant_runs_once_unpadded_with_one_at_a_time_numbers(clf, monkeypatch):
    a, b = TEXTS[0].split(), TEXTS[1].split()
    variants = leave_one_out(a) + leave_one_out(b) + leave_one_out(a)[:3] + [Example(words=a)] * 4
    distinct = len(a) + len(b) + 1
    passes = Passes(clf)
    try:
        with occlusion.shared_variants():
            got = occlusion.class_distributions(clf, variants, 2, share=True)
            assert passes.rows == distinct and passes.padded == 0
            again = occlusion.class_distributions(clf, leave_one_out(b) + [Example(words=b)], 2)
            assert passes.rows == distinct + 1                      # only the full b was new
            occlusion.class_distributions(clf, [Example(words=b)], 2)
            assert passes.rows == distinct + 2                      # a call without share= reads, never writes
        occlusion.class_distributions(clf, leave_one_out(b), 2)
        assert passes.rows == distinct + 2 + len(b)                 # outside the block nothing is shared
        monkeypatch.setattr(occlusion, "WINDOW_ROWS", 3)            # windows of 3: the same numbers, one run each
        windowed = occlusion.class_distributions(clf, variants, 2)
        assert passes.rows == distinct + 2 + len(b) + distinct
    finally:
        passes.handle.remove()
    np.testing.assert_allclose(got, one_at_a_time(clf, variants, 2), atol=1e-6, rtol=0)
    np.testing.assert_allclose(windowed, got, atol=1e-6, rtol=0)
    np.testing.assert_allclose(again, one_at_a_time(clf, leave_one_out(b) + [Example(words=b)], 2), atol=1e-6,
                               rtol=0)
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-6)


def context(classifier, **kw):
    examples = [Example(words=None, text=t) for t in TEXTS]
    return Context(classifier=classifier, examples=examples, source=None, options={"resamples": 1000}, **kw)


def test_eraser_equals_the_one_variant_at_a_time_run(clf, monkeypatch):
    methods = ["pooling", "gradient", "occlusion"]
    fast = experiment.run(context(clf, methods=methods, quiet=True, batch_size=2))
    monkeypatch.setattr(occlusion, "class_distributions", one_at_a_time)
    monkeypatch.setattr(experiment, "class_distributions", one_at_a_time)
    slow = experiment.run(context(clf, methods=methods, quiet=True, batch_size=2))
    a, b = fast.tables["eraser"], slow.tables["eraser"]
    pd.testing.assert_frame_equal(a.drop(columns=["value", "ci_low", "ci_high"]),
                                  b.drop(columns=["value", "ci_low", "ci_high"]))
    per = a["aggregate"].isna()                 # per example (× k) rows: comprehensiveness, sufficiency, AOPCs
    assert set(a[per]["metric"]) >= {"comprehensiveness", "sufficiency", "aopc_comprehensiveness",
                                     "aopc_sufficiency", "flip_fraction"}
    np.testing.assert_allclose(a["value"].to_numpy(float), b["value"].to_numpy(float), atol=1e-5, rtol=0)
    flips = a["metric"].str.startswith("flip")
    np.testing.assert_array_equal(a[flips]["value"].to_numpy(float), b[flips]["value"].to_numpy(float))
    assert fast.counts["distinct_inputs"] == slow.counts["distinct_inputs"]


def test_quiet_silences_erasers_bars(clf, capsys):
    experiment.run(context(clf, methods=["pooling"], quiet=False, batch_size=1))
    assert "eraser flips" in capsys.readouterr().err
    experiment.run(context(clf, methods=["pooling"], quiet=True, batch_size=1))
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("aggregate", [em._mean, em.micro_f1, em.macro_token_f1, em.macro_iou_f1])
def test_aggregates_of_many_resamples_at_once_equal_one_at_a_time(aggregate):
    rng = np.random.default_rng(0)
    true, pred = rng.integers(0, 4, 30), rng.integers(0, 4, 30)
    parts = {m: np.stack([np.minimum(rng.integers(0, 4, 30), np.minimum(true, pred)), pred, true], 1).astype(float)
             for m in ("a", "b")}
    parts["a"][[2, 5]] = 0.0                     # rows with nothing predicted / no rationale span
    metric = em.Metric("m", True, parts, aggregate)
    scores, statistic = indexed(metric, ["a", "b"])
    idx = rng.choice(scores["b"], size=(50, 30))
    batched = statistic(idx, axis=-1)
    assert batched.shape == (50,)
    np.testing.assert_allclose(batched, [statistic(i) for i in idx], rtol=1e-12)
    stacked = np.concatenate([parts["a"], parts["b"]])
    np.testing.assert_allclose(statistic(idx[0]), aggregate(stacked[idx[0].astype(int)]), rtol=1e-12)
    assert np.isfinite(batched).all()
