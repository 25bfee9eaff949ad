"""Classifiers: pooling-head masking, word pooling, save → load, seeds, the cache, readers and bad input."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import probekit as pk
from probekit.corpora.labelled import read_file, read_named
from probekit.classifiers.pooling import make_head, masked_max
from probekit.classifiers.model import Classifier
from probekit.core.encoder import load_encoder
from probekit.core.errors import UserError
from probekit.core.examples import Example

POS = "good great wonderful lovely happy".split()
NEG = "bad awful terrible sad boring".split()
FILL = "the old teacher walked to the village school every morning".split()


def _rows(n: int, seed: int):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        label = rng.choice(["pos", "neg"])
        words = rng.sample(FILL, rng.randint(3, 8))
        words.insert(rng.randrange(len(words) + 1), rng.choice(POS if label == "pos" else NEG))
        out.append((" ".join(words), label))
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("classify_data")
    files = {}
    for name, n, seed in (("train", 60, 1), ("dev", 20, 2), ("test", 20, 3)):
        rows = _rows(n, seed)
        p = root / f"{name}.jsonl"
        p.write_text("".join(json.dumps({"text": t, "label": l}) + "\n" for t, l in rows), encoding="utf-8")
        files[name] = p
        q = root / f"{name}.tsv"
        q.write_text("".join(f"{t}\t{l}\n" for t, l in rows), encoding="utf-8")
        files[f"{name}_tsv"] = q
    return files


@pytest.fixture(scope="module")
def bert(tiny_model_dirs):
    return str(tiny_model_dirs["bert"])


def _opts(tmp_path, model, **kw):
    return dict(model=model, cache_dir=str(tmp_path / "cache"), quiet=True, epochs=3, **kw)


# --- heads ----------------------------------------------------------------------------------------------------

def _padded(dtype=torch.float32):
    torch.manual_seed(0)
    units = torch.randn(3, 6, 8).to(dtype)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]], dtype=torch.bool)
    units[~mask] = 50.0          # padding rows that would dominate any pooling that looked at them
    return units, mask


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("kind", ["attention", "attention-multi"])
def test_attention_weights_sum_to_one_over_real_units_and_zero_on_padding(kind, dtype):
    torch.manual_seed(0)
    head = make_head(kind, 8, 3, n_heads=3).to(dtype).eval()
    units, mask = _padded(dtype)
    logits, alpha, extra = head(units, mask)
    assert alpha.dtype == dtype and torch.isfinite(logits).all()
    assert torch.allclose(alpha.float().sum(1), torch.ones(3), atol=1e-3)
    assert (alpha[~mask] == 0).all()
    if kind == "attention-multi":
        hw = extra["head_weights"]
        assert hw.shape == (3, 3, 6)
        assert torch.allclose(hw.float().sum(-1), torch.ones(3, 3), atol=1e-3)
        assert (hw.permute(0, 2, 1)[~mask] == 0).all()
    # the pooled vector ignores padding: changing padded rows changes nothing
    units2 = units.clone()
    units2[~mask] = -7.0
    assert torch.equal(head(units2, mask)[0], logits)


def test_attention_row_without_real_units_is_zero_not_nan():
    head = make_head("attention", 4, 2).eval()
    alpha = head(torch.randn(2, 3, 4), torch.tensor([[1, 1, 0], [0, 0, 0]], dtype=torch.bool))[1]
    assert torch.isfinite(alpha).all() and alpha[1].abs().sum() == 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_max_pooling_ignores_padding_and_argmax_credits_sum_to_pooled(dtype):
    units, mask = _padded(dtype)
    values, index = masked_max(units, mask)
    lengths = mask.sum(1)
    assert (index < lengths[:, None]).all()
    ref = torch.stack([units[b, :lengths[b]].max(0).values for b in range(3)])
    assert torch.equal(values, ref)
    scores = torch.zeros(3, 6, dtype=torch.float64).scatter_add_(1, index, values.double())
    assert torch.allclose(scores.sum(1), values.double().sum(1))
    head = make_head("max", 8, 2).to(dtype).eval()
    logits, weights, extra = head(units, mask)
    assert weights is None and torch.equal(extra["argmax"], index)


def test_mean_head_ignores_padding():
    units, mask = _padded()
    head = make_head("mean", 8, 2).eval()
    pooled = head(units, mask)[2]["pooled"]
    assert torch.allclose(pooled[1], units[1, :3].mean(0))


# --- the classifier's own forward pass -----------------------------------------------------------------------

def test_word_units_equal_the_cached_word_vectors(bert):
    """Live word pooling = core.alignment's (the cache's) pooling, so a head trained on cached vectors sees the
    same numbers in forward(); special tokens are not units and padding weights are 0."""
    from probekit.core.extraction import extract
    from tiny_models import SPLIT_SENTENCE

    enc = load_encoder(bert)
    clf = Classifier(enc, ["a", "b"], head="attention")
    examples = [Example(words=list(SPLIT_SENTENCE)), Example(words=None, text="the old teacher walked"),
                Example(words=["a", "dog"], words_b=["the", "cat", "sat"])]
    batch = clf.encode(examples)
    with torch.no_grad():
        units, mask, _ = clf.units(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"),
                                   batch["word_ids"])
        alpha = clf.forward_with_weights(**batch)[1]
    acts = {a.index: a for a in extract(enc, examples, dtype="float32")}
    for b, ex in enumerate(examples):
        act = acts[b]
        words = act.hidden[enc.num_layers][~act.special]
        n = len(words)
        assert batch["words"][b] == [u for u, s in zip(act.units, act.special) if not s]
        assert torch.allclose(units[b, :n], torch.from_numpy(words), atol=1e-5)
        assert mask[b, :n].all() and not mask[b, n:].any()
        assert abs(float(alpha[b].sum()) - 1) < 1e-5 and (alpha[b, n:] == 0).all()
    assert batch["words"][2] == ["a", "dog", "the", "cat", "sat"]


def test_token_level_units_are_the_real_sub_tokens(bert):
    enc = load_encoder(bert)
    clf = Classifier(enc, ["a", "b"], head="attention", level="token")
    batch = clf.encode([Example(words=["unbelievably", "gigantic"])])
    n_real = int((batch["word_ids"] >= 0).sum())
    alpha = clf.forward_with_weights(**batch)[1]
    assert alpha.shape == (1, n_real) and len(batch["words"][0]) == n_real > 2
    # word_ids left out: every real token is a unit, the same as token level
    assert torch.allclose(clf(batch["input_ids"], batch["attention_mask"]),
                          clf(**{k: v for k, v in batch.items() if k != "words"}))


# --- training, saving, loading -------------------------------------------------------------------------------

def test_save_load_gives_identical_logits(tmp_path, data, bert):
    result = pk.classify(data["train"], data["dev"], data["test"], head="attention", **_opts(tmp_path, bert))
    out = result.write(tmp_path / "run")
    clf = pk.load_classifier(out)
    assert isinstance(clf, torch.nn.Module) and clf.labels == ["neg", "pos"] and clf.head_type == "attention"
    examples = read_file(data["test"], what="--test")
    batch = clf.encode(examples)
    batch.pop("words")
    with torch.no_grad():
        assert torch.equal(clf(**batch), result.classifier.eval()(**batch))
    saved = json.loads((out / "classifier.json").read_text())
    assert saved["label2id"] == {"neg": 0, "pos": 1}
    assert not any(p.suffix in (".pt", ".pkl", ".bin") for p in out.rglob("*"))
    # evaluating the saved classifier reproduces the run's test accuracy (within float16 cache rounding)
    again = pk.classify(load=out, test=data["test"], quiet=True)
    assert abs(again.accuracy("test", "attention") - result.accuracy("test")) <= 0.05


@pytest.mark.parametrize("arch", ["bert", "roberta", "distilbert", "albert", "electra"])
def test_finetuned_cls_classifier_loads_as_hf_sequence_classification(tmp_path, data, tiny_model_dirs, arch):
    from transformers import AutoModelForSequenceClassification

    result = pk.classify(data["train"], data["dev"], None, head="cls", finetune=True, model=str(tiny_model_dirs[arch]),
                         epochs=1, quiet=True, baselines=False, seed=1)
    out = result.write(tmp_path / "run")
    clf = pk.load_classifier(out)
    hf = AutoModelForSequenceClassification.from_pretrained(out / "encoder").eval()
    assert hf.config.id2label == {0: "neg", 1: "pos"}
    batch = clf.encode(read_file(data["dev"], what="--dev")[:6])
    batch.pop("words")
    batch.pop("word_ids")
    with torch.no_grad():
        ours = clf(**batch)
        theirs = hf(**batch).logits
        trained = result.classifier.eval()(**batch)
    assert torch.allclose(ours, theirs, atol=1e-5)
    assert torch.equal(ours, trained)


def test_same_seed_same_results_csv_and_facade_equals_cli(tmp_path, data, bert):
    from probekit.classify import main

    argv = ["--train", str(data["train"]), "--dev", str(data["dev"]), "--test", str(data["test_tsv"]),
            "--model", bert, "--cache-dir", str(tmp_path / "cache"), "--head", "max", "--epochs", "3",
            "--seed", "3", "--quiet"]
    assert main(argv + ["--out", str(tmp_path / "a")]) == 0
    assert main(argv + ["--out", str(tmp_path / "b")]) == 0
    a = (tmp_path / "a" / "results.csv").read_bytes()
    assert a == (tmp_path / "b" / "results.csv").read_bytes()
    frame = pk.classify(str(data["train"]), str(data["dev"]), str(data["test_tsv"]), head="max", seed=3,
                        **_opts(tmp_path, bert)).frame
    cli = pd.read_csv(tmp_path / "a" / "results.csv")
    pd.testing.assert_frame_equal(pd.read_csv(pd.io.common.StringIO(frame.to_csv(index=False, float_format="%.6g"))),
                                  cli)
    assert set(cli["probe"]) == {"max", "tfidf-logreg", "majority", "frozen-mean-logreg",
                                 "max vs frozen-mean-logreg"}
    assert {"accuracy", "macro_f1", "f1", "loss"} <= set(cli["metric"])
    assert (tmp_path / "a" / "confusion.csv").is_file() and (tmp_path / "a" / "learning_curve.png").is_file()
    other = pk.classify(str(data["train"]), str(data["dev"]), str(data["test_tsv"]), head="max", seed=4,
                        **_opts(tmp_path, bert)).frame
    assert not other.equals(frame)


def test_second_frozen_head_makes_no_model_call(tmp_path, data, bert, monkeypatch):
    import transformers

    pk.classify(data["train"], data["dev"], head="attention", **_opts(tmp_path, bert))

    def refuse(*args, **kwargs):
        raise AssertionError("the model was called although the word vectors are cached")

    monkeypatch.setattr(transformers.PreTrainedModel, "__call__", refuse)
    for head in ("mean", "cls", "attention-multi"):
        r = pk.classify(data["train"], data["dev"], head=head, baselines=False, **_opts(tmp_path, bert))
        assert r.accuracy("dev", head) >= 0
    # --encoder none pools the input embeddings: a table lookup, never a model call, even uncached
    r = pk.classify(data["train"], data["dev"], head="max", encoder="none", baselines=False,
                    **_opts(tmp_path, bert, no_cache=True))
    assert r.classifier.encoder is None and r.classifier.layer is None


def test_frozen_head_learns_a_keyword_task(tmp_path, tiny_model_dirs):
    """One keyword decides the label: attention pooling over the (random) input embeddings must find it.

    Its own, larger data: the tiny tokenizer's vocabulary is trained afresh in every test session, so on 20 dev
    sentences one unlucky split of a keyword moved the accuracy by 0.05 from run to run."""
    files = {}
    for name, n, seed in (("train", 240, 11), ("dev", 80, 12)):
        files[name] = tmp_path / f"{name}.jsonl"
        files[name].write_text("".join(json.dumps({"text": t, "label": l}) + "\n" for t, l in _rows(n, seed)),
                               encoding="utf-8")
    r = pk.classify(files["train"], files["dev"], head="attention", encoder="none", epochs=30, lr=1e-2,
                    batch_size=16,
                    **{k: v for k, v in _opts(tmp_path, str(tiny_model_dirs["bert"])).items() if k != "epochs"})
    assert r.accuracy("dev") >= r.accuracy("dev", "majority") + 0.3


# --- readers and bad input -------------------------------------------------------------------------------------

def test_readers_jsonl_tsv_csv(tmp_path):
    j = tmp_path / "d.jsonl"
    j.write_text('{"text": "a  good film", "label": 1}\n\n'
                 '{"words": ["so", "bad"], "label": "0", "rationale": [0, 1]}\n'
                 '{"text": "a man sleeps", "text_b": "a person rests", "label": "entailment"}\n', encoding="utf-8")
    ex = read_file(j)
    assert [e.meta["label"] for e in ex] == ["1", "0", "entailment"]
    assert ex[0].text == "a good film" and ex[1].words == ["so", "bad"] and ex[1].meta["rationale"] == [0, 1]
    assert ex[2].words == ["a", "man", "sleeps"] and ex[2].words_b == ["a", "person", "rests"]
    assert ex[1].meta["source"] == f"{j}:3"
    t = tmp_path / "d.tsv"
    t.write_text("text\tlabel\ngreat\u0085 stuff\tpos\r\nawful\tneg\n", encoding="utf-8")
    ex = read_file(t)
    # NEL (U+0085) inside a line is whitespace, not a line break: two examples, not three
    assert [(e.text, e.meta["label"]) for e in ex] == [("great stuff", "pos"), ("awful", "neg")]
    t2 = tmp_path / "e.txt"
    t2.write_text("great\tpos\nawful\tneg\n", encoding="utf-8")
    assert [e.meta["label"] for e in read_file(t2)] == ["pos", "neg"]
    c = tmp_path / "d.csv"
    c.write_text('label,sentence\npos,"good, really"\nneg,bad\n', encoding="utf-8")
    assert [(e.text, e.meta["label"]) for e in read_file(c)] == [("good, really", "pos"), ("bad", "neg")]


def test_named_sets_from_a_data_root(tmp_path):
    rt = tmp_path / "rt-sentence-polarity"
    rt.mkdir()
    (rt / "rt-polarity.pos").write_text("".join(f"good film {i}\n" for i in range(50)), encoding="utf-8")
    (rt / "rt-polarity.neg").write_text("".join(f"bad film {i}\n" for i in range(50)), encoding="latin-1")
    parts = {s: read_named(f"rt:{s}", tmp_path) for s in ("train", "dev", "test")}
    assert [len(p) for p in parts.values()] == [80, 10, 10]
    texts = [set(e.text for e in p) for p in parts.values()]
    assert not (texts[0] & texts[1]) and not (texts[0] & texts[2]) and len(set.union(*texts)) == 100
    assert [e.text for e in read_named("rt:dev", tmp_path)] == [e.text for e in parts["dev"]]
    # the files list one class after the other; a split's first examples still mix both (for --limit N)
    assert {e.meta["label"] for e in parts["train"][:10]} == {"positive", "negative"}
    sls = tmp_path / "sentiment-labelled-sentences"
    sls.mkdir()
    (sls / "imdb_labelled.txt").write_text("".join(f"nice\u0085 one {i}\t1\nmeh {i}\t0\n" for i in range(10)),
                                           encoding="utf-8")
    imdb = read_named("imdb:train", tmp_path)
    assert len(imdb) == 16 and {e.meta["label"] for e in imdb} == {"positive", "negative"}
    with pytest.raises(UserError, match="unknown data set"):
        read_named("nope:train", tmp_path)


@pytest.mark.parametrize("content, message", [
    ('{"text": "ok", "label": "a"}\n{"text": "ok", "label"\n', r"d\.jsonl:2: not valid JSON"),
    ('{"text": "ok", "label": "a"}\n{"text": "ok"}\n', r"d\.jsonl:2: no 'label'"),
    ('{"label": "a"}\n', r"d\.jsonl:1: needs 'text' or 'words'"),
    ('', r"no examples \(the file is empty\)"),
])
def test_bad_jsonl_is_one_line_with_file_and_line(tmp_path, content, message):
    p = tmp_path / "d.jsonl"
    p.write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=message):
        read_file(p)


def test_bad_tsv_line(tmp_path):
    p = tmp_path / "d.tsv"
    p.write_text("fine\tpos\nno label here\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"d\.tsv:2: expected 2 tab-separated fields \(text, label\)"):
        read_file(p)


def test_bad_input_through_the_command(tmp_path, data, bert, capsys):
    from probekit.classify import main

    bad = tmp_path / "test.tsv"
    bad.write_text("good film\tpos\nodd film\tmaybe\n", encoding="utf-8")
    base = ["--train", str(data["train"]), "--dev", str(data["dev"]), "--model", bert, "--quiet",
            "--cache-dir", str(tmp_path / "cache"), "--epochs", "1"]
    assert main(base + ["--test", str(bad), "--out", str(tmp_path / "r1")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{bad}:2: label 'maybe' is not one of the training labels" in err
    assert not (tmp_path / "r1").exists()
    empty = tmp_path / "empty.tsv"
    empty.write_text("", encoding="utf-8")
    assert main(base + ["--test", str(empty), "--out", str(tmp_path / "r2")]) == 2
    assert "no examples" in capsys.readouterr().err
    not_one = tmp_path / "not_a_classifier"
    not_one.mkdir()
    assert main(["--load", str(not_one), "--test", str(data["test"]), "--out", str(tmp_path / "r3")]) == 2
    assert "not a classifier folder" in capsys.readouterr().err
    assert main(base + ["--head", "cls", "--encoder", "none", "--out", str(tmp_path / "r4")]) == 2
    assert "--encoder none" in capsys.readouterr().err


def test_too_long_text_is_truncated_counted_and_warned(tmp_path, data, bert, capsys):
    long = tmp_path / "long.tsv"
    long.write_text("good " * 100 + "\tpos\nbad film\tneg\n", encoding="utf-8")
    r = pk.classify(data["train"], data["dev"], long, head="mean", **_opts(tmp_path, bert))
    assert r.record["counts"]["test_truncated"] == 1
    assert "were longer than" in capsys.readouterr().err


def test_frozen_head_starts_at_and_is_reported_beside_the_linear_baseline(tmp_path, data, bert):
    from probekit.classifiers.baselines import LinearBaseline
    from probekit.classifiers.pooling import make_head
    from probekit.classifiers.model import Classifier
    from probekit.classifiers.classify import _features, head_logits, label_ids
    from probekit.core.encoder import load_encoder

    splits = {s: read_file(data[s], what=s) for s in ("train", "dev", "test")}
    labels = ["neg", "pos"]
    clf = Classifier(load_encoder(bert), labels, head="attention")
    feats = {s: _features(clf, e, cache_dir=tmp_path / "cache", no_cache=False, dtype="float16", batch_size=8)
             for s, e in splits.items()}
    y = {s: label_ids(e, labels, s) for s, e in splits.items()}
    base = LinearBaseline(feats, y, labels, seed=0)
    for kind in ("attention", "attention-multi", "mean"):      # the started head is the baseline, exactly
        head = make_head(kind, feats["train"].flat.shape[1], 2, n_heads=3)
        assert base.start(head)
        probs = np.exp(base.log_probs("test"))
        started = torch.softmax(torch.as_tensor(head_logits(head, feats["test"])), -1).numpy()
        np.testing.assert_allclose(started, probs, atol=1e-5)
    assert not base.start(make_head("max", feats["train"].flat.shape[1], 2))
    r = pk.classify(data["train"], data["dev"], data["test"], head="attention", **_opts(tmp_path, bert))
    f = r.frame
    assert r.history["epoch"].iloc[0] == 0                    # the start is a candidate for the kept epoch
    assert r.history["dev_accuracy"].max() >= r.history["dev_accuracy"].iloc[0]
    diff = f[(f["metric"] == "accuracy_difference") & (f["split"] == "test")].iloc[0]
    assert diff["probe"] == "attention vs frozen-mean-logreg" and diff["n"] == 20
    expect = r.accuracy("test") - r.accuracy("test", "frozen-mean-logreg")
    assert diff["value"] == pytest.approx(expect) and diff["ci_low"] <= diff["value"] <= diff["ci_high"]
    assert "frozen-mean-logreg" in r.record["baselines"]["head_vs_linear"]
