"""The activation cache: reuse without the model, atomic writes, damage detection, no pickle."""
import json

import numpy as np
import pytest

from probekit.core.cache import get_activations
from probekit.core.encoder import load_encoder
from probekit.core.examples import Example
from probekit.core.extraction import extract

SENTS = [["the", "cat", "sat"], ["a", "dog", "barked", "loudly"], ["birds", "sing"]]


@pytest.fixture
def enc(tiny_model_dirs):
    return load_encoder(str(tiny_model_dirs["bert"]), attention=True)


def examples():
    return [Example(words=w) for w in SENTS]


def test_second_identical_run_does_not_call_the_model(enc, tmp_path, monkeypatch):
    first = get_activations(enc, examples(), cache_dir=tmp_path, attention=True)
    h3 = np.array(first.hidden(2))

    def boom(*a, **k):
        raise AssertionError("model was called")

    monkeypatch.setattr(enc.model, "forward", boom)
    second = get_activations(enc, examples(), cache_dir=tmp_path, attention=True)
    assert second.path == first.path
    np.testing.assert_array_equal(np.array(second.hidden(2)), h3)
    # a different request (pooling) is a different entry, so it does need the model
    with pytest.raises(AssertionError, match="model was called"):
        get_activations(enc, examples(), cache_dir=tmp_path, attention=True, pooling="first")


def test_store_layout_is_numpy_only(enc, tmp_path):
    s = get_activations(enc, examples(), cache_dir=tmp_path, attention=True, dtype="float32")
    offsets = np.load(s.path / "offsets.npy", allow_pickle=False)
    assert offsets.tolist() == [0, 5, 11, 15]
    hid = np.load(s.path / "hidden_01.npy", allow_pickle=False)
    assert hid.shape == (15, enc.hidden_size) and hid.dtype == np.float32
    units = [json.loads(line) for line in open(s.path / "units.jsonl")]
    assert units[1][1:-1] == SENTS[1]
    att = s.attention(1, 1)
    assert att.shape == (enc.num_heads, 6, 6)
    np.testing.assert_allclose(att.sum(-1), 1.0, atol=1e-5)
    assert sorted(p.name for p in s.path.iterdir() if p.name.startswith("hidden_")) == \
        [f"hidden_{l:02d}.npy" for l in range(enc.num_layers + 1)]



def test_stored_attention_is_what_extraction_gives(enc, tmp_path):
    s = get_activations(enc, examples(), cache_dir=tmp_path, attention=True, dtype="float32")
    for act in extract(enc, examples(), hidden=False, attention=True):
        got = s.sentence_attention(act.index)
        assert got.shape == (enc.num_layers, enc.num_heads, len(act.units), len(act.units))
        np.testing.assert_array_equal(got, act.attention.array)
        for layer in range(1, enc.num_layers + 1):
            np.testing.assert_array_equal(s.attention(act.index, layer), got[layer - 1])

def test_damaged_entry_is_reported_and_recomputed(enc, tmp_path, capsys):
    s = get_activations(enc, examples(), cache_dir=tmp_path)
    good = np.array(s.hidden(1))
    f = s.path / "hidden_01.npy"
    raw = bytearray(f.read_bytes())
    raw[-3] ^= 0xFF
    f.write_bytes(bytes(raw))
    again = get_activations(enc, examples(), cache_dir=tmp_path)
    err = capsys.readouterr().err
    assert "damaged" in err and err.count("\n") == 1
    np.testing.assert_array_equal(np.array(again.hidden(1)), good)


def test_interrupted_write_leaves_no_entry(enc, tmp_path, monkeypatch):
    import probekit.core.cache as cache

    def dies(*a, **k):
        yield from ()
        raise KeyboardInterrupt

    monkeypatch.setattr(cache, "extract", dies)
    with pytest.raises(KeyboardInterrupt):
        get_activations(enc, examples(), cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_no_cache_store_is_temporary(enc, tmp_path):
    s = get_activations(enc, examples(), cache_dir=tmp_path, use_cache=False)
    path = s.path
    assert path.exists() and not str(path).startswith(str(tmp_path))
    del s
    import gc

    gc.collect()
    assert not path.exists()


def test_fingerprint_follows_weights_changed_in_place(tiny_model_dirs):
    """Fine-tuning in the same process changes weights in place: the fingerprint (the cache key) follows."""
    import torch

    from probekit.core.encoder import load_encoder

    enc = load_encoder(str(tiny_model_dirs["bert"]))
    first = enc.fingerprint()
    assert enc.fingerprint() == first                                  # unchanged weights: the same hash
    with torch.no_grad():
        next(enc.model.parameters()).add_(1e-3)                         # an optimiser step, in place
    changed = enc.fingerprint()
    assert changed != first
    enc.model.load_state_dict(load_encoder(str(tiny_model_dirs["bert"])).model.state_dict())
    assert enc.fingerprint() == first                                  # the original weights again


def test_fingerprint_ignores_the_tokenizers_last_truncation_and_padding(tiny_model_dirs):
    """A fast tokenizer's backend remembers the truncation/padding of its last call; the fingerprint does not."""
    from probekit.core.encoder import load_encoder

    enc = load_encoder(str(tiny_model_dirs["bert"]))
    fresh = load_encoder(str(tiny_model_dirs["bert"])).fingerprint()
    enc.tokenizer(["a few words here", "and two"], truncation=True, max_length=5, padding=True)
    assert enc.fingerprint() == fresh
