"""The run folder of ``python -m probekit.probe``: the Markdown pivot and the accuracy-by-layer figure."""
from __future__ import annotations

from typing import Sequence

import pandas as pd

from .rundir import markdown_table


def markdown_report(df: pd.DataFrame, key_names: Sequence[str], *, warning: str | None = None) -> str:
    """Pivot: one row per probe × split, one column per layer (task keys averaged), then per key."""
    title = f"# {df['task'].iloc[0]} probes on {df['model'].iloc[0]}\n\n"
    if warning:
        title += f"**Note:** {warning}\n\n"
    keys = [k for k in key_names if k in df.columns]
    mean = df.groupby(["probe", "split", "layer"], sort=False)["value"].mean().unstack("layer")
    mean.columns = [f"layer {c}" for c in mean.columns]
    text = title + "Accuracy by layer" + (f" (averaged over {', '.join(keys)})" if keys else "") + ":\n\n"
    text += markdown_table(mean.reset_index()) + "\n"
    text += ("Probes `*-nopos` read layer 0 with the position embeddings removed.\n\n")
    for key in keys:
        for split in df["split"].unique():
            sub = df[(df["split"] == split) & ~df["probe"].str.endswith("-nopos")]
            piv = sub.pivot_table(index=["probe", key], columns="layer", values="value", sort=False)
            piv.columns = [f"layer {c}" for c in piv.columns]
            text += f"## {split}, by {key}\n\n" + markdown_table(piv.reset_index()) + "\n"
    return text


def accuracy_figure(df: pd.DataFrame, key_names: Sequence[str]):
    """Layers on x; one line per probe × split (task keys averaged); no-position probes as markers at 0.

    Colour is the split, line style and marker the probe, so a split reads the same across probes.
    Object-oriented matplotlib (no backend switch): the caller saves it with ``RunDir.save_figure``.
    """
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.5, 4.5))
    ax = fig.subplots()
    mean = df.groupby(["probe", "split", "layer"])["value"].mean().reset_index()
    palette = colormaps["tab10"].colors
    colour = {s: palette[i % 10] for i, s in enumerate(dict.fromkeys(mean["split"]))}
    line = {"linear": ("-", "o"), "mlp": ("--", "s")}
    cross = {"linear-nopos": "x", "mlp-nopos": "+"}
    for (probe, split), g in mean.groupby(["probe", "split"], sort=False):
        if probe.endswith("-nopos"):
            ax.scatter(g["layer"], g["value"], marker=cross.get(probe, "x"), s=45, color=colour[split],
                       label=f"{probe} / {split}")
        else:
            style, marker = line.get(probe, (":", "^"))
            ax.plot(g["layer"], g["value"], linestyle=style, marker=marker, markersize=4, color=colour[split],
                    alpha=0.6 if split == "train" else 1.0, label=f"{probe} / {split}")
    keys = [k for k in key_names if k in df.columns]
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_ylabel("accuracy" + (f" (mean over {', '.join(keys)})" if keys else ""))
    ax.set_title(f"{df['task'].iloc[0]} — {df['model'].iloc[0]}")
    ax.set_ylim(0, 1.02)
    ax.set_xticks(sorted(int(v) for v in mean["layer"].unique()))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    return fig
