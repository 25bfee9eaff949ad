"""The building blocks of the Python API: one layer numbering, input order, one pass for several analyses."""
from __future__ import annotations

import numpy as np
import pytest

import probekit as pk
from probekit.core.analysis import Analysis, analyze, extract_activations
from probekit.core.encoder import load_encoder
from probekit.core.errors import UserError
from probekit.core.examples import Example
from probekit.core.extraction import LayerAttention, extract


@pytest.fixture(scope="module")
def enc(tiny_model_dirs):
    return load_encoder(str(tiny_model_dirs["bert"]), attention=True)


def sentences(n=11):
    # lengths deliberately out of order, so length-sorted batches differ from input order
    return [Example(words=["w"] * (1 + (7 * i) % 9) + ["end"], meta={"i": i}) for i in range(n)]


def test_attention_is_indexed_by_layer_number_like_hidden(enc):
    [act] = list(extract(enc, sentences(1), attention=True))
    L = enc.num_layers
    assert act.hidden.shape[0] == L + 1 and len(act.attention) == L
    assert list(act.attention.layers) == list(range(1, L + 1))
    for layer in range(1, L + 1):
        np.testing.assert_array_equal(act.attention[layer], act.attention.array[layer - 1])
        np.testing.assert_array_equal(act.attention[layer, 0], act.attention.array[layer - 1, 0])
    with pytest.raises(IndexError, match="0 is the embedding output"):
        act.attention[0]
    with pytest.raises(IndexError):
        act.attention[L + 1]
    np.testing.assert_array_equal(act.attention[2:], act.attention.array[1:])
    assert np.asarray(act.attention).shape == act.attention.shape


def test_layer_attention_matches_the_models_own_numbering(enc):
    """transformers' attentions[l - 1] is the attention inside the layer whose output is hidden_states[l]."""
    import torch

    ex = sentences(1)
    [act] = list(extract(enc, ex, attention=True, level="token"))
    ids = enc.tokenizer(ex[0].words, is_split_into_words=True, return_tensors="pt")
    with torch.no_grad():
        out = enc.model(**ids, output_attentions=True, output_hidden_states=True)
    for layer in range(1, enc.num_layers + 1):
        np.testing.assert_allclose(act.attention[layer], out.attentions[layer - 1][0].numpy(), atol=1e-6)
        np.testing.assert_allclose(act.hidden[layer], out.hidden_states[layer][0].numpy(), atol=1e-5)


def test_extract_activations_yields_in_input_order_with_bounded_windows(enc):
    exs = sentences(11)
    got = list(extract_activations(enc, exs, attention=True, batch_size=2, window=3))
    assert [a.index for a in got] == list(range(11))
    assert [len(a.units) for a in got] == [ex.n_words + 2 for ex in exs]
    # the same numbers as the length-sorted pass
    by_index = {a.index: a for a in extract(enc, exs, attention=True, batch_size=2)}
    for a in got:
        np.testing.assert_allclose(a.hidden, by_index[a.index].hidden, atol=1e-5)


class Counter(Analysis):
    needs_attention = True

    def __init__(self):
        self.seen = []

    def update(self, activations, example):
        assert activations.attention.shape[-1] == example.n_words + 2
        self.seen.append(example.meta["i"])

    def result(self):
        return sorted(self.seen)


class HiddenNorms(Analysis):
    needs_hidden = True
    needs_attention = False

    def __init__(self):
        self.total = 0.0

    def update(self, activations, example):
        self.total += float(np.linalg.norm(activations.hidden[-1]))

    def result(self):
        return self.total


def test_analyze_runs_the_model_once_for_several_analyses(enc, monkeypatch):
    calls = []
    forward = enc.model.forward

    def counting(*args, **kwargs):
        calls.append(1)
        return forward(*args, **kwargs)

    monkeypatch.setattr(enc.model, "forward", counting)
    exs = sentences(7)
    seen, total = analyze(enc, exs, [Counter(), HiddenNorms()], batch_size=4)
    assert seen == list(range(7))
    assert len(calls) == 2                       # two batches of at most 4: one pass for both analyses
    assert total > 0


def test_analyze_refuses_mixed_levels_and_bad_options(enc):
    token = Counter()
    token.level = "token"
    with pytest.raises(UserError, match="different levels"):
        analyze(enc, sentences(2), [Counter(), token])
    with pytest.raises(UserError, match="--batch-size must be at least 1"):
        analyze(enc, sentences(2), [Counter()], batch_size=0)
    with pytest.raises(UserError, match="--max-length must be at least 3"):
        analyze(enc, sentences(2), [Counter()], max_length=0)


def test_facade_lists_commands_and_building_blocks():
    names = {n for n in dir(pk) if not n.startswith("_")}
    assert {"probe", "confusion", "extract", "attention", "deps", "coref", "parse", "browse", "data",
            "load_encoder", "Example", "read_conllu", "extract_activations", "analyze"} <= names
    assert pk.Example is Example and pk.LayerAttention is LayerAttention
    with pytest.raises(AttributeError):
        pk.no_such_name


def test_every_facade_name_resolves_and_dir_lists_only_them():
    import importlib

    public = [n for n in dir(pk) if not n.startswith("_")]
    assert public == sorted(pk.__all__)
    for name in public:
        value = getattr(pk, name)
        assert value is getattr(importlib.import_module(pk._NAMES[name]), name)
    import probekit.probe  # noqa: F401 - the command module of the same name …
    assert callable(pk.probe) and not isinstance(pk.probe, type(importlib))   # … does not replace the function
