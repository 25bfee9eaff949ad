"""Attention-only parsing probes: synthetic tasks they must learn, baselines, features, the parse CLI."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

import importlib

parse = importlib.import_module("probekit.parse")  # the command module (pk.parse is the function)
from probekit.syntax.parsing_probes import (ParsingProbe, Tree, UAS, attention_maps, distance_features, evaluate_probe,
                                evaluate_right_branching, right_branching, train_probe)
from probekit.syntax.word_vectors import glove_vectors, vocabulary

L, H = 2, 3


def _random_tree(rng, n):
    order = rng.permutation(n)
    heads = np.zeros(n, dtype=np.int64)
    for k, w in enumerate(order[1:], 1):
        heads[w] = order[rng.integers(0, k)] + 1
    return heads


def _synthetic(rng, count, gold_layer=1, gold_head=2):
    """Random attention everywhere except one head whose dep→head attention is the gold tree ([CLS] = ROOT)."""
    items = []
    for _ in range(count):
        n = int(rng.integers(2, 12))
        heads = _random_tree(rng, n)
        U = n + 2
        A = rng.dirichlet(np.ones(U), size=(L, H, U)).astype(np.float32)
        G = np.zeros((U, U), dtype=np.float32)
        G[0, 0] = G[-1, -1] = 1
        for j, h in enumerate(heads):
            G[j + 1, h] = 1.0          # h = 0 → [CLS]
        A[gold_layer, gold_head] = G
        special = np.zeros(U, dtype=bool)
        special[[0, -1]] = True
        items.append((A, special, Tree(heads=heads, punct=np.zeros(n, dtype=bool), word_ids=np.arange(1, n + 1))))
    return items


def test_attn_probe_learns_the_head_that_equals_the_tree():
    rng = np.random.default_rng(0)
    train, dev = _synthetic(rng, 150), _synthetic(rng, 60)
    torch.manual_seed(0)
    probe = ParsingProbe("attn", 2 * L * H)
    times = train_probe(probe, [t for *_, t in train], lambda i: train[i][:2], epochs=1)
    assert len(times) == 1
    uas = evaluate_probe(probe, [t for *_, t in dev], lambda i: dev[i][:2])
    assert uas > 0.97
    w = probe.w.detach().numpy().reshape(2, L, H)
    assert np.argmax(w) == np.ravel_multi_index((0, 1, 2), w.shape)   # dep->head of layer 2, head 3
    assert evaluate_right_branching([t for *_, t in dev]) < 0.6


def test_attn_words_probe_learns_and_root_alignment_matters():
    rng = np.random.default_rng(1)
    train, dev = _synthetic(rng, 150), _synthetic(rng, 60)
    vectors = torch.randn(20, 6)
    torch.manual_seed(0)
    probe = ParsingProbe("attn-words", 2 * L * H, word_dim=6)
    train_probe(probe, [t for *_, t in train], lambda i: train[i][:2], vectors, epochs=5)
    assert evaluate_probe(probe, [t for *_, t in dev], lambda i: dev[i][:2], vectors) > 0.9
    v = torch.arange(6.0).reshape(3, 2)
    assert ParsingProbe("attn-words", 4, word_dim=2).candidate_vectors(v)[0].abs().sum() == 0
    bug = ParsingProbe("attn-words", 4, word_dim=2, root_misaligned=True).candidate_vectors(v)
    assert bug[-1].abs().sum() == 0 and torch.equal(bug[0], v[0])


def test_distance_mlp_learns_a_positional_tree():
    """Every word's head is the previous word (first word → ROOT): distance features alone suffice."""
    trees = [Tree(heads=np.arange(n), punct=np.zeros(n, dtype=bool), word_ids=np.arange(1, n + 1))
             for n in [3, 5, 7, 4, 6] * 12]
    vectors = torch.zeros(10, 4)
    torch.manual_seed(0)
    probe = ParsingProbe("distance-words", 0, word_dim=4)
    train_probe(probe, trees, None, vectors, epochs=1)
    assert evaluate_probe(probe, trees[:10], None, vectors) == 1.0


def test_features_and_baselines_by_hand():
    f = distance_features(3)
    assert f.shape == (3, 4, 8)
    assert f[0, 0].tolist() == [0, 0, 0, 0, 0, 0, 0, 1]                  # candidate ROOT
    assert f[2, 1].tolist() == pytest.approx([2 / 3, 0, 0, 0, 0, 1, 0, 0])  # head two words to the left
    assert f[0, 2].tolist() == pytest.approx([0, 1 / 3, 0, 0, 1, 0, 0, 0])  # next word
    assert right_branching(4).tolist() == [2, 3, 4, 0]
    uas = UAS()
    uas.add(np.array([2, 3, 4, 0]), Tree(heads=np.array([2, 0, 2, 3]), punct=np.array([0, 0, 0, 1], bool),
                                         word_ids=np.zeros(4, int)))
    assert (uas.correct, uas.total) == (1, 3)
    A = np.random.default_rng(0).dirichlet(np.ones(5), size=(1, 1, 5)).astype(np.float32)
    sp = np.array([1, 0, 0, 0, 1], bool)
    maps, root = attention_maps(A, sp)
    assert maps.shape == (2, 3, 3) and root.shape == (2, 2, 3)
    assert maps[0, 0, 2] == pytest.approx(A[0, 0, 1, 3]) and maps[1, 0, 2] == pytest.approx(A[0, 0, 3, 1])
    assert root[0, 0, 1] == pytest.approx(A[0, 0, 2, 0]) and root[1, 1, 1] == pytest.approx(A[0, 0, 4, 2])


def test_a_word_is_never_its_own_head():
    probe = ParsingProbe("attn", 2)
    with torch.no_grad():
        probe.w.fill_(1.0)
    A = np.zeros((1, 1, 5, 5), dtype=np.float32)
    A[0, 0, np.arange(5), np.arange(5)] = 1.0              # pure self-attention
    maps, root = attention_maps(A, np.array([1, 0, 0, 0, 1], bool))
    logits = probe(maps, root, None)
    assert torch.isinf(logits[[0, 1, 2], [1, 2, 3]]).all()
    assert (logits.argmax(1) != torch.arange(1, 4)).all()


def test_glove_file_reader(tmp_path):
    p = tmp_path / "glove.txt"
    p.write_text("the 0.1 0.2\ndog 1 2\ncat 3 4\n", encoding="utf-8")
    vocab = vocabulary(["The", "dog", "zebra"], lowercase=True)
    table, found = glove_vectors(p, vocab)
    assert found == 2 and table.shape == (4, 2)
    assert table[vocab["the"]].tolist() == pytest.approx([0.1, 0.2]) and table[vocab["zebra"]].abs().sum() == 0
    (tmp_path / "bad.txt").write_text("the 0.1 0.2\ndog 1\n", encoding="utf-8")
    from probekit.core.errors import UserError

    with pytest.raises(UserError, match=r"bad.txt:2:"):
        glove_vectors(tmp_path / "bad.txt", vocab)


CONLLU = """\
1\tThe\tthe\tDET\t_\t_\t2\tdet\t_\t_
2\tdog\tdog\tNOUN\t_\t_\t3\tnsubj\t_\t_
3\tbarked\tbark\tVERB\t_\t_\t0\troot\t_\t_
4\t.\t.\tPUNCT\t_\t_\t3\tpunct\t_\t_

1\tA\ta\tDET\t_\t_\t2\tdet\t_\t_
2\tcat\tcat\tNOUN\t_\t_\t3\tnsubj\t_\t_
3\tslept\tsleep\tVERB\t_\t_\t0\troot\t_\t_
4\tquietly\tquietly\tADV\t_\t_\t3\tadvmod\t_\t_
5\t.\t.\tPUNCT\t_\t_\t3\tpunct\t_\t_
"""


def test_parse_cli_end_to_end(tmp_path, tiny_model_dirs, capsys):
    train = tmp_path / "train.conllu"
    train.write_text("\n".join([CONLLU] * 3), encoding="utf-8")
    dev = tmp_path / "dev.conllu"
    dev.write_text(CONLLU, encoding="utf-8")
    out = tmp_path / "run"
    rc = parse.main(["--train", str(train), "--dev", str(dev), "--out", str(out), "--quiet", "--no-cache",
                     "--model", str(tiny_model_dirs["bert"]), "--epochs", "2"])
    assert rc == 0
    df = pd.read_csv(out / "results.csv")
    assert list(df.probe) == ["right-branching", "distance-words", "attn", "attn-words"]
    assert (df.n_words == 7).all() and df.value.between(0, 1).all()
    assert df.set_index("probe").loc["right-branching", "value"] == pytest.approx(4 / 7)
    md = (out / "results.md").read_text()
    assert "| model | UAS |" in md and "Attn + word vectors" in md
    weights = pd.read_csv(out / "attn_weights.csv")
    assert len(weights) == 2 * 2 * 4
    assert json.loads((out / "config.json").read_text())["counts"]["train"] == 6
    assert parse.main(["--train", str(train), "--dev", str(dev), "--probes", "attn,nope", "--quiet"]) == 2
    assert "unknown 'nope'" in capsys.readouterr().err


# ---- option checks (in-process, before anything is read or extracted) ---------------------------------------
BAD_OPTIONS = [
    (["--batch-size", "-1"], "--batch-size must be at least 1 (got -1)"),
    (["--batch-size", "0"], "--batch-size must be at least 1 (got 0)"),
    (["--epochs", "0"], "--epochs must be at least 1 (got 0)"),
    (["--lr", "nan"], "--lr must be a finite number (got nan)"),
    (["--lr", "0"], "--lr must be greater than 0 (got 0)"),
    (["--lr", "-0.1"], "--lr must be greater than 0 (got -0.1)"),
    (["--limit", "0"], "--limit must be at least 1 (got 0)"),
    (["--max-length", "2"], "--max-length must be at least 3 (got 2)"),
    (["--max-length", "-5"], "--max-length must be at least 3 (got -5)"),
    (["--device", "nonsense"], "--device 'nonsense' is not a torch device"),
    (["--probes", ""], "--probes needs at least one of"),
    (["--word-vectors", "missing-glove.txt"], "--word-vectors missing-glove.txt does not exist"),
]


@pytest.mark.parametrize("argv,message", BAD_OPTIONS, ids=[" ".join(a) for a, _ in BAD_OPTIONS])
def test_bad_option_values_refused_before_any_extraction(tmp_path, capsys, argv, message, tiny_model_dirs):
    train = tmp_path / "train.conllu"
    train.write_text(CONLLU, encoding="utf-8")
    cache, out = tmp_path / "cache", tmp_path / "run"
    rc = parse.main(["--train", str(train), "--dev", str(train), "--out", str(out), "--quiet", "--cache-dir",
                     str(cache), "--model", str(tiny_model_dirs["bert"]), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and message in err[0], err
    assert not out.exists() and not cache.exists()        # nothing extracted, nothing invalid cached


def test_a_refused_batch_size_leaves_the_cache_usable(tmp_path, tiny_model_dirs):
    import probekit as pk
    from probekit.core.errors import UserError

    train = tmp_path / "train.conllu"
    train.write_text(CONLLU, encoding="utf-8")
    opts = dict(train=train, dev=train, probes=["attn"], model=str(tiny_model_dirs["bert"]), cache_dir=tmp_path / "c",
                quiet=True)
    with pytest.raises(UserError, match="--batch-size must be at least 1"):
        pk.parse(batch_size=-1, **opts)
    with pytest.raises(UserError, match=r"--train .* is a folder, not a file"):
        pk.parse(**{**opts, "train": tmp_path})
    result = pk.parse(batch_size=2, **opts)
    assert 0 <= result.frame.value.iloc[0] <= 1 and len(result.weights) == 2 * 2 * 4
    again = pk.parse(batch_size=2, **opts)                # served from the cache: the same numbers
    pd.testing.assert_frame_equal(result.frame.drop(columns="seconds_per_epoch"),
                                  again.frame.drop(columns="seconds_per_epoch"))
