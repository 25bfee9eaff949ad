"""Multiple-choice reading comprehension: readers, scoring, truncation, training resume, the command."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from probekit.classifiers.multiple_choice.baselines import longest_option_accuracy, random_guess_accuracy
from probekit.classifiers.multiple_choice.train import evaluate_mc, train_multiple_choice
from probekit.corpora.multiple_choice import MCItem, read_mc, write_mc_jsonl
from probekit.classifiers.multiple_choice.model import MultipleChoiceModel
from probekit.core.encoder import load_encoder
from probekit.core.errors import UserError

P1 = "The old teacher walked slowly to the village school every morning. A young doctor helped the tired farmer."
P2 = "Mary believed that the curious child had found a strange letter in the garden."
P3 = "The river flows past the village and into the sea. The horse jumped over the gate."
ITEMS = [MCItem(P1, "Who walked to school?", ["the teacher", "the doctor", "a cat", "nobody"], 0, id="a"),
         MCItem(P2, "What did the child find?", ["a dog", "a strange letter", "bread"], 1, id="b"),
         MCItem(P3, "Where does the river flow?", ["up the hill", "into the sea"], 1, id="c"),
         MCItem(P3, "What jumped over the gate?", ["the horse", "the river", "Mary", "a bird"], 0, id="d")]


@pytest.fixture(scope="module")
def encoders(tiny_model_dirs):
    return {a: load_encoder(str(tiny_model_dirs[a])) for a in ("bert", "distilbert", "roberta")}


def _hand_scores(model: MultipleChoiceModel, items, hf_folder=None):
    """Each option scored alone: the tokenizer's own pair encoding, one sequence at a time."""
    from transformers import AutoModelForMultipleChoice

    net = AutoModelForMultipleChoice.from_pretrained(hf_folder).eval() if hf_folder else None
    out = np.full((len(items), max(len(it.options) for it in items)), -np.inf)
    for n, it in enumerate(items):
        for i, o in enumerate(it.options):
            enc = model.tokenizer(it.passage, f"{it.question} {o}", truncation="only_first",
                                  max_length=model.max_length, return_tensors="pt")
            enc = {k: v for k, v in enc.items() if k != "token_type_ids" or model.uses_token_types}
            with torch.no_grad():
                if net is not None:
                    out[n, i] = float(net(**{k: v[None] for k, v in enc.items()}).logits[0, 0])
                else:
                    hidden = model.base(**enc)
                    pooled = hidden.pooler_output if hidden.pooler_output is not None else hidden[0][:, 0]
                    out[n, i] = float(pooled[0] @ model.head.classifier.weight[0] + model.head.classifier.bias[0])
    return out


@pytest.mark.parametrize("arch", ["bert", "distilbert", "roberta"])
def test_scores_equal_a_hand_loop_over_options(arch, encoders, tmp_path):
    enc = encoders[arch]
    model = MultipleChoiceModel(enc, max_length=40, seed=3)
    assert model.hf
    # the pre-trained weights are used (a copy: the caller's encoder is not the trained one)
    base = model.encoder.model
    assert base is not enc.model
    for (k, v), (k2, v2) in zip(enc.model.state_dict().items(), base.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    model.net.save_pretrained(tmp_path / "hf")
    got = model.scores(ITEMS, batch_size=3)
    want = _hand_scores(model, ITEMS, tmp_path / "hf")
    assert np.isneginf(got[1, 3]) and np.isneginf(got[2, 2:]).all()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    # the head is seeded: same seed, same scores; another seed, others
    assert np.allclose(MultipleChoiceModel(enc, max_length=40, seed=3).scores(ITEMS), got, atol=1e-6)
    assert not np.allclose(MultipleChoiceModel(enc, max_length=40, seed=4).scores(ITEMS), got, atol=1e-6)


def test_fallback_head_equals_a_hand_loop(encoders):
    model = MultipleChoiceModel(encoders["bert"], max_length=40, hf=False)
    assert not model.hf and not hasattr(model, "net")
    np.testing.assert_allclose(model.scores(ITEMS, 2), _hand_scores(model, ITEMS), rtol=1e-4, atol=1e-5)


def test_mixed_option_counts_score_as_each_item_alone_and_train_with_finite_gradients(encoders):
    model = MultipleChoiceModel(encoders["bert"], max_length=40)
    together = model.scores(ITEMS, batch_size=4)
    for n, it in enumerate(ITEMS):
        alone = model.scores([it])[0]
        np.testing.assert_allclose(together[n, :it.k], alone, rtol=1e-4, atol=1e-5)
    model.train()
    batch = model.collate(model.encode(ITEMS))
    scores = model.batch_scores(batch)
    loss = torch.nn.functional.cross_entropy(scores, torch.tensor([it.answer for it in ITEMS]))
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert torch.isfinite(loss) and grads and all(torch.isfinite(g).all() for g in grads)
    probs = evaluate_mc(model, ITEMS, 2)["probabilities"]
    assert probs[2, 2:].sum() == 0 and np.allclose(probs.sum(1), 1)


@pytest.mark.parametrize("arch", ["bert", "roberta"])
def test_truncation_cuts_only_the_passage_and_is_counted(arch, encoders):
    model = MultipleChoiceModel(encoders[arch], max_length=24)
    encoded = model.encode(ITEMS)
    tok = model.tokenizer
    for it, e in zip(ITEMS, encoded):
        for o, ids in zip(it.options, e.input_ids):
            assert len(ids) <= 24
            qo = tok(f"{it.question} {o}", add_special_tokens=False)["input_ids"]
            # the sequence ends with the whole question + option, then the closing special token
            assert ids[-1 - len(qo):-1] == qo
            passage = tok(it.passage, add_special_tokens=False)["input_ids"]
            kept = ids[1:len(ids) - len(qo) - (tok.num_special_tokens_to_add(pair=True) - 1)]
            assert kept == passage[:len(kept)] and kept
        full = len(tok(it.passage, add_special_tokens=False)["input_ids"])
        assert e.truncated == any(full + len(tok(f"{it.question} {o}", add_special_tokens=False)["input_ids"])
                                  + tok.num_special_tokens_to_add(pair=True) > 24 for o in it.options)
    assert 0 < sum(e.truncated for e in encoded) < len(ITEMS) + 1
    assert evaluate_mc(model, ITEMS)["truncated"] == sum(e.truncated for e in encoded)
    long_q = MCItem(P1, " ".join(["teacher"] * 30), ["yes", "no"], 0, meta={"source": "x.jsonl:7"})
    with pytest.raises(UserError, match=r"x.jsonl:7: question \+ option 1 .*--max-length 24"):
        model.encode([long_q])


@pytest.mark.parametrize("hf", [True, False])
def test_saved_model_loads_back_with_the_same_scores(hf, encoders, tmp_path):
    from probekit.classifiers.multiple_choice.saved import save_multiple_choice
    from probekit.classifiers.saved import load_classifier

    model = MultipleChoiceModel(encoders["bert"], max_length=30, seed=5, hf=hf)
    with torch.no_grad():                       # as if trained: the encoder differs from the pre-trained one
        model.encoder.model.embeddings.word_embeddings.weight.mul_(1.5)
    want = model.scores(ITEMS)
    save_multiple_choice(model, tmp_path / "mc")
    back = load_classifier(tmp_path / "mc")
    assert isinstance(back, MultipleChoiceModel) and back.hf == hf and back.max_length == 30
    np.testing.assert_allclose(back.scores(ITEMS), want, rtol=1e-5, atol=1e-6)
    if hf:      # encoder/ is a complete transformers multiple-choice checkpoint
        np.testing.assert_allclose(_hand_scores(model, ITEMS, tmp_path / "mc" / "encoder"), want, rtol=1e-4,
                                   atol=1e-5)


# --- readers ----------------------------------------------------------------------------------------------------

def _tsv_line(story_id, story, questions):
    fields = [story_id, "Author: 1", story]
    for q, opts in questions:
        fields += [q, *opts]
    return "\t".join(fields)


def test_mctest_reader(tmp_path):
    qs = [("one: Who fixed the door?", ["Tom", "Jim", "Molly", "Holly"]),
          ("multiple: What was hardest?", ["Door", "House", "Window", "Toilet"]),
          ("one: Who came?", ["Jim", "Dolly", "Molly", "Holly"]),
          ("multiple: Why?", ["a", "b", "c", "d"])]
    tsv = tmp_path / "toy.train.tsv"
    tsv.write_text(_tsv_line("toy.0", "Tom fixed the door.\\newlineThen the window.", qs) + "\n"
                   + _tsv_line("toy.1", "Jim came.", qs) + "\n", encoding="utf-8")
    (tmp_path / "toy.train.ans").write_text("A\tC\tA\tD\nB\tC\tA\tD\n", encoding="utf-8")
    items = read_mc(str(tsv))
    assert len(items) == 8
    a = items[0]
    assert a.passage == "Tom fixed the door.\nThen the window."
    assert a.question == "Who fixed the door?" and a.meta["type"] == "one" and a.answer == 0
    assert items[1].question == "What was hardest?" and items[1].meta["type"] == "multiple" and items[1].answer == 2
    assert items[4].answer == 1 and items[4].meta["source"] == f"{tsv}:2" and items[7].options == ["a", "b", "c", "d"]
    # no .ans: an error, unless reading for prediction
    bare = tmp_path / "bare.tsv"
    bare.write_text(tsv.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(UserError, match="answer file .*bare.ans does not exist"):
        read_mc(str(bare))
    assert {it.answer for it in read_mc(str(bare), answers=False)} == {-1}
    # a bad line: file:line
    bad = tmp_path / "bad.tsv"
    bad.write_text(_tsv_line("b.0", "x", qs) + "\n" + _tsv_line("b.1", "y", qs[:3]) + "\n", encoding="utf-8")
    (tmp_path / "bad.ans").write_text("A\tA\tA\tA\nA\tA\tA\tA\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"bad.tsv:2: expected 23 tab-separated fields"):
        read_mc(str(bad))
    noprefix = tmp_path / "np.tsv"
    noprefix.write_text(_tsv_line("n.0", "x", [("Who?", qs[0][1])] + qs[1:]) + "\n", encoding="utf-8")
    (tmp_path / "np.ans").write_text("A\tA\tA\tA\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"np.tsv:1: question 1 does not start with 'one:' or 'multiple:'"):
        read_mc(str(noprefix))
    (tmp_path / "np.ans").write_text("A\tE\tA\tA\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"np.ans:1: expected 4 tab-separated letters"):
        read_mc(str(noprefix))


def test_named_sets_need_their_file(tmp_path):
    with pytest.raises(UserError, match=r"mc500:test: .*mctest/mc500.test.tsv does not exist"):
        read_mc("mc500:test", data_root=tmp_path)
    with pytest.raises(UserError, match="unknown split 'valid'"):
        read_mc("mc160:valid", data_root=tmp_path)


def test_jsonl_reader_and_writer(tmp_path):
    p = tmp_path / "mc.jsonl"
    rows = [{"passage": "P one.", "question": "Q?", "options": ["x", "y", "z"], "answer": 2, "id": "i1"},
            {"passage": "P two.", "question": "Q2?", "options": ["B", "A"], "answer": "A"},     # option text
            {"passage": "P three.", "question": "Q3?", "options": ["red", "blue"], "answer": "b", "topic": "c"}]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    items = read_mc(str(p))
    assert [it.answer for it in items] == [2, 1, 1]
    assert items[0].id == "i1" and items[2].meta["topic"] == "c" and items[1].meta["source"] == f"{p}:2"
    back = read_mc(str(write_mc_jsonl(items, tmp_path / "out.jsonl")))
    for a, b in zip(items, back):
        assert (a.passage, a.question, a.options, a.answer, a.id) == (b.passage, b.question, b.options, b.answer, b.id)
        assert {k: v for k, v in a.meta.items() if k != "source"} == {k: v for k, v in b.meta.items() if k != "source"}
    for line, message in ((json.dumps({**rows[0], "answer": 3}), "index 3 is out of range"),
                          (json.dumps({**rows[0], "answer": "w"}), "neither one of the options nor a letter"),
                          (json.dumps({k: v for k, v in rows[0].items() if k != "question"}), "no 'question'"),
                          (json.dumps({**rows[0], "options": ["only"]}), "at least two strings"),
                          ("{not json", "not valid JSON")):
        bad = tmp_path / "bad.jsonl"
        bad.write_text(json.dumps(rows[1]) + "\n" + line + "\n", encoding="utf-8")
        with pytest.raises(UserError, match=rf"bad.jsonl:2: .*{message}"):
            read_mc(str(bad))


def test_baselines():
    assert random_guess_accuracy(ITEMS) == pytest.approx(np.mean([1 / 4, 1 / 3, 1 / 2, 1 / 4]))
    # longest by words: a: "the teacher" (first of the 2-word ties) ✓, b: "a strange letter" ✓, c: "up the hill" ✗,
    # d: "the horse" ✓ (first of the ties)
    assert longest_option_accuracy(ITEMS) == pytest.approx(3 / 4)


# --- training ---------------------------------------------------------------------------------------------------

def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("hf", [True, False])
def test_head_and_pooler_train_at_head_lr_the_encoder_at_lr(hf, encoders):
    from probekit.classifiers.multiple_choice.train import param_groups

    model = MultipleChoiceModel(encoders["bert"], max_length=40, hf=hf)
    groups = param_groups(model, lr=5e-5, head_lr=1e-3, weight_decay=0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    where = {names[id(p)]: (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}
    assert sorted(where) == sorted(n for n, p in model.named_parameters() if p.requires_grad)   # each once
    head = "net.classifier" if hf else "head.classifier"
    pooler = "net.bert.pooler.dense" if hf else "base.pooler.dense"
    embed = "net.bert.embeddings" if hf else "base.embeddings"
    assert where[f"{head}.weight"] == (1e-3, 0.01) and where[f"{head}.bias"] == (1e-3, 0.0)
    assert where[f"{pooler}.weight"] == (1e-3, 0.01) and where[f"{pooler}.bias"] == (1e-3, 0.0)
    assert where[f"{embed}.word_embeddings.weight"] == (5e-5, 0.01)
    assert where[f"{embed}.LayerNorm.weight"] == (5e-5, 0.0)


def test_head_lr_moves_the_head_faster(encoders):
    """One step at the same encoder lr: the head moves by ≈ head_lr (Adam's first step is ±lr), the encoder by
    ≈ lr; the learning-rate schedule scales both alike."""
    opts = dict(model=encoders["bert"], epochs=1, lr=1e-5, batch_size=len(ITEMS), max_length=40, seed=1,
                quiet=True, warmup=0.0)
    fresh = MultipleChoiceModel(encoders["bert"], max_length=40, seed=1)
    before = _state(fresh)
    moved = {}
    for head_lr in (1e-5, 1e-3):
        trained, _ = train_multiple_choice(ITEMS, ITEMS, head_lr=head_lr, **opts)
        after = _state(trained)
        moved[head_lr] = {k: float((after[k] - before[k]).abs().max()) for k in ("net.classifier.weight",
                          "net.bert.encoder.layer.0.attention.self.query.weight")}
    assert moved[1e-3]["net.classifier.weight"] > 20 * moved[1e-5]["net.classifier.weight"]
    assert moved[1e-3]["net.bert.encoder.layer.0.attention.self.query.weight"] == pytest.approx(
        moved[1e-5]["net.bert.encoder.layer.0.attention.self.query.weight"], rel=0.5)


def test_resumed_training_equals_an_uninterrupted_run(encoders, tmp_path):
    train, dev = ITEMS * 3, ITEMS
    opts = dict(model=encoders["bert"], epochs=3, lr=5e-4, batch_size=3, max_length=40, seed=1, quiet=True,
                micro_batch=5)
    full, hist_full = train_multiple_choice(train, dev, **opts)

    class Killed(Exception):
        pass

    def kill_after_first(epoch, rows):
        if epoch == 1:
            raise Killed

    with pytest.raises(Killed):
        train_multiple_choice(train, dev, checkpoint=tmp_path / "ck", callback=kill_after_first, **opts)
    assert [p.name for p in (tmp_path / "ck").iterdir()] == ["epoch-0001"]
    resumed, hist = train_multiple_choice(train, dev, checkpoint=tmp_path / "ck", **opts)
    assert hist.attrs["resumed_from"] == 1 and hist_full.attrs["resumed_from"] == 0
    cols = ["epoch", "train_loss", "dev_loss", "dev_accuracy", "best"]
    assert hist[cols].equals(hist_full[cols])
    assert hist_full["train_loss"].iloc[-1] != hist_full["train_loss"].iloc[0]    # it did train
    np.testing.assert_array_equal(hist.attrs["dev_scores"], hist_full.attrs["dev_scores"])
    np.testing.assert_allclose(hist.attrs["dev_scores"], evaluate_mc(resumed, dev)["scores"], rtol=1e-5, atol=1e-6)
    a, b = _state(full), _state(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the caller's encoder is untouched
    fresh = MultipleChoiceModel(encoders["bert"], max_length=40, seed=1)
    assert not all(torch.equal(v, a[k]) for k, v in fresh.state_dict().items())
    # a finished checkpoint is read back without training; other settings are refused
    again, hist2 = train_multiple_choice(train, dev, checkpoint=tmp_path / "ck", **opts)
    assert hist2.attrs["resumed_from"] == 3 and all(torch.equal(v, a[k]) for k, v in again.state_dict().items())
    with pytest.raises(UserError, match=r"written with --lr 0.0005, this run has --lr 0.001"):
        train_multiple_choice(train, dev, checkpoint=tmp_path / "ck", **{**opts, "lr": 1e-3})
    with pytest.raises(UserError, match=r"written with train hash"):
        train_multiple_choice(train[:-1], dev, checkpoint=tmp_path / "ck", **opts)


# --- the command ------------------------------------------------------------------------------------------------

def test_command_trains_saves_and_reloads(tiny_model_dirs, tmp_path, capsys):
    from probekit.classify import main
    from probekit.classifiers.saved import load_classifier

    write_mc_jsonl(ITEMS * 2, tmp_path / "train.jsonl")
    write_mc_jsonl(ITEMS, tmp_path / "dev.jsonl")
    out = tmp_path / "run"
    args = ["--task", "multiple-choice", "--train", str(tmp_path / "train.jsonl"), "--dev", str(tmp_path / "dev.jsonl"),
            "--test", str(tmp_path / "dev.jsonl"), "--model", str(tiny_model_dirs["distilbert"]), "--epochs", "2",
            "--max-length", "24", "--out", str(out), "--quiet"]
    assert main(args) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("results: ") and "passages cut to --max-length 24: train" in line
    assert not (tmp_path / "run.checkpoint").exists()
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["counts"]["test_items"] == 4 and "test_truncated" in cfg["counts"] and cfg["timing"]["epoch_s"]
    frame = __import__("pandas").read_csv(out / "results.csv")
    assert set(frame["probe"]) == {"multiple-choice", "random guess", "longest option"}
    acc = frame[frame["probe"] == "multiple-choice"].set_index("split")["value"]
    assert acc["dev"] == acc["test"]     # same items: the reused dev scores equal a fresh pass
    model = load_classifier(out)
    assert isinstance(model, MultipleChoiceModel) and model.max_length == 24
    preds = __import__("pandas").read_csv(out / "predictions.csv")
    np.testing.assert_allclose(preds[["p_0", "p_1", "p_2", "p_3"]].to_numpy(),
                               evaluate_mc(model, ITEMS)["probabilities"], rtol=1e-4, atol=1e-6)
    assert main(args) == 2      # the finished run folder is not overwritten
    assert "already exists" in capsys.readouterr().err
    assert main(["--load", str(out), "--test", str(tmp_path / "dev.jsonl"), "--out", str(tmp_path / "x")]) == 2
    assert "is a multiple-choice model: add --task multiple-choice" in capsys.readouterr().err
    assert main(["--task", "multiple-choice", "--load", str(out), "--test", str(tmp_path / "dev.jsonl"),
                 "--out", str(tmp_path / "ev"), "--quiet"]) == 0
    ev = __import__("pandas").read_csv(tmp_path / "ev" / "results.csv")
    assert ev.query("probe == 'multiple-choice'")["value"].iloc[0] == acc["test"]


@pytest.mark.parametrize("argv, message", [
    (["--train", "missing.jsonl", "--dev", "missing.jsonl"], "--train missing.jsonl does not exist"),
    (["--train", "mc500:test", "--dev", "mc160:dev"], "mc500.test.tsv does not exist"),
    (["--head", "cls", "--train", "mc160:train", "--dev", "mc160:dev"], "--head applies to --task classification"),
    (["--train", "mc160:train"], "--train and --dev are required"),
    (["--epochs", "0", "--train", "mc160:train", "--dev", "mc160:dev"], "--epochs must be at least 1"),
    (["--head-lr", "0", "--train", "mc160:train", "--dev", "mc160:dev"], "--head-lr must be"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, tmp_path, capsys):
    from probekit.classify import main

    assert main(["--task", "multiple-choice", "--data-root", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("probekit: error: ") and message in err and len(err.splitlines()) == 1


def test_head_lr_is_refused_for_classification(tmp_path, capsys):
    from probekit.classify import main

    (tmp_path / "t.jsonl").write_text('{"text": "a b", "label": "x"}\n{"text": "c d", "label": "y"}\n')
    assert main(["--train", str(tmp_path / "t.jsonl"), "--dev", str(tmp_path / "t.jsonl"), "--head-lr", "1e-3",
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "probekit: error: --head-lr applies to --task multiple-choice only"
    assert not (tmp_path / "out").exists()
