"""The head browser page in a real browser: headless Chromium from Debian's packages, networking off.

Chromium missing is a failure, not a skip: ``.ci/run`` installs ``chromium`` and ``chromium-driver``.
"""
from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np
import pandas as pd
import pytest

from probekit.viz.head_view import HeadMap, render_head_view, write_page

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
INJECTED = "<script>window.__pkInjected = 1</script>"
IMG = "<img src=x onerror=\"window.__pkImg = 1\">"


def _find(candidates, name):
    for c in candidates:
        if os.access(c, os.X_OK):
            return c
    found = shutil.which(name)
    if found:
        return found
    pytest.fail(f"{name} not found (looked in {', '.join(candidates)} and PATH): install Debian's packages with "
                f"'apt-get install -y chromium chromium-driver'", pytrace=False)


@pytest.fixture(scope="module")
def driver():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is not installed (pip install 'selenium>=4.20')", pytrace=False)
    opts = webdriver.ChromeOptions()
    opts.binary_location = _find(CHROMIUM, "chromium")
    profile = tempfile.mkdtemp(prefix="pk-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-extensions", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                 "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
                 "--proxy-bypass-list=<-loopback>",
                 "--window-size=1200,900"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(_find(CHROMEDRIVER, "chromedriver")), options=opts)
    d.set_script_timeout(60)
    yield d
    d.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _maps():
    """Token and word maps whose heads have distinct, known patterns (diagonal, previous, next, [CLS], broad)."""
    units = ["[CLS]", "the", "ca", "##t", INJECTED, "sat", IMG, ".", "[SEP]"]
    U, L, H = len(units), 2, 4
    eye = np.eye(U)
    patterns = [eye, np.roll(eye, -1, axis=1), np.roll(eye, 1, axis=1), np.tile(eye[0], (U, 1))]
    a = np.stack([np.stack([0.8 * p + 0.2 / U for p in patterns]) for _ in range(L)])
    a[1] = a[1][::-1]  # layer 2 has the heads in reverse order
    words = ["[CLS]", "the", "cat", INJECTED, "sat", IMG, ".", "[SEP]"]
    w = np.full((L, H, len(words), len(words)), 1 / len(words))
    return units, a.astype(np.float32), words, w.astype(np.float32)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    units, a, words, w = _maps()
    stats = pd.DataFrame([(l, h, s, v) for l in (1, 2) for h in (1, 2, 3, 4)
                          for s, v in (("to_cls", 0.1 * h + l), ("entropy", 5 - h - l / 10))],
                         columns=["layer", "head", "stat", "value"])
    html = render_head_view(units, a, title=f"test {INJECTED}", level="token", stats=stats,
                            special=[u in ("[CLS]", "[SEP]") for u in units], other=HeadMap(words, w),
                            initial_layer=1, initial_head=2)
    return write_page(tmp_path_factory.mktemp("page") / "page.html", html)


def _open(d, path):
    """Load a page and wait until it has inflated its data and drawn the first view."""
    d.get(path.as_uri())
    ok = d.execute_async_script(
        "const done = arguments[arguments.length - 1], t0 = performance.now();"
        "(function wait() { const v = window.probekitView;"
        "  if (v && (v.ready || v.errors.length)) requestAnimationFrame(() => done(v.ready));"
        "  else if (performance.now() - t0 > 30000) done(false); else setTimeout(wait, 20); })();")
    assert ok, d.execute_script("return window.probekitView && window.probekitView.errors")


def _state(d):
    return d.execute_script(
        "const v = window.probekitView, c = document.getElementById('pk-canvas');"
        "const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let ink = 0;"
        "for (let k = 3; k < px.length; k += 4) if (px[k] > 0) ink++;"
        "return {drawn: v.drawn, checksum: v.checksum, key: c.dataset.key, lines: +c.dataset.lines, ink: ink,"
        "        image: c.toDataURL(), errors: v.errors};")


def _choose(d, select_id, value):
    from selenium.webdriver.common.by import By

    d.find_element(By.CSS_SELECTOR, f"#{select_id} option[value='{value}']").click()


def _severe(d):
    return [e for e in d.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def test_lines_drawn_and_redrawn(driver, page):
    d = driver
    _open(d, page)
    s = _state(d)
    assert s["key"] == "token:1:2"                      # the initial head from render_head_view
    assert s["drawn"] > 0 and s["lines"] == s["drawn"] and s["ink"] > 0
    _choose(d, "pk-head", "0")                          # head 1 (the UI numbers heads from 1)
    t = _state(d)
    assert t["key"] == "token:1:1" and t["drawn"] > 0 and t["ink"] > 0
    assert t["checksum"] != s["checksum"] and t["image"] != s["image"]
    _choose(d, "pk-layer", "1")                         # layer 2, head 1 = layer 1's head 4 pattern
    u = _state(d)
    assert u["key"] == "token:2:1" and u["checksum"] not in (s["checksum"], t["checksum"])
    _choose(d, "pk-head", "-1")                         # all heads overlaid
    v = _state(d)
    assert v["key"] == "token:2:all" and v["drawn"] > u["drawn"]
    assert v["errors"] == [] and _severe(d) == []


def test_hover_isolates_a_token(driver, page):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    d = driver
    _open(d, page)
    _choose(d, "pk-head", "-1")
    everything = _state(d)["drawn"]
    left = d.find_elements(By.CSS_SELECTOR, "#pk-left .pk-tok")
    ActionChains(d).move_to_element(left[5]).perform()
    iso = _state(d)
    assert 0 < iso["drawn"] < everything
    assert iso["drawn"] <= 4 * len(left)                # at most one line per head and target
    assert "sat" in d.find_element(By.ID, "pk-info").text
    ActionChains(d).move_to_element(d.find_element(By.ID, "pk-title")).perform()
    assert _state(d)["drawn"] == everything
    assert _severe(d) == []


def test_injected_text_stays_text(driver, page):
    from selenium.webdriver.common.by import By

    d = driver
    _open(d, page)
    assert d.execute_script("return [typeof window.__pkInjected, typeof window.__pkImg]") == ["undefined"] * 2
    assert len(d.find_elements(By.TAG_NAME, "script")) == 2 and d.find_elements(By.TAG_NAME, "img") == []
    texts = [e.get_attribute("textContent") for e in d.find_elements(By.CSS_SELECTOR, "#pk-left .pk-tok")]
    assert INJECTED in texts and IMG in texts
    assert INJECTED in d.find_element(By.ID, "pk-title").text and INJECTED in d.title
    assert _severe(d) == []


def test_gallery_sorts_and_selects(driver, page):
    from selenium.webdriver.common.by import By

    d = driver
    _open(d, page)
    cells = d.find_elements(By.CSS_SELECTOR, "#pk-grid .pk-cell")
    assert len(cells) == 8
    first = [c.find_element(By.TAG_NAME, "b").text for c in cells]
    assert first[:2] == ["2-4", "2-3"]                   # sorted by the first statistic (to_cls), descending
    _choose(d, "pk-sort", "1")                           # entropy, descending: 5 - h - l/10
    order = [c.find_element(By.TAG_NAME, "b").text for c in d.find_elements(By.CSS_SELECTOR, "#pk-grid .pk-cell")]
    assert order[:2] == ["1-1", "2-1"] and order[-1] == "2-4"
    d.find_element(By.CSS_SELECTOR, "#pk-grid .pk-cell:nth-child(2)").click()
    assert _state(d)["key"] == "token:2:1"
    assert d.find_element(By.CSS_SELECTOR, "#pk-grid .pk-cell.pk-on b").text == "2-1"
    assert _severe(d) == []


def test_word_level_toggle(driver, page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    d = driver
    _open(d, page)
    assert len(d.find_elements(By.CSS_SELECTOR, "#pk-left .pk-tok")) == 9
    d.find_element(By.CSS_SELECTOR, "input[name='pk-level'][value='word']").click()
    WebDriverWait(d, 10).until(lambda d: _state(d)["key"].startswith("word:"))
    assert len(d.find_elements(By.CSS_SELECTOR, "#pk-left .pk-tok")) == 8
    s = _state(d)
    assert s["key"] == "word:1:2" and s["drawn"] > 0 and s["ink"] > 0
    assert _severe(d) == []


def test_long_input_stays_within_the_line_budget(driver, tmp_path):
    U = 512
    rng = np.random.default_rng(0)
    a = rng.dirichlet(np.full(U, 0.3), size=(2, 12, U)).astype(np.float32)
    p = write_page(tmp_path / "long.html", render_head_view([f"w{i}" for i in range(U)], a, title="long",
                                                            initial_head="all"))
    d = driver
    _open(d, p)
    s = _state(d)
    assert s["key"] == "token:1:all" and 0 < s["drawn"] <= 8000
    assert "strongest" in d.execute_script("return document.getElementById('pk-status').textContent")
    d.execute_script("const s = document.getElementById('pk-scroll'); s.scrollTop = s.scrollHeight;")
    d.execute_async_script("requestAnimationFrame(() => requestAnimationFrame(arguments[arguments.length - 1]))")
    t = _state(d)
    assert t["drawn"] > 0 and t["checksum"] != s["checksum"]   # scrolling redraws the lines in view
    assert _severe(d) == []


def test_first_view_is_drawn_before_anything_is_inflated(driver, tmp_path):
    """Section 7: the page opens on one named head, drawn synchronously — even where the asynchronous
    decompression never finishes (here DecompressionStream is removed before the page's script runs)."""
    from selenium.webdriver.common.by import By

    from probekit.viz.head_view import notable_head

    units, a, _, _ = _maps()
    special = [u in ("[CLS]", "[SEP]") for u in units]
    p = write_page(tmp_path / "first.html", render_head_view(units, a, title="first", special=special))
    layer, head, _ = notable_head(a, special)
    d = driver
    hook = d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                             {"source": "delete window.DecompressionStream;"})["identifier"]
    try:
        d.get(p.as_uri())
        s = _state(d)
        assert d.execute_script("return document.body.dataset.firstView") == "1"
        assert d.execute_script("return document.body.dataset.ready") is None      # never inflated here
        assert s["key"] == f"token:{layer + 1}:{head + 1}" and s["drawn"] > 0 and s["ink"] > 0
        assert len(d.find_elements(By.CSS_SELECTOR, "#pk-left .pk-tok")) == len(units)
        assert f"layer {layer + 1}, head {head + 1}" in d.find_element(By.ID, "pk-first").text
        png = d.get_screenshot_as_png()
        assert len(png) > 5000
    finally:
        d.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": hook})
    # a normal load reaches the same first view and then the ready marker
    _open(d, p)
    assert _state(d)["key"] == f"token:{layer + 1}:{head + 1}"
    assert d.execute_script("return document.body.dataset.ready") == "1"
