"""The tiny offline models load through the Auto classes and behave like real checkpoints of their architecture."""
from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM, AutoTokenizer

from tiny_models import (ARCHS, HEADS, HIDDEN, LAYERS, MAX_POSITIONS, RARE_WORDS, SPLIT_SENTENCE, make_tiny_model)

SPECIALS = {  # cls, sep, pad, unk, mask
    "bert": ("[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"),
    "distilbert": ("[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"),
    "electra": ("[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"),
    "roberta": ("<s>", "</s>", "<pad>", "<unk>", "<mask>"),
    "albert": ("[CLS]", "[SEP]", "<pad>", "<unk>", "[MASK]"),
}
MARKERS = ("##", "\u0120", "\u2581")  # WordPiece continuation, byte-level space, SentencePiece word start


def _surface(token: str) -> str:
    for m in MARKERS:
        token = token.replace(m, "")
    return token.lower()


def _load(folder, attention=True):
    tok = AutoTokenizer.from_pretrained(folder)
    kwargs = {"attn_implementation": "eager"} if attention else {}
    model = AutoModel.from_pretrained(folder, **kwargs).eval()
    return tok, model


def _arch(folder) -> str:
    return AutoConfig.from_pretrained(folder).model_type


def test_fixture_covers_every_arch(tiny_model_dirs):
    assert set(tiny_model_dirs) == set(ARCHS)
    assert {_arch(d) for d in tiny_model_dirs.values()} == set(ARCHS)


def test_loads_with_auto_classes(tiny_model_dir):
    tok, model = _load(tiny_model_dir)
    arch = model.config.model_type
    assert tok.is_fast
    assert type(model).__name__.lower() == f"{arch}model"
    c = model.config
    assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads) == (HIDDEN, LAYERS, HEADS)
    assert c.max_position_embeddings == MAX_POSITIONS
    assert c.vocab_size == len(tok) < 1100
    assert c.pad_token_id == tok.pad_token_id
    assert (tok.cls_token, tok.sep_token, tok.pad_token, tok.unk_token, tok.mask_token) == SPECIALS[arch]


def test_output_shapes_and_attention_rows(tiny_model_dir):
    tok, model = _load(tiny_model_dir)
    batch = tok(["The old teacher walked slowly.", "A curious archaeologist smiled."], padding=True,
                return_tensors="pt")
    B, T = batch["input_ids"].shape
    assert batch["attention_mask"].sum(1).min() < T  # the shorter sentence is padded
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True, output_attentions=True)
    assert len(out.hidden_states) == LAYERS + 1
    assert all(h.shape == (B, T, HIDDEN) for h in out.hidden_states)
    assert len(out.attentions) == LAYERS
    for att in out.attentions:
        assert att.shape == (B, HEADS, T, T)
        assert torch.allclose(att.sum(-1), torch.ones(B, HEADS, T), atol=1e-5)
        # padded keys get (almost) no attention
        pad_cols = batch["attention_mask"][:, None, None, :] == 0
        assert att.masked_select(pad_cols.expand_as(att)).max() < 1e-6


def test_random_init_is_seeded(tmp_path, tiny_model_dir):
    arch = _arch(tiny_model_dir)
    again = make_tiny_model(arch, tmp_path / arch)
    a = AutoModel.from_pretrained(tiny_model_dir).state_dict()
    b = AutoModel.from_pretrained(again).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / arch / "tokenizer.json").read_text() == (tiny_model_dir / "tokenizer.json").read_text()


def test_word_ids_align_split_words(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    enc = tok(SPLIT_SENTENCE, is_split_into_words=True)
    tokens, word_ids = enc.tokens(), enc.word_ids()
    assert word_ids[0] is None and word_ids[-1] is None
    assert tokens[0] == tok.cls_token and tokens[-1] == tok.sep_token
    inner = word_ids[1:-1]
    assert None not in inner
    assert inner == sorted(inner) and sorted(set(inner)) == list(range(len(SPLIT_SENTENCE)))
    start = {"roberta": "\u0120", "albert": "\u2581"}.get(_arch(tiny_model_dir))
    for w, word in enumerate(SPLIT_SENTENCE):
        pieces = [t for t, i in zip(tokens, word_ids) if i == w]
        assert "".join(_surface(p) for p in pieces) == word.lower()
        if start:  # every pre-split word is encoded as a mid-sentence word (RoBERTa: add_prefix_space)
            assert pieces[0].startswith(start)
        else:  # WordPiece: the continuation pieces, and only they, carry "##"
            assert not pieces[0].startswith("##") and all(p.startswith("##") for p in pieces[1:])


def test_some_words_are_split_and_some_are_not(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    word_ids = tok(SPLIT_SENTENCE, is_split_into_words=True).word_ids()
    n_pieces = [word_ids.count(w) for w in range(len(SPLIT_SENTENCE))]
    assert max(n_pieces) > 1 and min(n_pieces) == 1
    for rare in RARE_WORDS:
        assert n_pieces[SPLIT_SENTENCE.index(rare)] > 1, rare
    # a common word of the training text is one piece
    assert len(tok(["teacher"], is_split_into_words=True, add_special_tokens=False)["input_ids"]) == 1


def test_raw_text_offsets_give_the_words(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = "The archaeologist photographed an unbelievably gigantic chrysanthemum"
    enc = tok(text, return_offsets_mapping=True)
    spans: dict[int, list[tuple[int, int]]] = {}
    for wid, span in zip(enc.word_ids(), enc["offset_mapping"]):
        if wid is None:
            assert tuple(span) == (0, 0)
        else:
            spans.setdefault(wid, []).append(span)
    words = [text[min(s for s, _ in sp):max(e for _, e in sp)] for _, sp in sorted(spans.items())]
    assert words == text.split()


def test_pairs_of_split_words(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    a, b = ["The", "teacher", "smiled"], ["An", "unbelievably", "gigantic", "dog", "laughed", "."]
    enc = tok(a, b, is_split_into_words=True, return_token_type_ids=True)
    seq, wid = enc.sequence_ids(), enc.word_ids()
    specials = [i for i, s in enumerate(seq) if s is None]
    assert len(specials) == tok.num_special_tokens_to_add(pair=True)
    assert specials[0] == 0 and specials[-1] == len(seq) - 1
    assert all(wid[i] is None for i in specials)
    first_b = seq.index(1)
    assert set(seq[1:first_b]) <= {0, None} and set(seq[first_b:-1]) == {1}
    assert sorted({w for w, s in zip(wid, seq) if s == 0}) == list(range(len(a)))
    assert sorted({w for w, s in zip(wid, seq) if s == 1}) == list(range(len(b)))
    if AutoConfig.from_pretrained(tiny_model_dir).to_dict().get("type_vocab_size", 1) > 1:
        types = enc["token_type_ids"]
        assert set(types[:first_b]) == {0} and set(types[first_b:]) == {1}


def test_model_max_length_fits_the_position_table(tiny_model_dir):
    tok, model = _load(tiny_model_dir, attention=False)
    long_words = ("the old teacher walked slowly to the village school " * 10).split()
    batch = tok(long_words, is_split_into_words=True, truncation=True, return_tensors="pt")
    assert batch["input_ids"].shape[1] == tok.model_max_length <= MAX_POSITIONS
    assert batch["input_ids"][0, -1].item() == tok.sep_token_id
    with torch.no_grad():
        out = model(**batch)
    assert out.last_hidden_state.shape == (1, tok.model_max_length, HIDDEN)


def test_checkpoint_has_mlm_head_and_pooler(tiny_model_dir):
    _, info = AutoModel.from_pretrained(tiny_model_dir, output_loading_info=True)
    assert not info["missing_keys"]  # the pooler is saved too, so loading twice gives the same weights
    _, info = AutoModelForMaskedLM.from_pretrained(tiny_model_dir, output_loading_info=True)
    assert not info["missing_keys"]


def test_bare_encoder_has_no_mlm_head(tmp_path):
    folder = make_tiny_model("bert", tmp_path / "bare", mlm_head=False)
    _, info = AutoModel.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"]
    _, info = AutoModelForMaskedLM.from_pretrained(folder, output_loading_info=True)
    assert any(not k.startswith("bert.") for k in info["missing_keys"])


def test_roberta_without_prefix_space_like_roberta_base(tmp_path):
    folder = make_tiny_model("roberta", tmp_path / "roberta", add_prefix_space=False)
    assert json.loads((folder / "tokenizer_config.json").read_text())["add_prefix_space"] is False
    tok = AutoTokenizer.from_pretrained(folder)
    assert not tok("teacher smiled").tokens()[1].startswith("\u0120")  # sentence-initial word: no space
    tok = AutoTokenizer.from_pretrained(folder, add_prefix_space=True)
    assert tok.add_prefix_space is True
    enc = tok(["teacher", "smiled"], is_split_into_words=True)
    first_pieces = [t for i, (t, w) in enumerate(zip(enc.tokens(), enc.word_ids()))
                    if w is not None and enc.word_ids()[i - 1] != w]
    assert len(first_pieces) == 2 and all(t.startswith("\u0120") for t in first_pieces)


def test_unknown_arch_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown tiny architecture"):
        make_tiny_model("gpt2", tmp_path)


def test_default_model_path(default_model_path):
    config = json.loads((default_model_path / "config.json").read_text())
    assert config["model_type"] == "bert"
    assert (config["num_hidden_layers"], config["num_attention_heads"], config["hidden_size"]) == (6, 12, 384)
    assert (default_model_path / "tokenizer.json").is_file()
