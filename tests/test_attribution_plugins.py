"""Attribution methods as plug-ins: a user's method from one file everywhere methods are used, Captum's
sampling methods, the shared forward pass (counted), and the Attributions object."""
from __future__ import annotations

import html
import json
import re

import numpy as np
import pandas as pd
import pytest
import torch

import probekit as pk
from probekit.attribution import plugins, registry
from probekit.attribution.agreement import agreement_table
from probekit.attribution.attribute import attribute
from probekit.classifiers.model import Classifier
from probekit.classifiers.saved import save_classifier
from probekit.core.encoder import load_encoder
from probekit.core.errors import UserError
from probekit.core.examples import Example

TEXTS = ["The old teacher walked slowly to the village school.", "An unbelievably gigantic chrysanthemum!",
         "Nobody knew where the key had gone, so they searched the whole house."]
ALL = ["pooling", "attention-cls", "attention-rollout", "gradient", "grad-input", "integrated-gradients",
       "occlusion"]

PLUGIN = '''
"""A user's method in a file of their own: each word scored by its length in characters, times --scale."""
from dataclasses import dataclass

import torch

from probekit.attribution import AttributionMethod, option, register


@register
@dataclass
class WordLength(AttributionMethod):
    name = "word-length"
    summary = "characters per word, times scale"
    unit = "word"
    scale: float = option(1.0, "multiplier of the word length")

    def attribute(self, classifier, batch, target, state):
        s = torch.zeros(len(state.words), max(len(w) for w in state.words))
        for b, ws in enumerate(state.words):
            for i, w in enumerate(ws):
                s[b, i] = self.scale * len(w)
        return s, {}
'''


def make(tiny_model_dirs, arch="bert", head="attention", level="word", seed=0):
    torch.manual_seed(seed)
    return Classifier(load_encoder(str(tiny_model_dirs[arch])), ["neg", "pos"], head=head, level=level).eval()


@pytest.fixture
def plugin(tmp_path):
    """The plug-in file, loaded; the registry is restored afterwards."""
    before, loaded = dict(registry.METHODS), dict(plugins._LOADED)
    path = tmp_path / "my_method.py"
    path.write_text(PLUGIN)
    yield path
    registry.METHODS.clear()
    registry.METHODS.update(before)
    plugins._LOADED.clear()
    plugins._LOADED.update(loaded)


def longest(words):
    return int(np.argmax([len(w) for w in words]))


# --- a user's method from one file --------------------------------------------------------------------------

def test_a_plugin_file_adds_a_method_everywhere(tiny_model_dirs, plugin, tmp_path, capsys):
    from probekit.attribute import build_parser, main

    assert "word-length" not in registry.method_names()
    # the command line: --plugin makes it a --methods choice and its option a flag
    help_text = build_parser(["--plugin", str(plugin)]).format_help()
    assert "word-length" in help_text and "--scale" in help_text
    clf = make(tiny_model_dirs)
    clf_dir = save_classifier(clf, tmp_path / "clf")
    out = tmp_path / "run"
    assert main(["--classifier", str(clf_dir), "--text", TEXTS[0], "--plugin", str(plugin), "--methods",
                 "word-length", "grad-input", "--scale", "2", "--out", str(out), "--quiet"]) == 0
    frame = pd.read_csv(out / "attributions.csv")
    mine = frame[frame["method"] == "word-length"]
    assert mine["score"].tolist() == [2.0 * len(w) for w in mine["word"]]
    assert json.loads((out / "config.json").read_text())["method_options"]["word-length"] == {"scale": 2.0}
    # pk.attribute, after pk.load_plugin (loading twice registers nothing new)
    assert pk.load_plugin(plugin) == ["word-length"]
    res = pk.attribute(clf, TEXTS, methods=["word-length"], scale=3, quiet=True)
    assert (res.frame["score"] == 3.0 * res.frame["word"].str.len()).all()
    assert "word-length" in set(pk.list_methods()["name"])
    # ERASER ranks words by it: the top-1 rationale of each example is its longest word
    from probekit.evaluation.base import Context
    from probekit.evaluation.eraser.experiment import run

    examples = [Example(words=None, text=t) for t in TEXTS]
    table = run(Context(classifier=clf, examples=examples, source=None, quiet=True,
                        methods=["word-length"])).tables["eraser"]
    assert set(table["method"]) == {"word-length", "random"}
    comp = table[(table["method"] == "word-length") & (table["k"] == 1) & (table["metric"] == "comprehensiveness")
                 & table["aggregate"].isna()]
    for e, ex in enumerate(examples):
        words = clf.encode([ex], warn=False)["words"][0]
        top = longest(words)
        p = clf.predict([ex, Example(words=words[:top] + words[top + 1:])])
        y = p["label"].iloc[0]
        want = p[f"p_{y}"].iloc[0] - p[f"p_{y}"].iloc[1]
        assert comp[comp["example"] == e]["value"].item() == pytest.approx(want, abs=1e-5)
    # the key-word attack deletes the word it ranks first
    labelled = [Example(words=None, text=t, meta={"label": l}) for t, l in zip(TEXTS, ["pos", "neg", "pos"])]
    pk.attack(clf, labelled, method="word-length", attacks=["delete"], ks=[1], draws=1,
              augment=tmp_path / "aug.jsonl", quiet=True)
    rows = [json.loads(l) for l in (tmp_path / "aug.jsonl").read_text().splitlines()]
    for ex, r in zip(labelled, [r for r in rows if r["attack"] == "delete-top-1%"]):
        words = clf.encode([ex], warn=False)["words"][0]
        top = longest(words)
        assert r["words"] == words[:top] + words[top + 1:]
    # and on the attack command line: --plugin is taken, and the run ranks by the plug-in's method
    from probekit.attack import main as attack_main

    data = tmp_path / "labelled.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": l}) + "\n" for t, l in zip(TEXTS, ["pos", "neg", "pos"])))
    assert attack_main(["--classifier", str(clf_dir), "--data", str(data), "--plugin", str(plugin), "--method",
                        "word-length", "--attacks", "delete", "--ks", "1", "--draws", "1", "--quiet",
                        "--out", str(tmp_path / "attack")]) == 0
    record = json.loads((tmp_path / "attack" / "config.json").read_text())
    assert record["arguments"]["method"] == "word-length"


def test_a_broken_plugin_is_one_line_with_its_file_and_line(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("x = 1\nraise ValueError('no good')\n")
    with pytest.raises(UserError, match=r"bad\.py:2: ValueError: no good"):
        pk.load_plugin(bad)
    syntax = tmp_path / "syntax.py"
    syntax.write_text("def f(:\n")
    with pytest.raises(UserError, match=r"syntax\.py:1: "):
        pk.load_plugin(syntax)
    with pytest.raises(UserError, match="no such file"):
        pk.load_plugin(tmp_path / "missing.py")


def test_method_classes_declare_themselves_and_options_are_checked(tiny_model_dirs):
    table = pk.list_methods().set_index("name")
    assert list(table.index[:7]) == ALL
    assert table.loc["integrated-gradients", "options"] == {"steps": 50, "retry_steps": None, "ig_rows": None}
    assert table.loc["integrated-gradients", "convergence_delta"] and table.loc["occlusion", "signed"]
    assert table.loc["smoothgrad", "word_rule"] == "l2" and not table.loc["smoothgrad", "signed"]
    assert table.loc["gradient-shap", "signed"] and table.loc["gradient-shap", "word_rule"] == "sum"
    assert table.loc["gradient", "needs"] == ["embedding_gradients"]
    clf = make(tiny_model_dirs)
    with pytest.raises(UserError, match="--steps must be at least 1"):
        attribute(clf, TEXTS, methods=["integrated-gradients"], steps=0, quiet=True)
    with pytest.raises(UserError, match="--ig-rows must be at least 1"):
        attribute(clf, TEXTS, methods=["integrated-gradients"], ig_rows=0, quiet=True)
    with pytest.raises(UserError, match="unknown option --stepz"):
        attribute(clf, TEXTS, stepz=3, quiet=True)
    with pytest.raises(UserError, match="--stdev must be at least 0"):
        attribute(clf, TEXTS, methods=["smoothgrad"], stdev=-1, quiet=True)
    with pytest.raises(TypeError, match="implement attribute"):
        registry.register(type("Nothing", (pk.AttributionMethod,), {"name": "nothing"}))


# --- Captum's sampling methods ------------------------------------------------------------------------------

def test_smoothgrad_without_noise_is_the_gradient_and_is_seeded(tiny_model_dirs):
    clf = make(tiny_model_dirs)
    plain = attribute(clf, TEXTS, methods=["gradient", "smoothgrad"], stdev=0.0, samples=3, quiet=True).frame
    g, s = (plain[plain["method"] == m]["score"].to_numpy() for m in ("gradient", "smoothgrad"))
    np.testing.assert_allclose(s, g, rtol=1e-5, atol=1e-6)
    a = attribute(clf, TEXTS, methods=["smoothgrad"], samples=4, quiet=True).frame["score"].to_numpy()
    b = attribute(clf, TEXTS, methods=["smoothgrad"], samples=4, quiet=True).frame["score"].to_numpy()
    c = attribute(clf, TEXTS, methods=["smoothgrad"], samples=4, seed=1, quiet=True).frame["score"].to_numpy()
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-4 and np.abs(a - g).max() > 1e-4
    # an example's draws follow its text, not its batch or position
    alone = attribute(clf, TEXTS[1:2], methods=["smoothgrad"], samples=4, quiet=True).frame["score"].to_numpy()
    mixed = attribute(clf, TEXTS, methods=["smoothgrad"], samples=4, quiet=True).frame
    np.testing.assert_allclose(mixed[mixed["example"] == 1]["score"].to_numpy(), alone, rtol=1e-5, atol=1e-6)


def test_gradient_shap_is_unbiased_for_integrated_gradients_completeness(tiny_model_dirs):
    """Σ GradientSHAP scores estimates F(x) − F(x′) (IG's total less its δ): over five seeds, the mean is within
    four standard errors of it for every example (a biased estimator would drift outside)."""
    clf = make(tiny_model_dirs)
    ig = attribute(clf, TEXTS, methods=["integrated-gradients"], steps=100, quiet=True).frame.groupby("example")
    diff = ig["score"].sum().to_numpy() - ig["delta"].first().to_numpy()      # F(x) − F(x′)
    runs = []
    for seed in range(5):
        f = attribute(clf, TEXTS, methods=["gradient-shap"], samples=100, seed=seed, quiet=True).frame
        runs.append(f.groupby("example")["score"].sum().to_numpy())
        assert (f["score"] < 0).any()                                          # signed
    runs = np.array(runs)
    se = runs.std(0, ddof=1) / np.sqrt(len(runs))
    assert np.all(np.abs(runs.mean(0) - diff) <= 4 * se + 1e-4), (runs.mean(0), diff, se)
    assert np.all(se > 0)                                                      # the seeds do change the draws


# --- one forward pass per batch -----------------------------------------------------------------------------

def test_all_methods_share_one_forward_and_backward_per_batch(tiny_model_dirs, monkeypatch):
    """Encoder calls outside integrated gradients' path and occlusion's variants: one per batch, with the
    attention maps and gradients on, and one backward (the six methods used to take six passes)."""
    from probekit.attribution import gradients, occlusion

    clf = make(tiny_model_dirs)
    calls, backward, inside = [], [], []

    def count(module, args, kwargs):
        if not inside:
            calls.append(torch.is_grad_enabled())

    def outside(fn):
        def wrapper(*a, **k):
            inside.append(1)
            try:
                return fn(*a, **k)
            finally:
                inside.pop()
        return wrapper

    real_grad = torch.autograd.grad

    def grad(*a, **k):
        if not inside:
            backward.append(1)
        return real_grad(*a, **k)

    monkeypatch.setattr(gradients, "_lig", outside(gradients._lig))
    monkeypatch.setattr(occlusion, "probabilities", outside(occlusion.probabilities))
    monkeypatch.setattr(torch.autograd, "grad", grad)
    handle = clf.model.register_forward_pre_hook(count, with_kwargs=True)
    try:
        res = attribute(clf, TEXTS * 2, methods=ALL, steps=4, batch_size=4, quiet=True)
    finally:
        handle.remove()
    assert set(res.frame["method"]) == set(ALL)
    assert calls == [True, True] and len(backward) == 2            # 6 examples in batches of 4: two passes


# --- the explanation object ---------------------------------------------------------------------------------

def test_attributions_object_is_the_frame_the_page_and_the_agreement(tiny_model_dirs):
    clf = make(tiny_model_dirs)
    hostile = "<script>alert(1)</script> \"quoted\" & done"
    res = attribute(clf, TEXTS + [hostile], methods=["pooling", "grad-input", "occlusion"], quiet=True)
    a = res.attributions
    assert isinstance(a, pk.Attributions) and len(a) == 4 and a.methods == ["pooling", "grad-input", "occlusion"]
    pd.testing.assert_frame_equal(a.to_frame(), res.frame)
    f = res.frame
    for e, ex in enumerate(a):
        for m in a.methods:
            np.testing.assert_array_equal(ex.scores[m], f[(f["example"] == e) & (f["method"] == m)]["score"])
        assert ex.units == f[(f["example"] == e) & (f["method"] == "pooling")]["word"].tolist()
    assert np.allclose([sum(ex.scores["pooling"]) for ex in a], 1)
    pd.testing.assert_frame_equal(a.agreement(), agreement_table(f, signed={"grad-input": True,
                                                                            "occlusion": True}))
    shown = a._repr_html_()
    assert shown.startswith("<iframe srcdoc=\"") and shown.count("<") == 2 and "<script" not in shown
    srcdoc = re.match(r'<iframe srcdoc="([^"]*)"', shown).group(1)
    assert html.unescape(srcdoc) == a.html()
    assert "<" in a[3].units and ">&lt;</span>" in a.html()          # the word itself, escaped in the page
    assert res._repr_html_() == shown


def test_device_option(tiny_model_dirs, tmp_path, capsys):
    from probekit.attribute import main

    clf = make(tiny_model_dirs)
    res = attribute(clf, TEXTS[:1], methods=["grad-input"], device="cpu", quiet=True)
    assert res.record["arguments"]["device"] == "cpu"
    clf_dir = save_classifier(clf, tmp_path / "clf")
    capsys.readouterr()
    assert main(["--classifier", str(clf_dir), "--text", "hi", "--device", "tpu", "--out",
                 str(tmp_path / "never"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(r"--device '?tpu", err[0]) and not (tmp_path / "never").exists()


# --- Captum's perturbation methods over words ---------------------------------------------------------------

def test_feature_ablation_lime_and_kernel_shap_over_words(tiny_model_dirs):
    from probekit.attribution.gradients import baseline_ids
    from probekit.attribution.words import model_inputs

    clf = make(tiny_model_dirs)
    texts = TEXTS[:2]
    kw = dict(methods=["feature-ablation", "kernel-shap", "lime"], samples=300, quiet=True)
    a = attribute(clf, texts, **kw).attributions
    assert a.to_frame().equals(attribute(clf, texts, **kw).frame)              # seeded: the run repeats
    for b, text in enumerate(texts):
        batch = clf.encode([Example(words=None, text=text)], warn=False)
        inputs = model_inputs(batch)
        with torch.no_grad():
            p = lambda ids: torch.softmax(clf(**{**inputs, "input_ids": ids}), -1)[0]  # noqa: E731
            full = p(inputs["input_ids"])
            y = int(full.argmax())
            pad = clf.tokenizer.pad_token_id
            for w in range(len(a[b].units)):                 # the word's pieces replaced by [PAD], by hand
                ids = inputs["input_ids"].clone()
                ids[batch["word_ids"] == w] = pad
                assert a[b].scores["feature-ablation"][w] == pytest.approx(float(full[y] - p(ids)[y]), abs=1e-5)
            empty = float(p(baseline_ids(clf, batch))[y])
        shap = a[b].scores["kernel-shap"]                     # Shapley values add up to p(x) − p(all [PAD])
        assert shap.sum() == pytest.approx(float(full[y]) - empty, abs=0.02)
        lime = a[b].scores["lime"]
        assert np.corrcoef(lime, shap)[0, 1] > 0.8
