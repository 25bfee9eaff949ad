"""Every classifier kind — transformer with a pooling head (single text and pairs), from scratch, Hugging Face,
multiple choice — satisfies one protocol: ``predict_proba(examples)`` rows that sum to 1, agreeing with
``predict``; pooling heads are registered classes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import probekit as pk
from probekit.classifiers.protocol import ProbabilisticClassifier
from probekit.core.examples import Example

TEXTS = ["The old teacher walked slowly to the village school.", "An unbelievably gigantic chrysanthemum!",
         "Nobody knew where the key had gone."]
PAIRS = [Example(words="The archaeologist photographed a garden .".split(),
                 words_b="The pilot noticed the small boat .".split()),
         Example(words="A dog barked .".split(), words_b="Nothing happened at all .".split())]


def _check(model, inputs, n_columns):
    assert isinstance(model, ProbabilisticClassifier)
    p = model.predict_proba(inputs)
    assert p.shape == (len(inputs), n_columns)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)
    assert (p >= 0).all() and len(set(np.round(p[:, 0], 6))) > 1 or len(inputs) == 1
    return p


@pytest.mark.parametrize("head", ["cls", "mean", "max", "attention", "attention-multi"])
def test_transformer_classifier_single_text_and_pairs(tiny_model_dirs, head):
    from probekit.classifiers.model import Classifier

    torch.manual_seed(0)
    clf = Classifier(pk.load_encoder(str(tiny_model_dirs["bert"])), ["a", "b", "c"], head=head).eval()
    examples = [Example(words=None, text=t) for t in TEXTS]
    p = _check(clf, examples, 3)
    frame = clf.predict(examples)
    np.testing.assert_allclose(frame[["p_a", "p_b", "p_c"]].to_numpy(), p, rtol=1e-6)
    assert frame["label"].tolist() == [clf.labels[i] for i in p.argmax(1)]
    _check(clf, PAIRS, 3)


def test_scratch_and_hugging_face_classifiers(tiny_model_dirs, tmp_path):
    from probekit.classifiers.scratch import ScratchClassifier
    from probekit.classifiers.vocab import Vocabulary
    from test_hf_classifier import make_hf_classifier

    examples = [Example(words=None, text=t) for t in TEXTS]
    torch.manual_seed(0)
    scratch = ScratchClassifier(Vocabulary.build(examples), ["neg", "pos"], encoder="lstm", embedding_dim=8,
                                hidden_dim=6).eval()
    _check(scratch, examples, 2)
    hf = pk.HFClassifier.load(str(make_hf_classifier(tiny_model_dirs["bert"], tmp_path / "hf")))
    p = _check(hf, examples, 2)
    np.testing.assert_allclose(hf.predict(examples)[["p_neg", "p_pos"]].to_numpy(), p, rtol=1e-6)


def test_multiple_choice_model(tiny_model_dirs):
    from probekit.corpora.multiple_choice import MCItem
    from probekit.classifiers.multiple_choice.model import MultipleChoiceModel

    items = [MCItem("The teacher walked to school.", "Who walked?", ["the teacher", "a cat", "nobody"], 0),
             MCItem("The river flows into the sea.", "Where?", ["up the hill", "into the sea"], 1)]
    model = MultipleChoiceModel(pk.load_encoder(str(tiny_model_dirs["bert"])), max_length=40, seed=3)
    p = _check(model, items, 3)
    assert p[1, 2] == 0.0                      # the second item has two options
    assert (p.argmax(1) == model.scores(items).argmax(1)).all()


def test_pooling_heads_are_registered_classes():
    from probekit.classifiers.pooling import HEAD_CLASSES, MeanHead, PoolingHead, make_head, register

    assert list(HEAD_CLASSES)[:5] == ["cls", "mean", "max", "attention", "attention-multi"]
    multi = make_head("attention-multi", 8, 2, n_heads=3)
    assert multi.heads == 3 and make_head("attention", 8, 2).heads == 1
    assert make_head("cls", 8, 2, model_type="distilbert").activation_name == "relu"

    @register
    class FirstUnit(PoolingHead):
        name = "first-unit-test"

        def pool(self, units, mask, cls):
            return units[:, 0], None, {}

    try:
        head = make_head("first-unit-test", 4, 2, dropout=0.0)
        units = torch.randn(2, 3, 4)
        logits, weights, extra = head(units, torch.ones(2, 3, dtype=torch.bool))
        assert torch.allclose(extra["pooled"], units[:, 0]) and logits.shape == (2, 2) and weights is None
    finally:
        HEAD_CLASSES.pop("first-unit-test")
    with pytest.raises(TypeError, match="implement pool"):
        register(type("Nothing", (MeanHead.__base__,), {"name": "nothing"}))
