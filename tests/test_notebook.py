"""Results in Jupyter: ``_repr_html_`` shows tables, inline figures and pages in isolated frames."""
from __future__ import annotations

import base64
from html.parser import HTMLParser

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

import probekit as pk  # noqa: E402
from probekit.core.result import Result  # noqa: E402

EVIL_PAGE = ('<!DOCTYPE html><html><head><style>body { color: red } .jp-Cell { display: none }</style></head>'
             '<body><p title="a &quot;q&quot;">x & y</p><script>parent.document.title = "pwned"</script>'
             '</iframe><b>after</b></body></html>')


class _Tags(HTMLParser):
    """Every start tag with its attributes, and the text outside any frame."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(markup: str) -> list[tuple[str, dict]]:
    p = _Tags()
    p.feed(markup)
    return p.tags


class _Toy(Result):
    command = "toy"

    def __init__(self):
        super().__init__(pd.DataFrame({"metric": ["<b>bold</b>"], "value": [0.123456]}),
                         {"model": {"name": "tiny<model>"}})
        self.extra = pd.DataFrame({"a": range(50)})

    def write_files(self, run):
        run.write_text("page.html", EVIL_PAGE)
        fig, ax = plt.subplots()
        ax.plot([0, 1], [1, 0])
        run.save_figure(fig, "curve")


def test_pages_go_into_an_isolated_frame_and_come_back_exactly():
    markup = _Toy()._repr_html_()
    tags = _tags(markup)
    frames = [attrs for tag, attrs in tags if tag == "iframe"]
    assert len(frames) == 1
    assert frames[0]["srcdoc"] == EVIL_PAGE                # the page, unescaped by the parser, is intact
    assert frames[0]["sandbox"] == "allow-scripts"          # no allow-same-origin: its scripts cannot reach us
    # nothing of the page became markup of the notebook: no style, script or its <b> outside the frame
    assert not {"style", "script"} & {tag for tag, _ in tags}
    assert "<b>after" not in markup and "</iframe><b>" not in markup
    assert "&lt;b&gt;bold&lt;/b&gt;" in markup            # table cells are escaped too
    assert "tiny&lt;model&gt;" in markup


def test_figures_are_inline_pngs_and_tables_are_cut_with_their_size():
    markup = _Toy()._repr_html_()
    imgs = [attrs for tag, attrs in _tags(markup) if tag == "img"]
    assert len(imgs) == 1 and imgs[0]["src"].startswith("data:image/png;base64,")
    assert base64.b64decode(imgs[0]["src"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "curve.png" in markup
    assert "<b>extra</b> (50 rows)" in markup and "50 rows × 1 columns" in markup
    assert "0.1235" in markup                               # floats at 4 significant digits


def test_a_real_result_shows_its_table(tmp_path):
    d = pk.data("agreement", conditions=["A1"], sentences=3, quiet=True)
    markup = d._repr_html_()
    assert "DataResult" in markup and "<table" in markup
    assert str(d.frame["sentence"].iloc[0]).split()[0] in markup
    assert not list(tmp_path.iterdir())                    # showing it wrote nothing where the user looks


def test_the_head_browser_shows_its_page_and_the_figure_asked_for(tiny_model_dirs):
    view = pk.browse("The cat sat on the mat.", model=str(tiny_model_dirs["bert"]), layer=1, head=2, quiet=True)
    tags = _tags(view._repr_html_())
    frames = [attrs for tag, attrs in tags if tag == "iframe"]
    assert [f["srcdoc"] for f in frames] == [view.page]
    assert sum(tag == "img" for tag, _ in tags) == 1        # the head's heatmap
    assert not {"style", "script"} & {tag for tag, _ in tags}


def test_a_result_that_cannot_write_still_shows_its_tables():
    class Broken(_Toy):
        def write_files(self, run):
            raise OSError("disk <full>")

    markup = Broken()._repr_html_()
    assert "figures and pages not shown: disk &lt;full&gt;" in markup and "<table" in markup
