"""Units (word, char, CJK auto), word vectors, --limit, and the refusals of encoders trained from scratch."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

import probekit as pk
from probekit.classify import main
from probekit.classifiers.verify import write_manifest
from probekit.classifiers.vocab import Vocabulary, read_vectors, split_units, vector_table
from probekit.core.errors import UserError
from probekit.core.examples import Example

TINY = dict(embedding_dim=8, hidden_dim=8, epochs=5, lr=1e-2, quiet=True, baselines=False)


def chinese(n: int, seed: int) -> list[Example]:
    """Chinese sentences without spaces; 好 (good) or 差 (bad) decides the label."""
    rng = random.Random(seed)
    filler = list("这个电影酒店服务房间我们觉得非常")
    out = []
    for _ in range(n):
        positive = rng.random() < 0.5
        chars = rng.sample(filler, 5) + ["好" if positive else "差"]
        rng.shuffle(chars)
        out.append(Example(words=None, text="".join(chars), meta={"label": "pos" if positive else "neg"}))
    return out


def test_split_units():
    assert split_units("我爱NLP 很好!".split(), "auto") == ["我", "爱", "NLP", "很", "好", "!"]
    assert split_units(["ab", "c"], "char") == ["a", "b", "c"]
    assert split_units(["我爱", "NLP"], "word") == ["我爱", "NLP"]
    assert split_units(["東京タワー", "서울"], "auto") == ["東", "京", "タ", "ワ", "ー", "서", "울"]


def test_chinese_characters_are_units_and_shown(tmp_path):
    torch.set_num_threads(1)
    res = pk.classify(chinese(120, 0), chinese(30, 1), encoder="cnn", head="max", units="auto", **TINY)
    assert res.accuracy("dev") >= 0.8
    res.write(tmp_path / "clf", overwrite=True)
    assert json.loads((tmp_path / "clf" / "vocabulary.json").read_text(encoding="utf-8"))["units"] == "auto"
    att = pk.attribute(tmp_path / "clf", texts=["这个酒店非常好"], methods=["pooling", "occlusion"], quiet=True)
    words = list(att.frame[att.frame["method"] == "pooling"]["word"])
    assert words == list("这个酒店非常好")
    html = att.html()
    assert all(c in html for c in "这个酒店非常好")
    assert "好" in att.ansi(color=False)
    occ = att.frame[att.frame["method"] == "occlusion"].set_index("word")["score"]
    assert occ["好"] > 0 and occ["好"] >= occ.abs().nlargest(2).iloc[-1]   # deleting the cue is among the top 2


def test_pretrained_tokenizer_reads_cjk_characters_as_words(tiny_model_dirs):
    from probekit.classifiers.model import Classifier
    from probekit.core.encoder import load_encoder

    clf = Classifier(load_encoder(str(tiny_model_dirs["bert"])), ["a", "b"], encoder_mode="none", head="mean")
    batch = clf.encode([Example(words=None, text="我爱北京"), Example(words=None, text="the 电影 was good")])
    assert batch["words"] == [["我", "爱", "北", "京"], ["the", "电", "影", "was", "good"]]


def test_char_units_for_english():
    ex = [Example(words=None, text="ab ba", meta={"label": "x"})]
    assert Vocabulary.build(ex, unit="char").itos == ["<pad>", "<unk>", "a", "b"]


def test_vectors_cover_part_of_the_vocabulary(tmp_path):
    vocab = Vocabulary(["<pad>", "<unk>", "good", "bad", "film"])
    path = tmp_path / "v.txt"
    path.write_text("3 2\nGood 1 2\nbad 3 4\nzebra 5 6\n", encoding="utf-8")
    table, coverage = vector_table(vocab, path, 2)
    assert coverage == pytest.approx(2 / 3)
    assert table[2].tolist() == [1, 2] and table[3].tolist() == [3, 4] and table[0].tolist() == [0, 0]


@pytest.mark.parametrize("content,message", [
    (b"", "is empty"),
    (b"good 1 2\nbad \xff\xfe 3\n", ":2: not UTF-8"),
    (b"good 1 2\nbad 3 4 5\n", ":2: 3 values where the first row has 2"),
    (b"good 1 2\nbad 3 4\ngood 5 6\n", ":3: 'good' is listed twice"),
])
def test_bad_vectors_files(tmp_path, content, message):
    path = tmp_path / "v.txt"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        read_vectors(path)


@pytest.mark.parametrize("content", [b"", b"\xff\xfe", b'{"units": "word", "lowercase": true, "itos": ["<pad>", '
                                     b'"<unk>", "a", "a"]}', b'{"units": "word", "lowercase": true, "itos": ["a"]}'])
def test_bad_saved_vocabulary(tmp_path, content):
    torch.set_num_threads(1)
    res = pk.classify(chinese(20, 0), chinese(10, 1), encoder="average", **dict(TINY, epochs=1))
    res.write(tmp_path / "clf", overwrite=True)
    (tmp_path / "clf" / "vocabulary.json").write_bytes(content)
    with pytest.raises(UserError, match="vocabulary.json.*damaged or edited"):   # the manifest sees the edit
        pk.load_classifier(tmp_path / "clf")
    write_manifest(tmp_path / "clf", ["classifier.json", "classifier.safetensors", "vocabulary.json"])
    with pytest.raises(UserError, match="vocabulary.json: not a valid vocabulary"):   # a consistent but bad folder
        pk.load_classifier(tmp_path / "clf")


@pytest.fixture()
def files(tmp_path):
    rows = [{"text": "".join(ex.text), "label": ex.meta["label"]} for ex in chinese(30, 0)]
    train, dev = tmp_path / "train.jsonl", tmp_path / "dev.jsonl"
    train.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    dev.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows[:8]) + "\n", encoding="utf-8")
    return ["--train", str(train), "--dev", str(dev)]


@pytest.mark.parametrize("extra,message", [
    (["--encoder", "lstm", "--layer", "1"], "--layer picks a transformer layer"),
    (["--encoder", "cnn", "--finetune"], "--finetune fine-tunes a pre-trained encoder"),
    (["--encoder", "lstm", "--units", "char", "--level", "token"], "--level token"),
    (["--units", "char"], "--units char applies to --encoder"),
    (["--encoder", "frozen", "--vectors", "v.txt"], "--vectors applies to --encoder"),
    (["--encoder", "lstm", "--head", "cls"], "--head cls"),
    (["--encoder", "lstm", "--vectors", "EMPTY"], "is empty"),
    (["--encoder", "lstm", "--limit", "0"], "limit"),
])
def test_refusals_one_line_exit_2_nothing_written(tmp_path, files, capsys, extra, message):
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    extra = [str(empty) if e == "EMPTY" else e for e in extra]
    out = tmp_path / "out"
    assert main(files + extra + ["--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_limit_is_a_seeded_sample(tmp_path):
    torch.set_num_threads(1)
    train = chinese(60, 0)
    a = pk.classify(train, chinese(10, 1), encoder="average", limit=20, seed=3, **dict(TINY, epochs=1))
    b = pk.classify(train, chinese(10, 1), encoder="average", limit=20, seed=3, **dict(TINY, epochs=1))
    assert a.record["counts"]["train_examples"] == 20
    assert a.classifier.vocab.itos == b.classifier.vocab.itos
    np.testing.assert_allclose(a.predictions["probability"], b.predictions["probability"])


def test_character_occlusion_of_pre_split_words(tmp_path):
    """Words given pre-split to a --units char model: occlusion deletes one character, not one word."""
    from probekit.attribution.occlusion import without_word

    ex = Example(words=["这个酒店", "非常好"], meta={})
    chars = list("这个酒店非常好")
    assert without_word(ex, chars, 5).words == list("这个酒店非好")
    assert without_word(ex, ["这个酒店", "非常好"], 1).words == ["这个酒店"]          # word units: unchanged
    pair = Example(words=["酒店", "好"], words_b=["很", "好"], meta={})
    cut = without_word(pair, list("酒店好"), 0)
    assert cut.words == list("店好") and cut.words_b == ["很", "好"]

    torch.set_num_threads(1)
    res = pk.classify(chinese(120, 0), chinese(30, 1), encoder="cnn", head="max", units="char", **TINY)
    clf = res.classifier
    att = pk.attribute(clf, data=[ex], methods=["occlusion"], quiet=True)
    occ = att.frame[att.frame["method"] == "occlusion"]
    assert list(occ["word"]) == chars
    from probekit.attribution.occlusion import class_distributions

    p = class_distributions(clf, [ex] + [Example(words=None, text="".join(chars[:i] + chars[i + 1:]))
                                         for i in range(len(chars))], 8)
    target = int(p[0].argmax())
    np.testing.assert_allclose(occ["score"].to_numpy(), p[0, target] - p[1:, target], atol=1e-6)
