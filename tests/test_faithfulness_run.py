"""The faithfulness runner: one run folder for any subset of experiments, determinism, skips said, bad input."""
from __future__ import annotations

import importlib
import json
import random
from pathlib import Path

import pandas as pd
import pytest

import probekit as pk
from probekit.core.errors import UserError

POS = "good great wonderful lovely happy".split()
NEG = "bad awful terrible sad boring".split()
FILL = "the old teacher walked to the village school every morning".split()
QUICK = dict(resamples=1000, permutations=8, adversary_steps=15, candidates=2, random_draws=2, seeds=2,
             epochs=2, adversary_epochs=2, lambdas=(0.0, 1.0), ks=(10, 50))


def _rows(n: int, seed: int, rationale: bool = False):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        label = rng.choice(["pos", "neg"])
        words = rng.sample(FILL, rng.randint(3, 7))
        at = rng.randrange(len(words) + 1)
        words.insert(at, rng.choice(POS if label == "pos" else NEG))
        row = {"words": words, "label": label}
        if rationale:
            row["rationale"] = [int(i == at) for i in range(len(words))]
        out.append(row)
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_model_dirs):
    root = tmp_path_factory.mktemp("faith")
    files = {}
    for name, n, seed in (("train", 48, 1), ("dev", 16, 2), ("test", 12, 3)):
        p = root / f"{name}.jsonl"
        p.write_text("".join(json.dumps(r) + "\n" for r in _rows(n, seed, rationale=True)), encoding="utf-8")
        files[name] = p
    clf = root / "clf"
    pk.classify(train=str(files["train"]), dev=str(files["dev"]), model=str(tiny_model_dirs["bert"]),
                head="attention", epochs=3, quiet=True, cache_dir=str(root / "cache"),
                baselines=False).write(clf)
    return {"root": root, "clf": clf, "cache": str(root / "cache"), **files}


def _run(setup, out, **kw):
    opts = dict(limit=10, quiet=True, cache_dir=setup["cache"], methods=["pooling", "gradient"], **QUICK)
    opts.update(kw)
    res = pk.faithfulness(str(setup["clf"]), str(setup["test"]), **opts)
    return res, res.write(out)


def test_every_experiment_writes_its_tables_figures_and_a_summary(setup, tmp_path):
    res, out = _run(setup, tmp_path / "all", rationales=True)
    summary = (out / "summary.md").read_text(encoding="utf-8")
    for o in res.outcomes:
        assert f"## {o.name}:" in summary
        assert not o.skipped, (o.name, o.skipped)          # train/dev come from the classifier's own record
        for stem in o.tables:
            assert (out / f"{stem}.csv").is_file()
        for stem in o.figures:
            assert (out / f"{stem}.png").is_file()
    findings = pd.read_csv(out / "findings.csv")
    assert set(findings["experiment"]) == {o.name for o in res.outcomes if o.findings}
    ranking = pd.read_csv(out / "ranking.csv")
    assert {"pooling", "gradient"} <= set(ranking["method"])
    tiers = ranking["aopc_comprehensiveness_tier"].tolist()
    assert tiers == sorted(tiers) and tiers[0] == 1                    # sorted by tier, ties share one
    for _, g in ranking.groupby("aopc_comprehensiveness_tier"):
        assert list(g["aopc_comprehensiveness"]) == sorted(g["aopc_comprehensiveness"], reverse=True)
    assert (ranking["aopc_comprehensiveness_ci_low"] <= ranking["aopc_comprehensiveness"]).all()
    assert {"ci_low", "ci_high", "n"} <= set(findings.columns)
    assert findings["n"].notna().sum() >= len(findings) // 2          # most findings stand on a stated n
    rec = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert rec["counts"]["examples"] == 10 and rec["counts"]["train_examples"] == 48
    assert set(rec["seconds"]) == {"setup", *(o.name for o in res.outcomes)}


def test_same_seed_gives_identical_tables(setup, tmp_path):
    names = ["permutation", "adversary", "single-weight", "sets", "seeds"]
    _, a = _run(setup, tmp_path / "a", experiments=names, seed=3)
    _, b = _run(setup, tmp_path / "b", experiments=names, seed=3)
    csvs = sorted(p.name for p in a.glob("*.csv"))
    assert csvs and csvs == sorted(p.name for p in b.glob("*.csv"))
    for name in csvs:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_retraining_without_train_data_is_skipped_and_said(setup, tmp_path, tiny_model_dirs):
    clf = pk.load_classifier(setup["clf"])                  # a loaded classifier has no run record to read
    res = pk.faithfulness(clf, str(setup["test"]), experiments=["uniform", "permutation"], limit=6, quiet=True,
                          cache_dir=setup["cache"], **QUICK)
    assert res["uniform"].skipped and not res["permutation"].skipped
    assert "Not run:" in res.summary()


def test_bad_input_is_one_line_and_exit_2(setup, tmp_path, capsys):
    main = importlib.import_module("probekit.faithfulness").main
    cases = [
        (["--limit", "0"], "--limit must be at least 1"),
        (["--experiments", "nope"], "nope"),
        (["--ks", "150"], "--ks"),
        (["--rationales", "--data", "__plain__"], "no 'rationale'"),
    ]
    plain = tmp_path / "plain.jsonl"
    plain.write_text(json.dumps({"text": "good film", "label": "pos"}) + "\n", encoding="utf-8")
    for extra, message in cases:
        data = [str(plain) if a == "__plain__" else a for a in extra]
        argv = ["--classifier", str(setup["clf"]), "--data", str(setup["test"]), "--out", str(tmp_path / "x"),
                "--quiet", *data]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[-1], err
        assert not (tmp_path / "x").exists()


def test_a_head_without_attention_weights_points_to_cls_attention(setup, tmp_path, tiny_model_dirs):
    clf = tmp_path / "mean"
    pk.classify(train=str(setup["train"]), dev=str(setup["dev"]), model=str(tiny_model_dirs["bert"]), head="mean",
                epochs=1, quiet=True, cache_dir=setup["cache"], baselines=False).write(clf)
    with pytest.raises(UserError, match="--attention cls"):
        pk.faithfulness(str(clf), str(setup["test"]), experiments=["permutation"], quiet=True,
                        cache_dir=setup["cache"])
