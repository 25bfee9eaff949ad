"""Captum's Saliency, InputXGradient and DeepLift as registered attribution methods."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import probekit as pk
from probekit.attribution.attribute import attribute
from probekit.attribution.gradients import baseline_ids, embedding_gradients
from probekit.attribution.words import model_inputs, to_words
from probekit.classifiers.model import Classifier
from probekit.classifiers.scratch import ScratchClassifier
from probekit.classifiers.vocab import Vocabulary
from probekit.core.encoder import load_encoder
from probekit.core.errors import UserError
from probekit.core.examples import Example

TEXTS = ["The old teacher walked slowly to the village school.", "An unbelievably gigantic chrysanthemum!",
         "Nobody knew where the key had gone, so they searched the whole house."]
NEW = ["saliency", "input-x-gradient", "deeplift"]


def make(tiny_model_dirs, arch="bert", head="cls"):
    torch.manual_seed(0)
    return Classifier(load_encoder(str(tiny_model_dirs[arch])), ["neg", "pos"], head=head).eval()


def by_method(frame: pd.DataFrame, method: str) -> np.ndarray:
    return frame[frame["method"] == method]["score"].to_numpy()


def test_registered_with_their_options_and_checks(tiny_model_dirs):
    table = pk.list_methods().set_index("name")
    assert set(NEW) <= set(table.index)
    assert not table.loc["saliency", "signed"] and table.loc["saliency", "options"] == {"saliency_reduce": "sum"}
    assert table.loc["input-x-gradient", "signed"] and table.loc["deeplift", "convergence_delta"]
    assert table.loc["deeplift", "options"] == {"deeplift_baseline": "pad"}
    assert "not the paper's DeepLIFT" in table.loc["deeplift", "summary"]
    assert not any(table.loc[n, "default"] for n in NEW)
    clf = make(tiny_model_dirs)
    with pytest.raises(UserError, match="--saliency-reduce must be one of sum, max"):
        attribute(clf, TEXTS, methods=["saliency"], saliency_reduce="mean", quiet=True)
    with pytest.raises(UserError, match="--deeplift-baseline must be one of pad, zero"):
        attribute(clf, TEXTS, methods=["deeplift"], deeplift_baseline="unk", quiet=True)


@pytest.mark.parametrize("arch", ["bert", "roberta"])
def test_saliency_is_the_absolute_gradient_and_input_x_gradient_is_grad_input(tiny_model_dirs, arch):
    clf = make(tiny_model_dirs, arch)
    f = attribute(clf, TEXTS, methods=["gradient", "grad-input", "saliency", "input-x-gradient"], quiet=True).frame
    np.testing.assert_allclose(by_method(f, "input-x-gradient"), by_method(f, "grad-input"), rtol=1e-4, atol=1e-6)
    top = attribute(clf, TEXTS, methods=["saliency"], saliency_reduce="max", quiet=True).frame
    # by hand: |∂ logit_target / ∂ e| from the batch's own backward pass, per token L1 (or max), summed per word
    for b, text in enumerate(TEXTS):
        batch = clf.encode([Example(words=None, text=text)], warn=False)
        target = torch.tensor([f[f["example"] == b]["target"].iloc[0] == "pos"]).long()
        grad, _ = embedding_gradients(clf, batch, target)
        n = len(batch["words"][0])
        for scores, tokens in ((f[(f["method"] == "saliency") & (f["example"] == b)]["score"], grad.abs().sum(-1)),
                               (top[top["example"] == b]["score"], grad.abs().amax(-1))):
            want = to_words(tokens[0], batch["word_ids"][0], n, "sum")
            np.testing.assert_allclose(scores.to_numpy(), want, rtol=1e-4, atol=1e-7)
    assert np.abs(by_method(f, "saliency") - by_method(f, "gradient")).max() > 1e-4   # L1 of |g|, not L2 of g
    assert (by_method(f, "saliency") >= 0).all() and (by_method(f, "input-x-gradient") < 0).any()


class ModuleTanh(ScratchClassifier):
    """The ``average`` encoder with its tanh as an ``nn.Tanh`` module (the real one calls torch.tanh)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.act = nn.Tanh()

    def _encode_sequence(self, emb, mask):
        m = mask.unsqueeze(-1).to(emb.dtype)
        out = self.act(self.proj(self.input_dropout(emb))) * m
        return out, out.masked_fill(~mask.bool().unsqueeze(-1), 0.0).max(1).values


def _difference(clf, text, target, base_ids=None):
    batch = clf.encode([Example(words=None, text=text)], warn=False)
    inputs = model_inputs(batch)
    with torch.no_grad():
        fx = clf(**inputs)[0, target]
        fb = clf(**{**inputs, "input_ids": baseline_ids(clf, batch) if base_ids is None else base_ids})[0, target]
    return float(fx - fb)


def test_deeplift_sums_to_the_difference_where_captum_knows_every_nonlinearity():
    """Summation to delta (Shrikumar et al. §3.1): on an average-encoder, mean-pooling model whose only
    nonlinearity is an nn.Tanh module, Σ scores = F(x) − F(x′) and δ ≈ 0. The same model with a functional
    tanh (probekit's own ``--encoder average``) gets plain gradients through it: δ is not 0 and is reported."""
    examples = [Example(words=None, text=t, meta={"label": "pos"}) for t in TEXTS]
    vocab = Vocabulary.build(examples)
    torch.manual_seed(0)
    exact = ModuleTanh(vocab, ["neg", "pos"], encoder="average", head="mean", hidden_dim=16, embedding_dim=12)
    with torch.no_grad():
        for p in exact.parameters():
            p.mul_(4.0)                                          # tanh well outside its linear range
        exact.embedding_layer.weight[0] = 0
    plain = ScratchClassifier(vocab, ["neg", "pos"], encoder="average", head="mean", hidden_dim=16,
                              embedding_dim=12)
    plain.load_state_dict(exact.state_dict())
    for clf, complete in ((exact, True), (plain, False)):
        f = attribute(clf, TEXTS, methods=["deeplift"], quiet=True).frame
        for b, text in enumerate(TEXTS):
            rows = f[f["example"] == b]
            diff = _difference(clf, text, clf.labels.index(rows["target"].iloc[0]))
            assert rows["score"].sum() - rows["delta"].iloc[0] == pytest.approx(diff, rel=1e-4, abs=1e-6)
            if complete:
                assert abs(rows["delta"].iloc[0]) < 1e-5 * max(1.0, abs(diff)) and not rows["flagged"].iloc[0]
            else:
                assert abs(rows["delta"].iloc[0]) > 1e-3 * abs(diff)
    zero = attribute(exact, TEXTS, methods=["deeplift"], deeplift_baseline="zero", quiet=True).frame
    np.testing.assert_allclose(zero["score"], attribute(exact, TEXTS, methods=["deeplift"], quiet=True).frame["score"],
                               rtol=1e-5, atol=1e-7)                       # its [PAD] row is the zero vector


def hf_classifier(tiny_model_dirs):
    """A Hugging Face BertForSequenceClassification: its pooler's Tanh is reachable from two parents."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from probekit.classifiers.hf_model import HFClassifier

    torch.manual_seed(0)
    folder = str(tiny_model_dirs["bert"])
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2)
    return HFClassifier(model, AutoTokenizer.from_pretrained(folder))


@pytest.mark.parametrize("kind", ["probekit", "hf"])
def test_deeplift_on_a_transformer_reports_its_delta(tiny_model_dirs, kind):
    clf = make(tiny_model_dirs) if kind == "probekit" else hf_classifier(tiny_model_dirs)
    with torch.no_grad():                                   # a [PAD] row that is not the zero vector
        clf.embedding_layer.weight[clf.tokenizer.pad_token_id].normal_(0, 0.5)
    pad = attribute(clf, TEXTS, methods=["deeplift"], quiet=True).frame
    zero = attribute(clf, TEXTS, methods=["deeplift"], deeplift_baseline="zero", quiet=True).frame
    assert np.abs(pad["score"].to_numpy() - zero["score"].to_numpy()).max() > 1e-5
    for b, text in enumerate(TEXTS):
        rows = pad[pad["example"] == b]
        diff = _difference(clf, text, clf.labels.index(rows["target"].iloc[0]))
        assert rows["score"].sum() - rows["delta"].iloc[0] == pytest.approx(diff, rel=1e-3, abs=1e-5)
        assert rows["flagged"].iloc[0] == (abs(rows["delta"].iloc[0]) > 0.05 * abs(diff))


def test_the_new_methods_rank_words_for_eraser_and_the_attacks(tiny_model_dirs, tmp_path):
    import json

    rows = [{"words": "the old teacher walked to school".split() + [w], "label": lab, "rationale": [0] * 6 + [1]}
            for w, lab in (("good", "pos"), ("awful", "neg"), ("fine", "pos"), ("bad", "neg"))]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    clf = make(tiny_model_dirs)
    res = pk.faithfulness(clf, str(data), experiments=["eraser"], methods=NEW, ks=(50,), rationales=True,
                          quiet=True)
    assert {r["method"] for r in res.outcomes[0].ranking} == set(NEW) | {"random"}
    att = pk.attack(clf, str(data), attacks=["delete"], ks=[20], draws=1, method="deeplift", quiet=True)
    assert "delete-top" in set(att.frame["setting"])
