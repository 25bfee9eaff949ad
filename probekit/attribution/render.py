"""Coloured text for any attribution frame: an offline HTML page, ANSI terminal text, a figure.

A frame needs the columns ``example``, ``word``, ``method``, ``score`` (``pk.attribute``'s ``.frame`` has them,
a table computed elsewhere can too); ``index``, ``label`` (true), ``prediction``, ``probability``, ``target``,
``delta`` and ``flagged`` are shown when present. Each (example, method) row is scaled on its own:
unsigned scores by min–max to a red scale (constant rows stay white); signed ones (a method with any negative
score, or one registered as signed) by the largest |score| to red (positive) / blue (negative). The exact value
is in each word's ``title`` (shown on hover). Every string is escaped; the page loads nothing from the network.
"""
from __future__ import annotations

import html
import math
import sys
from importlib import resources

import numpy as np
import pandas as pd

from probekit.core.errors import UserError

LEVELS = 10
REQUIRED = ("example", "word", "method", "score")
#: ANSI 256-colour foregrounds, light → dark: allenwind's red ramp, and a blue one for negative scores
ANSI_RED = (15, 224, 217, 210, 203, 9, 160, 124, 88)
ANSI_BLUE = (15, 189, 153, 111, 69, 33, 27, 20, 18)
_ASSETS = resources.files("probekit.attribution") / "assets"


def _asset(name: str) -> str:
    return (_ASSETS / name).read_text(encoding="utf-8")


def _check(frame: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise UserError(f"an attribution frame must be a pandas DataFrame (got {type(frame).__name__})")
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise UserError(f"the attribution frame lacks column(s) {', '.join(missing)} (needs {', '.join(REQUIRED)})")
    if "index" not in frame.columns:
        frame = frame.assign(index=frame.groupby(["example", "method"], sort=False).cumcount())
    return frame


def signed_methods(frame: pd.DataFrame, signed=None) -> set:
    """Methods drawn on the diverging scale: registered as signed, or with any negative score here."""
    if signed is not None:
        return set([signed] if isinstance(signed, str) else signed)
    from probekit.attribution import registry

    known = {n for n in registry.method_names() if registry.get_method(n).signed}
    neg = set(frame.loc[pd.to_numeric(frame["score"], errors="coerce") < 0, "method"])
    return (known & set(frame["method"])) | neg


def scale(scores, signed: bool) -> np.ndarray:
    """Scores of one row → [-1, 1] (signed, by max |s|) or [0, 1] (unsigned, min–max); NaN stays NaN."""
    s = np.asarray(scores, dtype=np.float64)
    ok = np.isfinite(s)
    out = np.full(s.shape, np.nan)
    if not ok.any():
        return out
    if signed:
        m = np.abs(s[ok]).max()
        out[ok] = s[ok] / m if m > 0 else 0.0
    else:
        lo, hi = s[ok].min(), s[ok].max()
        out[ok] = (s[ok] - lo) / (hi - lo) if hi > lo else 0.0
    return out


def _level(t: float) -> int:
    return int(min(LEVELS, max(0, round(abs(t) * LEVELS))))


def _fmt(x) -> str:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return ""
    return "nan" if math.isnan(x) else f"{x:.4g}"


def _examples(frame: pd.DataFrame):
    """(example id, [(method, words, scores)] in method order, per-example fields) in example order.

    Works on numpy columns and group boundaries, not pandas groupby per example: 1,000 examples × 7 methods
    render in seconds."""
    methods = list(dict.fromkeys(frame["method"]))
    rank = frame["method"].map({m: i for i, m in enumerate(methods)}).to_numpy()
    order = np.lexsort((frame["index"].to_numpy(), rank, frame["example"].to_numpy()))
    ex = frame["example"].to_numpy()[order]
    rk = rank[order]
    words = frame["word"].astype(str).to_numpy()[order]
    scores = pd.to_numeric(frame["score"], errors="coerce").to_numpy(float)[order]
    fields = {k: frame[k].to_numpy()[order] for k in ("label", "prediction", "probability", "target", "delta",
                                                      "flagged") if k in frame.columns}
    ig = {m: k for k, m in enumerate(methods)}.get("integrated-gradients")
    cuts = np.flatnonzero((ex[1:] != ex[:-1]) | (rk[1:] != rk[:-1])) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [len(ex)]])
    i = 0
    while i < len(starts):
        j = i
        while j + 1 < len(starts) and ex[starts[j + 1]] == ex[starts[i]]:
            j += 1
        first = starts[i]
        info = {k: v[first] for k, v in fields.items() if k in ("label", "prediction", "probability", "target")}
        rows = []
        for g in range(i, j + 1):
            a, b = starts[g], ends[g]
            rows.append((methods[rk[a]], list(words[a:b]), scores[a:b]))
            if rk[a] == ig and "delta" in fields:
                info["delta"] = fields["delta"][a]
                info["flagged"] = fields["flagged"][a] if "flagged" in fields else None
        yield ex[first], rows, info
        i = j + 1


def _present(x) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x)) and x is not pd.NA and str(x) != ""


def _block(ex, rows, info, signed: set) -> str:
    e = html.escape
    true, pred = info.get("label"), info.get("prediction")
    ok = "" if not (_present(true) and _present(pred)) else ("1" if str(true) == str(pred) else "0")
    p = info.get("probability")
    p = float(p) if _present(p) else float("nan")
    head = [f"#{e(str(ex))}"]
    if _present(true):
        head.append(f'<span class="meta">true: {e(str(true))}</span>')
    if _present(pred):
        cls = {"1": "ok", "0": "wrong"}.get(ok, "")
        conf = f" ({p:.3f})" if not math.isnan(p) else ""
        head.append(f'<span class="meta">predicted: <span class="{cls}">{e(str(pred))}</span>{conf}</span>')
    if _present(info.get("target")) and str(info.get("target")) != str(pred):
        head.append(f'<span class="meta">explaining: {e(str(info["target"]))}</span>')
    if _present(info.get("delta")):
        flag = bool(info.get("flagged")) if _present(info.get("flagged")) else False
        head.append(f'<span class="{"flag" if flag else "meta"}" title="integrated-gradients convergence delta">'
                    f'IG δ = {_fmt(info["delta"])}{" (over 5 %)" if flag else ""}</span>')
    out = [f'<section class="ex" data-i="{e(str(ex))}" data-p="{"" if math.isnan(p) else f"{p:.6f}"}" '
           f'data-ok="{ok}"><h2>{" ".join(head)}</h2>']
    for method, words, scores in rows:
        sgn = method in signed
        t = scale(scores, sgn)
        spans = []
        for word, s, v in zip(words, scores, t):
            cls = "na" if math.isnan(v) else (f"n{_level(v)}" if sgn and v < 0 else f"r{_level(v)}")
            spans.append(f'<span class="{cls}" title="{_fmt(s)}">{e(word)}</span>')
        signed_note = ' <small title="red: for the explained class, blue: against it">(signed)</small>' if sgn else ""
        out.append(f'<div class="row"><span class="m" title="{e(str(method))}">{e(str(method))}{signed_note}</span>'
                   f'<span class="t">{" ".join(spans)}</span></div>')
    out.append("</section>")
    return "".join(out)


def page_links(names: list[str], current: int, n: int, per_page: int) -> str:
    """The bar of a page among several: which examples it holds and a link to every page."""
    first, last = current * per_page, min(n, (current + 1) * per_page) - 1
    links = " ".join(f"<b>{k + 1}</b>" if k == current else f'<a href="{html.escape(name)}">{k + 1}</a>'
                     for k, name in enumerate(names))
    return (f'<nav class="pk-pages">examples #{first}–#{last} of {n} (page {current + 1} of {len(names)}): '
            f"{links}</nav>")


def render_html(frame: pd.DataFrame, *, title: str = "attributions", signed=None, nav: str = "") -> str:
    """A self-contained page: one block per example, one row per method (see the module docstring); ``nav``:
    the links to the other pages of a paged run (``page_links``)."""
    frame = _check(frame)
    sgn = signed_methods(frame, signed)
    blocks = [_block(ex, rows, info, sgn) for ex, rows, info in _examples(frame)]
    has_labels = "label" in frame.columns and frame["label"].map(_present).any()
    legend = "".join(f'<span class="r{k}"></span>' for k in range(0, LEVELS + 1, 2))
    legend_signed = "".join([f'<span class="n{k}"></span>' for k in range(LEVELS, 0, -2)] + ['<span class="r0"></span>']
                            + [f'<span class="r{k}"></span>' for k in range(2, LEVELS + 1, 2)])
    e = html.escape
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title>", f"<style>\n{_asset('attribution.css')}</style></head><body>",
        f"<h1>{e(title)}</h1>", nav,
        '<div class="pk-bar">',
        f'<label><input type="checkbox" id="pk-wrong"{"" if has_labels else " disabled"}> misclassified only</label>',
        '<label>order <select id="pk-sort"><option value="input">input</option>'
        '<option value="asc">confidence, lowest first</option>'
        '<option value="desc">confidence, highest first</option></select></label>',
        '<span id="pk-count" class="pk-note"></span>',
        f'<span class="pk-legend pk-note">low {legend} high &nbsp; signed: − {legend_signed} +</span>',
        '<span class="pk-note">each row scaled on its own; hover a word for its score</span>',
        "</div>",
        '<div id="pk-list">', *blocks, "</div>",
        f"<script>\n{_asset('attribution.js')}</script>", "</body></html>", ""])


def render_ansi(frame: pd.DataFrame, *, color: bool | None = None, signed=None) -> str:
    """Terminal text: per example a header and one line per method, words coloured with 256-colour codes
    (``color=None``: only when standard output is a terminal) or, without colour, each followed by its score,
    then the row's top three words; signed methods say so."""
    frame = _check(frame)
    if color is None:
        color = sys.stdout.isatty()
    sgn = signed_methods(frame, signed)
    width = max((len(str(m)) + 9 * (m in sgn) for m in frame["method"].unique()), default=6)
    lines = []
    for ex, rows, info in _examples(frame):
        head = f"#{ex}"
        if _present(info.get("label")):
            head += f"  true: {info['label']}"
        if _present(info.get("prediction")):
            head += f"  predicted: {info['prediction']}"
            if _present(info.get("probability")):
                head += f" ({float(info['probability']):.3f})"
        if _present(info.get("delta")):
            head += f"  IG δ = {_fmt(info['delta'])}" + (" (over 5 %)" if info.get("flagged") is True else "")
        lines.append(head)
        for method, words, scores in rows:
            t = scale(scores, method in sgn)
            parts = []
            for w, v, s in zip(words, t, scores):
                if not color or math.isnan(v):
                    parts.append(w if color or math.isnan(s) else f"{w}({_fmt(s)})")
                    continue
                ramp = ANSI_BLUE if v < 0 else ANSI_RED
                code = ramp[int(min(len(ramp) - 1, abs(v) * (len(ramp) - 1) + 0.5))]
                parts.append(f"\033[38;5;{code}m{w}\033[0m")
            key = np.abs(scores) if method in sgn else scores
            top = [words[i] for i in np.argsort(-np.nan_to_num(key, nan=-np.inf), kind="stable")[:3]]
            name = f"{method} (signed)" if method in sgn else str(method)
            lines.append(f"  {name:<{width}}  {' '.join(parts)}   [top: {', '.join(top)}]")
        lines.append("")
    return "\n".join(lines)


def example_figure(frame: pd.DataFrame, example=None, *, signed=None):
    """One example, every method stacked: a methods × words grid coloured as the page colours it (each row
    scaled on its own), scores written in the cells. Words the default font cannot draw (CJK) get an installed
    font that can (``fonts.family_for``). Object-oriented matplotlib; returns the Figure."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    from probekit.attribution.fonts import family_for

    frame = _check(frame)
    if example is None:
        example = frame["example"].iloc[0]
    sub = frame[frame["example"] == example]
    if not len(sub):
        raise UserError(f"example {example!r} is not in the attribution frame")
    sgn = signed_methods(frame, signed)
    (_, rows, info), = [(ex, r, i) for ex, r, i in _examples(sub)]
    words = rows[0][1]
    reds, rdbu = colormaps["Reds"], colormaps["RdBu_r"]
    grid = np.ones((len(rows), len(words), 4))
    values = np.full((len(rows), len(words)), np.nan)
    for r, (method, _words, s) in enumerate(rows):
        s = s[:len(words)]
        values[r, :len(s)] = s
        t = scale(s, method in sgn)
        for c, v in enumerate(t):
            if not math.isnan(v):
                grid[r, c] = rdbu(0.5 + 0.45 * v) if method in sgn else reds(0.9 * v)
    fig = Figure(figsize=(max(4.0, 0.75 * len(words) + 2), 0.55 * len(rows) + 1.6), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(grid, aspect="auto", interpolation="nearest")
    family = family_for(list(words) + [str(info.get(k, "")) for k in ("prediction", "label")])
    font = {"fontfamily": family} if family else {}
    ax.set_xticks(range(len(words)), words, rotation=45 if len(words) > 8 else 0,
                  ha="right" if len(words) > 8 else "center", **font)
    ax.set_yticks(range(len(rows)), [m for m, _, _ in rows])
    if len(words) <= 30:
        for r in range(len(rows)):
            for c in range(len(words)):
                if np.isfinite(values[r, c]):
                    dark = sum(grid[r, c, :3]) < 1.4
                    ax.text(c, r, f"{values[r, c]:.2g}", ha="center", va="center", fontsize=7,
                            color="white" if dark else "black")
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    title = f"example {example}"
    if _present(info.get("prediction")):
        title += f": predicted {info['prediction']}"
        if _present(info.get("probability")):
            title += f" ({float(info['probability']):.2f})"
    if _present(info.get("label")):
        title += f", true {info['label']}"
    ax.set_title(title + " — each row scaled on its own (red +, blue − for signed methods)", fontsize=9, **font)
    return fig
