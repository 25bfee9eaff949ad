"""Any Hugging Face sequence classifier in attribute, faithfulness, ERASER, attacks and compare; export back to HF."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import probekit as pk
from probekit.classifiers.hf_model import HFClassifier
from probekit.core.errors import UserError
from probekit.core.examples import Example

LABELS = {0: "neg", 1: "pos"}
TEXTS = ["The old teacher walked slowly to the village school.", "An unbelievably gigantic chrysanthemum!",
         "Mary believed that the curious child had found a strange letter."]
PAIR = Example(words="The archaeologist photographed a garden .".split(),
               words_b="The pilot noticed the small boat .".split(), meta={"label": "pos"})


def make_hf_classifier(encoder_dir, folder, seed: int = 0, labels=LABELS) -> Path:
    """A standard …ForSequenceClassification folder: the encoder under a fresh, seeded classification head."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        str(encoder_dir), num_labels=len(labels), id2label=labels, label2id={v: k for k, v in labels.items()})
    with torch.no_grad():                   # a head that separates the classes visibly (random init is ~0)
        for name, p in model.named_parameters():
            if not name.startswith(model.base_model_prefix) and p.dim() == 2 and p.shape[0] == len(labels):
                p.normal_(0, 1.0)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(str(encoder_dir)).save_pretrained(folder)
    return Path(folder)


@pytest.fixture(scope="module")
def hf_dirs(tiny_model_dirs, tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return {arch: make_hf_classifier(d, root / arch) for arch, d in tiny_model_dirs.items()}


@pytest.fixture(scope="module")
def bert(hf_dirs):
    return hf_dirs["bert"]


def _data(path: Path, n: int = 8) -> Path:
    words = "the old teacher walked to the village school every morning".split()
    rows = []
    for i in range(n):
        w = words[i % 4:i % 4 + 5] + (["good"] if i % 2 else ["awful"])
        rows.append({"words": w, "label": "pos" if i % 2 else "neg", "rationale": [0] * 5 + [1]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _hf_probs(folder, examples):
    """Class probabilities straight from transformers (the reference), for pre-split words and pairs."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    out = []
    for ex in examples:
        enc = tok(ex.words, ex.words_b, is_split_into_words=True, return_tensors="pt") if ex.words is not None \
            else tok(ex.text, return_tensors="pt")
        with torch.no_grad():
            out.append(torch.softmax(model(**enc).logits, -1)[0].numpy())
    return np.array(out)


# --- loading ------------------------------------------------------------------------------------------------------

def test_a_plain_hf_folder_loads_as_a_classifier_with_its_own_labels_and_predictions(bert):
    clf = pk.load_classifier(bert)
    assert isinstance(clf, HFClassifier) and clf.labels == ["neg", "pos"]
    examples = [Example(words=None, text=t) for t in TEXTS] + [PAIR]
    pred = clf.predict(examples)
    np.testing.assert_allclose(pred[["p_neg", "p_pos"]].to_numpy(), _hf_probs(bert, examples), atol=1e-6)


def test_classify_load_evaluates_a_hf_classifier(bert, tmp_path):
    data = _data(tmp_path / "d.jsonl")
    res = pk.classify(load=str(bert), test=str(data), quiet=True)
    acc = res.frame.query("metric == 'accuracy' and split == 'test'")["value"].iloc[0]
    from probekit.corpora.labelled import load_split

    pred = pk.load_classifier(bert).predict(load_split(str(data), what="--data"))
    assert acc == pytest.approx(float((pred["label"] == pred["true"]).mean()))


@pytest.mark.parametrize("arch", ["bert", "roberta", "distilbert", "albert", "electra"])
def test_the_head_recomputed_from_the_cls_vector_gives_the_models_logits(hf_dirs, arch):
    clf = pk.load_classifier(hf_dirs[arch])
    batch = clf.encode([Example(words=None, text=t) for t in TEXTS], warn=False)
    batch.pop("words")
    with torch.no_grad():
        logits = clf(**batch)
        cls = clf.token_vectors(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))[:, 0]
        again, weights, _ = clf.head(None, None, cls)
    assert weights is None
    torch.testing.assert_close(again, logits, atol=1e-5, rtol=0)


def test_bad_models_are_refused_in_one_line(tiny_model_dirs, tmp_path, bert):
    with pytest.raises(UserError, match="without a sequence-classification head") as err:
        pk.load_classifier(tiny_model_dirs["bert"])              # a BertForMaskedLM folder
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="no Hugging Face model of that id in the local cache"):
        pk.load_classifier("nobody-owns/this-model-xyz")
    custom = tmp_path / "custom"
    custom.mkdir()
    for f in bert.iterdir():
        (custom / f.name).write_bytes(f.read_bytes())
    cfg = json.loads((custom / "config.json").read_text())
    (custom / "config.json").write_text(json.dumps({**cfg, "auto_map": {"AutoModel": "x.Y"}}))
    with pytest.raises(UserError, match="never runs"):
        pk.load_classifier(custom)
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(str(bert))
    with pytest.raises(UserError, match="together with its tokenizer"):
        pk.attribute(model, TEXTS[0])
    model.config.problem_type = "multi_label_classification"
    with pytest.raises(UserError, match="multi-label"):
        HFClassifier(model, pk.load_classifier(bert).tokenizer)


def _cache(folder, cache: Path, repo_id: str) -> None:
    """The Hugging Face cache layout (models--owner--name/snapshots/REV, refs/main), filled by hand."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snap = repo / "snapshots" / "0123abc"
    snap.mkdir(parents=True)
    for f in Path(folder).iterdir():
        (snap / f.name).write_bytes(f.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abc")


def test_a_model_id_in_the_local_cache_loads_and_nothing_is_downloaded(bert, tiny_model_dirs, tmp_path):
    _cache(bert, tmp_path / "cache", "someone/tiny-sentiment")
    _cache(tiny_model_dirs["bert"], tmp_path / "cache", "someone/tiny-encoder")
    clf = HFClassifier.load("someone/tiny-sentiment", cache_dir=tmp_path / "cache")
    assert clf.source.name == "someone/tiny-sentiment"
    ref = pk.load_classifier(bert).predict([PAIR])
    pd.testing.assert_frame_equal(clf.predict([PAIR]), ref)
    with pytest.raises(UserError, match="never downloads"):
        HFClassifier.load("someone/other", cache_dir=tmp_path / "cache")
    with pytest.raises(UserError, match="without a sequence-classification head"):    # never a random head
        HFClassifier.load("someone/tiny-encoder", cache_dir=tmp_path / "cache")


# --- attribution --------------------------------------------------------------------------------------------------

def test_attribute_on_the_folder_and_on_model_and_tokenizer_agree(bert):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    methods = ["attention-cls", "gradient", "grad-input", "integrated-gradients", "occlusion"]
    a = pk.attribute(str(bert), TEXTS, steps=8, quiet=True).frame
    assert set(a["method"]) == set(methods) | {"attention-rollout"}         # pooling does not apply
    pair = (AutoModelForSequenceClassification.from_pretrained(str(bert)), AutoTokenizer.from_pretrained(str(bert)))
    b = pk.attribute(pair, TEXTS, methods=methods, steps=8, quiet=True).frame
    a = a[a["method"].isin(methods)].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b.reset_index(drop=True), atol=1e-6)
    with pytest.raises(UserError, match="--methods pooling: needs") as err:
        pk.attribute(str(bert), TEXTS, methods=["pooling"], quiet=True)
    assert "\n" not in str(err.value)


def test_words_are_probekits_and_integrated_gradients_are_complete(hf_dirs):
    """Word scores come from probekit's own alignment (split words are summed), and Σ words = F(x) − F(x′) + δ
    with F the Hugging Face model's target logit computed here, outside the adapter."""
    from transformers import AutoModelForSequenceClassification

    from tiny_models import SPLIT_SENTENCE

    for arch in ("bert", "roberta"):
        folder = hf_dirs[arch]
        ex = Example(words=list(SPLIT_SENTENCE))
        res = pk.attribute(str(folder), data=[ex], methods=["integrated-gradients"], steps=200, quiet=True)
        f = res.frame
        assert list(f["word"]) == list(SPLIT_SENTENCE)
        clf = pk.load_classifier(folder)
        batch = clf.encode([ex], warn=False)
        assert (batch["word_ids"].max(1).values.item() + 1 == len(SPLIT_SENTENCE)
                and batch["input_ids"].shape[1] > len(SPLIT_SENTENCE) + 2)    # some word has several pieces
        model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
        pad = clf.tokenizer.pad_token_id
        ids, mask = batch["input_ids"], batch["attention_mask"]
        base = torch.where(batch["word_ids"] >= 0, torch.full_like(ids, pad), ids)
        t = clf.labels.index(f["target"].iloc[0])
        with torch.no_grad():
            fx = model(input_ids=ids, attention_mask=mask).logits[0, t]
            fb = model(input_ids=base, attention_mask=mask).logits[0, t]
        delta = float(f["delta"].iloc[0])
        assert f["score"].sum() - delta == pytest.approx(float(fx - fb), abs=1e-4)
        assert abs(delta) < 1e-2          # the tiny random model's F(x) − F(x′) is itself ~1e-3: absolute


def test_pairs_are_attributed_over_both_segments(bert):
    res = pk.attribute(str(bert), data=[PAIR], methods=["occlusion", "grad-input"], quiet=True)
    occ = res.frame[res.frame["method"] == "occlusion"]
    assert list(occ["word"]) == PAIR.words + PAIR.words_b
    # deleting the 2nd segment's first word: the probability drop the reference model gives
    p = _hf_probs(bert, [PAIR, Example(words=PAIR.words, words_b=PAIR.words_b[1:])])
    t = ["neg", "pos"].index(occ["target"].iloc[0])
    assert occ["score"].iloc[len(PAIR.words)] == pytest.approx(p[0, t] - p[1, t], abs=1e-5)


def test_attribute_command_on_a_hf_folder(bert, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(Path(pk.__file__).parents[1]), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "probekit.attribute", "--classifier", str(bert), "--text",
                           TEXTS[0], "--methods", "gradient", "attention-cls", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    frame = pd.read_csv(out / "attributions.csv")
    assert set(frame["method"]) == {"gradient", "attention-cls"}
    assert frame.groupby("method")["score"].size().eq(len(TEXTS[0].rstrip(".").split()) + 1).all()
    rec = json.loads((out / "config.json").read_text())
    assert rec["classifier"]["labels"] == ["neg", "pos"] and rec["classifier"]["head"] == "cls"
    bad = subprocess.run([sys.executable, "-m", "probekit.attribute", "--classifier", "nobody/none-xyz",
                          "--text", "hi", "--out", str(tmp_path / "x")], capture_output=True, text=True, env=env,
                         timeout=300)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "local cache" in bad.stderr


# --- faithfulness, ERASER, attacks, compare -----------------------------------------------------------------------

@pytest.mark.parametrize("arch", ["bert", "roberta", "electra", "distilbert", "albert"])
def test_the_cls_attention_source_reproduces_the_models_probabilities(hf_dirs, arch):
    from probekit.evaluation.source_cls import ClsSource

    clf = pk.load_classifier(hf_dirs[arch])
    examples = [Example(words=None, text=t) for t in TEXTS]
    src = ClsSource(clf, examples, batch_size=2)             # two batches: padding differs from the stored one
    units, mask = src.batch(torch.arange(len(examples)))
    with torch.no_grad():
        p = src.probs(units, mask).numpy()
        alpha = src.attention(units, mask)
        zero_first = alpha.clone()
        zero_first[:, 0] = 0
        zero_first = zero_first / zero_first.sum(1, keepdim=True)
        moved = src.output(units, mask, zero_first).numpy()
        rows = src.imposed_rows(units, mask, zero_first)
    np.testing.assert_allclose(p, clf.predict(examples)[["p_neg", "p_pos"]].to_numpy(), atol=1e-5)
    torch.testing.assert_close(alpha.sum(1), torch.ones(len(examples)))            # α: one distribution
    torch.testing.assert_close(rows.sum(-1), torch.ones(rows.shape[:2]))           # every head's imposed row
    first = (units["unit_of"] == 0).unsqueeze(1).expand_as(rows)
    assert (rows[first] == 0).all() and (rows >= 0).all()
    assert np.abs(moved - p).max() > 1e-6              # the imposed attention reaches the model's own head


def test_faithfulness_runs_what_applies_and_says_what_does_not(bert, tmp_path):
    data = _data(tmp_path / "d.jsonl")
    res = pk.faithfulness(str(bert), str(data), experiments=["tau", "permutation", "single-weight", "uniform",
                                                              "eraser"],
                          rationales=True, methods=["gradient", "attention-cls"], permutations=5, ks=(20, 50),
                          quiet=True)
    out = {o.name: o for o in res.outcomes}
    assert res.record["arguments"]["attention"] == "cls"
    for name in ("tau", "permutation", "single-weight", "eraser"):
        assert not out[name].skipped and out[name].findings, name
    why = out["uniform"].skipped
    assert "attention-pooling" in why and "\n" not in why
    ranking = {r["method"] for r in out["eraser"].ranking}
    assert ranking == {"gradient", "attention-cls", "random"}          # ERASER's random baseline too
    written = res.write(tmp_path / "run")
    assert (written / "summary.md").is_file()


@pytest.mark.parametrize("arch", ["distilbert", "albert", "roberta", "electra"])
def test_attention_experiments_run_on_every_architecture(hf_dirs, arch, tmp_path):
    data = _data(tmp_path / "d.jsonl")
    res = pk.faithfulness(str(hf_dirs[arch]), str(data), experiments=["eraser", "tau", "permutation", "sets"],
                          methods=["gradient"], permutations=5, ks=(50,), quiet=True)
    out = {o.name: o for o in res.outcomes}
    assert res.record["skipped"] == {}
    for name in ("eraser", "tau", "permutation", "sets"):
        assert not out[name].skipped and out[name].findings, name
    assert {r["method"] for r in out["eraser"].ranking} == {"gradient", "random"}


def test_a_model_outside_the_attention_interface_is_said_in_one_line(hf_dirs, tmp_path, monkeypatch):
    data = _data(tmp_path / "d.jsonl")
    clf = pk.load_classifier(hf_dirs["distilbert"])
    monkeypatch.setattr(type(clf.encoder.model), "_supports_attention_backend", False)
    res = pk.faithfulness(clf, str(data), experiments=["eraser", "tau"], methods=["gradient"], ks=(50,),
                          quiet=True)
    out = {o.name: o for o in res.outcomes}
    assert not out["eraser"].skipped and out["eraser"].findings          # ERASER needs no attention source
    why = out["tau"].skipped
    assert "attention interface" in why and "'distilbert'" in why and "\n" not in why
    assert not out["tau"].findings and res.record["skipped"] == {"tau": why}
    summary = (res.write(tmp_path / "run") / "summary.md").read_text(encoding="utf-8")
    assert f"Not run: {why}" in summary
    with pytest.raises(UserError, match="attention interface") as err:    # nothing asked for can run: one line
        pk.faithfulness(clf, str(data), experiments=["tau", "permutation"], quiet=True)
    assert "\n" not in str(err.value)


def test_key_word_attack_on_a_hf_classifier(bert, tmp_path):
    data = _data(tmp_path / "d.jsonl")
    res = pk.attack(str(bert), str(data), attacks=["delete", "mask"], ks=[20], draws=1, method="gradient",
                    quiet=True)
    f = res.frame
    assert {"delete-top", "mask-top", "delete-random", "intact"} <= set(f["setting"])
    intact = f.query("setting == 'intact' and metric == 'accuracy'")["value"].iloc[0]
    from probekit.corpora.labelled import load_split

    examples = load_split(str(data), what="--data")
    pred = pk.load_classifier(bert).predict(examples)
    assert intact == pytest.approx(float((pred["label"] == pred["true"]).mean()))


def test_compare_accepts_a_hf_classifier(bert, tiny_model_dirs, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    corpus = [Example(words=t.rstrip(".!").split()) for t in TEXTS]
    opts = dict(base=str(tiny_model_dirs["bert"]), corpus=corpus, tasks=[], cka_batch_size=8, quiet=True)
    by_folder = pk.compare(str(bert), **opts)
    assert by_folder.record["same_weights"] is True                  # the head was added, the encoder kept
    model = AutoModelForSequenceClassification.from_pretrained(str(bert))
    with torch.no_grad():
        model.base_model.encoder.layer[-1].output.dense.weight.mul_(3.0)
    changed = pk.compare((model, AutoTokenizer.from_pretrained(str(bert))), **opts)
    assert changed.record["inputs"]["finetuned"]["kind"] == "Hugging Face classifier"
    cka = changed.cka.set_index("layer")["value"]
    assert cka[1] == pytest.approx(1.0, abs=1e-9) and cka[2] < 1.0 - 1e-6   # only the last layer moved


# --- export -------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tiny_model_dirs, tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    data = _data(root / "train.jsonl", 12)
    out = {}
    for head, mode in (("cls", "finetune"), ("cls", "frozen"), ("attention", "frozen")):
        folder = root / f"{head}-{mode}"
        pk.classify(train=str(data), dev=str(data), model=str(tiny_model_dirs["bert"]), head=head, epochs=1,
                    finetune=mode == "finetune", baselines=False, quiet=True,
                    cache_dir=str(root / "cache")).write(folder)
        out[(head, mode)] = folder
    return out


@pytest.mark.parametrize("mode", ["finetune", "frozen"])
def test_export_reloads_with_identical_logits(trained, tmp_path, mode):
    from transformers import AutoModelForSequenceClassification

    from probekit.classifiers.hf_export import export_hf

    folder = export_hf(trained[("cls", mode)], tmp_path / "hf")
    assert not (folder / "classifier.json").exists()
    reloaded = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    assert reloaded.config.id2label == {0: "neg", 1: "pos"}
    clf = pk.load_classifier(trained[("cls", mode)])
    batch = clf.encode([Example(words=None, text=t) for t in TEXTS] + [PAIR], warn=False)
    batch.pop("words")
    with torch.no_grad():
        ours = clf(**batch)
        theirs = reloaded(**{k: v for k, v in batch.items() if k != "word_ids"}).logits
    torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=0)
    again = pk.load_classifier(folder)                       # and probekit reads it back as a HF classifier
    assert isinstance(again, HFClassifier)
    pd.testing.assert_frame_equal(again.predict([PAIR]), clf.predict([PAIR]), atol=1e-5)


def test_export_refuses_pooling_heads_and_keeps_folders(trained, tmp_path):
    from probekit.classifiers.hf_export import export_hf

    with pytest.raises(UserError, match="'attention' head pools every word") as err:
        export_hf(trained[("attention", "frozen")], tmp_path / "hf")
    assert "\n" not in str(err.value) and not (tmp_path / "hf").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    with pytest.raises(UserError, match="not empty"):
        export_hf(trained[("cls", "frozen")], tmp_path / "full")
    assert (tmp_path / "full" / "keep.txt").read_text() == "x"


# --- the bundled model under a fresh classification head --------------------------------------------------------

def test_bundled_model_under_a_fresh_head(default_model_path, tmp_path):
    from probekit.evaluation.source_cls import ClsSource

    folder = make_hf_classifier(default_model_path, tmp_path / "minilm")
    res = pk.attribute(str(folder), TEXTS[:1], methods=["integrated-gradients", "attention-cls"], quiet=True)
    ig = res.frame[res.frame["method"] == "integrated-gradients"]
    assert not ig["flagged"].any()
    att = res.frame[res.frame["method"] == "attention-cls"].groupby("example")["score"].sum()
    np.testing.assert_allclose(att.to_numpy(), 1.0, atol=1e-6)
    clf = pk.load_classifier(folder)
    examples = [Example(words=None, text=t) for t in TEXTS]
    src = ClsSource(clf, examples)
    with torch.no_grad():
        p = src.probs(*src.batch(torch.arange(len(examples)))).numpy()
    np.testing.assert_allclose(p, _hf_probs(folder, examples), atol=1e-5)
