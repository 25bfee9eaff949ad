"""The offline head browser: one self-contained HTML page (inline JS/CSS, no network) for one input's attention.

Why not bertviz: its page serialises every weight as a JSON float and loads d3/jQuery/require.js from CDNs,
so it needs the internet and grows to hundreds of MB at 512 tokens. Here each head is stored sparsely:

- a weight ``w`` is stored as ``round(255 * w)`` in one byte and drawn with opacity ``w`` (so the byte *is* the
  opacity); weights that round to 0 (``w < 0.5/255 ≈ 0.002``) would be invisible and are dropped;
- each row (query) keeps at most its ``top_k`` largest weights (default 64). In a row that sums to 1 the
  (k+1)-th largest weight is at most ``1/(k+1)`` (≈ 0.015 for k = 64), so the cap only drops faint lines;
  the page states the largest weight actually dropped and the mean attention mass dropped per row;
- a head is ``U`` row counts (uint16) + column indices (uint16) + byte weights: at most ``2U + 3·U·k`` bytes
  (≈ 7.1 MB for 6 × 12 heads at 512 tokens, the worst case). All heads of a level are concatenated, compressed
  with zlib (typically 3× smaller on real maps) and base64-encoded; the page inflates them with the browser's
  own ``DecompressionStream`` (Chrome 80+, Firefox 113+, Safari 16.4+).

The page draws lines on a viewport-sized canvas (redrawn on scroll, only lines crossing the view), so
long inputs scroll instead of growing the drawing; beyond 8,000 lines in view only the strongest are drawn
(a software-rendered canvas strokes some tens of thousands of lines a second) and the page says so, while
hovering a token always shows all of its lines. Text is inserted with ``textContent`` only and the data
block is JSON with ``<``, ``>`` and ``&`` escaped, so input text can never become markup; a Content Security
Policy allows only the page's own script (by hash) and no network requests.
"""
from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import os
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from probekit.viz.page_assets import CSS, JS

LEVELS = ("token", "word")
THUMB_BINS = 48
DEFAULT_TOP_K = 64
KEY_COLUMNS = ("layer", "head", "metric", "value")
#: readable names of the attention statistics in the gallery (others are shown as they are named)
LABELS = {"cls": "to [CLS]", "sep": "to [SEP]", "punct": "to . or ,", "self": "to itself", "prev": "to previous",
          "next": "to next", "sep_sep": "[SEP] → [SEP]", "rest_sep": "other → [SEP]", "entropy": "entropy",
          "entropy_cls": "[CLS] row entropy", "uniform_entropy": "uniform entropy", "max_weight": "largest weight",
          "mds_x": "MDS x", "mds_y": "MDS y"}
#: the first view's head: the sharpest (largest mean row maximum) among heads with less than this share of their
#: attention on [CLS]/[SEP] and less than this on the token itself
SPECIAL_SHARE = 0.5


def notable_head(attention: np.ndarray, special: Sequence[bool] | None = None,
                 layer: int | None = None) -> tuple[int, int, str]:
    """The head a page opens on (0-based layer, head) and a sentence saying why.

    The sharpest head on this input: the largest mean over rows of the row's largest weight, among heads that
    give less than half of their attention to [CLS]/[SEP] (the ``special`` units) or to the token itself — such
    heads are sharp but show little. ``layer`` (0-based) restricts the choice to one layer.
    """
    a = np.asarray(attention, dtype=np.float32)
    L, H, U, _ = a.shape
    sharp = a.max(-1).mean(-1)                                     # [L, H]
    sp = np.zeros(U, dtype=bool) if special is None else np.asarray(special, dtype=bool)
    on_special = a[..., sp].sum(-1).mean(-1) if sp.any() else np.zeros((L, H))
    on_self = np.einsum("lhii->lh", a) / U
    score = np.where((on_special < SPECIAL_SHARE) & (on_self < SPECIAL_SHARE), sharp, -np.inf)
    layers = range(L) if layer is None else [layer]
    cand = [(l, h) for l in layers for h in range(H)]
    if not any(np.isfinite(score[l, h]) for l, h in cand):         # every head looks mostly at [CLS]/[SEP]
        score = sharp
    l, h = max(cand, key=lambda lh: (score[lh], -lh[0], -lh[1]))
    where = "" if layer is None else f" of layer {l + 1}"
    rule = (f"among heads that give less than {SPECIAL_SHARE:.0%} of their attention to [CLS]/[SEP] or to the "
            f"token itself" if np.isfinite(score[l, h]) else "every head looks mostly at [CLS]/[SEP] or itself")
    return l, h, (f"the sharpest head{where} on this input: its rows put on average {sharp[l, h]:.3f} on their "
                  f"largest weight ({rule})")


@dataclass
class HeadMap:
    """Attention of one input at one level: ``units`` [U], ``attention`` [L, H, U, U] (rows = from)."""

    units: Sequence[str]
    attention: np.ndarray
    special: Sequence[bool] | None = None


def encode_head(attn: np.ndarray, top_k: int | None = DEFAULT_TOP_K) -> tuple[bytes, float, float]:
    """Sparse bytes of one head ``attn`` [U, U] (see the module docstring for the format).

    Returns (bytes, largest weight dropped by the top-k cap, mean attention mass not stored per row).
    """
    blobs, dropped, mass = _encode_layer(attn[None], top_k)
    return blobs[0], dropped, mass


def _encode_layer(a: np.ndarray, top_k: int | None) -> tuple[list[bytes], float, float]:
    """Sparse bytes of every head of ``a`` [H, U, U], vectorised over heads."""
    H, U, _ = a.shape
    a = np.nan_to_num(np.asarray(a, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0).clip(0.0, 1.0)
    dropped_max = 0.0
    if top_k is not None and top_k < U:
        idx = np.argpartition(a, U - top_k - 1, axis=-1)
        dropped_max = float(np.take_along_axis(a, idx[..., U - top_k - 1:U - top_k], -1).max())
        cols = np.sort(idx[..., U - top_k:], axis=-1)
        vals = np.take_along_axis(a, cols, -1)
    else:
        cols = np.broadcast_to(np.arange(U), a.shape)
        vals = a
    q = np.rint(vals * 255.0).astype(np.uint8)
    keep = q > 0
    stored = np.where(keep, q.astype(np.float64) / 255.0, 0.0).sum(-1)
    mass = float(np.maximum(a.sum(-1, dtype=np.float64) - stored, 0.0).mean())
    counts = keep.sum(-1).astype("<u2")  # [H, U]
    blobs = []
    for h in range(H):
        k = keep[h]
        blobs.append(counts[h].tobytes() + cols[h][k].astype("<u2").tobytes() + q[h][k].tobytes())
    return blobs, dropped_max, mass


def thumbnails(attention: np.ndarray, bins: int = THUMB_BINS) -> tuple[np.ndarray, int]:
    """Block-averaged heatmaps [L, H, B, B] as uint8, each scaled to its own maximum (B = min(U, bins))."""
    L, H, U, _ = attention.shape
    B = min(U, bins)
    edges = np.linspace(0, U, B + 1).astype(int)[:-1]
    sizes = np.diff(np.append(edges, U)).astype(np.float64)
    pooled = np.add.reduceat(np.add.reduceat(attention.astype(np.float64), edges, axis=2), edges, axis=3)
    pooled /= sizes[:, None] * sizes[None, :]
    top = pooled.max(axis=(2, 3), keepdims=True)
    scaled = np.divide(pooled, top, out=np.zeros_like(pooled), where=top > 0)
    return np.rint(scaled * 255).astype(np.uint8), B


def _check_map(m: HeadMap, name: str) -> tuple[list[str], np.ndarray, list[bool]]:
    units = [str(u) for u in m.units]
    a = np.asarray(m.attention)
    if a.ndim != 4 or a.shape[2] != a.shape[3] or a.shape[2] != len(units):
        raise ValueError(f"{name}: attention must be [L, H, U, U] with U = {len(units)} units, got {a.shape}")
    if len(units) == 0:
        raise ValueError(f"{name}: no units")
    if len(units) > 65535:
        raise ValueError(f"{name}: at most 65535 units can be stored")
    special = [bool(s) for s in m.special] if m.special is not None else [False] * len(units)
    if len(special) != len(units):
        raise ValueError(f"{name}: special has {len(special)} entries for {len(units)} units")
    return units, a, special


def _view_payload(m: HeadMap, name: str, top_k: int | None) -> tuple[dict, dict]:
    units, a, special = _check_map(m, name)
    a = np.nan_to_num(np.asarray(a, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    blobs, dropped, masses = [], 0.0, []
    for layer in a:
        b, d, mass = _encode_layer(layer, top_k)
        blobs += b
        dropped, masses = max(dropped, d), masses + [mass]
    thumbs, B = thumbnails(a)
    view = {"units": units, "special": special, "heads": _zlib64(b"".join(blobs)),
            "offsets": np.concatenate([[0], np.cumsum([len(b) for b in blobs])]).tolist(),
            "thumbB": B, "thumbs": _zlib64(thumbs.tobytes())}
    return view, {"droppedMax": dropped, "massDropped": float(np.mean(masses))}


def _zlib64(raw: bytes) -> str:
    return base64.b64encode(zlib.compress(raw, 3)).decode("ascii")


def stats_payload(stats, num_layers: int, num_heads: int, layer_offset: int = 1, level: str | None = None) -> dict:
    """Statistics per head from a tidy table (layer, head, metric, value [, other keys]; ``stat`` is read as
    ``metric``, as older runs name it).

    Rows without a head (per-layer figures) are left out. Extra key columns that vary (e.g. ``level``) are
    filtered to ``level`` when they are a level column holding it, otherwise appended to the statistic's name,
    so no two values are silently merged.
    """
    import pandas as pd

    if "metric" not in stats.columns and "stat" in stats.columns:
        stats = stats.rename(columns={"stat": "metric"})
    missing = [c for c in KEY_COLUMNS if c not in stats.columns]
    if missing:
        raise ValueError(f"statistics table lacks column(s) {', '.join(missing)}")
    df = stats.copy()
    df["layer"] = pd.to_numeric(df["layer"], errors="coerce")
    df["head"] = pd.to_numeric(df["head"], errors="coerce")
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    df = df[df["layer"].notna() & df["head"].notna()]
    if level is not None and "level" in df.columns and (df["level"] == level).any():
        df = df[df["level"] == level]
    extra = [c for c in df.columns if c not in KEY_COLUMNS and df[c].nunique(dropna=False) > 1]
    labels = df["metric"].astype(str).map(lambda m: LABELS.get(m, m))
    for c in extra:
        labels = labels + " [" + df[c].astype(str) + "]"
    df = df.assign(metric=labels)
    layer_i = df["layer"].astype(int) - layer_offset
    head_i = df["head"].astype(int) - 1
    bad = (layer_i < 0) | (layer_i >= num_layers) | (head_i < 0) | (head_i >= num_heads)
    if bad.any():
        row = df[bad].iloc[0]
        raise ValueError(f"statistics for layer {int(row['layer'])} head {int(row['head'])} do not fit a model "
                         f"with layers {layer_offset}..{layer_offset + num_layers - 1} and heads 1..{num_heads}")
    order = list(dict.fromkeys(df["metric"]))
    values = {s: [None] * (num_layers * num_heads) for s in order}
    for s, li, hi, v in zip(df["metric"], layer_i, head_i, df["value"]):
        if values[s][li * num_heads + hi] is not None:
            raise ValueError(f"statistics table has two values of {s!r} for layer {li + layer_offset} head {hi + 1}")
        values[s][li * num_heads + hi] = float(v) if math.isfinite(v) else None
    return {"names": order, "values": [values[s] for s in order]}


def _sorted_by(payload: dict, metric: str | None) -> dict:
    """The gallery's first sort key: the index of ``metric``'s label (0 when absent)."""
    label = LABELS.get(metric, metric)
    payload["sort"] = payload["names"].index(label) if label in payload["names"] else 0
    return payload


def _script_json(obj) -> str:
    """JSON that is inert inside a ``<script>`` element: ``<``, ``>`` and ``&`` become ``\\u00XX`` escapes."""
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def render_head_view(units: Sequence[str], attention: np.ndarray, *, title: str = "Attention heads",
                     level: str = "token", stats=None, layer_offset: int = 1, special: Sequence[bool] | None = None,
                     other: HeadMap | None = None, top_k: int | None = DEFAULT_TOP_K, stats_source: str | None = None,
                     initial_layer: int | None = None, initial_head: int | str | None = None,
                     first_note: str | None = None, sort_by: str | None = None) -> str:
    """One self-contained HTML page browsing ``attention`` [L, H, U, U] (rows = from) over ``units``.

    ``level`` names this map ("token" or "word"); ``other`` is the same input at the other level, which adds a
    token/word toggle. ``stats`` (tidy rows layer, head, stat, value) adds a sortable gallery annotated with
    them; layers are numbered from ``layer_offset`` (attention of transformer layer l is layer l) and heads
    from 1, as in the statistics. ``initial_layer`` / ``initial_head`` use those numbers; ``initial_head=None``
    opens on :func:`notable_head` (of ``initial_layer`` when given) and names it in the page, ``"all"`` on all
    heads of the layer overlaid; ``first_note`` replaces the page's sentence on why this head is shown;
    ``sort_by`` (a metric name) is the gallery's first sort key (default: the table's first metric).
    The first head's bytes are also stored uncompressed, so it is drawn synchronously when the page loads (a
    screenshot taken right after load shows it); ``body[data-ready]`` is set once everything is inflated.
    Storage: see the module docstring (``top_k=None`` keeps every visible weight).
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}")
    if top_k is not None and top_k < 1:
        raise ValueError("top_k must be at least 1 (or None)")
    views, notes = {}, {}
    views[level], notes[level] = _view_payload(HeadMap(units, attention, special), level, top_k)
    L, H = np.shape(attention)[:2]
    if other is not None:
        other_level = LEVELS[1 - LEVELS.index(level)]
        if np.shape(other.attention)[:2] != (L, H):
            raise ValueError(f"the {other_level}-level map has {np.shape(other.attention)[:2]} layers × heads, "
                             f"not {(L, H)}")
        views[other_level], notes[other_level] = _view_payload(other, other_level, top_k)
    layer0 = None if initial_layer is None else initial_layer - layer_offset
    if layer0 is not None and not 0 <= layer0 < L:
        raise ValueError(f"initial layer {initial_layer} outside layers {layer_offset}..{layer_offset + L - 1}")
    if initial_head is None:
        layer0, head0, why = notable_head(attention, special, layer0)
        note = first_note or f"Shown first: layer {layer0 + layer_offset}, head {head0 + 1}, {why}."
    elif initial_head == "all":
        layer0, head0 = layer0 or 0, -1
        note = first_note or f"Shown first: all heads of layer {layer0 + layer_offset} overlaid."
    else:
        layer0, head0 = layer0 or 0, int(initial_head) - 1
        if not 0 <= head0 < H:
            raise ValueError(f"initial head {initial_head} outside heads 1..{H}")
        note = first_note or f"Shown first: layer {layer0 + layer_offset}, head {head0 + 1}, as asked."
    first = None
    if head0 >= 0:   # the first view's head, uncompressed, so it can be drawn before anything is inflated
        blob, _, _ = encode_head(np.asarray(attention)[layer0, head0], top_k)
        first = base64.b64encode(blob).decode("ascii")
    data = {"L": int(L), "H": int(H), "layerOffset": int(layer_offset), "level": level, "views": views,
            "initial": {"layer": layer0, "head": head0}, "first": first,
            "storage": {"topK": top_k, "notes": notes},
            "stats": None if stats is None else _sorted_by(stats_payload(stats, L, H, layer_offset, level), sort_by),
            "statsSource": stats_source}
    script_hash = base64.b64encode(hashlib.sha256(JS.encode("utf-8")).digest()).decode("ascii")
    csp = (f"default-src 'none'; script-src 'sha256-{script_hash}'; style-src 'unsafe-inline'; "
           "img-src data:; connect-src 'none'; form-action 'none'; base-uri 'none'")
    cap = (f"each row keeps at most its {top_k} largest weights (any weight beyond that is at most "
           f"1/{top_k + 1} = {1 / (top_k + 1):.3f} in a row summing to 1)") if top_k else "no per-row cap"
    t = html.escape(str(title))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{t}</title>
<style>{CSS}</style>
</head><body>
<h1 id="pk-title">{t}</h1>
<div id="pk-controls">
<span id="pk-levels" hidden>Units: <label><input type="radio" name="pk-level" value="token"> tokens</label>
<label><input type="radio" name="pk-level" value="word"> words</label></span>
<label>Layer <select id="pk-layer"></select></label>
<label>Head <select id="pk-head"></select></label>
<span id="pk-legend" title="head colours; click one to show that head alone"></span>
</div>
<p id="pk-first">{html.escape(note)}</p>
<div id="pk-info">Hover over a token to isolate its lines (left: attention from it, right: attention to it);
click to pin.</div>
<div id="pk-view"><div id="pk-scroll"><div id="pk-rows"><div id="pk-left" class="pk-col"></div>
<div id="pk-right" class="pk-col"></div></div></div><canvas id="pk-canvas"></canvas></div>
<div id="pk-status"></div>
<details id="pk-about"><summary>How the weights are stored</summary>
<p>Line opacity is the attention weight. Weights are stored as round(255·w) in one byte; those that round to 0
(w &lt; 0.002) are not stored, and {html.escape(cap)}. <span id="pk-dropped"></span>
To stay responsive, at most 8,000 lines are drawn at once: when more cross the view, the faintest are left
out and a note under the drawing says so; hovering a token always shows all of its lines.
The page works offline: it loads nothing and sends nothing.</p></details>
<section id="pk-gallery"><h2>All heads</h2>
<div id="pk-sortbar"><span id="pk-source"></span> <label>Sort by <select id="pk-sort"></select></label>
<button id="pk-dir" type="button">descending</button></div>
<p class="pk-note">Each thumbnail is the head's attention map on this input (rows = from, columns = to),
block-averaged and scaled to its own maximum; the statistics are those named beside "Sort by" (a statistics run
over a corpus, or this input alone), all with three decimals; entropies are in nats. Click a head to show it
above.</p>
<div id="pk-grid"></div></section>
<script type="application/json" id="pk-data">{_script_json(data)}</script>
<script>{JS}</script>
</body></html>
"""


def write_page(path: str | os.PathLike, page: str) -> Path:
    """Write ``page`` to ``path`` atomically (a temporary file beside it, then renamed)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(page)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p
