"""Named data sets are found the same way wherever a command runs: $PROBEKIT_DATA, else the user data folder."""
from __future__ import annotations

import pytest

from probekit.corpora.labelled import default_data_root, read_named, user_data_dir
from probekit.corpora.multiple_choice import read_mc
from probekit.core.errors import UserError


def _rt(root):
    rt = root / "rt-sentence-polarity"
    rt.mkdir(parents=True)
    (rt / "rt-polarity.pos").write_text("".join(f"good film {i}\n" for i in range(20)), encoding="utf-8")
    (rt / "rt-polarity.neg").write_text("".join(f"bad film {i}\n" for i in range(20)), encoding="utf-8")


@pytest.fixture
def homes(tmp_path, monkeypatch):
    monkeypatch.delenv("PROBEKIT_DATA", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    work = tmp_path / "somewhere" / "deep"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    return tmp_path


def test_the_user_data_folder_is_found_from_any_working_folder(homes, monkeypatch):
    _rt(homes / "xdg" / "probekit" / "data")
    _rt(homes / "somewhere" / "shared" / "data")          # a folder relative to the working one is never read
    assert default_data_root() == homes / "xdg" / "probekit" / "data" == user_data_dir()
    assert len(read_named("rt:train")) == 32
    monkeypatch.chdir(homes)
    assert len(read_named("rt:dev")) == 4


def test_probekit_data_comes_first(homes, monkeypatch):
    _rt(homes / "xdg" / "probekit" / "data")
    (homes / "mine").mkdir()
    monkeypatch.setenv("PROBEKIT_DATA", str(homes / "mine"))
    assert default_data_root() == homes / "mine"
    with pytest.raises(UserError, match=r"rt-polarity.neg does not exist \(is --data-root or \$PROBEKIT_DATA"):
        read_named("rt:train")


def test_no_data_folder_names_what_it_tried(homes):
    with pytest.raises(UserError) as err:
        read_named("rt:test")
    msg = str(err.value)
    assert msg.startswith("rt:test: no data folder") and "$PROBEKIT_DATA is not set" in msg
    assert str(homes / "xdg" / "probekit" / "data") in msg and "--data-root" in msg and "\n" not in msg
    with pytest.raises(UserError, match=r"mc160:dev: no data folder: \$PROBEKIT_DATA is not set .* mctest/"):
        read_mc("mc160:dev")
