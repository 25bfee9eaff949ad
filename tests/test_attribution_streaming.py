"""A run folder of attributions written a piece at a time: the same CSV bytes, pages that link to each other."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from probekit.attribution import attributions as attributions_module
from probekit.attribution.attributions import Attributions, Explanation
from probekit.core.rundir import RunDir, write_tidy


def made_up(n: int, level: str = "word") -> Attributions:
    """``n`` explanations with every kind of cell: labels missing on some, IG deltas on some, NaN scores."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        units = [f"w{i}_{k}" for k in range(1 + i % 4)] if i != 3 else []
        scores = {"pooling": rng.random(len(units)), "integrated-gradients": rng.normal(size=len(units))}
        if units and i % 5 == 1:
            scores["pooling"][0] = np.nan
        ig = i % 2 == 0
        out.append(Explanation(units=units, scores=scores, target="pos", prediction="pos" if i % 3 else "neg",
                               probability=float(rng.random()), label=None if i % 4 == 2 else "pos",
                               delta={"integrated-gradients": float(rng.normal())} if ig else {},
                               flagged={"integrated-gradients": bool(i % 3)} if ig else {},
                               word_index=np.arange(len(units)) if level == "token" else None))
    return Attributions(out, ["pooling", "integrated-gradients"], level=level,
                        signed={"pooling": False, "integrated-gradients": True}, labels=["neg", "pos"])


def test_csv_written_in_pieces_has_the_bytes_of_the_whole_frame(tmp_path):
    for level in ("word", "token"):
        a = made_up(11, level)
        with RunDir(tmp_path / level) as run:
            write_tidy(run, a.to_frame(), "whole.csv")
            a.write_csv(run.file("pieces.csv"), chunk=2)          # chunks with and without labels, deltas
            run.commit()
        whole, pieces = (tmp_path / level / "whole.csv").read_bytes(), (tmp_path / level / "pieces.csv").read_bytes()
        assert pieces == whole and len(pd.read_csv(tmp_path / level / "pieces.csv")) == len(a.to_frame())
    empty = Attributions([], ["pooling"])
    empty.write_csv(tmp_path / "empty.csv")
    assert (tmp_path / "empty.csv").read_text().startswith("example,index,word,method,score")


def test_pages_hold_every_example_once_and_link_to_each_other(monkeypatch):
    a = made_up(11)
    pages = dict(a.pages(title="t", per_page=4))
    assert list(pages) == ["attributions.html", "attributions-0002.html", "attributions-0003.html"]
    shown = [int(i) for page in pages.values() for i in re.findall(r'<section class="ex" data-i="(\d+)"', page)]
    assert shown == [i for i in range(11) if i != 3]   # every example with a word once, in order (3 has none)
    for k, page in enumerate(pages.values()):
        links = re.findall(r'<a href="(attributions[^"]*)">', page)
        assert sorted(links) == sorted(n for j, n in enumerate(pages) if j != k)
        assert f"page {k + 1} of 3" in page
    # the colour scale of a method is decided over all examples, not per page: IG is signed on every page
    assert all("integrated-gradients <small" in page for page in pages.values())
    # at most PAGE examples: a single page without links
    monkeypatch.setattr(attributions_module, "PAGE", 100)
    (name, page), = a.pages()
    assert name == "attributions.html" and "<nav" not in page


def test_a_run_writes_its_table_and_pages_in_pieces(tiny_model_dirs, tmp_path, monkeypatch):
    import torch

    from probekit.attribution.attribute import attribute
    from probekit.classifiers.model import Classifier
    from probekit.core.encoder import load_encoder

    torch.manual_seed(0)
    clf = Classifier(load_encoder(str(tiny_model_dirs["bert"])), ["neg", "pos"], head="attention").eval()
    monkeypatch.setattr(attributions_module, "PAGE", 2)
    monkeypatch.setattr(attributions_module, "CHUNK", 1)
    texts = ["a fine film .", "dull , dull , dull", "the best of the year", "not good"]
    res = attribute(clf, texts, methods=["pooling", "gradient"], quiet=True)
    out = res.write(tmp_path / "run")
    assert sorted(p.name for p in out.glob("attributions*")) == ["attributions-0002.html", "attributions.csv",
                                                                "attributions.html"]
    written = pd.read_csv(out / "attributions.csv", keep_default_na=False, na_values=[""])
    pd.testing.assert_frame_equal(written[["example", "index", "word", "method"]],
                                  res.frame[["example", "index", "word", "method"]])
    np.testing.assert_allclose(written["score"], res.frame["score"], rtol=1e-5)
