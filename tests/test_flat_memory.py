"""Memory flat in corpus size: windowed tokenisation and positioned writes change no byte of the results."""
import io
import json

import numpy as np
import pytest

from probekit.core import extraction
from probekit.core.cache import write_store
from probekit.core.encoder import load_encoder
from probekit.core.examples import Example
from probekit.core.extraction import encode_examples, extract

WORDS = ["the", "old", "teacher", "walked", "slowly", "to", "school", "every", "single", "morning"]
CORPUS = ([Example(words=WORDS[i % 4:i % 4 + 2 + i % 7]) for i in range(9)]
          + [Example(words=None, text="birds sing   at dawn"), Example(words=WORDS * 3)])   # the last one is truncated


@pytest.fixture
def enc(tiny_model_dirs):
    return load_encoder(str(tiny_model_dirs["bert"]), attention=True)


def npy_bytes(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def one_pass_store(enc, examples, dtype, batch_size, max_length) -> dict[str, bytes]:
    """The store's files as the whole corpus tokenised at once and held in memory would give them."""
    encoded = encode_examples(enc, examples, max_length=max_length, warn=False)
    counts = np.array([e.alignment.n_units for e in encoded])
    offsets = np.concatenate([[0], np.cumsum(counts)])
    att_offsets = np.concatenate([[0], np.cumsum(enc.num_heads * counts * counts)])
    L, total = enc.num_layers, int(offsets[-1])
    hidden = np.zeros((L + 1, total, enc.hidden_size), dtype)
    att = np.zeros((L, int(att_offsets[-1])), dtype)
    nopos = np.zeros((total, enc.hidden_size), dtype)
    special, word_ids, units = np.zeros(total, bool), np.zeros(total, np.int64), [None] * len(examples)
    for a in extract(enc, examples, attention=True, no_position=True, batch_size=batch_size, encoded=encoded,
                     dtype=dtype):
        rows = slice(offsets[a.index], offsets[a.index + 1])
        hidden[:, rows], nopos[rows], special[rows], word_ids[rows] = a.hidden, a.no_position, a.special, a.word_ids
        att[:, att_offsets[a.index]:att_offsets[a.index + 1]] = a.attention.array.reshape(L, -1)
        units[a.index] = a.units
    files = {f"hidden_{l:02d}.npy": npy_bytes(hidden[l]) for l in range(L + 1)}
    files.update({f"attention_{l + 1:02d}.npy": npy_bytes(att[l]) for l in range(L)})
    files.update({"no_position.npy": npy_bytes(nopos), "special.npy": npy_bytes(special),
                  "word_ids.npy": npy_bytes(word_ids), "offsets.npy": npy_bytes(offsets.astype(np.int64)),
                  "attention_offsets.npy": npy_bytes(att_offsets.astype(np.int64)),
                  "units.jsonl": "".join(json.dumps(u) + "\n" for u in units).encode()})
    return files


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_store_written_in_windows_is_byte_identical_to_one_pass(enc, tmp_path, monkeypatch, dtype):
    monkeypatch.setattr(extraction, "WINDOW_BATCHES", 1)      # several windows even for this small corpus
    path = write_store(enc, CORPUS, tmp_path / "s", attention=True, no_position=True, batch_size=2, dtype=dtype,
                       max_length=12)
    expected = one_pass_store(enc, CORPUS, dtype, batch_size=2, max_length=12)
    for name, data in expected.items():
        assert (path / name).read_bytes() == data, name
    meta = json.loads((path / "meta.json").read_text())
    assert meta["truncated"] == [len(CORPUS) - 1] and meta["n_sentences"] == len(CORPUS)


def test_windowed_extraction_keeps_the_batches_and_warns_once(enc, monkeypatch, capsys):
    whole = list(extract(enc, CORPUS, attention=True, batch_size=2, max_length=12,
                         encoded=encode_examples(enc, CORPUS, max_length=12, warn=False)))
    monkeypatch.setattr(extraction, "WINDOW_BATCHES", 1)
    windowed = list(extract(enc, CORPUS, attention=True, batch_size=2, max_length=12))
    assert [a.index for a in windowed] == [a.index for a in whole]           # same length order, same batches
    for a, b in zip(windowed, whole):
        assert a.units == b.units and a.truncated == b.truncated
        np.testing.assert_array_equal(a.hidden, b.hidden)
        np.testing.assert_array_equal(a.attention.array, b.attention.array)
    warnings = [l for l in capsys.readouterr().err.splitlines() if "truncated" in l]
    assert warnings == [f"probekit: warning: 1 of {len(CORPUS)} inputs were longer than 12 tokens and were truncated"]


def test_encode_windows_counts_over_the_whole_corpus(enc):
    windows = list(extraction.encode_windows(enc, CORPUS, window=4, max_length=12, warn=False))
    assert [len(w) for w in windows] == [4, 4, 3]
    flat = [e for w in windows for e in w]
    whole = encode_examples(enc, CORPUS, max_length=12, warn=False)
    assert [e.index for e in flat] == list(range(len(CORPUS)))
    assert [(e.input_ids, e.alignment.units, e.truncated) for e in flat] == \
        [(e.input_ids, e.alignment.units, e.truncated) for e in whole]
