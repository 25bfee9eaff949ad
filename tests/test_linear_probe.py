"""The linear probe (L-BFGS, L2 chosen on the training split): as accurate as scikit-learn's logistic
regression, its L2 choice reads no dev data, and K side-by-side keys equal K separate fits."""
import numpy as np
import pytest
import torch

from probekit.probing.linear import L2_GRID, LinearProbe
from probekit.probing.logreg import LogRegProbe
from probekit.probing.selection import SelectionProbe, Sentences
from probekit.probing.sweep import make_probe


def noisy(n, seed, U=9, D=12, signal=1.2):
    """Sentences whose target (key 0) carries a weak marker on feature 0, key 1 a marker on features 1-2;
    unit 0 is a special token that looks like a target but may never be picked."""
    g = np.random.default_rng(seed)
    flat, index = [], torch.full((n, U), -1)
    cand = torch.zeros((n, U), dtype=torch.bool)
    targets = np.zeros((n, 2), dtype=np.int64)
    pos = 0
    for i in range(n):
        L = int(g.integers(4, U + 1))
        x = g.normal(size=(L, D)).astype(np.float32)
        t0, t1 = int(g.integers(1, L)), int(g.integers(1, L))
        x[t0, 0] += signal
        x[t1, 1:3] += signal
        x[0, :3] += 10.0
        flat.append(x)
        index[i, :L] = torch.arange(pos, pos + L)
        cand[i, 1:L] = True
        targets[i] = [t0, t1]
        pos += L
    return Sentences(torch.from_numpy(np.concatenate(flat)), index, cand), targets


def test_separable_toy_problem_reaches_logistic_regression():
    train, y = noisy(300, 0, signal=6.0)
    dev, ydev = noisy(200, 1, signal=6.0)
    lr = LogRegProbe().fit(train, y).accuracies(dev, ydev)
    lin = LinearProbe().fit(train, y).accuracies(dev, ydev)
    assert (lr == 1.0).all() and (lin == 1.0).all()


def test_noisy_problem_at_least_logistic_regression_and_above_the_adam_probe():
    """A hard problem (accuracy far from 1): the converged probe matches LR, the under-trained one does not."""
    train, y = noisy(600, 0)
    dev, ydev = noisy(1000, 1)
    lr = LogRegProbe().fit(train, y).accuracies(dev, ydev)
    lin_probe = LinearProbe().fit(train, y)
    lin = lin_probe.accuracies(dev, ydev)
    adam = SelectionProbe("linear", epochs=1, lr=1e-3).fit(train, y, dev=(dev, ydev)).accuracies(dev, ydev)
    assert 0.4 < lr.mean() < 0.9                   # not trivial: the comparison can go either way
    assert (lin >= lr - 0.01).all()
    assert lin.mean() > adam.mean() + 0.05
    assert set(lin_probe.l2_) <= set(L2_GRID)
    logp = lin_probe.predict_log_proba(dev)
    assert np.allclose(np.exp(logp).sum(1), 1.0)
    assert (lin_probe.predict(dev) != 0).all()    # never the special token


def test_l2_choice_reads_no_dev_data():
    """Poisoned dev labels (and a dev split of other sentences) change neither the λ chosen nor the weights."""
    train, y = noisy(300, 0)
    dev, ydev = noisy(100, 1)
    poisoned = np.random.default_rng(5).integers(1, 4, ydev.shape)
    a = LinearProbe(seed=2).fit(train, y, dev=(dev, ydev))
    b = LinearProbe(seed=2).fit(train, y, dev=(dev, poisoned))
    c = LinearProbe(seed=2).fit(train, y, dev=None)
    assert (a.l2_ == b.l2_).all() and (a.l2_ == c.l2_).all()
    assert torch.equal(a.theta_, b.theta_) and torch.equal(a.theta_, c.theta_)
    # ... while the training data does drive it: the held-out accuracies differ per λ and the best one wins
    acc = a.holdout_accuracy_
    grid = sorted(L2_GRID, reverse=True)
    for k in range(2):
        assert acc[grid.index(a.l2_[k]), k] == acc[:, k].max()


def test_selection_follows_the_training_data():
    """Few noisy sentences in many dimensions favour a strong λ; many clean ones in few dimensions a weak λ."""
    grid = (1.0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5)
    strong = LinearProbe(grid=grid).fit(*noisy(120, 3, D=60, signal=0.8)).l2_
    weak = LinearProbe(grid=grid).fit(*noisy(1000, 4, D=3, signal=4.0)).l2_
    assert strong.min() > 100 * weak.max()


def test_side_by_side_keys_equal_separate_fits_and_missing_targets():
    train, y = noisy(300, 0)
    dev, ydev = noisy(300, 1)
    both = LinearProbe(seed=1).fit(train, y)
    one = LinearProbe(seed=1).fit(train, y[:, :1])
    assert both.l2_[0] == one.l2_[0]
    assert (both.predict(dev)[:, 0] == one.predict(dev)[:, 0]).mean() > 0.99
    y2 = y.copy()
    y2[:, 1] = -1
    acc = LinearProbe().fit(train, y2).accuracies(dev, y2)
    assert np.isfinite(acc[0]) and np.isnan(acc[1])


def test_the_sweep_trains_this_probe_for_linear():
    assert isinstance(make_probe("linear", epochs=3, lr=0.1), LinearProbe)
    assert isinstance(make_probe("mlp"), SelectionProbe)


def test_per_key_l2_and_mdl_blocks_reuse_the_chosen_l2(monkeypatch):
    import probekit.probing.mdl as mdl
    from probekit.probing.sweep import _mdl_rows

    train, y = noisy(300, 0)
    main = LinearProbe().fit(train, y)
    assert main.holdout_accuracy_ is not None
    # a per-key λ is that key's fixed-λ fit
    again = main.with_chosen().fit(train, y)
    assert again.holdout_accuracy_ is None and np.array_equal(again.l2_, main.l2_)
    for k in range(2):
        alone = LinearProbe(l2=float(main.l2_[k])).fit(train, y[:, [k]])
        torch.testing.assert_close(again.theta_[k], alone.theta_[0], rtol=1e-2, atol=1e-3)
    # every MDL block trains with the λ the main probe chose, never selecting again
    used = []
    real = mdl.target_bits

    def spy(probe, data, targets):
        used.append((probe.l2_.copy(), probe.holdout_accuracy_))
        return real(probe, data, targets)

    monkeypatch.setattr(mdl, "target_bits", spy)

    class Data:
        keys = [{"n": 1}, {"n": 2}]

    rows = _mdl_rows("linear", train, y, None, Data, 2, {"layer": 0, "probe": "linear", "seed": 0}, "train",
                     dict(hidden=8, epochs=1, lr=1e-3, seed=0), fitted=main)
    assert len(used) == len(mdl.block_boundaries(300)) - 1
    # kbits are 1024 bits, as Voita & Titov's notebook counts them
    bits = mdl.uniform_bits(train)
    for k in range(2):
        uniform = [r["value"] for r in rows if r["metric"] == "uniform_codelength_kbits" and r["n"] == k + 1][0]
        assert uniform == pytest.approx(bits[y[:, k] >= 0].sum() / 1024)
    assert all(np.array_equal(l2, main.l2_) and acc is None for l2, acc in used)
