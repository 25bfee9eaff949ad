"""``pk.attention`` and ``pk.browse`` from Python: the same tables and files as their commands."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import probekit as pk
from probekit.attention import main as attention_main
from probekit.browse import main as browse_main

TEXT = """The old teacher walked slowly to the village school every morning .
A young doctor helped the tired farmer carry heavy boxes across the river .

The painter and his friendly dog waited quietly near the ancient house .
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    p = tmp_path_factory.mktemp("corpus") / "docs.txt"
    p.write_text(TEXT, encoding="utf-8")
    return p


def _same_table(frame: pd.DataFrame, csv) -> None:
    """The CSV is the frame written with 6 significant digits: same columns, keys and values."""
    disk = pd.read_csv(csv)
    assert list(disk.columns) == list(frame.columns)
    for col in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[col]):
            a, b = disk[col].to_numpy(float), frame[col].astype("Float64").to_numpy(float, na_value=np.nan)
            assert np.allclose(a, b, rtol=1e-5, equal_nan=True), col
        else:
            assert disk[col].fillna("").astype(str).tolist() == frame[col].fillna("").astype(str).tolist(), col


def test_attention_frame_is_the_commands_csv_and_write_is_the_command(tiny_model_dirs, corpus, tmp_path, capsys):
    model = str(tiny_model_dirs["bert"])
    options = dict(model=model, pairs=True, budget=40, gradients=True, grad_limit=4, seed=1)
    assert attention_main(["--corpus", str(corpus), "--out", str(tmp_path / "cli"), "--quiet", "--model", model,
                           "--pairs", "--budget", "40", "--gradients", "--grad-limit", "4", "--seed", "1"]) == 0
    result = pk.attention(corpus, quiet=True, **options)
    assert isinstance(result, pk.Result) and result.command == "attention"
    _same_table(result.frame, tmp_path / "cli" / "stats.csv")
    _same_table(result.distances, tmp_path / "cli" / "head_distances.csv")
    assert list(result.mds.columns) == ["layer", "head", "x", "y"] and len(result.mds) == 2 * 4
    assert result.gradients["metric"].str.startswith("grad_").all() and len(result.gradients) == 3 * 2
    out = result.write(tmp_path / "py", figures=["png", "svg"])
    cli_files = sorted(p.name for p in (tmp_path / "cli").iterdir())
    assert sorted(p.name for p in out.iterdir()) == sorted(cli_files + [f.replace(".png", ".svg")
                                                                      for f in cli_files if f.endswith(".png")])
    assert (out / "summary.md").read_text() == (tmp_path / "cli" / "summary.md").read_text()
    a, b = (json.loads((d / "config.json").read_text()) for d in (out, tmp_path / "cli"))
    assert a["arguments"] == b["arguments"] and a["model"]["fingerprint"] == b["model"]["fingerprint"]
    assert a["counts"] == b["counts"] and a["command"] == "attention"


def test_attention_stats_through_analyze_is_the_commands_table(tiny_model_dirs, corpus):
    enc = pk.load_encoder(tiny_model_dirs["bert"], attention=True)
    examples = pk.read_sentences(corpus)
    stats, = pk.analyze(enc, examples, [pk.AttentionStats(enc, similarity=False)], batch_size=16)
    frame = pk.attention(corpus, model=tiny_model_dirs["bert"], no_similarity=True, quiet=True).frame
    assert np.allclose(stats["value"].to_numpy(float), frame["value"].to_numpy(float), equal_nan=True)
    assert stats[["layer", "head", "metric"]].astype(str).equals(frame[["layer", "head", "metric"]].astype(str))


def test_browse_write_is_what_the_command_writes_and_frame_is_what_the_page_shows(tiny_model_dirs, tmp_path, capsys):
    import re

    model = str(tiny_model_dirs["bert"])
    text = "The old teacher walked slowly to the school ."
    assert browse_main(["--model", model, "--text", text, "--out", str(tmp_path / "cli.html"), "--layer", "2",
                        "--png", str(tmp_path / "cli.png"), "--quiet"]) == 0
    assert "opens on layer 2" in capsys.readouterr().out             # the closing line, even with --quiet
    result = pk.browse(text, model=model, layer=2, quiet=True)
    path = result.write(tmp_path / "py.html", png=tmp_path / "py.png")
    assert isinstance(result, pk.Result) and path == tmp_path / "py.html" and result.written == [tmp_path / "py.html", tmp_path / "py.png"]
    assert (tmp_path / "py.html").read_bytes() == (tmp_path / "cli.html").read_bytes()
    assert (tmp_path / "py.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.first["layer"] == 2 and 1 <= result.first["head"] <= 4
    with pytest.raises(pk.UserError, match="already exists"):
        result.write(tmp_path / "py.html")
    # .frame: this input's statistics per layer and head, exactly the numbers in the page's gallery
    frame = result.frame
    assert list(frame.columns[:6]) == ["task", "model", "layer", "head", "metric", "value"]
    assert (frame["task"] == "browse").all() and (frame["level"] == "token").all()
    data = json.loads(re.search(r'id="pk-data">(.*?)</script>', result.page, re.S).group(1))
    from probekit.viz.head_view import LABELS

    names = data["stats"]["names"]
    for metric, rows in frame.groupby("metric", sort=False):
        shown = data["stats"]["values"][names.index(LABELS[metric])]
        rows = rows.sort_values(["layer", "head"])
        assert np.allclose(shown, rows["value"].to_numpy(float)), metric
    assert data["initial"] == {"layer": result.first["layer"] - 1, "head": result.first["head"] - 1}
