"""The PNG figure's font: a fallback family for characters the default font lacks (CJK), else one warning."""
from __future__ import annotations

import io

import pandas as pd
import pytest

from probekit.attribution import fonts
from probekit.attribution.render import example_figure

CIRCLED_A = "Ⓐ"      # not in DejaVu Sans; in STIXGeneral, which ships with matplotlib


def frame(words):
    return pd.DataFrame({"example": 0, "method": "occlusion", "word": words,
                         "score": [float(i) for i in range(len(words))]})


def test_latin_words_keep_the_default_font(capsys):
    assert fonts.missing_characters(["a", "gorgeous", "film"]) == []
    assert fonts.family_for(["a", "gorgeous"]) is None
    assert capsys.readouterr().err == ""


def test_a_font_that_has_the_glyphs_is_chosen(capsys):
    assert fonts.missing_characters(["x" + CIRCLED_A, "好"]) == [CIRCLED_A, "好"]
    family = fonts.family_for([CIRCLED_A, "b"])
    assert family is not None and family[0] == fonts._default_font()[0]
    from matplotlib import font_manager as fm

    path = fm.findfont(fm.FontProperties(family=family[1]), fallback_to_default=False)
    assert ord(CIRCLED_A) in fonts._charmap(path)
    fig = example_figure(frame([CIRCLED_A, "b"]))
    labels = fig.axes[0].get_xticklabels()
    assert labels[0].get_text() == CIRCLED_A and labels[0].get_fontfamily() == family
    assert capsys.readouterr().err == ""


def test_no_font_one_warning_line_and_the_png_is_still_written(monkeypatch, capsys):
    monkeypatch.setattr(fonts, "_candidates", lambda: iter(()))
    fig = example_figure(frame(list("这个酒店非常好")))
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:4] == b"\x89PNG"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "boxes" in err[0] and "这个酒店非常好" in err[0] and "fonts-noto-cjk" in err[0]


@pytest.mark.parametrize("words", [["这个", "酒店"], ["東京", "서울"]])
def test_cjk_uses_an_installed_cjk_font_or_warns(words, capsys):
    """Whatever this machine has installed: either a family whose font has every glyph, or the warning."""
    family = fonts.family_for(words)
    err = capsys.readouterr().err
    if family is None:
        assert "boxes" in err
    else:
        from matplotlib import font_manager as fm

        path = fm.findfont(fm.FontProperties(family=family[1]), fallback_to_default=False)
        assert {ord(c) for w in words for c in w} <= fonts._charmap(path) and err == ""
