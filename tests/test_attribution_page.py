"""The attribution page, terminal text and figure: escaping, offline, colour scales, and a real browser.

The browser tests use the headless Chromium set-up of ``test_browser_page`` (its ``driver`` fixture); Chromium
missing is a failure there, not a skip.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from probekit.attribution.render import example_figure, render_ansi, render_html, scale
from probekit.core.errors import UserError
from test_browser_page import driver  # noqa: F401 (the shared headless-Chromium fixture)

HOSTILE = "<script>window.__pkInjected = 1</script>"
IMG = "<img src=x onerror=\"window.__pkImg = 1\">"


def frame(n_examples=4, seed=0):
    """A frame as pk.attribute makes it, with hostile words and labels; examples 1 and 3 misclassified."""
    rng = np.random.default_rng(seed)
    rows = []
    for ex in range(n_examples):
        words = ["the", HOSTILE, "film", IMG, 'is "good"', "&amp;"][: 3 + ex % 4]
        true = "pos" if ex % 2 == 0 else 'neg"<b>'
        for method, signed in (("pooling", False), ("integrated-gradients", True)):
            s = rng.random(len(words)) if not signed else rng.normal(size=len(words))
            for i, (w, v) in enumerate(zip(words, s)):
                rows.append(dict(example=ex, index=i, word=w, method=method, score=v, target="pos", label=true,
                                 prediction="pos", probability=0.5 + 0.1 * ((ex * 7) % 5), delta=0.01 if signed
                                 else np.nan, flagged=False if signed else None))
    return pd.DataFrame(rows)


def test_page_escapes_every_string_and_is_offline():
    page = render_html(frame(), title=f"run {HOSTILE}")
    assert page.count("<script") == 1                      # our own inline script only
    assert "<img" not in page and "onerror=\"window" not in page
    assert "&lt;script&gt;window.__pkInjected" in page
    assert "neg&quot;&lt;b&gt;" in page                    # a label with quotes and markup
    assert "is &quot;good&quot;" in page and "&amp;amp;" in page
    assert not re.search(r"https?://", page)
    assert not re.search(r"""(src|href)\s*=\s*["']?(?!#)""", page.replace('src=x', ''))


def test_rows_are_scaled_on_their_own():
    page = render_html(frame(1))
    block = page[page.index('<section class="ex"'):]
    pool = re.search(r'title="pooling".*?</div>', block).group(0)
    classes = re.findall(r'class="(r\d+|n\d+)"', pool)
    assert "r10" in classes and "r0" in classes and not any(c.startswith("n") for c in classes)
    ig = re.search(r'title="integrated-gradients".*?</div>', block).group(0)
    ig_classes = re.findall(r'class="(r\d+|n\d+)"', ig)
    assert any(c.startswith("n") for c in ig_classes) and ("r10" in ig_classes or "n10" in ig_classes)
    np.testing.assert_allclose(scale([2, 4, 3], False), [0, 1, 0.5])
    np.testing.assert_allclose(scale([-2, 1, 0], True), [-1, 0.5, 0])
    np.testing.assert_array_equal(scale([3, 3], False), [0, 0])          # constant: no division by zero
    assert np.isnan(scale([np.nan, 1.0], False)[0])


def test_any_frame_with_the_four_columns_renders():
    user = pd.DataFrame({"example": [7, 7, 8], "word": ["a", "b", "c"], "method": ["mine"] * 3,
                         "score": [0.1, -0.3, 0.0]})
    page = render_html(user)
    assert page.count('<section class="ex"') == 2 and 'title="-0.3"' in page and 'class="n10"' in page
    with pytest.raises(UserError, match="lacks column"):
        render_html(user.drop(columns="score"))


def test_ansi_colours_only_when_asked():
    f = frame(2)
    plain = render_ansi(f, color=False)
    coloured = render_ansi(f, color=True)
    assert "\033[" not in plain and "#0  true: pos  predicted: pos" in plain
    assert "\033[38;5;88m" in coloured                     # the darkest red for each row's maximum
    # without colour (--show into a file) every word carries its score; otherwise the same text
    assert re.sub(r"\033\[[0-9;]*m", "", coloured) == re.sub(r"(?<=\S)\((-?[0-9.e+-]+|nan)\)", "", plain)
    assert re.search(r"\S+\(-?[0-9.]+(e[+-]?\d+)?\)", plain)
    assert "integrated-gradients (signed)" in plain and "pooling (signed)" not in plain


def test_example_figure_stacks_every_method():
    fig = example_figure(frame(2), 1)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["pooling", "integrated-gradients"]
    assert [t.get_text() for t in ax.get_xticklabels()][:3] == ["the", HOSTILE, "film"]
    with pytest.raises(UserError):
        example_figure(frame(2), 99)


def test_page_in_chromium(driver, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By

    f = frame(40)
    path = tmp_path / "attributions.html"
    path.write_text(render_html(f), encoding="utf-8")
    d = driver
    d.get(path.as_uri())
    state = d.execute_script("return window.probekitAttribution")
    assert state["total"] == 40 and state["order"] == list(range(40))
    assert d.execute_script("return window.__pkInjected === undefined && window.__pkImg === undefined")
    words = d.find_elements(By.CSS_SELECTOR, ".ex .t span")
    assert HOSTILE in [w.text for w in words]
    assert all(w.get_attribute("title") for w in words[:20])
    d.find_element(By.ID, "pk-wrong").click()
    state = d.execute_script("return window.probekitAttribution")
    assert state["order"] == list(range(1, 40, 2))
    shown = [e for e in d.find_elements(By.CSS_SELECTOR, ".ex") if e.is_displayed()]
    assert len(shown) == 20
    d.find_element(By.CSS_SELECTOR, "#pk-sort option[value='desc']").click()
    order = d.execute_script("return window.probekitAttribution").get("order")
    p = f.groupby("example")["probability"].first()
    assert list(p.loc[order]) == sorted(p.loc[order], reverse=True)
    severe = [e for e in d.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert severe == []


def test_a_signed_methods_row_says_it_is_signed():
    page = render_html(frame(1))
    block = page[page.index('<section class="ex"'):]
    ig = re.search(r'title="integrated-gradients".*?</div>', block).group(0)
    pool = re.search(r'title="pooling".*?</div>', block).group(0)
    assert "(signed)</small>" in ig and "(signed)" not in pool
