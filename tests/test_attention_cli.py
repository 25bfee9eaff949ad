"""``python -m probekit.attention`` on tiny models: documents, pair packing and segment ids, word level, the
gradient objectives (masked LM and a last-layer probe), outputs, and one-line errors that leave nothing behind."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

import probekit.heads.attention_gradients as ag
from probekit.attention import main
from probekit.core.errors import UserError
from probekit.heads.attention import attention, attention_statistics
from probekit.heads.attention_gradients import GradientStats, attention_gradients, mask_tokens, mlm_gradients
from probekit.corpora.documents import pair_inputs, read_documents, single_inputs
from probekit.core.encoder import load_encoder
from probekit.core.examples import Example
from probekit.core.extraction import encode_examples
from probekit.corpora.grammar import Grammar, generate
from probekit.probing.registry import ProbingData

TEXT = """The old teacher walked slowly to the village school every morning .
A young doctor helped the tired farmer carry heavy boxes across the river .
Mary believed that the curious child had found a strange letter in the garden .

The painter and his friendly dog waited quietly near the ancient house .
Yesterday the students laughed because the clever cat danced on the piano .

Alice borrowed a famous book from the library and read it twice .
"""

CONLLU = """# newdoc id = d1
# sent_id = 1
# text = Hello world .
1\tHello\thello\tINTJ\t_\t_\t0\troot\t_\t_
2\tworld\tworld\tNOUN\t_\t_\t1\tvocative\t_\t_
3\t.\t.\tPUNCT\t_\t_\t1\tpunct\t_\t_

# sent_id = 2
1\tGood\tgood\tADJ\t_\t_\t2\tamod\t_\t_
2\tnight\tnight\tNOUN\t_\t_\t0\troot\t_\t_

# newdoc id = d2

# sent_id = 3
1\tBye\tbye\tINTJ\t_\t_\t0\troot\t_\t_
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    p = tmp_path_factory.mktemp("corpus") / "docs.txt"
    p.write_text(TEXT, encoding="utf-8")
    return p


@pytest.fixture(scope="module")
def nohead_dir(tmp_path_factory):
    from tiny_models import make_tiny_model

    return make_tiny_model("bert", tmp_path_factory.mktemp("nohead") / "bert", mlm_head=False)


def test_documents_from_text_conllu_and_generated(corpus, tmp_path):
    docs, how = read_documents(corpus)
    assert [len(d) for d in docs] == [3, 2, 1] and "blank" in how
    assert docs[0][1].words[:2] == ["A", "young"] and docs[2][0].meta["source"].endswith(":8")
    assert [len(d) for d in read_documents(corpus, limit=4)[0]] == [3, 1]
    c = tmp_path / "x.conllu"
    c.write_text(CONLLU, encoding="utf-8")
    docs, how = read_documents(c)
    assert [[ex.words for ex in d] for d in docs] == [[["Hello", "world", "."], ["Good", "night"]], [["Bye"]]]
    assert "newdoc" in how
    c.write_text(CONLLU.replace("# newdoc id = d1\n", "").replace("# newdoc id = d2\n\n", ""), encoding="utf-8")
    docs, how = read_documents(c)
    assert [len(d) for d in docs] == [3] and "one document" in how
    gen, _ = read_documents(None, limit=20, seed=3)
    assert sum(len(d) for d in gen) == 20 and len(gen) == 3
    assert [ex.words for d in gen for ex in d] == [ex.words for d in read_documents(None, limit=20, seed=3)[0]
                                                   for ex in d]


def test_pairs_pack_consecutive_sentences_of_one_document_within_the_budget(tiny_model_dirs, corpus):
    from tiny_models import make_tokenizer

    tok = make_tokenizer("bert")
    docs, _ = read_documents(corpus)
    sentences = [ex.words for d in docs for ex in d]
    longest = max(len(tok(s, is_split_into_words=True)["input_ids"]) for s in sentences)
    budget = 2 * longest
    inputs = pair_inputs(docs, tok, budget)
    assert len(inputs.examples) < len(sentences) and inputs.n_sentences == 6
    rebuilt = {d: [] for d in range(len(docs))}
    for ex, d in zip(inputs.examples, inputs.documents):
        assert ex.words and ex.words_b                     # every input has two segments
        ids = tok(ex.words, ex.words_b, is_split_into_words=True)["input_ids"]
        assert len(ids) <= budget
        rebuilt[d].extend(ex.words + ex.words_b)
    for d, doc in enumerate(docs):                        # in order, nothing lost, never across documents
        assert rebuilt[d] == [w for ex in doc for w in ex.words]
    # the three-sentence document splits at the boundary that balances A and B
    first = inputs.examples[0]
    assert len(first.meta["sources"]) >= 2
    # a one-sentence document is split at its middle word
    last = inputs.examples[-1]
    assert last.words + last.words_b == docs[2][0].words and abs(len(last.words) - len(last.words_b)) <= 1
    # segment ids 0 for [CLS] A [SEP], 1 for B [SEP]; "zero" reproduces Clark's all-zero ids
    enc = load_encoder(tiny_model_dirs["bert"], attention=True)
    std = encode_examples(enc, [first], level="token", segment_ids="standard")[0]
    zero = encode_examples(enc, [first], level="token", segment_ids="zero")[0]
    n_a = len(tok(first.words, is_split_into_words=True)["input_ids"])
    assert std.token_type_ids == [0] * n_a + [1] * (len(std.input_ids) - n_a)
    assert zero.token_type_ids == [0] * len(zero.input_ids) and zero.input_ids == std.input_ids
    weights = inputs.weights("document")
    for d in set(inputs.documents):
        assert sum(w for w, dd in zip(weights, inputs.documents) if dd == d) == pytest.approx(1.0)
    assert single_inputs(docs).weights("input") == [1.0] * 6


def run(argv, capsys):
    code = main([*map(str, argv), "--quiet"])
    return code, capsys.readouterr()


def test_cli_outputs_and_segment_ids_matter(tiny_model_dirs, corpus, tmp_path, capsys):
    model = tiny_model_dirs["bert"]
    base = ["--model", model, "--corpus", corpus, "--pairs", "--budget", 40]
    code, _ = run([*base, "--out", tmp_path / "std", "--gradients"], capsys)
    assert code == 0
    out = tmp_path / "std"
    for name in ("stats.csv", "head_distances.csv", "summary.md", "config.json", "attention_to.png", "head_grid.png",
                 "entropy.png", "head_map.png", "gradients.png"):
        assert (out / name).stat().st_size > 0, name
    df = pd.read_csv(out / "stats.csv")
    assert list(df.columns) == ["task", "model", "layer", "head", "metric", "value", "aggregate"]
    heads = df[df["head"].notna()]
    assert sorted(heads["layer"].unique()) == [1, 2] and sorted(heads["head"].unique()) == [1, 2, 3, 4]
    assert {"cls", "sep", "sep_sep", "rest_sep", "entropy", "mds_x"} <= set(heads["metric"])
    assert heads["aggregate"].isna().all() and (df["task"] == "attention").all()
    grads = df[df["metric"].str.startswith("grad_")]
    assert grads["head"].isna().all() and len(grads) == 3 * 2 and (grads["aggregate"] == "all heads").all()
    assert np.isfinite(grads["value"]).all() and (grads["value"] >= 0).all()
    config = json.loads((out / "config.json").read_text())
    assert config["inputs"]["segment_ids"] == "standard" and config["inputs"]["budget"] == 40
    assert config["gradients"]["objective"] == "mlm"
    assert config["counts"]["n_inputs_head_distances"] == config["counts"]["n_inputs"] > 0
    assert "mlm" in (out / "summary.md").read_text()
    code, _ = run([*base, "--out", tmp_path / "zero", "--segment-ids", "zero", "--no-similarity"], capsys)
    assert code == 0
    zdf = pd.read_csv(tmp_path / "zero" / "stats.csv")
    assert json.loads((tmp_path / "zero" / "config.json").read_text())["inputs"]["segment_ids"] == "zero"
    assert not (tmp_path / "zero" / "head_distances.csv").exists()
    a = heads[heads.metric == "sep"].sort_values(["layer", "head"])["value"].to_numpy()
    b = zdf[zdf.metric == "sep"].sort_values(["layer", "head"])["value"].to_numpy()
    assert not np.allclose(a, b)                            # the token type embedding changes attention


def test_word_level_equals_token_level_when_no_word_is_split(tiny_model_dirs, tmp_path, capsys):
    from tiny_models import CORPUS, make_tokenizer

    tok = make_tokenizer("bert")
    whole = [w for w in dict.fromkeys(CORPUS.lower().replace(".", " ").replace(",", " ").split())
             if len(tok.tokenize(w)) == 1]
    lines = [" ".join(whole[i:i + 6]) + " ." for i in range(0, 36, 6)]
    p = tmp_path / "whole.txt"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    frames = {}
    for level in ("token", "word"):
        result = attention(p, model=tiny_model_dirs["bert"], no_similarity=True, quiet=True,
                           word_level=level == "word")
        frames[level] = result.frame
        assert result.record["inputs"]["level"] == level
    assert np.allclose(frames["token"]["value"], frames["word"]["value"])


def test_roberta_specials_are_found(tiny_model_dirs, corpus, tmp_path, capsys):
    result = attention(corpus, model=tiny_model_dirs["roberta"], pairs=True, budget=60, no_similarity=True,
                       quiet=True)
    df = result.frame
    assert result.record["inputs"]["special_tokens"] == {"cls": "<s>", "sep": "</s>"}
    assert df[df.metric.isin(["cls", "sep", "sep_sep"])]["value"].gt(0).all()
    same = attention_statistics(corpus, model=tiny_model_dirs["roberta"], pairs=True, budget=60,
                                no_similarity=True, quiet=True)
    assert same.equals(df)


def test_mlm_masking_is_deterministic_and_never_touches_specials(tiny_model_dirs):
    enc = load_encoder(tiny_model_dirs["bert"], attention=True)
    ids = enc.tokenizer(["the old teacher walked slowly to the village school every morning"] * 1,
                        is_split_into_words=False)["input_ids"][0]
    a = mask_tokens(enc, ids, seed=1, index=3)
    assert a == mask_tokens(enc, ids, seed=1, index=3)
    corrupted, labels = a
    chosen = [t for t, l in enumerate(labels) if l >= 0]
    assert 0 not in chosen and len(ids) - 1 not in chosen
    assert len(chosen) == max(1, round(0.15 * (len(ids) - 2)))
    assert all(labels[t] == ids[t] for t in chosen)
    assert all(corrupted[t] == ids[t] for t in range(len(ids)) if t not in chosen)


def test_mlm_gradients_are_per_input_whatever_the_batching(tiny_model_dirs):
    enc = load_encoder(tiny_model_dirs["bert"], attention=True)
    sents = generate(Grammar.load("english"), 6, seed=2)
    examples = [Example(words=s.words) for s in sents]
    one = mlm_gradients(enc, examples, batch_size=1).frame()
    many = mlm_gradients(enc, examples, batch_size=4).frame()
    assert np.allclose(one["value"], many["value"], rtol=1e-4)
    assert (one["value"] > 0).all() and np.isfinite(one["value"]).all()


def test_gradient_stats_average_over_heads_rows_and_class_keys():
    g = torch.zeros((1, 2, 3, 3))
    g[0, 0, :, 2] = 3.0           # head 1: |g| = 3 on key 2 from every row
    g[0, 1, 0, 2] = -6.0          # head 2: one entry
    real = torch.tensor([[True, True, True]])
    keys = {"grad_sep": torch.tensor([[False, False, True]]), "grad_punct": torch.tensor([[False, False, False]]),
            "grad_unmasked": torch.tensor([[True, True, True]])}
    s = GradientStats(1)
    s.add([g], real, keys)
    f = s.frame().set_index("metric")["value"]
    assert f["grad_sep"] == pytest.approx((3 * 3 + 6) / (2 * 3 * 1))
    assert f["grad_unmasked"] == pytest.approx((3 * 3 + 6) / (2 * 3 * 3))
    assert np.isnan(f["grad_punct"])              # no input had such a key


def small_task(task_name, *, seed, corpus=None):
    sents = generate(Grammar.load("english"), 60, seed=seed, keep=lambda s: len(s.words) >= 4)
    exs = [Example(words=s.words, meta={"split": "train" if i < 45 else "dev", "targets": [0, 2]})
           for i, s in enumerate(sents)]
    return ProbingData(exs, [{"n": 1}, {"n": 3}], ["train", "dev"])


def test_probe_objective_without_a_head(nohead_dir, corpus, tmp_path, capsys, monkeypatch):
    enc = load_encoder(nohead_dir, attention=True)
    assert enc.mlm_model is None
    monkeypatch.setattr(ag, "task_data", small_task)
    frame, record = attention_gradients(enc, [], limit=10, seed=0)
    assert record["objective"] == "probe:nth_token" and record["inputs"] == 10
    assert np.isfinite(frame["value"]).all() and (frame["value"] >= 0).all() and frame["value"].gt(0).any()
    # through the CLI: the objective is named in config.json and summary.md
    code, _ = run(["--model", nohead_dir, "--corpus", corpus, "--out", tmp_path / "p", "--gradients",
                   "--no-similarity", "--grad-limit", 8], capsys)
    assert code == 0
    assert json.loads((tmp_path / "p" / "config.json").read_text())["gradients"]["objective"] == "probe:nth_token"
    assert "probe:nth_token" in (tmp_path / "p" / "summary.md").read_text()
    code, err = run(["--model", nohead_dir, "--corpus", corpus, "--out", tmp_path / "m", "--gradients",
                     "--objective", "mlm"], capsys)
    assert code == 2 and "masked-LM head" in err.err and not (tmp_path / "m").exists()


@pytest.mark.parametrize("setup, message", [
    ("missing", "does not exist"),
    ("empty", "empty"),
    ("latin1", ":2: not UTF-8"),
    ("badconllu", ":2:"),
])
def test_corpus_errors_are_one_line_exit_2_and_write_nothing(setup, message, tiny_model_dirs, tmp_path, capsys):
    p = tmp_path / ("c.conllu" if setup == "badconllu" else "c.txt")
    if setup == "empty":
        p.write_text("\n\n", encoding="utf-8")
    elif setup == "latin1":
        p.write_bytes("first line\ncaf\xe9 au lait\n".encode("latin-1"))
    elif setup == "badconllu":
        p.write_text("# sent_id = 1\n1\tHello\n", encoding="utf-8")
    out = tmp_path / "out"
    code, captured = run(["--model", tiny_model_dirs["bert"], "--corpus", p, "--out", out], capsys)
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("probekit: error:") and message in lines[0]
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_gradients_without_a_head_use_the_users_corpus_and_say_so(nohead_dir, tmp_path, capsys):
    """Section 5: the probe objective is built from --corpus (nth_token reads one) and the run names its data."""
    sents = generate(Grammar.load("english"), 80, seed=4, keep=lambda s: 10 <= len(s.words) <= 16)
    p = tmp_path / "mine.txt"
    p.write_text("\n".join(" ".join(s.words) for s in sents) + "\n", encoding="utf-8")
    code, captured = run(["--model", nohead_dir, "--corpus", p, "--out", tmp_path / "g", "--gradients",
                          "--no-similarity", "--limit", 6, "--grad-limit", 8], capsys)
    assert code == 0, captured.err
    grad = json.loads((tmp_path / "g" / "config.json").read_text())["gradients"]
    assert grad["objective"] == "probe:nth_token" and grad["from_corpus"] is True
    assert grad["inputs"] == 8 and grad["probe_train_sentences"] + 8 <= len(sents)
    assert f"sentences of the corpus {p}" in grad["data"]
    head = (tmp_path / "g" / "summary.md").read_text().split("## Notable")[0]
    assert f"**gradients from**: {grad['data']}" in head                # at the top of summary.md
    assert f"gradients from: {grad['data']}" in captured.out            # and in the console
    # without a corpus the probe's sentences are generated, and the run says that instead
    none = attention(model=nohead_dir, limit=4, gradients=True, grad_limit=4, no_similarity=True, quiet=True)
    assert none.record["gradients"]["from_corpus"] is False and "generated" in none.record["gradients"]["data"]


@pytest.mark.parametrize("options, message", [
    ({"batch_size": 0}, "--batch-size must be at least 1 (got 0)"),
    ({"batch_size": -1}, "--batch-size must be at least 1"),
    ({"budget": 0}, "--budget must be at least 1"),
    ({"limit": 0}, "--limit must be at least 1"),
    ({"grad_limit": 0}, "--grad-limit must be at least 1"),
    ({"similarity_limit": 0}, "--similarity-limit must be at least 1"),
    ({"max_length": 2}, "--max-length must be at least 3"),
    ({"max_length": 0}, "--max-length must be at least 3"),
    ({"device": "cuda:99"}, "--device"),
    ({"device": "nonsense"}, "--device"),
    ({"segment_ids": "one"}, "--segment-ids must be one of"),
    ({"objective": "x"}, "--objective must be one of"),
    ({"corpus": "FOLDER"}, "is a folder, not a file"),
])
def test_bad_options_from_python_are_one_line_user_errors(options, message, tmp_path, monkeypatch):
    import probekit.core.encoder as enc

    monkeypatch.setattr(enc, "load_encoder", lambda *a, **k: pytest.fail("the model was loaded"))
    options = {k: (str(tmp_path) if v == "FOLDER" else v) for k, v in options.items()}
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        attention(**{"corpus": None, **options})
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("extra, message", [
    (["--budget", "0"], "--budget"),
    (["--batch-size", "0"], "--batch-size must be at least 1"),
    (["--max-length", "2"], "--max-length must be at least 3"),
    (["--device", "cuda:99"], "--device"),
    (["--gradients", "--task", "no_such_task"], "unknown task"),
    (["--segment-ids", "one"], "invalid choice"),
])
def test_option_errors(extra, message, tiny_model_dirs, corpus, tmp_path, capsys):
    code, captured = run(["--model", tiny_model_dirs["bert"], "--corpus", corpus, "--out", tmp_path / "o", *extra],
                         capsys)
    assert code == 2 and message in captured.err and len(captured.err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_module_entry_point(tmp_path):
    r = subprocess.run([sys.executable, "-m", "probekit.attention", "--corpus", str(tmp_path / "nope.txt"),
                        "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "nope.txt" in r.stderr
