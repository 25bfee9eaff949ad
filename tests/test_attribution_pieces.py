"""Deletion variants assembled from cached word pieces give exactly the tokenizer's inputs (attribution.pieces)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from probekit.attribution import occlusion
from probekit.attribution.pieces import Pieces, template
from probekit.classifiers.model import Classifier
from probekit.core.encoder import load_encoder
from probekit.core.examples import Example
from probekit.evaluation.eraser.experiment import Unit

SENTENCES = [
    "The naïve café-owner said : 'ÉTÉ' was well-known , 3.14 % of Straße !!".split(),
    "it 's a charming and often affecting journey .".split(),
    ["unbelievably", "gigantic", "chrysanthemum", "¿", "Qué", "tal", "?"],
    ["one"],
]
PAIR = (["A", "man", "plays", "guitar", "."], ["Someone", "makes", "music", "!"])


def variants(rng) -> list[Example]:
    """Every sentence with random word subsets kept (ERASER's deletions, occlusion's leave-one-out), and pairs."""
    out = []
    for words in SENTENCES:
        unit = Unit(Example(words=words), words)
        out += [unit.keep(range(unit.n))] + [unit.keep([j for j in range(unit.n) if j != i]) for i in range(unit.n)]
        out += [unit.keep(rng.choice(unit.n, size=rng.integers(1, unit.n + 1), replace=False)) for _ in range(5)]
    pair = Unit(Example(words=PAIR[0], words_b=PAIR[1]), PAIR[0] + PAIR[1])
    out += [pair.keep(rng.choice(pair.n, size=k, replace=False)) for k in range(2, pair.n + 1)]
    return [e for e in out if e.words and (e.words_b is None or e.words_b)]


def assert_same(clf, examples):
    want = clf.encode(examples, warn=False)
    got = Pieces(clf).encode(examples)
    assert got.keys() == want.keys()
    for k in want:
        if isinstance(want[k], torch.Tensor):
            assert torch.equal(got[k], want[k]), k
        else:
            assert got[k] == want[k], k


def classifier(folder):
    torch.manual_seed(0)
    return Classifier(load_encoder(str(folder)), ["neg", "pos"], head="attention", level="word").eval()


def test_assembled_variants_equal_the_tokenizers_for_every_tiny_architecture(tiny_model_dir, monkeypatch):
    clf = classifier(tiny_model_dir)
    assert template(clf.tokenizer) is not None          # WordPiece, BPE with Ġ, Unigram with ▁: all assemble
    examples = variants(np.random.default_rng(0))
    assert_same(clf, examples)
    # and the tokenizer really was not asked: every variant here is assembled from pieces
    monkeypatch.setattr(clf, "tokenize", lambda *a, **k: pytest.fail("re-tokenised a variant"))
    Pieces(clf).encode(examples)


def test_assembled_variants_equal_the_tokenizers_for_the_bundled_model(default_model_path):
    assert_same(classifier(default_model_path), variants(np.random.default_rng(1)))


def test_what_cannot_be_assembled_goes_through_the_tokenizer(tiny_model_dirs):
    clf = classifier(tiny_model_dirs["bert"])
    long = ["word"] * 200                                 # past the 64-token limit: truncated by the tokenizer
    soft = ["a", "\u00ad", "b"]                           # a lone soft hyphen has no piece: read as [UNK]
    examples = [Example(words=long), Example(words=soft), Example(words=["fine", "words"])]
    assert_same(clf, examples)
    assert clf.encode(examples[:1], warn=False)["input_ids"].shape[1] == 64


def test_a_bpe_without_prefix_space_still_gives_the_tokenizers_ids(tmp_path):
    from tiny_models import make_tiny_model

    clf = classifier(make_tiny_model("roberta", tmp_path / "roberta", add_prefix_space=False))
    assert_same(clf, variants(np.random.default_rng(2)))


class FirstWordMarked:
    """A tokenizer whose first word is encoded differently from the others (as a BPE that marks only the
    sentence start would): its pieces depend on position, so they cannot be cached per word."""

    is_fast = True

    def __init__(self, tok):
        self.tok = tok

    def __getattr__(self, name):
        return getattr(self.tok, name)

    def __call__(self, a, b=None, **kw):
        if a and isinstance(a[0], str):
            a = ["x" + a[0]] + list(a[1:])
        else:
            a = [["x" + w[0]] + list(w[1:]) for w in a]
        return self.tok(a, b, **kw)


def test_a_tokenizer_with_position_dependent_pieces_is_not_assembled(tiny_model_dirs):
    tok = classifier(tiny_model_dirs["bert"]).tokenizer
    assert template(tok) is not None
    assert template(FirstWordMarked(tok)) is None        # the probe saw "world" alone differ from "world" later


def test_occlusion_scores_are_the_same_either_way(tiny_model_dirs, monkeypatch):
    from probekit.attribution.attribute import attribute

    clf = classifier(tiny_model_dirs["albert"])
    texts = ["The naïve café-owner said 'ÉTÉ' was well-known.", "it's a charming and often affecting journey"]
    fast = attribute(clf, texts, methods=["occlusion"], quiet=True).frame["score"].to_numpy()
    monkeypatch.setattr(occlusion, "ASSEMBLE", False)
    slow = attribute(clf, texts, methods=["occlusion"], quiet=True).frame["score"].to_numpy()
    np.testing.assert_allclose(fast, slow, atol=1e-6)
