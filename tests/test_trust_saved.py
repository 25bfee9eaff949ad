"""A saved classifier is verified before it is used: manifest, classifier.json field by field, encoder source,
weights that cannot be read, multiple-choice folders and resume checkpoints — each one line, exit status 2."""
from __future__ import annotations

import errno
import importlib
import json
import pickle
from pathlib import Path

import pytest
import torch

import probekit as pk
from probekit.classifiers.model import Classifier
from probekit.classifiers.saved import load_classifier, save_classifier
from probekit.classifiers.verify import MANIFEST, encoder_sources, write_manifest
from probekit.core.encoder import load_encoder
from probekit.core.errors import UserError


@pytest.fixture(scope="module")
def bert(tiny_model_dirs):
    return load_encoder(str(tiny_model_dirs["bert"]))


@pytest.fixture
def saved(bert, tmp_path) -> Path:
    torch.manual_seed(0)
    clf = Classifier(bert, ["neg", "pos"], head="attention")
    return save_classifier(clf, tmp_path / "clf")


def _edit_config(folder: Path, **changes) -> None:
    """Edit classifier.json as a user would, and re-write the manifest (so only the field checks can tell)."""
    cfg = json.loads((folder / "classifier.json").read_text(encoding="utf-8"))
    cfg.update(changes)
    (folder / "classifier.json").write_text(json.dumps(cfg), encoding="utf-8")
    write_manifest(folder, ["classifier.json", "classifier.safetensors"])


def test_a_saved_classifier_lists_its_files_in_a_manifest_and_loads(saved):
    manifest = json.loads((saved / MANIFEST).read_text(encoding="utf-8"))
    assert set(manifest["sha256"]) == {"classifier.json", "classifier.safetensors"}
    assert load_classifier(saved).labels == ["neg", "pos"]


def _flip(p: Path, at: int) -> None:
    """Flip the bits of one byte, as a damaged disk or a hand would."""
    data = bytearray(p.read_bytes())
    data[at] ^= 0xFF
    p.write_bytes(bytes(data))


def test_a_flipped_byte_in_the_weights_is_named(saved):
    _flip(saved / "classifier.safetensors", -5)
    with pytest.raises(UserError, match=r"classifier.safetensors is damaged or edited"):
        load_classifier(saved)


def test_a_file_added_after_saving_is_refused(saved):
    (saved / "encoder").mkdir()
    (saved / "encoder" / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(UserError, match=r"pytorch_model.bin is not in manifest.json"):
        load_classifier(saved)


@pytest.mark.parametrize("changes, message", [
    ({"labels": ["pos", "neg"]}, r"labels and label2id disagree \(label2id\['pos'\] = 1, but 'pos' is label 0\)"),
    ({"labels": "np"}, r"labels: str 'np'.*not a list of strings"),
    ({"shiny": 1, "level": "sentence", "head": "nope"},
     r"3 problem\(s\): unknown key 'shiny'; head: 'nope' is not one of .*; level: 'sentence' is not one of"),
    ({"layer": -1}, r"layer: -1 is not a layer number"),
    ({"layer": 99}, r"layer: 99 is beyond the encoder's 2 layers"),
    ({"labels": ["a", "b", "c"], "label2id": {"a": 0, "b": 1, "c": 2}}, r"3 labels, but the head has 2 outputs"),
    ({"options": {"dropout": 7}}, r"options.dropout: 7 is not a number in \[0, 1\)"),
])
def test_classifier_json_is_checked_field_by_field(saved, changes, message):
    _edit_config(saved, **changes)
    with pytest.raises(UserError, match=message):
        load_classifier(saved)


def test_an_edited_config_without_a_new_manifest_is_named(saved):
    cfg = json.loads((saved / "classifier.json").read_text(encoding="utf-8"))
    cfg["labels"] = cfg["labels"][::-1]
    (saved / "classifier.json").write_text(json.dumps(cfg), encoding="utf-8")
    with pytest.raises(UserError, match=r"classifier.json is damaged or edited"):
        load_classifier(saved)


def test_a_folder_without_a_manifest_loads_with_a_warning_and_damage_is_one_line(saved, capsys):
    (saved / MANIFEST).unlink()
    assert load_classifier(saved).labels == ["neg", "pos"]
    assert "has no manifest.json" in capsys.readouterr().err
    p = saved / "classifier.safetensors"
    p.write_bytes(p.read_bytes()[:40])                      # truncated: the header promises more
    with pytest.raises(UserError, match=r"classifier.safetensors: cannot read the classifier head's weights"):
        load_classifier(saved)


def test_an_encoder_outside_the_folder_is_loaded_only_when_named(saved, tiny_model_dirs, monkeypatch):
    monkeypatch.delenv("PROBEKIT_ENCODER_SOURCE", raising=False)
    with pytest.raises(UserError, match=r"outside the classifier folder .* --encoder-source .* PROBEKIT_ENCODER_SOURCE="):
        load_classifier(saved)
    with encoder_sources(tiny_model_dirs["bert"]):
        assert load_classifier(saved).labels == ["neg", "pos"]
    monkeypatch.setenv("PROBEKIT_ENCODER_SOURCE", str(tiny_model_dirs["bert"]))
    assert load_classifier(saved).labels == ["neg", "pos"]
    monkeypatch.setenv("PROBEKIT_ENCODER_SOURCE", str(tiny_model_dirs["roberta"]))   # another model: refused
    with pytest.raises(UserError, match=r"differs from the one this classifier was trained with"):
        load_classifier(saved)


class _Payload:
    def __reduce__(self):
        return (print, ("this ran",))


def test_pickle_weights_that_torch_refuses_are_one_line_and_exit_2(saved, tmp_path, capsys):
    cfg = json.loads((saved / "classifier.json").read_text(encoding="utf-8"))
    enc = saved / "encoder"
    bert = Path(cfg["encoder"]["source"])
    enc.mkdir()
    for f in bert.iterdir():
        if f.suffix != ".safetensors":
            (enc / f.name).write_bytes(f.read_bytes())
    with open(enc / "pytorch_model.bin", "wb") as f:
        pickle.dump({"w": _Payload()}, f)
    cfg["encoder_mode"] = "finetune"
    (saved / "classifier.json").write_text(json.dumps(cfg), encoding="utf-8")
    (saved / MANIFEST).unlink()                             # as an older probekit (or a hand) left it
    main = importlib.import_module("probekit.attribute").main
    assert main(["--classifier", str(saved), "--text", "good", "--quiet", "--out", str(tmp_path / "o")]) == 2
    out = capsys.readouterr()
    err = [l for l in out.err.strip().splitlines() if "error" in l]
    assert len(err) == 1 and "cannot load the encoder" in err[0] and "this ran" not in out.out + out.err


def test_a_full_disk_during_save_leaves_nothing(bert, tmp_path, monkeypatch):
    import safetensors.torch

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    with pytest.raises(UserError, match=r"cannot save the classifier to .*: No space left on device"):
        save_classifier(Classifier(bert, ["a", "b"], head="mean"), tmp_path / "clf")
    assert not (tmp_path / "clf").exists()


def test_classify_run_on_a_full_disk_is_one_line_with_nothing_left(tmp_path, tiny_model_dirs, monkeypatch, capsys):
    import safetensors.torch

    data = tmp_path / "d.tsv"
    data.write_text("".join(f"{w} film\t{l}\n" for w, l in [("good", "pos"), ("bad", "neg")] * 6), encoding="utf-8")
    real = safetensors.torch.save_file

    def full(state, path, *a, **k):
        if Path(path).name == "classifier.safetensors":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(state, path, *a, **k)

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    main = importlib.import_module("probekit.classify").main
    rc = main(["--train", str(data), "--dev", str(data), "--model", str(tiny_model_dirs["bert"]), "--epochs", "1",
               "--out", str(tmp_path / "run"), "--quiet", "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "No space left on device" in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "d.tsv"]


# --- multiple choice and checkpoints ----------------------------------------------------------------------------

def test_a_damaged_multiple_choice_folder_is_named(bert, tmp_path):
    from probekit.classifiers.multiple_choice.saved import save_multiple_choice
    from probekit.classifiers.multiple_choice.model import MultipleChoiceModel

    folder = save_multiple_choice(MultipleChoiceModel(bert, max_length=30, hf=True), tmp_path / "mc")
    assert isinstance(load_classifier(folder), MultipleChoiceModel)
    weights = next((folder / "encoder").glob("*.safetensors"))
    _flip(weights, -3)
    with pytest.raises(UserError, match=rf"{weights.name} is damaged or edited"):
        load_classifier(folder)


def _checkpoint(tmp_path):
    from probekit.classifiers.multiple_choice.checkpoint import Checkpoint

    net = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(net.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    ckpt = Checkpoint(tmp_path / "ckpt", {"epochs": 2})
    ckpt.save(epoch=1, model=net, best_state=net.state_dict(), best_epoch=1, optimizer=opt, scheduler=sched,
              generator=torch.Generator(), rows=[], timing=[])
    return ckpt


def test_a_damaged_trainer_state_is_refused_by_name(tmp_path):
    ckpt = _checkpoint(tmp_path)
    assert ckpt.load("cpu")["epoch"] == 1
    p = ckpt.latest() / "trainer.pt"
    _flip(p, p.stat().st_size // 2)
    with pytest.raises(UserError, match=r"trainer.pt is damaged or edited"):
        ckpt.load("cpu")


def test_a_checkpoint_path_that_is_a_file_is_refused_before_training(tmp_path):
    from probekit.classifiers.multiple_choice.checkpoint import Checkpoint

    f = tmp_path / "ckpt"
    f.write_text("x", encoding="utf-8")
    with pytest.raises(UserError, match=r"--checkpoint .*ckpt is a file, not a folder"):
        Checkpoint(f, {})


def test_a_hugging_face_name_is_loaded_only_when_named_too(tmp_path, monkeypatch):
    from probekit.classifiers.verify import encoder_location

    info = {"name": "org/model", "source": "org/model"}
    monkeypatch.delenv("PROBEKIT_ENCODER_SOURCE", raising=False)
    with pytest.raises(UserError, match=r"PROBEKIT_ENCODER_SOURCE=org/model"):
        encoder_location(tmp_path, info, tmp_path / "classifier.json")
    with encoder_sources("org/model"):
        assert encoder_location(tmp_path, info, tmp_path / "classifier.json") == "org/model"
    inside = tmp_path / "enc"
    inside.mkdir()
    assert encoder_location(tmp_path, {"name": "x", "source": "enc"}, tmp_path / "c.json") == str(inside)


def test_compare_checks_the_folder_and_loads_a_recorded_base_only_when_named(bert, tmp_path, monkeypatch):
    clf = Classifier(bert, ["neg", "pos"], head="cls", encoder_mode="finetune")
    folder = save_classifier(clf, tmp_path / "ft")
    monkeypatch.delenv("PROBEKIT_ENCODER_SOURCE", raising=False)
    with pytest.raises(UserError, match=r"outside the classifier folder .* or give --base"):
        pk.compare(str(folder), quiet=True)
    _flip(folder / "classifier.safetensors", -2)
    with pytest.raises(UserError, match=r"classifier.safetensors is damaged or edited"):
        pk.compare(str(folder), quiet=True)


def test_a_named_model_folder_stands_in_for_a_recorded_one_that_moved(saved, tiny_model_dirs, tmp_path, monkeypatch):
    import shutil

    moved = tmp_path / "moved-bert"
    shutil.copytree(tiny_model_dirs["bert"], moved)
    monkeypatch.setenv("PROBEKIT_ENCODER_SOURCE", str(moved))
    clf = load_classifier(saved)
    assert clf.source.source == str(moved) and clf.labels == ["neg", "pos"]


def test_the_commands_take_the_encoder_source_as_an_option(saved, tiny_model_dirs, monkeypatch, tmp_path, capsys):
    from probekit.attribute import main

    monkeypatch.delenv("PROBEKIT_ENCODER_SOURCE", raising=False)
    args = ["--classifier", str(saved), "--text", "a good film", "--methods", "gradient", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "refused")]) == 2
    assert "--encoder-source" in capsys.readouterr().err and not (tmp_path / "refused").exists()
    assert main([*args, "--out", str(tmp_path / "ok"), "--encoder-source", str(tiny_model_dirs["bert"])]) == 0
    assert (tmp_path / "ok" / "attributions.csv").is_file()
