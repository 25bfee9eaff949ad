"""Nothing the user has is overwritten, work sizes are bounded before work starts, Markdown cells show literally."""
from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pandas as pd
import pytest

import probekit as pk
from probekit.core import checks
from probekit.core.errors import UserError
from probekit.core.outputs import write_atomic
from probekit.core.rundir import markdown_table


def _data(tmp_path: Path) -> Path:
    p = tmp_path / "data.jsonl"
    p.write_text(json.dumps({"text": "a fine film", "label": "pos"}) + "\n", encoding="utf-8")
    return p


# --- output files -------------------------------------------------------------------------------------------

def test_attack_augment_refuses_its_own_data_and_an_existing_file(tmp_path):
    data = _data(tmp_path)
    before = data.read_bytes()
    with pytest.raises(UserError, match=r"--augment .*data.jsonl is also an input of this run"):
        pk.attack(str(tmp_path / "no-classifier"), str(data), augment=str(data), overwrite=True, quiet=True)
    other = tmp_path / "aug.jsonl"
    other.write_text("mine\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"--augment .*aug.jsonl already exists \(pass --overwrite"):
        pk.attack(str(tmp_path / "no-classifier"), str(data), augment=str(other), quiet=True)
    assert data.read_bytes() == before and other.read_text(encoding="utf-8") == "mine\n"


def test_an_input_reached_by_another_spelling_is_still_an_input(tmp_path):
    data = _data(tmp_path)
    link = tmp_path / "link.jsonl"
    os.symlink(data, link)
    with pytest.raises(UserError, match="is also an input"):
        checks.output_file("augment", link, overwrite=True, inputs=[str(tmp_path / "." / "data.jsonl")])


def test_write_atomic_leaves_the_old_file_whole_when_the_disk_is_full(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")

    def full(tmp):
        Path(tmp).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(UserError, match=r"cannot write --png .*out.png: No space left on device \(nothing"):
        write_atomic(target, full, name="png")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
    write_atomic(target, "new")
    assert target.read_text(encoding="utf-8") == "new"


def test_attribute_refuses_an_existing_png_before_any_work(tmp_path, monkeypatch):
    import importlib

    cli = importlib.import_module("probekit.attribute")

    calls = []
    monkeypatch.setattr(cli, "attribute", lambda *a, **k: calls.append(1) or pytest.fail("work started"))
    existing = tmp_path / "x.png"
    existing.write_bytes(b"png")
    assert cli.main(["--classifier", str(tmp_path), "--text", "good", "--png", str(existing), "--quiet",
                     "--out", str(tmp_path / "run")]) == 2
    assert existing.read_bytes() == b"png" and not calls and not (tmp_path / "run").exists()


# --- work sizes ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("check, message", [
    (lambda: checks.positive("steps", 10**9), "--steps must be at most 1000"),
    (lambda: checks.positive("epochs", 10**12), "--epochs must be at most 10000"),
    (lambda: checks.positive("draws", 10**9), "--draws must be at most 10000"),
    (lambda: checks.positive("permutations", 10**9), "--permutations must be at most 100000"),
    (lambda: checks.integer("seed", -1), "--seed must be at least 0"),
    (lambda: checks.integer("seed", 2**32), "--seed must be at most 4294967295"),
    (lambda: checks.number("lr", 1e300, above=0), "--lr must be at most 10"),
    (lambda: checks.number("head_lr", 50, above=0), "--head-lr must be at most 10"),
])
def test_work_sizes_are_bounded_with_the_bound_in_the_message(check, message):
    with pytest.raises(UserError, match=message):
        check()


def test_commands_refuse_unbounded_work_before_loading_anything(tmp_path):
    data = _data(tmp_path)
    with pytest.raises(UserError, match="--draws must be at most"):
        pk.attack(str(tmp_path / "no-classifier"), str(data), draws=10**9, quiet=True)
    with pytest.raises(UserError, match="--seed must be at least 0"):
        pk.classify(str(data), str(data), model=str(tmp_path / "no-model"), seed=-1, quiet=True)
    with pytest.raises(UserError, match="--lr must be at most"):
        pk.classify(str(data), str(data), model=str(tmp_path / "no-model"), lr=1e300, quiet=True)


def test_memory_is_estimated_before_integrated_gradients(monkeypatch):
    need = checks.ig_memory(steps=1000, rows=4096, length=512, hidden=4096, layers=48)
    monkeypatch.setattr(checks, "available_memory", lambda device="cpu": 8 * 2**30)
    with pytest.raises(UserError, match=r"needs about .* GiB of memory, more than the 8.0 GiB free"):
        checks.memory_fits("integrated gradients", need)
    checks.memory_fits("integrated gradients",
                       checks.ig_memory(steps=50, rows=16, length=64, hidden=384, layers=6))


# --- Markdown ------------------------------------------------------------------------------------------------

def test_markdown_cells_show_bars_newlines_and_html_literally():
    df = pd.DataFrame({"label|x": ["a|b", "<script>alert(1)</script>", "two\nlines"], "value": [1.0, 2.0, 3.0]})
    text = markdown_table(df)
    rows = text.strip().split("\n")
    assert len(rows) == 5                                    # header, rule, three rows: no row was split
    assert all(r.replace("\\|", "").count("|") == 3 for r in rows)
    assert "<script>" not in text and "&lt;script&gt;" in text and "two<br>lines" in text


def test_attribute_refuses_integrated_gradients_that_cannot_fit_before_any_work(tiny_model_dirs, monkeypatch):
    from probekit.classifiers.model import Classifier
    from probekit.core.encoder import load_encoder

    clf = Classifier(load_encoder(str(tiny_model_dirs["bert"])), ["neg", "pos"], head="mean")
    monkeypatch.setattr(checks, "available_memory", lambda device="cpu": 1024)
    monkeypatch.setattr(clf, "forward", lambda *a, **k: pytest.fail("the model ran"))
    with pytest.raises(UserError, match=r"integrated gradients needs about .* lower --ig-rows or --steps"):
        pk.attribute(clf, ["a fine film"], methods=["integrated-gradients"], quiet=True)
    monkeypatch.setattr(checks, "available_memory", lambda device="cpu": None)    # unknown: no refusal, it runs
    with pytest.raises(pytest.fail.Exception, match="the model ran"):
        pk.attribute(clf, ["a fine film"], methods=["integrated-gradients"], quiet=True)


def test_a_run_folder_never_replaces_what_the_run_read(tmp_path):
    from probekit.core.result import Result

    class Dummy(Result):
        command = "dummy"

        def write_files(self, run):
            run.write_text("results.csv", "x\n")

    data_dir = tmp_path / "d"
    data_dir.mkdir()
    data = data_dir / "train.jsonl"
    data.write_text("{}\n", encoding="utf-8")
    result = Dummy(pd.DataFrame(), {"inputs": {"data": str(data)}, "arguments": {"classifier": str(tmp_path / "c")}})
    with pytest.raises(UserError, match=r"--out .*d holds .*train.jsonl, which this run read"):
        result.write(data_dir, overwrite=True)
    assert data.read_text(encoding="utf-8") == "{}\n"
    (tmp_path / "c").mkdir()
    with pytest.raises(UserError, match=r"--out .*c is .*c, which this run read"):
        result.write(tmp_path / "c", overwrite=True)
    assert (result.write(tmp_path / "elsewhere") / "results.csv").is_file()
