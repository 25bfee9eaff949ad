"""Messages that say what and where: a non-string --text, a non-model folder, a recorded data path that moved,
pickle-only model folders."""
from __future__ import annotations

import json
import shutil

import pytest

import probekit as pk
from probekit.classifiers.saved import recorded_split
from probekit.core.encoder import load_encoder
from probekit.core.errors import UserError


def test_a_text_that_is_not_a_string_says_what_it_is(tmp_path):
    import probekit as pk

    # the options are checked before the classifier is read
    with pytest.raises(UserError, match=r"--text number 1 is a int \(123\), not a string of text"):
        pk.attribute(str(tmp_path / "no-classifier"), [123])


def test_compare_on_a_folder_that_is_no_model_says_so_in_one_whole_sentence(tmp_path):
    (tmp_path / "notes.txt").write_text("hi", encoding="utf-8")
    with pytest.raises(UserError) as info:
        pk.compare(str(tmp_path), quiet=True)
    message = str(info.value)
    assert "is not a model folder: it has no config.json" in message and message.endswith(")")


def test_a_moved_classifier_finds_its_data_beside_it_or_says_the_path_is_recorded(tmp_path):
    folder = tmp_path / "clf"
    folder.mkdir()
    record = {"arguments": {"train": "data/train.jsonl", "dev": "rt:dev"}, "cwd": str(tmp_path / "gone")}
    (folder / "config.json").write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(UserError, match=r"config.json records --train data/train.jsonl \(relative to .*gone, where "
                                        r"classify ran\), which no longer resolves .*; pass --train FILE"):
        recorded_split(folder, "train")
    assert recorded_split(folder, "dev") == "rt:dev"
    (folder / "data").mkdir()
    (folder / "data" / "train.jsonl").write_text("{}\n", encoding="utf-8")
    assert recorded_split(folder, "train") == str(folder / "data" / "train.jsonl")


def test_a_run_record_says_where_relative_paths_start(tmp_path):
    from probekit.core.rundir import run_record

    import os

    assert run_record("x", {})["cwd"] == os.getcwd()


def test_a_folder_with_only_pickle_weights_is_read_as_tensors_and_said(tiny_model_dirs, tmp_path, capsys):
    src = tiny_model_dirs["bert"]
    enc = load_encoder(str(src))
    folder = tmp_path / "bin"
    shutil.copytree(src, folder, ignore=shutil.ignore_patterns("*.safetensors"))
    import torch

    torch.save(enc.model.state_dict(), folder / "pytorch_model.bin")
    again = load_encoder(str(folder))
    assert "holds only pickle weights (.bin); they are read with torch's weights_only=True" in capsys.readouterr().err
    for (k, a), (_, b) in zip(sorted(again.model.state_dict().items()), sorted(enc.model.state_dict().items())):
        assert torch.equal(a, b), k
