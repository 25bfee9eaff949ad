"""Static figures of attention heads for papers: one head, or a layer's grid of heads, as PNG or SVG.

The format follows the file extension. Heatmaps put the query ("from") on the y axis and the key ("to") on the
x axis, like the attention matrix itself; the "lines" style draws Clark et al.'s two-column picture, line
opacity = weight. Long inputs keep their labels readable by labelling every n-th unit (at most
``MAX_LABELS``) rather than shrinking the font. SVG keeps text as text (searchable, editable).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np

FORMATS = (".png", ".svg")
MAX_LABELS = 100
FONT_SIZE = 8


def _check_path(path) -> Path:
    p = Path(path)
    if p.suffix.lower() not in FORMATS:
        raise ValueError(f"{p}: the figure format follows the extension, which must be one of {', '.join(FORMATS)}")
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def _label(text: str) -> str:
    """A unit as matplotlib shows it literally: ``$`` would otherwise start mathtext."""
    return str(text).replace("$", r"\$")


def _figure(**kwargs):
    """A figure of matplotlib's object-oriented API: no pyplot state and no backend switch (notebook-safe)."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _save(fig, p: Path) -> Path:
    """Save atomically (temporary file beside ``p``, then renamed) and close the figure."""
    import matplotlib

    tmp = p.with_name(f".{p.name}.tmp{p.suffix}")
    try:
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "probekit"}):
            fig.savefig(tmp, format=p.suffix[1:].lower(), dpi=200, bbox_inches="tight",
                        metadata={"Date": None} if p.suffix.lower() == ".svg" else None)
        os.replace(tmp, p)
    finally:
        tmp.unlink(missing_ok=True)
    return p


def _ticks(n: int) -> np.ndarray:
    step = max(1, math.ceil(n / MAX_LABELS))
    return np.arange(0, n, step)


def _check(units: Sequence[str], attn: np.ndarray, ndim: int) -> tuple[list[str], np.ndarray]:
    units = [str(u) for u in units]
    a = np.asarray(attn, dtype=np.float64)
    if a.ndim != ndim or a.shape[-1] != a.shape[-2] or a.shape[-1] != len(units):
        shape = "[U, U]" if ndim == 2 else "[H, U, U]"
        raise ValueError(f"attention must be {shape} with U = {len(units)} units, got {a.shape}")
    return units, a


def _heatmap(ax, units, a, *, labels_x=True, labels_y=True, vmax=None, cmap="Blues"):
    n = len(units)
    im = ax.imshow(a, cmap=cmap, vmin=0.0, vmax=vmax if vmax else (a.max() or 1.0), interpolation="nearest",
                   aspect="equal")
    ticks = _ticks(n)
    ax.set_xticks(ticks if labels_x else [])
    ax.set_yticks(ticks if labels_y else [])
    if labels_x:
        ax.set_xticklabels([_label(units[i]) for i in ticks], rotation=90, fontsize=FONT_SIZE)
    if labels_y:
        ax.set_yticklabels([_label(units[i]) for i in ticks], fontsize=FONT_SIZE)
    ax.tick_params(length=2, pad=1)
    return im


def _lines(ax, units, a, min_weight: float = 0.01):
    from matplotlib.collections import LineCollection

    n = len(units)
    ys = np.arange(n)[::-1].astype(float)
    i, j = np.nonzero(a >= min_weight)
    segs = np.stack([np.stack([np.zeros(len(i)), ys[i]], -1), np.stack([np.ones(len(i)), ys[j]], -1)], 1)
    colours = np.zeros((len(i), 4))
    colours[:, :3] = (0.12, 0.47, 0.71)
    colours[:, 3] = np.clip(a[i, j], 0.0, 1.0)
    ax.add_collection(LineCollection(segs, colors=colours, linewidths=1.2))
    for k, u in enumerate(units):
        ax.text(-0.03, ys[k], _label(u), ha="right", va="center", fontsize=FONT_SIZE)
        ax.text(1.03, ys[k], _label(u), ha="left", va="center", fontsize=FONT_SIZE)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.7, n - 0.3)
    ax.axis("off")


def plot_head(units: Sequence[str], attn_2d: np.ndarray, path, *, title: str | None = None,
              style: str = "heatmap", min_weight: float = 0.01) -> Path:
    """One head ``attn_2d`` [U, U] (rows = from) as a heatmap or as two columns of lines; PNG or SVG by extension.

    ``style="lines"`` leaves out weights below ``min_weight`` (invisible at that opacity; keeps SVGs small).
    """
    p = _check_path(path)
    units, a = _check(units, attn_2d, 2)
    if style not in ("heatmap", "lines"):
        raise ValueError("style must be 'heatmap' or 'lines'")
    shown = len(_ticks(len(units)))
    if style == "heatmap":
        side = min(3.0 + 0.14 * shown, 18.0)
        fig = _figure(figsize=(side + 1.2, side))
        ax = fig.subplots()
        im = _heatmap(ax, units, a)
        ax.set_xlabel("to (key)", fontsize=FONT_SIZE + 1)
        ax.set_ylabel("from (query)", fontsize=FONT_SIZE + 1)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02).set_label("attention weight", fontsize=FONT_SIZE + 1)
    else:
        fig = _figure(figsize=(4.0, max(2.0, 0.17 * len(units))))
        ax = fig.subplots()
        _lines(ax, units, a, min_weight)
    if title:
        ax.set_title(_label(title), fontsize=FONT_SIZE + 2)
    return _save(fig, p)


def plot_layer_grid(units: Sequence[str], attn_layer: np.ndarray, path, *, layer: int | None = None,
                    title: str | None = None, ncols: int | None = None) -> Path:
    """Every head of one layer ``attn_layer`` [H, U, U] as a grid of heatmaps; PNG or SVG by extension.

    Panels are titled ``layer-head`` (heads from 1) when ``layer`` is given; unit labels go on the left column
    and bottom row only; each panel has its own colour scale (0 to its maximum), as heads differ widely.
    """
    p = _check_path(path)
    units, a = _check(units, attn_layer, 3)
    H = a.shape[0]
    ncols = ncols or min(H, 4)
    nrows = math.ceil(H / ncols)
    shown = len(_ticks(len(units)))
    side = min(1.6 + 0.09 * shown, 8.0)
    fig = _figure(figsize=(ncols * side + 1.0, nrows * side + 0.6))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for h in range(nrows * ncols):
        ax = axes[h // ncols][h % ncols]
        if h >= H:
            ax.axis("off")
            continue
        last_row = h + ncols >= H
        _heatmap(ax, units, a[h], labels_x=last_row, labels_y=h % ncols == 0)
        ax.set_title(f"{layer}-{h + 1}" if layer is not None else f"head {h + 1}", fontsize=FONT_SIZE + 1)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=0.92 if title else 0.97, wspace=0.08, hspace=0.25)
    if title:
        fig.suptitle(_label(title), fontsize=FONT_SIZE + 3)
    return _save(fig, p)
