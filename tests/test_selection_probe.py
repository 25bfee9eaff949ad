"""Selection probes learn what is there, and K side-by-side probes equal K separate ones."""
import numpy as np
import torch

from probekit.probing.selection import SelectionProbe, Sentences


def synthetic(n=200, U=8, D=6, seed=0):
    """Sentences whose target unit carries a marker in feature 0; unit 0 is a special token."""
    g = np.random.default_rng(seed)
    lengths = g.integers(4, U + 1, n)
    flat, index = [], torch.full((n, U), -1)
    cand = torch.zeros((n, U), dtype=torch.bool)
    targets = np.zeros((n, 2), dtype=int)
    pos = 0
    for i, L in enumerate(lengths):
        x = g.normal(size=(L, D)).astype(np.float32)
        t = g.integers(1, L)
        x[t, 0] += 4.0
        x[0, 0] += 8.0                      # the special token looks like a target but may not be picked
        flat.append(x)
        index[i, :L] = torch.arange(pos, pos + L)
        cand[i, 1:L] = True
        targets[i] = [t, 1 if t != 1 else 2]
        pos += L
    return Sentences(torch.from_numpy(np.concatenate(flat)), index, cand), targets


def test_linear_and_mlp_probes_find_the_marked_word():
    data, y = synthetic()
    for kind in ("linear", "mlp"):
        probe = SelectionProbe(kind=kind, epochs=15, lr=1e-2, hidden=16).fit(data, y[:, :1])
        acc = probe.accuracies(data, y[:, :1])
        assert acc[0] > 0.95
        assert (probe.predict(data) != 0).all()      # never the special token


def test_side_by_side_probes_equal_separate_training():
    data, y = synthetic(n=80)
    both = SelectionProbe(kind="mlp", epochs=3, hidden=8, seed=1).fit(data, y)
    first = SelectionProbe(kind="mlp", epochs=3, hidden=8, seed=1).fit(data, y[:, :1])
    for p_both, p_one in zip(both.params_, first.params_):
        torch.testing.assert_close(p_both[:1], p_one[:1], atol=1e-5, rtol=1e-4)


def test_missing_targets_are_ignored():
    data, y = synthetic(n=60)
    y = y.copy()
    y[:30, 1] = -1
    probe = SelectionProbe(epochs=2).fit(data, y)
    acc = probe.accuracies(data, y)
    assert np.isfinite(acc).all()
    y[:, 1] = -1
    assert np.isnan(SelectionProbe(epochs=1).fit(data, y).accuracies(data, y)[1])
