"""``python -m probekit.probe`` end to end on a tiny model, its outputs, determinism and its errors."""
import json
import subprocess
import sys
import zipfile

import pandas as pd
import pytest

from probekit.corpora.grammar import Grammar, generate
import probekit as pk
from probekit.core.errors import UserError
from probekit.probe import main


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    p = tmp_path_factory.mktemp("corpus") / "sents.txt"
    sents = generate(Grammar.load("english"), 90, seed=5, keep=lambda s: 6 <= len(s.words) <= 25)
    p.write_text("\n".join(" ".join(s.words) for s in sents) + "\n", encoding="utf-8")
    return p


def args_for(model, corpus, out, cache, *extra):
    return ["--task", "nth_token", "--model", str(model), "--corpus", str(corpus), "--out", str(out),
            "--cache-dir", str(cache), "--n", "1,3", "--epochs", "2", "--quiet", *extra]


def test_run_writes_tidy_results_and_is_deterministic(tiny_model_dirs, corpus, tmp_path, capsys):
    model = tiny_model_dirs["bert"]
    assert main(args_for(model, corpus, tmp_path / "a", tmp_path / "cache")) == 0
    assert "results" in capsys.readouterr().out
    df = pd.read_csv(tmp_path / "a" / "results.csv")
    assert list(df.columns)[:9] == ["task", "n", "model", "layer", "head", "metric", "value", "probe", "split"]
    assert df["head"].isna().all()
    assert set(df["probe"]) == {"linear", "mlp", "linear-nopos", "mlp-nopos", "linear vs mlp",
                                "linear-nopos vs mlp-nopos"}
    assert set(df[df["probe"].str.contains(" vs ")]["metric"]) == {"accuracy_difference"}
    assert df[df["metric"] == "accuracy_difference"]["value"].between(-1, 1).all()
    df = df[df["metric"] == "accuracy"]
    assert set(df["split"]) == {"train", "dev", "gen"} and set(df["n"]) == {1, 3}
    assert sorted(df[df.probe == "linear"]["layer"].unique()) == [0, 1, 2]
    assert df["value"].between(0, 1).all()
    assert (df[df.probe.str.endswith("nopos")]["layer"] == 0).all()
    for name in ("results.md", "accuracy_by_layer.png", "config.json"):
        assert (tmp_path / "a" / name).stat().st_size > 0
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["seed"] == 0 and config["model"]["fingerprint"] and config["versions"]["torch"]
    assert config["arguments"]["n"] == [1, 3]
    # same seed, same command → identical results.csv (second run is served from the cache)
    assert main(args_for(model, corpus, tmp_path / "b", tmp_path / "cache")) == 0
    assert (tmp_path / "a" / "results.csv").read_bytes() == (tmp_path / "b" / "results.csv").read_bytes()
    # ... and without the cache too
    assert main(args_for(model, corpus, tmp_path / "c", tmp_path / "cache", "--no-cache")) == 0
    assert (tmp_path / "a" / "results.csv").read_bytes() == (tmp_path / "c" / "results.csv").read_bytes()


@pytest.mark.parametrize("options, message", [
    ({"batch_size": 0}, "--batch-size must be at least 1 (got 0)"),
    ({"batch_size": -1}, "--batch-size must be at least 1"),
    ({"epochs": 0}, "--epochs must be at least 1"),
    ({"lr": float("nan")}, "--lr must be a finite number"),
    ({"lr": 0}, "--lr must be greater than 0"),
    ({"lr": -1e-3}, "--lr must be greater than 0"),
    ({"mlp_hidden": 0}, "--mlp-hidden must be at least 1"),
    ({"max_length": 0}, "--max-length must be at least 3"),
    ({"max_length": 2}, "--max-length must be at least 3"),
    ({"max_length": -5}, "--max-length must be at least 3"),
    ({"device": "cuda:7"}, "--device cuda:7"),
    ({"device": "tpu"}, "--device"),
    ({"n": "0-2"}, "--n: positions must be positive"),
    ({"n": "a"}, "--n: expected positions"),
    ({"probes": ["svm"]}, "--probes: unknown 'svm'"),
    ({"split_sizes": "1,2,3"}, "task nth_token has no option --split-sizes"),
])
def test_bad_values_are_user_errors_in_python_and_exit_2(tiny_model_dirs, tmp_path, capsys, options, message):
    with pytest.raises(UserError, match=__import__("re").escape(message)):
        pk.probe("nth_token", model=str(tiny_model_dirs["bert"]), quiet=True, **options)
    flags = []
    for key, value in options.items():
        flags += [f"--{key.replace('_', '-')}", *(value if isinstance(value, list) else [str(value)])]
    assert main(["--model", str(tiny_model_dirs["bert"]), "--out", str(tmp_path / "run"), "--quiet", *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("probekit: error:") and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_split_sizes_as_text_or_tuple_and_tiny_splits_warn(tiny_model_dirs, tmp_path, capsys):
    a = pk.probe("auxiliary", model=str(tiny_model_dirs["bert"]), split_sizes="30,8,8", epochs=1,
                 probes=["linear"], no_cache=True, quiet=True)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dev 8, gen 8" in err and "train 30" in err and "noisy" in err
    assert "noisy" in a.warning
    b = pk.probe("auxiliary", model=str(tiny_model_dirs["bert"]), split_sizes=(30, 8, 8), epochs=1,
                 probes=["linear"], no_cache=True, quiet=True)
    pd.testing.assert_frame_equal(a.frame, b.frame)
    with pytest.raises(UserError, match="three positive counts"):
        pk.probe("auxiliary", split_sizes="200,50", quiet=True)


def run_cli(*argv):
    return subprocess.run([sys.executable, "-m", "probekit.probe", *argv], capture_output=True, text=True)


@pytest.mark.parametrize("make, message", [
    (lambda d: ["--task", "nope"], "unknown task 'nope'; known tasks:"),
    (lambda d: ["--model", "no-such-org/no-such-model"], "neither a local folder nor in the Hugging Face cache"),
    (lambda d: ["--corpus", str(d / "missing.txt")], "does not exist"),
    (lambda d: ["--corpus", str(d / "empty.txt")], "is empty"),
    (lambda d: ["--corpus", str(d / "latin1.txt")], "latin1.txt:2: not UTF-8"),
    (lambda d: ["--corpus", str(d / "short.txt"), "--n", "7"], "at least 7 words"),
])
def test_bad_input_is_one_line_exit_2_nothing_written(tiny_model_dirs, tmp_path, capsys, make, message):
    (tmp_path / "empty.txt").write_text("\n\n")
    (tmp_path / "latin1.txt").write_bytes("fine line\ncaf\xe9 au lait\n".encode("latin-1"))
    (tmp_path / "short.txt").write_text("one two three\nfour five\n")
    argv = ["--model", str(tiny_model_dirs["bert"]), "--out", str(tmp_path / "run"), "--quiet",
            "--cache-dir", str(tmp_path / "cache")]
    capsys.readouterr()
    assert main([*argv, *make(tmp_path)]) == 2        # in-process: no interpreter start-up per case
    err = capsys.readouterr().err
    assert message in err
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert not (tmp_path / "run").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run")]


def test_command_line_smoke(tiny_model_dirs, tmp_path):
    """One real ``python -m probekit.probe`` start: a bad value is one line on stderr and exit status 2."""
    r = run_cli("--model", str(tiny_model_dirs["bert"]), "--lr", "nan", "--out", str(tmp_path / "run"), "--quiet")
    assert r.returncode == 2 and r.stderr.strip() == "probekit: error: --lr must be a finite number (got nan)"
    assert not (tmp_path / "run").exists()


def test_short_sentences_are_skipped_and_counted(tiny_model_dirs, corpus, tmp_path):
    text = corpus.read_text() + "too short\n"
    p = tmp_path / "c.txt"
    p.write_text(text)
    assert main(args_for(tiny_model_dirs["bert"], p, tmp_path / "run", tmp_path / "cache")) == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    skipped = config["data"]["sentences_shorter_than_n_skipped"]
    assert skipped["3"] >= 1 and skipped["3"] >= skipped["1"]


def test_wheel_ships_task_definitions_and_grammars(tmp_path):
    """``pip install .`` (not only -e) must carry the task modules, grammars and page assets."""
    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(root)], check=True, capture_output=True)
    [wheel] = tmp_path.glob("probekit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "probekit/probing/tasks/nth_token.py" in names
    assert "probekit/corpora/grammars/english.gr" in names
    assert {"probekit/viz/assets/browser.js", "probekit/viz/assets/browser.css",
            "probekit/attribution/assets/attribution.js", "probekit/attribution/assets/attribution.css"} <= set(names)
