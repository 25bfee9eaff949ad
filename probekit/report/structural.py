"""Tables and figures of the structural probes: metrics by layer, and one sentence's gold vs predicted tree."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .rundir import markdown_table

LABELS = {"uuas": "UUAS", "dspr": "distance Spearman", "root_acc": "root accuracy", "nspr": "depth Spearman"}


def markdown_report(frame: pd.DataFrame, record: dict) -> str:
    model = record["model"]["name"]
    counts = record["counts"]
    text = (f"# Structural probes on {model}\n\nHewitt & Manning (2019): distance and depth probes of rank "
            f"{record['inputs']['rank']} per layer, trained on {counts['train']['used']} sentences, scored on "
            f"{counts['dev']['used']} dev sentences ({counts['dev']['truncated_left_out']} left out as longer than the "
            f"model's limit). UUAS: minimum spanning tree of the predicted distances against the gold tree, "
            f"punctuation excluded. Spearman: per sentence, averaged within each length, then over lengths 5–50.\n\n")
    probes = frame[frame["layer"].notna()]
    table = probes.pivot_table(index="layer", columns="metric", values="value", sort=False).reset_index()
    table = table[["layer"] + [m for m in LABELS if m in table.columns]]
    base = frame[frame["layer"].isna()].set_index("metric")["value"]
    baseline = pd.DataFrame([{"layer": "linear position", **{m: base.get(m, np.nan) for m in table.columns[1:]}}])
    table["layer"] = table["layer"].astype(str)
    table = pd.concat([table, baseline], ignore_index=True).rename(columns=LABELS)
    text += markdown_table(table) + "\n"
    text += ("Spearman cells are empty when no dev sentence has 5–50 words.\n\n"
             if probes[probes["metric"].isin(["dspr", "nspr"])]["value"].isna().any() else "")
    for metric in ("uuas", "dspr", "root_acc", "nspr"):
        sub = probes[(probes["metric"] == metric) & probes["value"].notna()]
        if len(sub):
            best = sub.loc[sub["value"].idxmax()]
            text += f"- best {LABELS[metric]}: layer {int(best['layer'])} ({best['value']:.3f})\n"
    return text


def plot_by_layer(frame: pd.DataFrame, model: str) -> Figure:
    fig = Figure(figsize=(8.5, 4.2))
    ax = fig.subplots()
    probes = frame[frame["layer"].notna()]
    base = frame[frame["layer"].isna()].set_index("metric")["value"]
    colours = {"uuas": "C0", "dspr": "C1", "root_acc": "C2", "nspr": "C3"}
    for metric, label in LABELS.items():
        sub = probes[probes["metric"] == metric].sort_values("layer")
        if sub.empty:
            continue
        ax.plot(sub["layer"].astype(int), sub["value"], marker="o", color=colours[metric], label=label)
        if metric in base:
            ax.axhline(base[metric], color=colours[metric], linestyle=":", linewidth=1,
                       label=f"{label}, linear-position baseline")
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_ylabel("score on dev")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Structural probes — {model}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    return fig


def plot_tree(words, heads, predicted, keep, layer: int, model: str) -> Figure:
    """Gold arcs above the words, the predicted minimum spanning tree below (punctuation left out of both)."""
    from ..probing.structural import gold_edges, mst_edges

    n = len(words)
    gold, pred = gold_edges(heads, keep), mst_edges(predicted, keep)
    fig = Figure(figsize=(max(6.0, 0.7 * n), 3.6))
    ax = fig.subplots()
    for (i, j) in gold | pred:
        for edges, sign, colour in ((gold, 1, "#1f77b4"), (pred, -1, "#d62728" if (i, j) not in gold else "#2ca02c")):
            if (i, j) in edges:
                t = np.linspace(0, np.pi, 30)
                mid, r = (i + j) / 2, abs(j - i) / 2
                ax.plot(mid + r * np.cos(t), sign * (0.3 + 0.25 * r * np.sin(t)), color=colour, linewidth=1.2)
    for k, w in enumerate(words):
        ax.text(k, 0, w, ha="center", va="center", fontsize=9, color="black" if keep[k] else "#999",
                rotation=30 if n > 14 else 0)
    ax.set_xlim(-1, n)
    span = 0.3 + 0.25 * n / 2
    ax.set_ylim(-span - 0.2, span + 0.2)
    ax.axis("off")
    correct = len(gold & pred)
    ax.set_title(f"gold tree (above) vs predicted minimum spanning tree (below; green = correct, red = wrong), "
                 f"layer {layer}, {model}: {correct}/{len(gold)} edges", fontsize=9)
    fig.tight_layout()
    return fig
