"""Heads trained stacked (``classify.stacked``) equal the same heads trained one after another with the same
seeds: weights, learning curves (so the kept epoch), the seeds and e2e-adversary tables."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from probekit.classifiers.features import Features
from probekit.classifiers.pooling import AttentionHead
from probekit.classifiers.stacked import StackedAttention, fit_heads
from probekit.classifiers.classify import fit_head
from probekit.evaluation.wiegreffe_pinter import adversary as wp_adversary, common as wp_common, retrain as wp_retrain
from probekit.evaluation.wiegreffe_pinter.common import build, data

from test_faithfulness_wp import ctx_of, setup  # noqa: F401  (the module fixture)

OPTS = dict(epochs=5, lr=3e-3, batch_size=8, weight_decay=0.01, warmup=0.1)


def _features(n, dim=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 9, (n,), generator=g)
    per, rows = [], 0
    for L in lengths.tolist():
        per.append(np.arange(rows, rows + L))
        rows += L
    return Features.from_lists(torch.randn(rows, dim, generator=g), per, [-1] * n)


def _close(a, b):
    return torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def test_stacked_forward_is_each_heads_forward():
    feats = _features(20)
    heads = [build(lambda: AttentionHead(6, 3, attention_dim=4), s) for s in (0, 1, 2)]
    stack = StackedAttention(heads)
    idx = torch.stack([torch.randperm(20, generator=torch.Generator().manual_seed(s))[:7] for s in range(3)])
    logits, alpha = stack(feats, idx)
    for m, head in enumerate(heads):
        lg, a, _ = head.eval()(*feats.batch(idx[m]))
        assert _close(logits[m], lg)
        assert _close(alpha[m, :, :a.shape[1]], a)
        assert torch.all(alpha[m, :, a.shape[1]:] == 0)            # the wider batch's extra columns: α = 0
        assert torch.allclose(alpha[m].sum(1), torch.ones(7))
    # evaluation: every member on the same examples, their vectors read once (the shared path)
    logits, alpha = stack.outputs(feats, batch_size=8)
    for m, head in enumerate(heads):
        a, p = wp_common.head_outputs(head, feats)
        assert _close(torch.softmax(logits[m].double(), -1), p) and _close(alpha[m].double(), a)


def test_fit_heads_equals_fit_head_one_at_a_time():
    train, dev = _features(40, seed=1), _features(16, seed=2)
    y_train, y_dev = np.arange(40) % 3, np.arange(16) % 3
    seeds = [3, 11, 12]
    make = lambda: AttentionHead(6, 3, dropout=0.3, attention_dim=4)  # noqa: E731
    alone = [build(make, s) for s in seeds]
    curves = []
    for head, s in zip(alone, seeds):
        with torch.random.fork_rng(devices=[]):
            curves.append(fit_head(head, train, y_train, dev, y_dev, seed=s, **OPTS))
    together = [build(make, s) for s in seeds]
    stacked = fit_heads(together, train, y_train, dev, y_dev, seeds=seeds, **OPTS)
    for a, b, ca, cb in zip(alone, together, curves, stacked):
        for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
            assert _close(va, vb), k
        pd.testing.assert_frame_equal(ca, cb, rtol=1e-5)
    # the members really differ (their own seeds), so equality above is per member
    assert not torch.allclose(together[0].W.weight, together[1].W.weight)


@pytest.fixture
def one_at_a_time(monkeypatch):
    def run(fn, ctx):
        monkeypatch.setattr(wp_common, "STACK", False)
        try:
            return fn(ctx)
        finally:
            monkeypatch.setattr(wp_common, "STACK", True)
    return run


@pytest.mark.parametrize("experiment, options", [
    (wp_retrain.run_seeds, {"seeds": 3}),
    (wp_adversary.run, {"lambdas": (0.0, 0.01, 1.0), "patience": 1, "adversary_epochs": 12})])
def test_experiment_tables_equal_one_at_a_time(setup, one_at_a_time, experiment, options,  # noqa: F811
                                               monkeypatch):
    monkeypatch.setattr(wp_common, "STACK_ADVERSARY", True)     # the λ grid's stacked path (off by default)
    stacked_ctx, alone_ctx = ctx_of(setup, **options), ctx_of(setup, **options)
    data(alone_ctx)
    data(stacked_ctx)
    a = one_at_a_time(experiment, alone_ctx)
    b = experiment(stacked_ctx)
    name = next(iter(a.tables))
    ta, tb = a.tables[name], b.tables[name]
    pd.testing.assert_frame_equal(ta.drop(columns="value"), tb.drop(columns="value"))
    np.testing.assert_allclose(ta["value"].to_numpy(float), tb["value"].to_numpy(float), rtol=1e-4, atol=1e-6)
    if name == "e2e-adversary":          # members stopped early, at different epochs: each stop is its own
        epochs = ta.loc[ta["metric"] == "epochs", "value"]
        assert epochs.min() < 12 and epochs.nunique() > 1
