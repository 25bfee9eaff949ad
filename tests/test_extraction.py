"""The hook layer against a plain transformers call, on tiny models of five architectures."""
import numpy as np
import pytest
import torch
from tiny_models import SPLIT_SENTENCE

from probekit.core.encoder import load_encoder
from probekit.core.examples import Example
from probekit.core.extraction import encode_examples, extract


def by_index(acts):
    return {a.index: a for a in acts}


def plain_call(enc, example_words):
    inputs = enc.tokenizer(example_words, is_split_into_words=True, return_tensors="pt")
    with torch.no_grad():
        return enc.model(**inputs, output_hidden_states=True, output_attentions=True)


def test_token_level_equals_plain_model_call(tiny_model_dir):
    enc = load_encoder(str(tiny_model_dir), attention=True)
    sentences = [SPLIT_SENTENCE, ["a", "short", "one"], ["the", "cat", "sat", "on", "the", "mat"]]
    acts = by_index(extract(enc, [Example(words=w) for w in sentences], attention=True, level="token",
                            batch_size=2))
    for i, words in enumerate(sentences):
        ref = plain_call(enc, words)
        a = acts[i]
        T = ref.hidden_states[0].shape[1]
        assert a.hidden.shape == (enc.num_layers + 1, T, ref.hidden_states[0].shape[-1])
        assert a.attention.array.shape == (enc.num_layers, enc.num_heads, T, T)
        np.testing.assert_allclose(a.hidden, torch.stack(ref.hidden_states)[:, 0].numpy(), atol=2e-5)
        np.testing.assert_allclose(a.attention.array, torch.stack(ref.attentions)[:, 0].numpy(), atol=2e-6)


def test_word_level_rows_sum_to_one_and_align(tiny_model_dir):
    enc = load_encoder(str(tiny_model_dir), attention=True)
    [a] = extract(enc, [Example(words=SPLIT_SENTENCE)], attention=True)
    U = len(SPLIT_SENTENCE) + 2
    assert a.units[1:-1] == SPLIT_SENTENCE
    assert a.special.tolist() == [True] + [False] * len(SPLIT_SENTENCE) + [True]
    assert a.word_ids.tolist() == [-1] + list(range(len(SPLIT_SENTENCE))) + [-1]
    assert a.attention.array.shape == (enc.num_layers, enc.num_heads, U, U)
    np.testing.assert_allclose(a.attention.array.sum(-1), 1.0, atol=1e-5)
    assert a.hidden.shape[1] == U


def test_word_level_rule_sum_to_mean_from(tiny_model_dir):
    """Clark et al. §4.1 by hand: TO a word sums its pieces' columns, FROM a word averages their rows."""
    enc = load_encoder(str(tiny_model_dir), attention=True)
    ex = [Example(words=SPLIT_SENTENCE)]
    [tok] = extract(enc, ex, attention=True, level="token")
    [word] = extract(enc, ex, attention=True)
    [first] = extract(enc, ex, attention=True, attention_from="first")
    token_unit = encode_examples(enc, ex)[0].alignment.token_unit
    U = word.attention.array.shape[-1]
    to = np.zeros((len(token_unit), U))
    to[np.arange(len(token_unit)), token_unit] = 1
    summed = tok.attention.array @ to                                     # [L, H, T, U]
    for u in range(U):
        pieces = np.flatnonzero(token_unit == u)
        np.testing.assert_allclose(word.attention.array[:, :, u], summed[:, :, pieces].mean(2), atol=1e-5)
        np.testing.assert_allclose(first.attention.array[:, :, u], summed[:, :, pieces[0]], atol=1e-5)
        np.testing.assert_allclose(word.hidden[:, u], tok.hidden[:, pieces].mean(1), atol=1e-5)


def test_unsplit_sentence_gives_token_level_map(tiny_model_dir):
    enc = load_encoder(str(tiny_model_dir), attention=True)
    words = SPLIT_SENTENCE + "the a of and to in was is it he she they on at with".split()
    word_ids = enc.tokenizer(words, is_split_into_words=True).word_ids()
    whole = [w for i, w in enumerate(words) if word_ids.count(i) == 1]
    assert len(whole) >= 3
    ex = [Example(words=whole)]
    [w] = extract(enc, ex, attention=True)
    [t] = extract(enc, ex, attention=True, level="token")
    np.testing.assert_array_equal(w.attention.array, t.attention.array)
    np.testing.assert_allclose(w.hidden, t.hidden, atol=1e-6)


def test_batching_and_padding_do_not_change_results(tiny_model_dir):
    enc = load_encoder(str(tiny_model_dir), attention=True)
    sents = [SPLIT_SENTENCE, ["one"], ["two", "words"], SPLIT_SENTENCE[:4]]
    exs = [Example(words=s) for s in sents]
    alone = by_index(extract(enc, exs, attention=True, batch_size=1))
    batched = by_index(extract(enc, exs, attention=True, batch_size=4))
    for i in range(len(sents)):
        np.testing.assert_allclose(alone[i].attention.array, batched[i].attention.array, atol=1e-5)
        np.testing.assert_allclose(alone[i].hidden, batched[i].hidden, atol=1e-4)


def test_pairs_and_raw_text(tiny_model_dir):
    enc = load_encoder(str(tiny_model_dir), attention=True)
    a, b = ["the", "cat", "slept"], ["it", "was", "tired"]
    [p] = extract(enc, [Example(words=a, words_b=b)], attention=True)
    words = [u for u, s in zip(p.units, p.special) if not s]
    assert words == a + b
    assert p.word_ids[~p.special].tolist() == list(range(6))
    # the model's own separators sit between the segments (one for BERT, two for RoBERTa)
    first_b = p.units.index("it")
    assert p.special[1 + len(a):first_b].all() and first_b >= 5 and p.special[0] and p.special[-1]
    [r] = extract(enc, [Example(words=None, text="The cat  slept.")], attention=True)
    assert "".join(u for u, s in zip(r.units, r.special) if not s).lower().replace(" ", "") == "thecatslept."
    np.testing.assert_allclose(r.attention.array.sum(-1), 1.0, atol=1e-5)


def test_truncation_warns_once_with_count(tiny_model_dir, capsys):
    enc = load_encoder(str(tiny_model_dir))
    long = ["word"] * 200
    acts = by_index(extract(enc, [Example(words=long), Example(words=long), Example(words=["short"])]))
    err = capsys.readouterr().err
    assert err.count("truncated") == 1 and "2 of 3 inputs" in err
    assert acts[0].truncated and not acts[2].truncated
    assert acts[0].hidden.shape[1] <= enc.max_length


def test_no_position_variant_differs_only_by_positions(default_model_path):
    enc = load_encoder(str(default_model_path))
    ex = [Example(words=["the", "cat", "the", "cat"])]
    [a] = extract(enc, ex, no_position=True, pooling="first")
    # without positions, the same word in the same segment gets the same vector
    np.testing.assert_allclose(a.no_position[1], a.no_position[3], atol=1e-5)
    assert not np.allclose(a.hidden[0, 1], a.hidden[0, 3], atol=1e-3)


def test_absent_model_is_one_clear_error():
    from probekit.core.errors import UserError

    with pytest.raises(UserError, match="neither a local folder nor in the Hugging Face cache"):
        load_encoder("no-such-org/no-such-model-xyz")
