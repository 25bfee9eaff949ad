"""Word attributions against invariants and independent code (tiny random encoders, the real Classifier)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from probekit.classifiers.model import Classifier
from probekit.classifiers.saved import save_classifier
from probekit.core.encoder import load_encoder
from probekit.core.errors import UserError
from probekit.core.examples import Example
from probekit.attribution import registry
from probekit.attribution.agreement import agreement_table
from probekit.attribution.attribute import attribute
from probekit.attribution.gradients import baseline_ids, integrated_gradients
from probekit.attribution.internal import pooling, rollout
from probekit.attribution.words import model_inputs, to_words
from tiny_models import SPLIT_SENTENCE

TEXTS = ["The old teacher walked slowly to the village school.", "An unbelievably gigantic chrysanthemum!",
         "Nobody knew where the key had gone, so they searched the whole house."]


def make(tiny_model_dirs, arch="bert", head="attention", level="word", mode="frozen", seed=0):
    torch.manual_seed(seed)
    return Classifier(load_encoder(str(tiny_model_dirs[arch])), ["neg", "pos"], head=head, level=level,
                      encoder_mode=mode).eval()


def batch_of(clf, texts):
    return clf.encode([Example(words=None, text=t) for t in texts], warn=False)


def predicted(clf, batch):
    with torch.no_grad():
        return clf(**model_inputs(batch)).argmax(1)


# --- integrated gradients -------------------------------------------------------------------------------------

def test_ig_completeness_and_delta_bookkeeping(tiny_model_dirs):
    clf = make(tiny_model_dirs, head="attention")   # smooth in the embeddings (a max head has kinks on the path)
    batch = batch_of(clf, TEXTS)
    target = predicted(clf, batch)
    scores, extra = integrated_gradients(clf, batch, target, steps=200, ig_rows=600)
    # F(x) - F(x') computed here, with the baseline built by hand: [CLS] [PAD]… [SEP], same mask
    base = batch["input_ids"].clone()
    for b in range(len(TEXTS)):
        n = int(batch["attention_mask"][b].sum())
        base[b, 1:n - 1] = clf.tokenizer.pad_token_id
    inputs = model_inputs(batch)
    with torch.no_grad():
        fx = clf(**inputs).gather(1, target[:, None]).view(-1)
        fb = clf(**{**inputs, "input_ids": base}).gather(1, target[:, None]).view(-1)
    diff = (fx - fb).numpy()
    total = scores.sum(1).numpy()
    np.testing.assert_allclose(total - extra["delta"], diff, atol=1e-5)      # δ = Σ attr − (F(x) − F(x′))
    assert np.all(np.abs(extra["delta"]) <= 0.01 * np.abs(diff) + 1e-6)       # converged at 200 nodes
    assert not extra["flagged"].any()
    # word sums keep the total: Σ words = Σ tokens (special tokens get exactly 0: they equal the baseline)
    words = [to_words(scores[b], batch["word_ids"][b], len(batch["words"][b])).sum() for b in range(len(TEXTS))]
    np.testing.assert_allclose(words, total, atol=1e-5)


def test_ig_batched_equals_unbatched(tiny_model_dirs):
    clf = make(tiny_model_dirs, arch="roberta")
    one = batch_of(clf, TEXTS[:1])
    t = predicted(clf, one)
    a, da = integrated_gradients(clf, one, t, steps=16, ig_rows=1)
    b, db = integrated_gradients(clf, one, t, steps=16, ig_rows=16)
    torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    np.testing.assert_allclose(da["delta"], db["delta"], atol=1e-6)
    three = batch_of(clf, TEXTS)
    t3 = predicted(clf, three)
    c, dc = integrated_gradients(clf, three, t3, steps=16, ig_rows=3)
    d, dd = integrated_gradients(clf, three, t3, steps=16, ig_rows=48)
    torch.testing.assert_close(c, d, atol=1e-6, rtol=1e-5)
    # fewer rows than examples: the batch is split into groups of ig_rows examples, same attributions
    e, de = integrated_gradients(clf, three, t3, steps=16, ig_rows=2)
    torch.testing.assert_close(e, d, atol=1e-6, rtol=1e-5)
    np.testing.assert_allclose(de["delta"], dd["delta"], atol=1e-6)
    np.testing.assert_allclose(dc["delta"], dd["delta"], atol=1e-6)


@pytest.mark.parametrize("method", ["integrated-gradients", "gradient", "occlusion", "pooling"])
def test_scores_do_not_depend_on_padding(tiny_model_dirs, method):
    clf = make(tiny_model_dirs)
    alone = attribute(clf, ["An unbelievably gigantic chrysanthemum!"], methods=[method], steps=20, quiet=True)
    mixed = attribute(clf, [TEXTS[2], "An unbelievably gigantic chrysanthemum!", TEXTS[0]], methods=[method],
                      steps=20, quiet=True, batch_size=3)
    a = alone.frame["score"].to_numpy()
    b = mixed.frame.loc[mixed.frame["example"] == 1, "score"].to_numpy()
    assert len(a) == len(b) == 5
    np.testing.assert_allclose(a, b, atol=2e-5, rtol=1e-4)


def test_ig_zero_for_a_word_whose_embedding_is_the_baseline(tiny_model_dirs):
    clf = make(tiny_model_dirs)
    batch = batch_of(clf, ["the old teacher walked home"])
    pad = clf.tokenizer.pad_token_id
    batch["input_ids"][0, 3] = pad                          # word 2's only piece is now the [PAD] embedding
    assert int(batch["word_ids"][0, 3]) == 2 and (batch["word_ids"][0] == 2).sum() == 1
    assert torch.equal(baseline_ids(clf, batch)[0, 3], torch.tensor(pad))
    scores, _ = integrated_gradients(clf, batch, predicted(clf, batch), steps=20)
    assert float(scores[0, 3]) == 0.0
    assert (scores[0, [1, 2, 4, 5]].abs() > 0).all()


def test_ig_retry_uses_more_steps_when_flagged(tiny_model_dirs):
    clf = make(tiny_model_dirs, head="max", seed=3)
    batch = batch_of(clf, TEXTS)
    t = predicted(clf, batch)
    _, few = integrated_gradients(clf, batch, t, steps=1)
    _, again = integrated_gradients(clf, batch, t, steps=1, retry_steps=100)
    assert few["flagged"].any()
    assert np.all(np.abs(again["delta"]) <= np.abs(few["delta"]) + 1e-9)
    assert set(again["steps"][few["flagged"]]) <= {1, 100} and 100 in again["steps"]


# --- pooling --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("level", ["word", "token"])
def test_max_pooling_importance_sums_to_the_pooled_vector(tiny_model_dirs, level):
    clf = make(tiny_model_dirs, arch="albert", head="max", level=level)
    batch = batch_of(clf, TEXTS)
    scores, _ = pooling(clf, batch, predicted(clf, batch))
    with torch.no_grad():
        _, _, extra = clf.forward_with_weights(**model_inputs(batch))
    np.testing.assert_allclose(scores.sum(1).numpy(), extra["pooled"].sum(1).numpy(), rtol=1e-5, atol=1e-5)
    res = attribute(clf, TEXTS, methods=["pooling"], quiet=True)
    per_example = res.frame.groupby("example")["score"].sum().to_numpy()
    np.testing.assert_allclose(per_example, extra["pooled"].sum(1).numpy(), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("head,level", [("attention", "word"), ("attention", "token"), ("attention-multi", "word")])
def test_attention_pooling_sums_to_one_over_real_units(tiny_model_dirs, head, level, dtype):
    clf = make(tiny_model_dirs, head=head, level=level).to(dtype)
    batch = batch_of(clf, TEXTS)
    w, _ = pooling(clf, batch, predicted(clf, batch))
    assert torch.isfinite(w).all()
    for b in range(len(TEXTS)):
        n = len(batch["words"][b])
        assert abs(float(w[b, :n].sum()) - 1) < (2e-3 if dtype == torch.float16 else 1e-5)
        assert (w[b, n:] == 0).all()                       # padding units
    res = attribute(clf, TEXTS, methods=["pooling"], quiet=True)
    assert len(res.frame) == sum(len(batch["words"][b]) for b in range(3)) if level == "word" else True
    sums = res.frame.groupby("example")["score"].sum().to_numpy()
    np.testing.assert_allclose(sums, 1, atol=2e-3 if dtype == torch.float16 else 1e-5)


def test_token_level_report_keeps_sub_tokens_and_word_totals(tiny_model_dirs):
    clf = make(tiny_model_dirs, head="attention", level="token")
    sentence = " ".join(SPLIT_SENTENCE)
    words = attribute(clf, [sentence], methods=["pooling", "grad-input"], quiet=True)
    tokens = attribute(clf, [sentence], methods=["pooling", "grad-input"], level="token", quiet=True)
    n_tokens = len(clf.tokenizer(sentence)["input_ids"]) - 2
    for m in ("pooling", "grad-input"):
        w = words.frame[words.frame["method"] == m]
        t = tokens.frame[tokens.frame["method"] == m]
        assert len(w) == len(SPLIT_SENTENCE) and len(t) == n_tokens > len(w)
        np.testing.assert_allclose(t.groupby("word_index")["score"].sum().to_numpy(), w["score"].to_numpy(),
                                   atol=1e-6)


# --- occlusion, gradients, attention ----------------------------------------------------------------------------

def test_occlusion_equals_a_direct_rerun_without_the_word(tiny_model_dirs):
    clf = make(tiny_model_dirs, arch="distilbert", head="mean")
    words = ["the", "old", "teacher", "walked", "slowly", "."]
    res = attribute(clf, [" ".join(words)], methods=["occlusion"], quiet=True)
    with torch.no_grad():
        full = torch.softmax(clf(**model_inputs(clf.encode([Example(words=words)], warn=False))), -1)[0]
        target = int(full.argmax())
        for i in range(len(words)):
            rest = words[:i] + words[i + 1:]
            p = torch.softmax(clf(**model_inputs(clf.encode([Example(words=rest)], warn=False))), -1)[0, target]
            got = res.frame.loc[res.frame["index"] == i, "score"].item()
            assert got == pytest.approx(float(full[target] - p), abs=1e-6)


@pytest.mark.parametrize("mode", ["frozen", "none"])
def test_gradient_methods_equal_autograd_on_a_hand_built_input(tiny_model_dirs, mode):
    clf = make(tiny_model_dirs, arch="electra", head="attention", mode=mode)
    batch = batch_of(clf, [" ".join(SPLIT_SENTENCE), "the cat sat"])
    target = torch.tensor([1, 0])
    emb = clf.embedding_layer(batch["input_ids"]).detach().requires_grad_(True)
    if mode == "none":       # the whole forward by hand: embeddings → word means → head
        from probekit.classifiers.model import units_from_tokens

        units, mask = units_from_tokens(emb, batch["word_ids"])
        logits = clf.head(units, mask, emb[:, 0])[0]
    else:                    # the encoder on inputs_embeds, then the head
        hs = clf.encoder.model(inputs_embeds=emb, attention_mask=batch["attention_mask"],
                               token_type_ids=batch.get("token_type_ids")).last_hidden_state
        from probekit.classifiers.model import units_from_tokens

        units, mask = units_from_tokens(hs, batch["word_ids"])
        logits = clf.head(units, mask, hs[:, 0])[0]
    (g,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), emb)
    norm, _ = registry.get_method("gradient").fn(clf, batch, target)
    gxi, _ = registry.get_method("grad-input").fn(clf, batch, target)
    torch.testing.assert_close(norm, g.norm(dim=-1), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(gxi, (g * emb).sum(-1).detach(), atol=1e-6, rtol=1e-5)
    # word rule of the norm: over all the word's coordinates
    wid = batch["word_ids"][0]
    split = next(w for w in range(len(SPLIT_SENTENCE)) if (wid == w).sum() > 1)
    expect = float(g[0, wid == split].pow(2).sum().sqrt())
    assert to_words(norm[0], wid, len(SPLIT_SENTENCE), "l2")[split] == pytest.approx(expect, rel=1e-5)


def test_attention_cls_and_rollout_against_numpy(tiny_model_dirs):
    clf = make(tiny_model_dirs)
    batch = batch_of(clf, TEXTS)
    with torch.no_grad():
        enc = load_encoder(str(tiny_model_dirs["bert"]), attention=True)
        att = enc.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                        output_attentions=True).attentions
    cls_scores, _ = registry.get_method("attention-cls").fn(clf, batch, None)
    roll, _ = registry.get_method("attention-rollout").fn(clf, batch, None)
    for b in range(len(TEXTS)):
        n = int(batch["attention_mask"][b].sum())
        real = (batch["word_ids"][b] >= 0).numpy()[:n]
        row = att[-1][b, :, 0, :n].mean(0).numpy() * real
        np.testing.assert_allclose(cls_scores[b, :n].numpy(), row / row.sum(), atol=1e-6)
        R = np.eye(n)
        for a in att:
            A = 0.5 * a[b, :, :n, :n].mean(0).double().numpy() + 0.5 * np.eye(n)
            R = (A / A.sum(1, keepdims=True)) @ R
        r = R[0] * real
        np.testing.assert_allclose(roll[b, :n].numpy(), r / r.sum(), atol=1e-6)
        assert (roll[b, n:] == 0).all()
    assert rollout([a[0] for a in att], batch["attention_mask"][0]).sum(1).allclose(torch.ones(1, dtype=torch.float64))


# --- agreement, registry, command -------------------------------------------------------------------------------

def test_agreement_is_mean_kendall_tau_of_scipy():
    from scipy.stats import kendalltau

    rng = np.random.default_rng(0)
    rows = []
    for ex in range(6):
        n = 2 + ex
        base = rng.normal(size=n)
        for m, s in (("a", base), ("b", -base + rng.normal(scale=0.5, size=n)), ("c", np.full(n, 0.3) if ex == 0
                                                                                  else rng.normal(size=n))):
            rows += [{"example": ex, "index": i, "method": m, "score": v} for i, v in enumerate(s)]
    frame = pd.DataFrame(rows)
    table = agreement_table(frame, signed={"a": True, "b": True, "c": False}).set_index(["method_a", "method_b"])
    for a, b in (("a", "b"), ("a", "c"), ("b", "c")):
        taus, ps = [], []
        for ex, g in frame.groupby("example"):
            x = g[g.method == a].score.to_numpy()
            y = g[g.method == b].score.to_numpy()
            x, y = (np.abs(x) if a in "ab" else x), (np.abs(y) if b in "ab" else y)
            if np.ptp(x) == 0 or np.ptp(y) == 0:
                continue
            r = kendalltau(x, y)
            taus.append(r.statistic)
            ps.append(r.pvalue)
        row = table.loc[(a, b)]
        assert row["tau"] == pytest.approx(np.mean(taus))
        assert row["share_p05"] == pytest.approx(np.mean(np.array(ps) <= 0.05))
        assert row["examples"] == len(taus) and row["undefined"] == 6 - len(taus)


def test_default_methods_follow_the_classifier(tiny_model_dirs):
    assert registry.applicable(make(tiny_model_dirs, head="mean")) == [
        "attention-cls", "attention-rollout", "gradient", "grad-input", "integrated-gradients", "occlusion"]
    none = registry.applicable(make(tiny_model_dirs, head="max", mode="none"))
    assert "pooling" in none and not any(m.startswith("attention") for m in none)
    with pytest.raises(UserError, match="unknown method 'no-such-method'"):
        registry.resolve(["no-such-method"], make(tiny_model_dirs))
    with pytest.raises(UserError, match="needs an encoder"):
        registry.resolve(["attention-rollout"], make(tiny_model_dirs, mode="none"))


def test_target_label_and_frame_columns(tiny_model_dirs):
    clf = make(tiny_model_dirs)
    examples = [Example(words=None, text=t, meta={"label": l}) for t, l in zip(TEXTS, ["pos", "neg", "pos"])]
    res = attribute(clf, data=examples, methods=["grad-input", "integrated-gradients"], target="neg", steps=8,
                    quiet=True)
    f = res.frame
    assert set(f["target"]) == {"neg"}
    assert list(f.columns[:5]) == ["example", "index", "word", "method", "score"]
    assert f.groupby("example")["label"].first().tolist() == ["pos", "neg", "pos"]
    ig = f[f["method"] == "integrated-gradients"]
    assert ig["delta"].notna().all() and f.loc[f["method"] == "grad-input", "delta"].isna().all()
    assert res.record["counts"]["ig_flagged"] == int(ig.groupby("example")["flagged"].first().astype(bool).sum())
    assert (f["correct"] == (f["label"] == f["prediction"])).all()
    with pytest.raises(UserError, match="--target 'maybe' is not one of"):
        attribute(clf, TEXTS, target="maybe", quiet=True)


def test_command_writes_the_run_and_refuses_bad_input(tiny_model_dirs, tmp_path, capsys):
    from probekit.attribute import main

    clf_dir = save_classifier(make(tiny_model_dirs, head="max"), tmp_path / "clf")
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": l}) + "\n" for t, l in zip(TEXTS, ["pos", "neg", "pos"])))
    out = tmp_path / "run"
    assert main(["--classifier", str(clf_dir), "--data", str(data), "--out", str(out), "--steps", "4", "--quiet",
                 "--png", str(tmp_path / "fig.png"), "--methods", "pooling", "occlusion"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["agreement.csv", "attributions.csv", "attributions.html",
                                                   "config.json", "example.png"]
    assert (tmp_path / "fig.png").stat().st_size > 1000
    frame = pd.read_csv(out / "attributions.csv")
    assert set(frame["method"]) == {"pooling", "occlusion"} and frame["example"].nunique() == 3
    capsys.readouterr()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    (tmp_path / "notclf").mkdir()
    bad = [["--classifier", str(clf_dir), "--text", "hi", "--methods", "no-such-method"],
           ["--classifier", str(tmp_path / "notclf"), "--text", "hi"],
           ["--classifier", str(clf_dir), "--text", "hi", "--target", "maybe"],
           ["--classifier", str(clf_dir), "--data", str(empty)],
           ["--classifier", str(clf_dir), "--text", "hi", "--steps", "0"]]
    for argv in bad:
        assert main(argv + ["--out", str(tmp_path / "never"), "--quiet"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("probekit: error:"), err
    assert not (tmp_path / "never").exists()


def test_words_cut_off_by_the_length_limit_are_left_out_with_a_warning(tiny_model_dirs, capsys):
    clf = make(tiny_model_dirs)
    long = " ".join(["teacher"] * 80)                         # the tiny models take 64 positions
    exact = " ".join(["teacher"] * 62)                        # fills the limit exactly: not truncated
    res = attribute(clf, [long, "the cat", exact], methods=["grad-input"], quiet=True)
    f = res.frame[res.frame["example"] == 0]
    assert len(f) == 62 and f["score"].notna().all()        # 64 positions less [CLS] and [SEP]
    assert res.record["counts"]["truncated"] == 1
    assert "1 of 3 inputs were longer than" in capsys.readouterr().err


def test_occlusion_of_a_pair_deletes_from_the_right_segment(tiny_model_dirs):
    clf = make(tiny_model_dirs, head="attention")
    ex = Example(words=["the", "cat", "sat"], words_b=["a", "dog", "ran", "home"])
    res = attribute(clf, data=[ex], methods=["occlusion"], quiet=True)
    assert res.frame["word"].tolist() == ["the", "cat", "sat", "a", "dog", "ran", "home"]
    with torch.no_grad():
        p = lambda e: torch.softmax(clf(**model_inputs(clf.encode([e], warn=False))), -1)[0]  # noqa: E731
        full = p(ex)
        t = int(full.argmax())
        drop = full[t] - p(Example(words=["the", "cat", "sat"], words_b=["a", "ran", "home"]))[t]
    assert res.frame["score"].iloc[4] == pytest.approx(float(drop), abs=1e-6)


def test_limit_samples_a_sorted_file_in_file_order(tmp_path):
    from probekit.attribution.attribute import AttributeOptions, _examples as read

    def _examples(texts, data, limit, seed):
        return read(AttributeOptions(classifier="unread", texts=texts, data=data, limit=limit, seed=seed))

    path = tmp_path / "sorted.jsonl"           # every "neg" line first, as RT's files are
    lines = [{"text": f"neg example {i}", "label": "neg"} for i in range(50)]
    lines += [{"text": f"pos example {i}", "label": "pos"} for i in range(50)]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    got = _examples(None, str(path), 10, seed=0)
    texts = [ex.text for ex in got]
    assert len(texts) == 10 and {ex.meta["label"] for ex in got} == {"neg", "pos"}
    order = [next(i for i, x in enumerate(lines) if x["text"] == t) for t in texts]
    assert order == sorted(order)                                   # file order kept
    assert texts == [ex.text for ex in _examples(None, str(path), 10, seed=0)]
    assert texts != [ex.text for ex in _examples(None, str(path), 10, seed=1)]
    assert len(_examples(None, str(path), 500, seed=0)) == 100


def test_default_ig_rows_are_the_most_that_fit_the_budget(tiny_model_dirs):
    from probekit.attribution.gradients import IG_BUDGET, default_rows, model_size
    from probekit.core import checks

    clf = make(tiny_model_dirs)
    hidden, layers = model_size(clf)
    for length in (8, 64):
        rows = default_rows(clf, length)
        size = [checks.ig_memory(steps=0, rows=r, length=length, hidden=hidden, layers=layers) for r in (rows, rows + 1)]
        assert size[0] <= IG_BUDGET < size[1]
    assert default_rows(clf, 8) > default_rows(clf, 64)        # shorter batches pack more steps per pass
