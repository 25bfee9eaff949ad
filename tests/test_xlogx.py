"""The compiled Σ w·s ln s kernel behind the head distances, against numpy in float64."""
import numpy as np

from probekit.heads import xlogx


def test_log_is_accurate_over_the_float32_range():
    rng = np.random.default_rng(0)
    x = np.concatenate([10.0 ** rng.uniform(-37, 38, 200_000), rng.uniform(1e-6, 2.0, 200_000),
                        [1.0, 2.0, 0.5, np.sqrt(0.5), np.sqrt(2.0), 1e-3 / 512]]).astype(np.float32)
    out = np.empty_like(x)
    xlogx.log(x, out)
    exact = np.log(x.astype(np.float64))
    assert out[-6] == 0.0
    # a few float32 ulps of the result, or of ln 2 · exponent where the result is near 0
    assert np.all(np.abs(out - exact) <= 4e-7 * np.maximum(np.abs(exact), 1.0))


def test_pair_and_head_sums_match_float64_over_several_blocks():
    rng = np.random.default_rng(1)
    K, E = 7, 3 * xlogx.BLOCK + 123
    X = rng.dirichlet(np.ones(40), size=(K, E // 40 + 1)).reshape(K, -1)[:, :E].astype(np.float32) + 1e-5
    w = rng.uniform(0.01, 0.2, E).astype(np.float32)
    Xd, wd = X.astype(np.float64), w.astype(np.float64)
    out = np.full((K, K), 5.0)
    xlogx.pair_sums(X, w, np.array([0, 2, 5]), out)                # only these rows a, every b > a
    for a in range(K):
        for b in range(K):
            s = Xd[a] + Xd[b]
            expected = 5.0 + (wd * s * np.log(s)).sum() if a in (0, 2, 5) and b > a else 5.0
            assert abs(out[a, b] - expected) <= 1e-6 * abs(expected), (a, b)
    xl, mass = np.ones(K), np.zeros(K)
    xlogx.head_sums(X, w, xl, mass)
    assert np.allclose(xl, 1.0 + (wd * Xd * np.log(Xd)).sum(1), rtol=1e-6)
    assert np.allclose(mass, (wd * Xd).sum(1), rtol=1e-6)


def test_row_entropy_and_max_match_float64():
    rng = np.random.default_rng(2)
    for n in (1, 5, 77, 300):
        A = rng.dirichlet(np.full(n, 0.3), size=40).astype(np.float32)
        A[0] = 0.0
        A[0, n - 1] = 1.0                                            # one-hot: entropy of the smoothing alone
        entropy, largest = np.empty(40), np.empty(40)
        xlogx.row_entropy_and_max(A, 1e-4, entropy, largest)
        smooth = (1 - 1e-4) * A.astype(np.float64) + 1e-4 / n
        assert np.allclose(entropy, -(smooth * np.log(smooth)).sum(1), rtol=1e-6, atol=1e-8)
        assert np.array_equal(largest, A.max(1))
