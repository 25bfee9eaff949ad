"""Tiny, randomly initialised encoders with real fast tokenizers, built offline for the tests.

Each model is saved with ``save_pretrained`` so tests load it exactly as probekit loads a real checkpoint
(``AutoModel`` / ``AutoTokenizer.from_pretrained(folder)``). The tokenizers are trained in milliseconds on the
small English text below with the ``tokenizers`` library, then wrapped in the architecture's own transformers
tokenizer class (transformers 5: ``BertTokenizer`` etc. *are* the fast, tokenizers-backed classes), so the saved
files are what that class writes and reads back:

- BERT, DistilBERT, ELECTRA: uncased WordPiece ([CLS] [SEP] [PAD] [UNK] [MASK])
- RoBERTa: byte-level BPE (<s> </s> <pad> <unk> <mask>), saved with ``add_prefix_space=True`` so that
  pre-split words (``is_split_into_words=True``) are encoded as mid-sentence words
- ALBERT: SentencePiece-style Unigram with "▁" word starts ([CLS] [SEP] <pad> <unk> [MASK]); punctuation stays
  attached to its word (whitespace pre-tokenisation), as with albert-base-v2

The vocabularies are small (under a thousand pieces), so words outside the text, and a few inside it, are split
into several pieces: sub-token to word alignment is exercised by every architecture.
"""
from __future__ import annotations

import json
import math
import string
from functools import lru_cache
from pathlib import Path

ARCHS = ("bert", "roberta", "distilbert", "albert", "electra")

HIDDEN = 32
LAYERS = 2
HEADS = 4
INTERMEDIATE = 37
MAX_POSITIONS = 64
ALBERT_EMBEDDING = 16
ELECTRA_EMBEDDING = 16   # smaller than HIDDEN, like electra-small: exercises the embedding projection
SEED = 0

# Vocabulary sizes chosen so that most words of CORPUS are one piece and a few are split (as with real
# checkpoints), while every word outside it is split.
WORDPIECE_VOCAB = 800
BPE_VOCAB = 1000         # 256 byte symbols + 5 specials + merges

#: A sentence (pre-split words) in which every tiny tokenizer splits at least one word into several pieces.
SPLIT_SENTENCE = ["The", "archaeologist", "photographed", "an", "unbelievably", "gigantic", "chrysanthemum", "."]
#: Words that are not in the training text, so every tiny tokenizer splits them.
RARE_WORDS = ("archaeologist", "photographed", "unbelievably", "gigantic", "chrysanthemum")

# Training text for the tokenizers: plain declarative English (about 500 words), with regular suffixes so
# that pieces such as ##ly / ##ed / ##ing are learnt.
CORPUS = """\
The old teacher walked slowly to the village school every morning.
A young doctor helped the tired farmer carry heavy boxes across the river.
Mary believed that the curious child had found a strange letter in the garden.
The painter and his friendly dog waited quietly near the ancient house.
Yesterday the students laughed because the clever cat danced on the piano.
Although it was raining, John visited his grandmother in the city.
The pilot noticed that the small boat was drifting toward the rocks.
Alice borrowed a famous book from the library and read it twice.
The quick brown fox jumps over the lazy dog.
Peter thought that the weather would change before the evening.
She is walking to the market, and he walks to the station.
They were talking happily while the children played in the park.
The woman who lives next door makes wonderful bread on Sundays.
He opened the window because the room was warm and quiet.
We saw three birds sitting on the wall behind the old church.
My brother works in a hospital, but my sister teaches music.
The river flows past the village and into the sea.
Nobody knew where the key had gone, so they searched the whole house.
The kind neighbor gave us apples, pears and a jar of honey.
It was unusually cold, and the lake was covered with thin ice.
Susan asked the man at the desk for a map of the town.
The train arrived late, and many people were unhappy about it.
After dinner we played cards and told stories until midnight.
David carefully painted the fence green while Grace watched him.
The horse jumped over the gate and ran into the field.
Please close the door quietly when you leave the room.
The children were excited because school was closed for the holiday.
Oliver wrote a long letter to his friend in another country.
The small shop on the corner sells newspapers, milk and flowers.
Our teacher explained the question again, and everyone understood.
The weather was lovely, so we walked along the beach for hours.
A strong wind blew the leaves off the trees in the autumn.
She smiled when she heard the good news from her mother.
The lawyer and the doctor argued loudly about the old story.
Nadia found her keys under the table in the kitchen.
The bird sang a beautiful song from the top of the tree.
Tobias likes to read books about ships, stars and distant places.
The city was busy, but the small garden felt calm and peaceful.
He said that he would come back tomorrow with his sister.
The dog followed the boy all the way home from school.
Some people believe that the house is older than the church.
It is important to think carefully before you answer.
They had been waiting for an hour when the bus finally came.
The museum opened a new room full of paintings and photographs.
Everybody agreed that the plan was simple, clear and useful.
The farmer counted 12 cows, 7 horses and 30 sheep in 2024.
"""

_ALPHABET = list(string.ascii_lowercase + string.digits + string.punctuation)
_WORD_START = "\u2581"   # SentencePiece's "▁"


def _lines() -> list[str]:
    return CORPUS.splitlines()


def _train(pipeline, model, trainer):
    """Train ``model`` with the normaliser and pre-tokeniser of ``pipeline`` (a tokenizers.Tokenizer)."""
    from tokenizers import Tokenizer

    tok = Tokenizer(model)
    tok.normalizer = pipeline.normalizer
    tok.pre_tokenizer = pipeline.pre_tokenizer
    tok.train_from_iterator(_lines(), trainer)
    return json.loads(tok.to_str())["model"]


@lru_cache(maxsize=None)
def _wordpiece_vocab() -> tuple[tuple[str, int], ...]:
    from tokenizers import models, trainers
    from transformers import BertTokenizer

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    trainer = trainers.WordPieceTrainer(vocab_size=WORDPIECE_VOCAB, special_tokens=specials,
                                        initial_alphabet=_ALPHABET, show_progress=False)
    model = _train(BertTokenizer().backend_tokenizer, models.WordPiece(unk_token="[UNK]"), trainer)
    return tuple(sorted(model["vocab"].items(), key=lambda kv: kv[1]))


@lru_cache(maxsize=None)
def _bpe_vocab_merges() -> tuple[tuple[tuple[str, int], ...], tuple[tuple[str, str], ...]]:
    from tokenizers import models, pre_tokenizers, trainers
    from transformers import RobertaTokenizer

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]   # roberta-base order: pad 1, bos 0, eos 2
    pipeline = RobertaTokenizer().backend_tokenizer
    pipeline.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    trainer = trainers.BpeTrainer(vocab_size=BPE_VOCAB, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    model = _train(pipeline, models.BPE(), trainer)
    merges = tuple(tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"])
    return tuple(sorted(model["vocab"].items(), key=lambda kv: kv[1])), merges


@lru_cache(maxsize=None)
def _unigram_vocab() -> tuple[tuple[str, float], ...]:
    """SentencePiece-style pieces ("▁" marks a word start) with log-probability scores.

    tokenizers' UnigramTrainer cannot grow a useful vocabulary from a text this small (it stops at ~370 pieces
    and splits 85 % of the words), so the pieces are the WordPiece ones rewritten in SentencePiece form
    (``word`` → ``▁word``, ``##ing`` → ``ing``) and scored by their smoothed frequency in the text.
    """
    from transformers import BertTokenizer

    wordpiece = dict(_wordpiece_vocab())
    counts: dict[str, int] = {}
    segmenter = BertTokenizer(vocab=wordpiece)
    for line in _lines():
        for token in segmenter.tokenize(line):
            piece = token[2:] if token.startswith("##") else _WORD_START + token
            counts[piece] = counts.get(piece, 0) + 1
    pieces = {_WORD_START: 0}
    for token in wordpiece:
        if not (token.startswith("[") and token.endswith("]")):
            piece = token[2:] if token.startswith("##") else _WORD_START + token
            pieces[piece] = counts.get(piece, 0)
    total = sum(pieces.values()) + len(pieces)
    scored = sorted(((p, math.log((c + 1) / total)) for p, c in pieces.items()), key=lambda pc: (-pc[1], pc[0]))
    # AlbertTokenizer hard-codes unk_id=1, so "<unk>" must be the second piece (as in albert-base-v2).
    specials = ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]
    return tuple([(s, 0.0) for s in specials] + scored)


def make_tokenizer(arch: str, *, add_prefix_space: bool = True):
    """The fast tokenizer of a tiny ``arch`` model (not saved). ``add_prefix_space`` applies to RoBERTa only."""
    from transformers import AlbertTokenizer, BertTokenizer, DistilBertTokenizer, RobertaTokenizer

    if arch in ("bert", "electra", "distilbert"):
        cls = DistilBertTokenizer if arch == "distilbert" else BertTokenizer
        return cls(vocab=dict(_wordpiece_vocab()), do_lower_case=True, model_max_length=MAX_POSITIONS)
    if arch == "roberta":
        vocab, merges = _bpe_vocab_merges()
        return RobertaTokenizer(vocab=dict(vocab), merges=list(merges), add_prefix_space=add_prefix_space,
                                model_max_length=MAX_POSITIONS - 2)   # positions start after the padding index
    if arch == "albert":
        return AlbertTokenizer(vocab=list(_unigram_vocab()), do_lower_case=True, model_max_length=MAX_POSITIONS)
    raise ValueError(f"unknown tiny architecture {arch!r}; expected one of {ARCHS}")


def make_config(arch: str, tokenizer):
    """A tiny config whose vocabulary and special-token ids match ``tokenizer``."""
    from transformers import AlbertConfig, BertConfig, DistilBertConfig, ElectraConfig, RobertaConfig

    common = dict(vocab_size=len(tokenizer), max_position_embeddings=MAX_POSITIONS,
                  pad_token_id=tokenizer.pad_token_id)
    bert_like = dict(hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                     intermediate_size=INTERMEDIATE, **common)
    if arch == "bert":
        return BertConfig(**bert_like)
    if arch == "electra":
        return ElectraConfig(embedding_size=ELECTRA_EMBEDDING, **bert_like)
    if arch == "albert":
        return AlbertConfig(embedding_size=ALBERT_EMBEDDING, bos_token_id=tokenizer.cls_token_id,
                            eos_token_id=tokenizer.sep_token_id, **bert_like)
    if arch == "roberta":
        return RobertaConfig(type_vocab_size=1, bos_token_id=tokenizer.bos_token_id,
                             eos_token_id=tokenizer.eos_token_id, **bert_like)
    if arch == "distilbert":
        return DistilBertConfig(dim=HIDDEN, n_layers=LAYERS, n_heads=HEADS, hidden_dim=INTERMEDIATE, **common)
    raise ValueError(f"unknown tiny architecture {arch!r}; expected one of {ARCHS}")


def make_tiny_model(arch: str, folder: Path, *, mlm_head: bool = True, add_prefix_space: bool = True) -> Path:
    """Build a tiny random ``arch`` encoder and its tokenizer, save both into ``folder`` and return it.

    With ``mlm_head`` the checkpoint is saved from ``AutoModelForMaskedLM`` (as hub checkpoints of these
    architectures are), so both ``AutoModel`` and ``AutoModelForMaskedLM`` load it fully; without it only the bare
    encoder is saved (like sentence-transformers checkpoints). ``add_prefix_space=False`` saves the RoBERTa
    tokenizer the way roberta-base ships it.
    """
    import torch
    from transformers import AutoModel, AutoModelForMaskedLM

    folder = Path(folder)
    tokenizer = make_tokenizer(arch, add_prefix_space=add_prefix_space)
    config = make_config(arch, tokenizer)
    torch.manual_seed(SEED)
    model = (AutoModelForMaskedLM if mlm_head else AutoModel).from_config(config)
    base = model.base_model
    if getattr(base, "pooler", False) is None:
        # Masked-LM classes build their encoder without the pooler; hub checkpoints (bert-base-uncased, ...)
        # still carry it. Save one, or AutoModel would initialise it randomly on every load.
        full = AutoModel.from_config(config)
        base.pooler = full.pooler
        if hasattr(full, "pooler_activation"):
            base.pooler_activation = full.pooler_activation
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
