"""95 % intervals of the probe sweep: ci columns of every accuracy row, and the paired best-vs-runner-up sentence."""
import numpy as np
import pandas as pd

import probekit as pk
from probekit.core.intervals import over_examples, paired_difference
from probekit.probing.sweep import correctness
from probekit.report.probe_ci import layer_sentences


def test_correctness_marks_hits_misses_and_missing_targets():
    pred = np.array([[2, 0], [1, 1], [3, 4]])
    targets = np.array([[2, -1], [0, 1], [3, 2]])
    c = correctness(pred, targets)
    assert np.array_equal(c[:, 0], [1, 0, 1])
    assert np.isnan(c[0, 1]) and np.array_equal(c[1:, 1], [1, 0])


def test_interval_contains_its_estimate_and_shrinks_with_more_sentences():
    rng = np.random.default_rng(0)
    few = (rng.random(40) < 0.7).astype(np.float32)
    many = np.tile(few, 10)                         # same accuracy, ten times the sentences
    a, b = over_examples(few, vectorized=True), over_examples(many, vectorized=True)
    assert a.ci_low <= a.estimate <= a.ci_high and b.ci_low <= b.estimate <= b.ci_high
    assert np.isclose(a.estimate, b.estimate)
    assert (b.ci_high - b.ci_low) < 0.5 * (a.ci_high - a.ci_low)
    assert a == over_examples(few)                  # batched resamples give the same interval as one by one


def frame(values: dict) -> pd.DataFrame:
    return pd.DataFrame([{"layer": l, "probe": "linear", "split": "dev", "seed": 0, "metric": "accuracy",
                          "value": v} for l, v in values.items()])


def test_identical_layers_have_no_detectable_difference():
    rng = np.random.default_rng(1)
    same = (rng.random((80, 1)) < 0.6).astype(np.float32)
    kept = {(0, "linear", "dev", 0): (rng.random((80, 1)) < 0.2).astype(np.float32),
            (1, "linear", "dev", 0): same, (2, "linear", "dev", 0): same.copy()}
    acc = float(same.mean())
    text = layer_sentences(frame({0: 0.2, 1: acc, 2: acc}), kept)
    assert "no detectable difference" in text and "n = 80" in text


def test_a_clearly_better_layer_is_named_first():
    rng = np.random.default_rng(2)
    good = (rng.random((200, 1)) < 0.9).astype(np.float32)
    bad = np.where(rng.random((200, 1)) < 0.5, 0, good).astype(np.float32)   # misses half of good's hits
    kept = {(1, "linear", "dev", 0): bad, (2, "linear", "dev", 0): good}
    text = layer_sentences(frame({1: float(bad.mean()), 2: float(good.mean())}), kept)
    assert "is higher for layer 2 than for layer 1" in text and "no detectable" not in text


def test_probe_rows_carry_intervals_and_results_md_compares_layers(tiny_model_dirs, tmp_path):
    r = pk.probe("auxiliary", model=str(tiny_model_dirs["bert"]), split_sizes="40,12,12", epochs=1,
                 control=True, probes=["linear"], quiet=True, no_cache=True)
    df = r.frame
    rows = df[df["metric"].isin(["accuracy", "control_accuracy", "selectivity"])]
    assert rows[["ci_low", "ci_high"]].notna().all().all()
    assert ((rows["ci_low"] <= rows["value"] + 1e-9) & (rows["value"] <= rows["ci_high"] + 1e-9)).all()
    # selectivity's interval is paired over the same sentences as accuracy and control accuracy
    row = rows[(rows["metric"] == "selectivity") & (rows["split"] == "dev") & (rows["layer"] == 1)].iloc[0]
    c = r.correctness[(1, "linear", "dev", 0)]
    d = paired_difference(c[:, 0], c[:, 1], seed=0)
    assert np.isclose(row["ci_low"], d.ci_low) and np.isclose(row["ci_high"], d.ci_high)
    assert row["n_sentences"] == d.n
    run = r.write(tmp_path / "run")
    md = (run / "results.md").read_text()
    assert md.count("best layer") == df["split"].nunique() and "95% CI" in md
    saved = pd.read_csv(run / "results.csv")
    assert {"ci_low", "ci_high"} <= set(saved.columns)


def test_seed_tables_give_a_student_t_interval_over_seeds():
    from scipy.stats import t

    from probekit.report.probe_rigor import seed_summary

    df = pd.DataFrame([{"probe": "linear", "split": "dev", "layer": 0, "seed": s, "metric": "accuracy",
                        "value": v} for s, v in ((0, 0.8), (1, 0.9), (2, 0.85))])
    half = t.ppf(0.975, 2) * 0.05 / np.sqrt(3)
    assert seed_summary(df, "accuracy")["layer 0"].iloc[0] == f"0.850 ± 0.050 [{0.85 - half:.3f}, {0.85 + half:.3f}]"


def test_probe_pairs_are_paired_over_the_same_sentences():
    from probekit.probing.sweep import probe_differences

    rng = np.random.default_rng(3)
    good = (rng.random((150, 1)) < 0.9).astype(np.float32)
    bad = np.where(rng.random((150, 1)) < 0.5, 0, good).astype(np.float32)
    kept = {(1, "linear", "dev", 0): good, (1, "mlp", "dev", 0): bad,
            (2, "linear", "dev", 0): good, (2, "mlp", "dev", 0): good.copy()}
    rows = pd.DataFrame(probe_differences(kept, ["dev"], [{}]))
    assert list(rows["probe"].unique()) == ["linear vs mlp"] and len(rows) == 2
    one = rows[rows["layer"] == 1].iloc[0]
    d = paired_difference(good[:, 0], bad[:, 0], seed=0)
    assert np.isclose(one["value"], good.mean() - bad.mean()) and one["ci_low"] > 0
    assert np.isclose(one["ci_low"], d.ci_low) and one["n_sentences"] == 150
    two = rows[rows["layer"] == 2].iloc[0]
    assert two["value"] == 0 and two["ci_low"] <= 0 <= two["ci_high"]
    from probekit.report.probe_ci import probe_sentences

    acc = pd.DataFrame([{"layer": l, "probe": p, "split": "dev", "seed": 0, "metric": "accuracy",
                         "value": float(kept[(l, p, "dev", 0)].mean())} for l, p, _, _ in kept])
    text = probe_sentences(pd.concat([acc, rows.assign(seed=0)]))
    assert "layer 2: no detectable difference in accuracy between linear and mlp" in text   # the best layer
    assert "linear higher on 1, mlp higher on 0, no detectable difference on 1" in text
    # two seeds: each sentence's accuracy averaged over them, then paired (not the first seed's rows)
    worse = np.where(rng.random((150, 1)) < 0.5, 0, bad).astype(np.float32)
    kept2 = {**kept, **{(l, p, "dev", 1): (worse if (l, p) == (2, "mlp") else c)
                        for (l, p, _, _), c in kept.items()}}
    rows2 = pd.DataFrame(probe_differences(kept2, ["dev"], [{}]))
    acc2 = pd.DataFrame([{"layer": l, "probe": p, "split": "dev", "seed": s_, "metric": "accuracy",
                          "value": float(c.mean())} for (l, p, _, s_), c in kept2.items()])
    text2 = probe_sentences(pd.concat([acc2, rows2]), (), kept2)
    d2 = paired_difference(good[:, 0], (good[:, 0] + worse[:, 0]) / 2, seed=0, vectorized=True)
    assert d2.ci_low > 0                        # at layer 2, mlp's second seed is worse: detected on the average
    assert "averaged over 2 seeds" in text2 and "linear higher on 2, mlp higher on 0" in text2


def test_probe_run_writes_linear_against_mlp(tiny_model_dirs, tmp_path):
    r = pk.probe("auxiliary", model=str(tiny_model_dirs["bert"]), split_sizes="40,12,12", epochs=1,
                 probes=["linear", "mlp"], quiet=True, no_cache=True)
    diff = r.frame[r.frame["metric"] == "accuracy_difference"]
    assert set(diff["probe"]) == {"linear vs mlp", "linear-nopos vs mlp-nopos"}
    acc = r.frame[r.frame["metric"] == "accuracy"].set_index(["layer", "probe", "split"])["value"]
    for _, row in diff[diff["probe"] == "linear vs mlp"].iterrows():
        expect = acc[(row["layer"], "linear", row["split"])] - acc[(row["layer"], "mlp", row["split"])]
        assert np.isclose(row["value"], expect, atol=1e-6)
        assert row["ci_low"] <= row["value"] + 1e-9 <= row["ci_high"] + 2e-9
    md = (r.write(tmp_path / "run") / "results.md").read_text()
    assert "Probe against probe" in md and md.count("over ") >= r.frame["split"].nunique()
