"""Head browser page (no browser needed), static head figures and the browse CLI."""
from __future__ import annotations

import base64
import json
import re
import xml.etree.ElementTree as ET
import zlib

import numpy as np
import pandas as pd
import pytest

from probekit.browse import main as browse_main
from probekit.viz.browse import read_sentence
from probekit.viz.head_view import DEFAULT_TOP_K, HeadMap, encode_head, render_head_view, stats_payload, thumbnails
from probekit.core.errors import UserError
from probekit.viz.headplots import plot_head, plot_layer_grid

EVIL = ["[CLS]", "<script>window.__pk_injected=1</script>", "</script><script>x=1</script>", "a&amp;b",
        "<!--", "\u2028line", "$5", "[SEP]"]


def _attention(L, H, U, seed=0, concentration=0.3):
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.full(U, concentration), size=(L, H, U)).astype(np.float32)


def _data_block(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="pk-data">(.*?)</script>', page, re.S)
    assert m is not None
    return json.loads(m.group(1))


def _head_bytes(view: dict, layer: int, head: int, H: int) -> bytes:
    """One head's bytes from a page view: inflate the level's zlib stream, cut at the head's offsets."""
    raw = zlib.decompress(base64.b64decode(view["heads"]))
    k = layer * H + head
    assert view["offsets"][-1] == len(raw)
    return raw[view["offsets"][k]:view["offsets"][k + 1]]


def _decode(raw: bytes, U: int):
    """The page's sparse head format read back: (row counts, columns, byte weights)."""
    counts = np.frombuffer(raw[:2 * U], "<u2")
    nnz = int(counts.sum())
    cols = np.frombuffer(raw[2 * U:2 * U + 2 * nnz], "<u2")
    vals = np.frombuffer(raw[2 * U + 2 * nnz:], np.uint8)
    assert len(vals) == nnz
    return counts, cols, vals


def test_text_cannot_become_markup():
    stats = pd.DataFrame({"layer": [1], "head": [1], "stat": ["<img src=x onerror=alert(1)>"], "value": [0.5]})
    page = render_head_view(EVIL, _attention(1, 2, len(EVIL)), title="<b>bold</b> & </title>", stats=stats)
    # only the page's own two script elements exist: the inert JSON block and the program
    assert page.count("<script") == 2 and page.count("</script") == 2
    assert "<img" not in page and "<!--" not in page and "<b>bold" not in page
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &lt;/title&gt;" in page
    data = _data_block(page)  # the escaping is lossless: the text comes back exactly
    assert data["views"]["token"]["units"] == EVIL
    assert data["stats"]["names"] == ["<img src=x onerror=alert(1)>"]
    # no network: the page's policy forbids every fetch and any script but its own
    assert "default-src 'none'" in page and "connect-src 'none'" in page
    assert "http://" not in page and "https://" not in page


def test_sparse_storage_round_trip_and_cap():
    U, k = 40, 5
    a = _attention(1, 1, U, seed=3, concentration=1.0)[0, 0]
    a[0] = 0.0
    a[0, 7] = 0.001   # rounds to 0 → not stored
    a[0, 9] = 0.999
    blob, dropped, mass = encode_head(a, top_k=k)
    counts, cols, vals = _decode(blob, U)
    assert counts[0] == 1 and cols[0] == 9 and vals[0] == 255
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(int)
    for i in range(1, U):
        c, v = cols[starts[i]:starts[i + 1]], vals[starts[i]:starts[i + 1]]
        top = np.sort(np.argsort(a[i])[::-1][:k])
        assert list(c) == list(top)                       # the k largest, in column order
        assert np.abs(v / 255 - a[i, c]).max() <= 0.5 / 255 + 1e-7
    assert dropped == pytest.approx(max(np.sort(a[i])[::-1][k] for i in range(U)))
    assert 0 < mass < 1
    # no cap: every weight that survives rounding is kept
    counts_all, _, _ = _decode(encode_head(a, top_k=None)[0], U)
    assert list(counts_all) == list((np.rint(a * 255) > 0).sum(1))


def test_page_for_512_tokens_is_bounded():
    U = 512
    a = _attention(6, 12, U, seed=1, concentration=1.0)  # dense rows: every row hits the top-k cap
    page = render_head_view([f"t{i}" for i in range(U)], a, title="long")
    size = len(page.encode("utf-8"))
    assert size <= 20_000_000
    data = _data_block(page)
    raw = zlib.decompress(base64.b64decode(data["views"]["token"]["heads"]))
    assert len(raw) <= 72 * (2 * U + 3 * U * DEFAULT_TOP_K)   # the documented bound before compression
    counts, _, _ = _decode(_head_bytes(data["views"]["token"], 5, 11, 12), U)
    assert counts.max() == DEFAULT_TOP_K
    assert data["storage"]["notes"]["token"]["droppedMax"] <= 1 / (DEFAULT_TOP_K + 1)


def test_both_levels_and_initial_selection():
    a_tok, a_word = _attention(2, 3, 6), _attention(2, 3, 4, seed=2)
    page = render_head_view(list("abcdef"), a_tok, level="token", other=HeadMap(list("wxyz"), a_word),
                            initial_layer=2, initial_head=3)
    data = _data_block(page)
    assert set(data["views"]) == {"token", "word"} and data["views"]["word"]["units"] == list("wxyz")
    assert data["initial"] == {"layer": 1, "head": 2}
    with pytest.raises(ValueError):
        render_head_view(list("abcdef"), a_tok, other=HeadMap(list("wxyz"), _attention(1, 3, 4)))
    with pytest.raises(ValueError):
        render_head_view(list("abc"), a_tok)   # units do not match the map
    with pytest.raises(ValueError):
        render_head_view(list("abcdef"), a_tok, initial_layer=3)


def test_thumbnails_are_block_means_scaled_to_max():
    a = np.zeros((1, 1, 4, 4))
    a[0, 0] = [[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0.5, 0.5], [0, 0, 0.5, 0.5]]
    t, B = thumbnails(a, bins=2)
    assert B == 2
    assert t[0, 0].tolist() == [[128, 0], [0, 255]]   # block means 0.25 and 0.5, scaled by 0.5


def test_stats_payload():
    df = pd.DataFrame({
        "layer": [1, 1, 2, 2, 1, 2],
        "head": [1, 2, 1, 2, None, None],
        "stat": ["entropy"] * 4 + ["grad_sep"] * 2,
        "value": [1.0, 2.0, 3.0, float("nan"), 9.0, 9.0],
        "model": ["m"] * 6,
    })
    p = stats_payload(df, num_layers=2, num_heads=2)
    assert p["names"] == ["entropy"]                   # per-layer rows (no head) are left out
    assert p["values"][0] == [1.0, 2.0, 3.0, None]     # index = layer_index * H + head_index
    both = pd.concat([df.assign(level="token"), df.assign(level="word", value=df["value"] * 10)])
    assert stats_payload(both, 2, 2, level="word")["values"][0][:3] == [10.0, 20.0, 30.0]
    assert stats_payload(both, 2, 2)["names"] == ["entropy [token]", "entropy [word]"]
    with pytest.raises(ValueError, match="layer 1 head 2 do not fit"):
        stats_payload(df, num_layers=2, num_heads=1)
    with pytest.raises(ValueError, match="two values"):
        stats_payload(pd.concat([df, df]), 2, 2)
    with pytest.raises(ValueError, match="lacks"):
        stats_payload(df.drop(columns="stat"), 2, 2)


def test_static_figures_png_and_svg(tmp_path):
    units = ["[CLS]", "$5", "<script>", "costs", "[SEP]"]
    a = _attention(1, 3, len(units))[0]
    png = plot_head(units, a[0], tmp_path / "head.png", title="layer 1, head 1")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = plot_layer_grid(units, a, tmp_path / "grid.svg", layer=4)
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    text = "".join(root.itertext())
    assert "$5" in text and "<script>" in text and "4-3" in text   # labels literal, panels named layer-head
    lines = plot_head(units, a[1], tmp_path / "lines.svg", style="lines")
    assert ET.parse(lines).getroot().tag.endswith("svg")
    with pytest.raises(ValueError):
        plot_head(units, a[0], tmp_path / "head.jpg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.svg", "head.png", "lines.svg"]  # no temp files


CONLLU = """# sent_id = 1
1\tHello\thello\tINTJ\t_\t_\t0\troot\t_\t_

# sent_id = 2
# text = Don't go.
1-2\tDon't\t_\t_\t_\t_\t_\t_\t_\t_
1\tDo\tdo\tAUX\t_\t_\t3\taux\t_\t_
2\tn't\tnot\tPART\t_\t_\t3\tadvmod\t_\t_
3\tgo\tgo\tVERB\t_\t_\t0\troot\t_\t_
3.1\tgone\t_\t_\t_\t_\t_\t_\t_\t_
4\t.\t.\tPUNCT\t_\t_\t3\tpunct\t_\t_
"""


def test_read_sentence(tmp_path):
    c = tmp_path / "x.conllu"
    c.write_text(CONLLU, encoding="utf-8")
    assert read_sentence(c, 2).words == ["Do", "n't", "go", "."]
    t = tmp_path / "x.txt"
    t.write_text("first one\n\nsecond  one here\n", encoding="utf-8")
    ex = read_sentence(t, 2)
    assert ex.words == ["second", "one", "here"] and ex.meta["source"].endswith(":3")
    with pytest.raises(UserError, match="has 2 sentence"):
        read_sentence(c, 3)
    with pytest.raises(UserError, match="has 2 sentence"):
        read_sentence(t, 5)


@pytest.mark.parametrize("argv, message", [
    (["--text", "   ", "--out", "{d}/p.html"], "--text is empty"),
    (["--corpus", "{d}/missing.txt", "--out", "{d}/p.html"], "does not exist"),
    (["--corpus", "{d}/c.txt", "--sentence", "7", "--out", "{d}/p.html"], "out of range"),
    (["--text", "hi"], "nothing to write"),
    (["--text", "hi", "--sentence", "2", "--out", "{d}/p.html"], "give --corpus too"),
    (["--text", "hi", "--png", "{d}/f.png"], "need --layer"),
    (["--text", "hi", "--png", "{d}/f.svg", "--layer", "1"], "must end in .png"),
    (["--text", "hi", "--out", "{d}/p.html", "--stats", "{d}"], "stats.csv does not exist"),
])
def test_cli_errors_are_one_line(tmp_path, capsys, argv, message):
    (tmp_path / "c.txt").write_text("one sentence\n", encoding="utf-8")
    code = browse_main([a.format(d=tmp_path) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("probekit: error:") and message in err[0]
    assert not (tmp_path / "p.html").exists()


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    from tiny_models import make_tiny_model

    return str(make_tiny_model("bert", tmp_path_factory.mktemp("tiny") / "bert"))


def test_cli_end_to_end(tiny_bert, tmp_path, capsys):
    stats = pd.DataFrame([(l, h, s, l + h / 10) for l in (1, 2) for h in (1, 2, 3, 4) for s in ("a", "b")],
                         columns=["layer", "head", "stat", "value"])
    (tmp_path / "run").mkdir()
    stats.to_csv(tmp_path / "run" / "stats.csv", index=False)
    out = tmp_path / "page.html"
    code = browse_main(["--model", tiny_bert, "--text", "The old teacher walked <b>slowly</b>.", "--out", str(out),
                        "--stats", str(tmp_path / "run"), "--layer", "2", "--head", "3",
                        "--png", str(tmp_path / "h.png"), "--svg", str(tmp_path / "h.svg"), "--quiet"])
    assert code == 0, capsys.readouterr().err
    data = _data_block(out.read_text(encoding="utf-8"))
    assert set(data["views"]) == {"token", "word"} and (data["L"], data["H"]) == (2, 4)
    assert data["initial"] == {"layer": 1, "head": 2}
    assert "<" in data["views"]["word"]["units"] and data["views"]["word"]["units"][0] == "[CLS]"
    assert data["stats"]["names"] == ["a", "b"] and data["stats"]["values"][0][6] == pytest.approx(2.3)
    assert (tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"
    assert ET.parse(tmp_path / "h.svg").getroot().tag.endswith("svg")
    # errors found only once the model is known are still one line, with nothing written
    code = browse_main(["--model", tiny_bert, "--text", "hi", "--png", str(tmp_path / "x.png"), "--layer", "3"])
    assert code == 2 and "layers 1..2" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    stats.assign(layer=stats["layer"] + 5).to_csv(bad / "stats.csv", index=False)
    code = browse_main(["--model", tiny_bert, "--text", "hi", "--out", str(tmp_path / "q.html"), "--stats", str(bad)])
    assert code == 2 and "do not fit" in capsys.readouterr().err and not (tmp_path / "q.html").exists()


def test_cli_bertviz_pages(tiny_bert, tmp_path, capsys):
    out = tmp_path / "p.html"
    code = browse_main(["--model", tiny_bert, "--text", "The dog ran.", "--out", str(out), "--bertviz",
                        "--one-level", "--level", "word", "--quiet"])
    assert code == 0
    assert "internet" in capsys.readouterr().err
    head = (tmp_path / "p.bertviz_head_view.html").read_text(encoding="utf-8")
    assert "PYTHON_PARAMS" not in head and '"dog"' in head
    assert (tmp_path / "p.bertviz_model_view.html").is_file()
    assert set(_data_block(out.read_text(encoding="utf-8"))["views"]) == {"word"}


def test_cli_bertviz_without_the_extra_says_how_to_install_it(tiny_bert, tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "bertviz", None)                 # as if not installed
    out = tmp_path / "p.html"
    code = browse_main(["--model", tiny_bert, "--text", "The dog ran.", "--out", str(out), "--bertviz", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and 'pip install "probekit[bertviz]"' in err and len(err.strip().splitlines()) == 1
    assert not out.exists()                                           # refused before anything was written


def test_cli_png_and_svg_are_one_figure_in_two_formats(tiny_bert, tmp_path):
    """With --head both files are that head's heatmap; without it both are the layer's grid of heads."""
    def texts(*extra):
        png, svg = tmp_path / "f.png", tmp_path / "f.svg"
        assert browse_main(["--model", tiny_bert, "--text", "The dog ran.", "--png", str(png), "--svg", str(svg),
                            "--layer", "1", *extra, "--quiet", "--overwrite"]) == 0
        return png.stat().st_size, svg.read_text(encoding="utf-8")

    _, head_svg = texts("--head", "2")
    _, grid_svg = texts()
    assert grid_svg.count("<g id=\"axes_") > head_svg.count("<g id=\"axes_")


def test_notable_head_is_the_sharpest_that_is_not_special_or_self():
    U = 6
    eye = np.eye(U)
    broad = np.full((U, U), 1 / U)
    to_cls = np.tile(eye[0], (U, 1))
    prev = np.roll(eye, -1, axis=1) * 0.7 + 0.3 / U
    nxt = np.roll(eye, 1, axis=1) * 0.9 + 0.1 / U
    a = np.stack([np.stack([to_cls, eye, broad]), np.stack([prev, broad, nxt])]).astype(np.float32)
    special = [True] + [False] * (U - 2) + [True]
    from probekit.viz.head_view import notable_head

    l, h, why = notable_head(a, special)
    assert (l, h) == (1, 2) and "sharpest" in why and "0.9" in why      # not [CLS] (1-1), not itself (1-2)
    assert notable_head(a, special, layer=0)[:2] == (0, 2)               # within layer 1: the broad head is left
    page = render_head_view([f"u{i}" for i in range(U)], a, special=special)
    data = _data_block(page)
    assert data["initial"] == {"layer": 1, "head": 2}
    assert "Shown first: layer 2, head 3, the sharpest head" in page
    blob, _, _ = encode_head(a[1, 2])
    assert base64.b64decode(data["first"]) == blob                    # the first view is stored uncompressed
    assert _data_block(render_head_view([f"u{i}" for i in range(U)], a, initial_head="all"))["first"] is None


def test_gallery_names_are_readable_and_old_stat_columns_are_read():
    df = pd.DataFrame({"layer": [1, 1], "head": [1, 2], "metric": ["max_weight", "max_weight"], "value": [0.5, 0.25]})
    p = stats_payload(df, 1, 2)
    assert p["names"] == ["largest weight"] and p["values"] == [[0.5, 0.25]]
    assert stats_payload(df.rename(columns={"metric": "stat"}), 1, 2) == p
    page = render_head_view(list("abc"), _attention(1, 2, 3), stats=df, sort_by="max_weight")
    assert _data_block(page)["stats"]["sort"] == 0


CONLLU_SPACE = """# sent_id = 1
# text = I love New York .
1\tI\tI\tPRON\t_\t_\t2\tnsubj\t_\t_
2\tlove\tlove\tVERB\t_\t_\t0\troot\t_\t_
3\tNew York\tNew York\tPROPN\t_\t_\t2\tobj\t_\t_
4\t.\t.\tPUNCT\t_\t_\t2\tpunct\t_\t_
"""


def test_browse_reads_conllu_with_the_shared_reader(tmp_path):
    from probekit.corpora.conllu import read_conllu

    c = tmp_path / "space.conllu"
    c.write_text(CONLLU_SPACE, encoding="utf-8")
    ex = read_sentence(c, 1)
    assert ex.words == read_conllu(c)[0].words and len(ex.words) == 4   # "New York" stays one word


@pytest.mark.parametrize("argv, message", [
    (["--out", "{d}"], "is a folder; give a file name"),
    (["--png", "{d}", "--layer", "1"], "is a folder; give a file name"),
    (["--out", "{d}/p.html", "--top-k", "-1"], "--top-k must be at least 0"),
    (["--out", "{d}/p.html", "--batch-size", "0"], "--batch-size must be at least 1"),
    (["--out", "{d}/p.html", "--max-length", "2"], "--max-length must be at least 3"),
    (["--out", "{d}/p.html", "--device", "cuda:99"], "--device"),
    (["--out", "{d}/p.html", "--layer", "0"], "--layer must be at least 1"),
    (["--out", "{d}/p.html", "--head", "0"], "--head must be at least 1"),
    (["--out", "{d}/p.html", "--corpus", "{d}/c.txt", "--sentence", "0"], "--sentence must be at least 1"),
    (["--out", "{d}/existing.html"], "already exists (pass --overwrite"),
])
def test_bad_options_are_one_line_before_the_model_runs(argv, message, tmp_path, capsys, monkeypatch):
    import probekit.core.encoder as enc

    monkeypatch.setattr(enc, "load_encoder", lambda *a, **k: pytest.fail("the model was loaded"))
    (tmp_path / "c.txt").write_text("one sentence\n", encoding="utf-8")
    (tmp_path / "existing.html").write_text("mine", encoding="utf-8")
    argv = [a.format(d=tmp_path) for a in argv]
    if "--corpus" not in argv:
        argv = ["--text", "hi", *argv]
    code = browse_main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert (tmp_path / "existing.html").read_text() == "mine" and not (tmp_path / "p.html").exists()
