"""``python -m probekit.extract``: a store readable with numpy alone, and its errors."""
import json

import numpy as np

from probekit.extract import main


def test_extract_writes_numpy_readable_store(tiny_model_dirs, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("the cat sat\n\na dog barked loudly\n")
    out = tmp_path / "states"
    assert main(["--corpus", str(corpus), "--out", str(out), "--model", str(tiny_model_dirs["bert"]),
                 "--attention", "--quiet", "--dtype", "float32"]) == 0
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


def test_extract_refuses_a_non_empty_out(tiny_model_dirs, tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text("the cat sat\n")
    out = tmp_path / "states"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["--corpus", str(corpus), "--out", str(out), "--model", str(tiny_model_dirs["bert"])]) == 2
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
