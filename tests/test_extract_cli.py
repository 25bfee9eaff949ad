"""``python -m probekit.extract`` / ``pk.extract``: a store readable with numpy alone, cached, and its errors."""
import json
import re

import numpy as np
import pandas as pd
import pytest

import probekit as pk
from probekit.core.errors import UserError
from probekit.extract import main


@pytest.fixture
def corpus(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("the cat sat\n\na dog barked loudly\n")
    return p


def test_extract_writes_numpy_readable_store(tiny_model_dirs, corpus, tmp_path):
    out = tmp_path / "states"
    assert main(["--corpus", str(corpus), "--out", str(out), "--model", str(tiny_model_dirs["bert"]),
                 "--attention", "--quiet", "--dtype", "float32", "--cache-dir", str(tmp_path / "cache")]) == 0
    offsets = np.load(out / "offsets.npy", allow_pickle=False)
    units = [json.loads(line) for line in open(out / "units.jsonl")]
    words = [json.loads(line) for line in open(out / "sentences.jsonl")]
    assert words == [["the", "cat", "sat"], ["a", "dog", "barked", "loudly"]]
    assert [u[1:-1] for u in units] == words and offsets.tolist() == [0, 5, 11]
    meta = json.loads((out / "meta.json").read_text())
    layers = [np.load(out / f"hidden_{l:02d}.npy", allow_pickle=False) for l in range(meta["num_layers"] + 1)]
    assert all(h.shape == (11, meta["hidden_size"]) for h in layers)
    flat = np.load(out / "attention_01.npy", allow_pickle=False)
    start = np.load(out / "attention_offsets.npy", allow_pickle=False)[1]
    block = flat[start:start + meta["num_heads"] * 36].reshape(meta["num_heads"], 6, 6)
    np.testing.assert_allclose(block.sum(-1), 1.0, atol=1e-5)
    table = pd.read_csv(out / "sentences.csv")
    assert table["n_units"].tolist() == [5, 6] and table["source"].tolist() == [f"{corpus}:1", f"{corpus}:3"]


def test_rerun_is_served_from_the_cache_and_frame_equals_the_csv(tiny_model_dirs, corpus, tmp_path, monkeypatch):
    model, cache = str(tiny_model_dirs["bert"]), tmp_path / "cache"
    argv = ["--corpus", str(corpus), "--model", model, "--quiet", "--cache-dir", str(cache)]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    import transformers

    def boom(*a, **k):
        raise AssertionError("model was called")

    # every BERT-family forward in this process now fails: an identical rerun must not need one
    monkeypatch.setattr(transformers.BertModel, "forward", boom)
    assert main([*argv, "--out", str(tmp_path / "b")]) == 0
    for name in ("hidden_00.npy", "hidden_02.npy", "offsets.npy", "units.jsonl", "sentences.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    result = pk.extract(corpus=corpus, model=model, cache_dir=cache, quiet=True)
    pd.testing.assert_frame_equal(result.frame, pd.read_csv(tmp_path / "a" / "sentences.csv"))
    with pytest.raises(AssertionError, match="model was called"):     # a different request does need it
        pk.extract(corpus=corpus, model=model, cache_dir=cache, pooling="first", quiet=True)
    # with --no-cache nothing is read from the cache either
    with pytest.raises(AssertionError, match="model was called"):
        pk.extract(corpus=corpus, model=model, cache_dir=cache, no_cache=True, quiet=True)


def test_extract_refuses_a_non_empty_out_unless_overwrite(tiny_model_dirs, corpus, tmp_path, capsys):
    out = tmp_path / "states"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    argv = ["--corpus", str(corpus), "--out", str(out), "--model", str(tiny_model_dirs["bert"]), "--quiet",
            "--cache-dir", str(tmp_path / "cache")]
    assert main(argv) == 2
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert main([*argv, "--overwrite"]) == 0
    assert not (out / "keep.txt").exists() and (out / "hidden_00.npy").is_file()


@pytest.mark.parametrize("options, message", [
    ({"batch_size": -1}, "--batch-size must be at least 1 (got -1)"),
    ({"batch_size": 0}, "--batch-size must be at least 1"),
    ({"max_length": 0}, "--max-length must be at least 3"),
    ({"max_length": 2}, "--max-length must be at least 3"),
    ({"device": "cuda:9"}, "--device cuda:9"),
    ({"pooling": "max"}, "--pooling must be one of"),
])
def test_bad_values_exit_2_and_write_nothing(tiny_model_dirs, corpus, tmp_path, capsys, options, message):
    with pytest.raises(UserError, match=re.escape(message)):
        pk.extract(corpus=corpus, model=str(tiny_model_dirs["bert"]), cache_dir=tmp_path / "cache", **options)
    flags = [x for k, v in options.items() for x in (f"--{k.replace('_', '-')}", str(v))]
    assert main(["--corpus", str(corpus), "--out", str(tmp_path / "s"), "--model", str(tiny_model_dirs["bert"]),
                 "--cache-dir", str(tmp_path / "cache"), *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "s").exists() and not (tmp_path / "cache").exists()


def test_a_folder_as_corpus_says_so(tmp_path):
    with pytest.raises(UserError, match="is a folder, not a file"):
        pk.extract(corpus=tmp_path)
