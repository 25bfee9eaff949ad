"""Encoders trained from scratch (lstm, cnn, average): training, the Classifier interface, saving, analyses."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

import probekit as pk
from probekit.classifiers.scratch import ScratchClassifier
from probekit.classifiers.vocab import Vocabulary
from probekit.core.examples import Example

POS, NEG = ["good", "great", "lovely", "superb"], ["bad", "awful", "dull", "boring"]
FILLER = "the a movie film was is quite very plot acting".split()
TINY = dict(embedding_dim=12, hidden_dim=8, epochs=6, lr=1e-2, quiet=True, baselines=False)


def sentiment(n: int, seed: int) -> list[Example]:
    """Five words, one of them carrying the label."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        positive = rng.random() < 0.5
        words = rng.sample(FILLER, 4) + [rng.choice(POS if positive else NEG)]
        rng.shuffle(words)
        out.append(Example(words=None, text=" ".join(words), meta={"label": "pos" if positive else "neg"}))
    return out


@pytest.fixture(scope="module")
def data():
    torch.set_num_threads(1)
    return sentiment(160, 0), sentiment(40, 1)


@pytest.fixture(scope="module")
def lstm(data, tmp_path_factory):
    result = pk.classify(*data, encoder="lstm", head="attention", **TINY)
    folder = tmp_path_factory.mktemp("lstm")
    result.write(folder, overwrite=True)
    return result, folder


@pytest.mark.parametrize("encoder,head", [("lstm", "max"), ("cnn", "attention"), ("average", "mean")])
def test_each_encoder_learns_the_keyword(data, encoder, head):
    result = pk.classify(*data, encoder=encoder, head=head, **TINY)
    assert result.accuracy("dev") >= 0.75          # majority class is ~0.5
    assert result.record["classifier"]["encoder_mode"] == encoder
    assert result.record["arguments"]["weight_decay"] == 1e-5


def test_lstm_learns_and_attends_to_the_keyword(lstm, data):
    result, _ = lstm
    assert result.accuracy("dev") >= 0.9
    clf = result.classifier
    batch = clf.encode(data[1][:8])
    _, alpha, extra = clf.forward_with_weights(**{k: v for k, v in batch.items() if k != "words"})
    assert torch.allclose(alpha.sum(1), torch.ones(8), atol=1e-6)
    top = [batch["words"][b][int(alpha[b].argmax())] for b in range(8)]
    assert sum(w in POS + NEG for w in top) >= 6


def test_logits_do_not_depend_on_batch_padding(lstm):
    clf = lstm[0].classifier
    short = Example(words=None, text="a good film")
    long = Example(words=None, text="the movie was quite very boring plot acting the a")
    alone = clf(**{k: v for k, v in clf.encode([short]).items() if k != "words"})
    padded = clf(**{k: v for k, v in clf.encode([short, long]).items() if k != "words"})
    assert torch.allclose(alone[0], padded[0], atol=1e-5)


def test_saved_and_loaded_with_its_vocabulary(lstm, data):
    result, folder = lstm
    assert (folder / "vocabulary.json").is_file() and (folder / "classifier.safetensors").is_file()
    loaded = pk.load_classifier(folder)
    assert isinstance(loaded, ScratchClassifier) and loaded.vocab.itos == result.classifier.vocab.itos
    a = result.classifier.predict(data[1])
    b = loaded.predict(data[1])
    assert np.allclose(a["p_pos"], b["p_pos"], atol=1e-6)
    again = pk.classify(dev=data[1], test=data[1], load=str(folder), quiet=True)
    assert again.accuracy("test") == pytest.approx(result.accuracy("dev"))


def test_vocabulary_min_count_max_size_and_unknown():
    exs = [Example(words=None, text="A a a b b c")]
    v = Vocabulary.build(exs, min_count=2)
    assert v.itos == ["<pad>", "<unk>", "a", "b"]
    assert v.ids(["A", "c", "zzz"]) == [2, 1, 1]
    assert Vocabulary.build(exs, max_size=3).itos == ["<pad>", "<unk>", "a"]


def test_attribution_methods_and_ig_completeness(lstm, data):
    _, folder = lstm
    res = pk.attribute(folder, data=data[1][:3], quiet=True)
    methods = set(res.frame["method"])
    assert methods == {"pooling", "gradient", "grad-input", "integrated-gradients", "occlusion"}
    with pytest.raises(pk.UserError, match="needs an encoder"):
        pk.attribute(folder, data=data[1][:1], methods=["attention-rollout"], quiet=True)
    # completeness: Σ IG over the words = F(x) − F(padding baseline) up to δ
    clf = pk.load_classifier(folder)
    ex = data[1][0]
    ig = res.frame[(res.frame["method"] == "integrated-gradients") & (res.frame["example"] == 0)]
    target = clf.labels.index(ig["target"].iloc[0])
    batch = {k: v for k, v in clf.encode([ex]).items() if k != "words"}
    with torch.no_grad():
        fx = clf(**batch)[0, target]
    base = dict(batch, input_ids=torch.zeros_like(batch["input_ids"]))
    with torch.no_grad():
        fb = clf(**base)[0, target]
    assert ig["score"].sum() == pytest.approx(float(fx - fb), abs=0.02 * abs(float(fx - fb)) + 1e-4)


def test_faithfulness_runs_on_the_bilstm(lstm, data):
    _, folder = lstm
    res = pk.faithfulness(folder, data=data[1][:12], experiments=["tau", "uniform", "diagnostic"], train=data[0],
                          dev=data[1], quiet=True, epochs=2)
    assert not res.record["skipped"]
    tau = res.frame[res.frame["experiment"] == "tau"]
    assert len(tau)


def snli(n: int, seed: int) -> list[Example]:
    """Pairs whose label is decided by the hypothesis's last word and a premise word."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        label = rng.choice(["entailment", "neutral", "contradiction"])
        cue = {"entailment": "yes", "neutral": "maybe", "contradiction": "no"}[label]
        premise = rng.sample(FILLER, 4)
        out.append(Example(words=premise, words_b=rng.sample(FILLER, 2) + [cue], meta={"label": label}))
    return out


def test_pairs_three_classes_units_are_the_premise():
    torch.set_num_threads(1)
    result = pk.classify(snli(150, 0), snli(30, 1), encoder="lstm", head="attention", **TINY)
    clf = result.classifier
    assert clf.pairs and clf.n_classes == 3 and result.accuracy("dev") >= 0.8
    batch = clf.encode(snli(2, 5))
    assert [len(w) for w in batch["words"]] == [4, 4]
    _, alpha, _ = clf.forward_with_weights(**{k: v for k, v in batch.items() if k != "words"})
    assert alpha.shape == (2, 4)


def test_wiegreffe_pinter_retrain_the_whole_model(lstm, data):
    from probekit.classifiers.scratch_train import retrain
    from probekit.evaluation.wiegreffe_pinter.common import UniformHead

    clf = pk.load_classifier(lstm[1])
    head = UniformHead(clf.head.dim, clf.n_classes)
    model = retrain(clf, head, data[0], data[1], seed=3, epochs=2)
    assert model.head is head and model.vocab is clf.vocab
    assert not torch.equal(model.embedding_layer.weight, clf.embedding_layer.weight)   # encoder retrained too
    batch = {k: v for k, v in model.encode(data[1][:2]).items() if k != "words"}
    _, alpha, _ = model.forward_with_weights(**batch)
    assert torch.allclose(alpha[0, :5], torch.full((5,), 0.2))


def test_wiegreffe_pinter_adversary_and_diagnostic_train_whole_models(lstm, data):
    from probekit.classifiers.metrics import label_ids
    from probekit.evaluation.wiegreffe_pinter import whole as wp_whole

    clf = pk.load_classifier(lstm[1])
    train, dev = data
    a_base, p_base = wp_whole.outputs(clf, train, 8)
    assert torch.allclose(a_base.sum(1), torch.ones(len(train), dtype=torch.float64))
    model, losses = wp_whole.adversary(clf, train, a_base, p_base, 0.0, seed=1, epochs=4, patience=10)
    assert len(losses) == 4 and losses[-1] < losses[0]                 # trained on ½·TVD to the base model
    assert model.encoder_mode == "lstm" and model.config() == clf.config()
    assert not torch.equal(model.embedding_layer.weight, clf.embedding_layer.weight)   # a whole fresh model

    imposed = {"train": a_base, "dev": wp_whole.outputs(clf, dev, 8)[0]}
    y_train, y_dev = label_ids(train, clf.labels, "train"), label_ids(dev, clf.labels, "dev")
    diag = wp_whole.diagnostic(clf, "imposed", train, dev, y_train, y_dev, seed=2, epochs=2, imposed=imposed)
    assert diag.encoder_mode == "average" and diag.hidden_dim == wp_whole.HIDDEN
    a_dev, p_dev = wp_whole.outputs(diag, dev, 8, imposed["dev"])
    assert torch.allclose(a_dev, imposed["dev"], atol=1e-6)              # pooled with exactly the given α
    uniform = wp_whole.diagnostic(clf, "uniform", train, dev, y_train, y_dev, seed=2, epochs=1)
    assert uniform.kept_epoch == 1 and diag.kept_epoch == 2        # the classifiers' rule: never epoch 1 of 2+
    a_u, _ = wp_whole.outputs(uniform, dev[:1], 8)
    assert torch.allclose(a_u[0, :5], torch.full((5,), 0.2, dtype=torch.float64))

    f = pk.faithfulness(lstm[1], data=dev[:10], train=train, dev=dev, experiments=["e2e-adversary", "diagnostic"],
                        lambdas=(0.1,), adversary_epochs=2, epochs=2, quiet=True)
    q = set(f.frame["quantity"])
    assert {"macro-F1, base weights", "macro-F1, adversary weights", "macro-F1, uniform weights"} <= q

    from types import SimpleNamespace

    from probekit.evaluation.wiegreffe_pinter.retrain import TRAINING, TRAINING_WHOLE, training
    assert training(SimpleNamespace(classifier=clf)) == TRAINING_WHOLE            # said where uniform/seeds show
    assert training(SimpleNamespace(classifier=SimpleNamespace())) == TRAINING


def test_attack_and_eraser_run_on_the_bilstm(lstm, data):
    _, folder = lstm
    dev = [Example(words=None, text=ex.text, meta=dict(ex.meta, rationale=[int(w in POS + NEG)
                                                                           for w in ex.text.split()]))
           for ex in data[1][:12]]
    att = pk.attack(folder, data=dev, quiet=True, draws=1)
    f = att.frame
    deleted = f[(f["metric"] == "accuracy") & f["setting"].astype(str).str.contains("delete")]
    intact = float(f[(f["metric"] == "accuracy") & (f["setting"] == "intact")]["value"].iloc[0])
    assert len(deleted) and deleted["value"].min() < intact      # deleting the key words hurts
    er = pk.faithfulness(folder, data=dev, experiments=["eraser"], rationales=True, quiet=True)
    plaus = er.frame[er.frame["quantity"].str.startswith("token F1 (macro): first tier")]
    assert float(plaus["value"].iloc[0]) > 0.5                      # the model's evidence is the keyword


def test_a_pair_given_to_a_single_text_model_is_one_error(lstm):
    clf = lstm[0].classifier
    with pytest.raises(pk.UserError, match="a pair"):
        clf.encode([Example(words=["a", "film"], words_b=["good"], meta={"source": "x.jsonl:3"})])


def test_kept_epoch_is_jain_wallace_best_dev_auc_after_the_first(lstm):
    result, folder = lstm
    hist = result.history
    assert "dev_auc" in hist.columns and hist.attrs["selection"] == "dev_auc"
    later = hist[hist["epoch"] > 1]
    best = later.sort_values(["dev_auc", "dev_loss"], ascending=[False, True]).iloc[0]["epoch"]
    assert hist.loc[hist["best"], "epoch"].tolist() == [best]
    record = result.record
    assert record["best_epoch"] == best and record["selection"]["measure"] == "dev_auc"
    assert record["arguments"]["dropout"] == 0.0 and result.classifier.input_dropout.p == 0.0


def test_dev_auc_is_roc_auc_of_the_class_1_score():
    from sklearn.metrics import roc_auc_score

    from probekit.classifiers.scratch_train import dev_auc, selection

    rng = np.random.default_rng(0)
    logits, y = rng.normal(size=(50, 2)), rng.integers(0, 2, 50)
    p1 = np.exp(logits[:, 1]) / np.exp(logits).sum(1)
    assert dev_auc(logits, y) == pytest.approx(roc_auc_score(y, p1))
    assert selection(2, y) == "dev_auc"
    assert selection(3, [0, 1, 2]) == selection(2, [1, 1]) == "dev_accuracy"   # SNLI; one-class dev


def test_three_classes_keep_the_best_dev_accuracy():
    from probekit.classifiers.scratch_train import train_scratch

    rng = random.Random(4)
    exs = [Example(words=None, text=f"{w} the film", meta={"label": w}) for w in rng.choices(["x", "y", "z"], k=60)]
    vocab = Vocabulary.build(exs)
    clf = ScratchClassifier(vocab, ["x", "y", "z"], encoder="average", embedding_dim=6, hidden_dim=4)
    y = [["x", "y", "z"].index(e.meta["label"]) for e in exs]
    hist, _, _ = train_scratch(clf, {"train": exs, "dev": exs[:30]}, {"train": y, "dev": y[:30]}, epochs=3,
                               lr=1e-2, batch_size=8, weight_decay=1e-5, seed=0)
    assert hist.attrs["selection"] == "dev_accuracy" and "dev_auc" not in hist.columns
    later = hist[hist["epoch"] > 1]
    kept = hist.loc[hist["best"]].iloc[0]
    assert kept["epoch"] > 1 and kept["dev_accuracy"] == later["dev_accuracy"].max()
    one, _, _ = train_scratch(clf, {"train": exs, "dev": exs[:30]}, {"train": y, "dev": y[:30]}, epochs=1,
                              lr=1e-2, batch_size=8, weight_decay=1e-5, seed=0)
    assert one["best"].tolist() == [True]          # a single epoch is kept although Jain & Wallace skip it


def test_jain_wallace_optimizer_amsgrad_and_no_decay_on_attention(lstm):
    from probekit.classifiers.scratch_train import jw_optimizer

    clf = lstm[0].classifier
    opt = jw_optimizer(clf)
    assert all(g["amsgrad"] and g["fused"] for g in opt.param_groups)
    decay = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert decay[id(clf.head.W.weight)] == decay[id(clf.head.v.weight)] == 0.0
    assert decay[id(clf.head.out.weight)] == decay[id(clf.embedding_layer.weight)] == 1e-5
    assert len(decay) == sum(1 for p in clf.parameters() if p.requires_grad)


def test_bilstm_over_padding_equals_the_packed_sequence():
    from torch import nn

    torch.manual_seed(0)
    exs = [Example(words=None, text=" ".join(f"w{i % 17}" for i in range(n))) for n in (1, 3, 7, 12, 5, 30, 2)]
    clf = ScratchClassifier(Vocabulary.build(exs), ["a", "b"], encoder="lstm", embedding_dim=10, hidden_dim=6)
    clf.train()                                  # the training path too (no dropout inside the LSTM)
    batch = clf.encode(exs)
    emb = clf.embedding_layer(batch["input_ids"])
    mask = batch["attention_mask"].bool()
    out, last = clf._encode_sequence(emb, mask)
    packed = nn.utils.rnn.pack_padded_sequence(emb, mask.sum(1), batch_first=True, enforce_sorted=False)
    ref, (h, _) = clf.rnn(packed)
    ref, _ = nn.utils.rnn.pad_packed_sequence(ref, batch_first=True, total_length=emb.shape[1])
    assert torch.allclose(out, ref * mask.unsqueeze(-1), atol=1e-6)
    assert torch.allclose(last, torch.cat([h[0], h[1]], -1), atol=1e-6)
    g1 = torch.autograd.grad(out.sum() + last.sum(), clf.rnn.weight_hh_l0_reverse)[0]
    g2 = torch.autograd.grad((ref * mask.unsqueeze(-1)).sum() + h.sum(), clf.rnn.weight_hh_l0_reverse)[0]
    assert torch.allclose(g1, g2, atol=1e-5)


def test_fused_adam_takes_the_per_parameter_loop_steps(lstm, data):
    import copy

    from probekit.classifiers.scratch_train import jw_optimizer

    models = [copy.deepcopy(lstm[0].classifier).train() for _ in range(2)]
    opts = [jw_optimizer(m) for m in models]
    for group in opts[1].param_groups:
        group["fused"] = False                       # torch's default CPU Adam, one parameter at a time
    batch = {k: v for k, v in models[0].encode(data[0][:16]).items() if k != "words"}
    y = torch.tensor([int(e.meta["label"] == "pos") for e in data[0][:16]])
    for _ in range(3):
        for m, opt in zip(models, opts):
            loss = torch.nn.functional.cross_entropy(m(**batch), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    for (name, a), (_, b) in zip(models[0].named_parameters(), models[1].named_parameters()):
        assert torch.allclose(a, b, atol=1e-6), name
    moved = models[0].head.W.weight - lstm[0].classifier.head.W.weight
    assert moved.abs().max() > 1e-4                   # the steps did something


def test_dev_auc_of_non_finite_logits_is_nan():
    from probekit.classifiers.scratch_train import dev_auc

    assert np.isnan(dev_auc(np.array([[0.0, np.nan], [0.0, 1.0]]), [0, 1]))


def test_a_diverged_epoch_never_beats_a_finite_one_and_ties_go_to_the_lower_dev_loss():
    from probekit.classifiers.scratch_train import better

    assert better((0.7, -0.5), None)
    assert not better((math.nan, -0.1), (0.6, -0.9)) and better((0.6, -0.9), (math.nan, -0.1))
    assert better((0.8, -0.9), (0.7, -0.1)) and not better((0.7, -0.3), (0.7, -0.2))
