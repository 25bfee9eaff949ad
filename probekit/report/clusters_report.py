"""Tables and figures of the layer clustering: NMI and silhouette by layer, and one projection panel per layer."""
from __future__ import annotations

import math

import pandas as pd
from matplotlib.figure import Figure

from probekit.core.rundir import markdown_table, markdown_text

#: labels drawn in their own colour; the rest are grey
TOP_LABELS = 10


def markdown_report(frame: pd.DataFrame, record: dict) -> str:
    inputs = record["inputs"]
    text = (f"# Layer clustering of {markdown_text(record['model']['name'])}\n\nWords of "
            f"{markdown_text(inputs['source'])} labelled by "
            f"{inputs['label']}. NMI: {inputs['kmeans']}, against the labels. Silhouette: {inputs['silhouette']} "
            f"(higher = the labels form tighter, better separated groups).\n\n")
    for subset, g in frame.groupby("subset", sort=False):
        table = g.pivot_table(index="layer", columns="metric", values="value", sort=False, dropna=False)
        table = table.reindex(columns=["nmi", "silhouette", "n_points", "n_labels"]).reset_index()
        table[["n_points", "n_labels"]] = table[["n_points", "n_labels"]].astype(int)
        best = table.loc[table["nmi"].idxmax()]
        text += (f"## {markdown_text(subset)}\n\n" + markdown_table(table) +
                 f"\nHighest NMI: layer {int(best['layer'])} ({best['nmi']:.3f}).")
        if table["silhouette"].isna().any():
            text += " The silhouette is empty where the points carry a single label."
        text += "\n\n"
    notes = record.get("projection_notes") or []
    if notes:
        text += "## Projection fallbacks\n\n" + "".join(f"- {markdown_text(n)}\n" for n in notes) + "\n"
    return text


def plot_projections(points: pd.DataFrame, model: str, subset: str, method: str) -> Figure:
    layers = sorted(points["layer"].unique())
    cols = min(4, len(layers))
    rows = math.ceil(len(layers) / cols)
    fig = Figure(figsize=(3.2 * cols + 1.8, 3.0 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    top = points["label"].value_counts().index[:TOP_LABELS]
    palette = [f"C{i}" for i in range(10)]
    for ax, layer in zip(axes.flat, layers):
        g = points[points["layer"] == layer]
        rest = g[~g["label"].isin(top)]
        ax.scatter(rest["x"], rest["y"], s=3, color="#cccccc", label="other labels" if len(rest) else None)
        for i, lab in enumerate(top):
            s = g[g["label"] == lab]
            ax.scatter(s["x"], s["y"], s=3, color=palette[i % 10], label=str(lab))
        ax.set_title(f"layer {layer}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[len(layers):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=7, markerscale=3)
    fig.suptitle(f"{method.upper()} of word vectors ({subset}) — {model}", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1 - 1.6 / (3.2 * cols + 1.8), 0.95))
    return fig
