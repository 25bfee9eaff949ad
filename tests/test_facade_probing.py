"""pk.probe / pk.data / pk.extract / pk.confusion: each ``.frame`` is the table its command writes for the same
options (tiny model, small sizes), the written run is the command's, and bad values are the command's errors."""
from __future__ import annotations

import importlib
import io
import json

import numpy as np
import pandas as pd
import pytest

import probekit as pk
from probekit.core.errors import UserError


def as_written(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame through CSV, as the command's file reads back."""
    return pd.read_csv(io.StringIO(frame.to_csv(index=False)))


def cli(command: str):
    return importlib.import_module(f"probekit.{command}").main


def test_probe_frame_equals_the_cli_csv(tiny_model_dirs, tmp_path):
    model = str(tiny_model_dirs["bert"])
    argv = ["--task", "auxiliary", "--split-sizes", "24,8,8", "--epochs", "1", "--probes", "linear", "--model",
            model, "--cache-dir", str(tmp_path / "cache"), "--seed", "2", "--quiet"]
    assert cli("probe")([*argv, "--out", str(tmp_path / "cli")]) == 0
    result = pk.probe("auxiliary", split_sizes=(24, 8, 8), epochs=1, probes=["linear"], model=model,
                      cache_dir=tmp_path / "cache", seed=2, quiet=True)
    csv = pd.read_csv(tmp_path / "cli" / "results.csv")
    pd.testing.assert_frame_equal(as_written(result.frame), csv)
    assert list(result.record["arguments"]["split_sizes"]) == [24, 8, 8]
    written = result.write(tmp_path / "py", figures=("png", "svg"))
    assert (written / "results.csv").read_bytes() == (tmp_path / "cli" / "results.csv").read_bytes()
    assert (written / "accuracy_by_layer.svg").stat().st_size > 0 and (written / "results.md").is_file()
    config = json.loads((written / "config.json").read_text())
    assert config["command"] == "probe" and config["counts"]["splits"] == {"train": 24, "dev": 8, "gen": 8}


def test_data_frame_equals_the_written_json_lines(tmp_path, capsys):
    for task, options, argv in [("agreement", {"conditions": ["A1", "A4"], "sentences": 4, "seed": 2},
                                 ["--conditions", "A1", "A4", "--sentences", "4", "--seed", "2"]),
                                ("nth_token", {"n": "1,4", "size": "quick"}, ["--n", "1,4"])]:
        out = tmp_path / task
        assert cli("data")(["--task", task, "--out", str(out), "--quiet", *argv]) == 0
        assert "wrote" in capsys.readouterr().out              # the closing line stays under --quiet
        written = pd.read_json(out / f"{task}.jsonl", lines=True)
        result = pk.data(task, **options)
        assert len(result.frame) == len(written) > 0
        pd.testing.assert_frame_equal(
            pd.read_json(io.StringIO(result.frame.to_json(orient="records", lines=True)), lines=True), written)
    with pytest.raises(UserError, match="--sentences, --tsv only apply to --task agreement"):
        pk.data("nth_token", sentences=10, tsv=True)
    with pytest.raises(UserError, match="three positive counts"):
        pk.data("subject", split_sizes="200,50")


def test_extract_frame_equals_the_cli_csv(tiny_model_dirs, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("the cat sat\nthe dog barked at the cat\n")
    model = str(tiny_model_dirs["bert"])
    assert cli("extract")(["--corpus", str(corpus), "--out", str(tmp_path / "cli"), "--model", model,
                           "--cache-dir", str(tmp_path / "cache"), "--quiet"]) == 0
    result = pk.extract(corpus=corpus, model=model, cache_dir=tmp_path / "cache", quiet=True)
    pd.testing.assert_frame_equal(as_written(result.frame), pd.read_csv(tmp_path / "cli" / "sentences.csv"))
    np.testing.assert_array_equal(np.load(tmp_path / "cli" / "hidden_01.npy"), np.asarray(result.store.hidden(1)))


def test_confusion_frame_equals_the_cli_csv_and_works_as_an_analysis(tiny_model_dirs, tmp_path, capsys):
    from probekit.core.encoder import load_encoder
    from probekit.corpora.conditions import generate_items

    model = str(tiny_model_dirs["bert"])
    out = tmp_path / "run"
    assert cli("confusion")(["--conditions", "A1", "R3", "--sentences", "4", "--model", model, "--out", str(out),
                             "--quiet", "--seed", "1"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"        # --quiet keeps only the closing line
    result = pk.confusion(conditions=["A1", "R3"], sentences=4, model=model, seed=1, quiet=True)
    pd.testing.assert_frame_equal(as_written(result.frame), pd.read_csv(out / "results.csv"))
    assert {"condition", "head 1", "low-mass heads left out"} <= set(result.best_heads.columns)
    # the same scores from pk.analyze, with ConfusionScores as one of the analyses
    enc = load_encoder(model, attention=True)
    examples = [it.to_example() for it in generate_items(["A1", "R3"], 4, 1)]
    [scores] = pk.analyze(enc, examples, [pk.ConfusionScores()])
    for name in ("A1", "R3"):
        np.testing.assert_allclose(scores.by_head(name), result.scores.by_head(name), rtol=0, atol=1e-12)
        np.testing.assert_allclose(scores.candidate_mass(name), result.scores.candidate_mass(name), atol=1e-12)


def test_tasks_are_listed_and_build_data_checks_options():
    from probekit.probing.registry import build_data

    assert {"nth_token", "auxiliary", "subject"} <= set(pk.tasks()) and pk.tasks() == sorted(pk.tasks())
    a = build_data("auxiliary", split_sizes="20,5,5", seed=4)
    b = build_data("auxiliary", split_sizes=(20, 5, 5), seed=4)
    assert [ex.words for ex in a.examples] == [ex.words for ex in b.examples]
    assert a.options == {"seed": 4, "size": "quick", "split_sizes": (20, 5, 5)}
    for options, message in [({"split_sizes": "200,50,50,1"}, "three positive counts"),
                             ({"split_sizes": (20, 0, 5)}, "three positive counts"),
                             ({"size": "huge"}, "--size must be one of quick, paper"),
                             ({"n": 3}, "task auxiliary has no option --n")]:
        with pytest.raises(UserError, match=message):
            build_data("auxiliary", **options)
