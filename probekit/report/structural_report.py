"""Tables and figures of the structural probes: metrics by layer, and one sentence's gold vs predicted tree."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from probekit.core.rundir import markdown_table

LABELS = {"uuas": "UUAS", "dspr": "distance Spearman", "root_acc": "root accuracy", "nspr": "depth Spearman"}


def _cell(r) -> str:
    if not np.isfinite(r["value"]):
        return ""
    if np.isfinite(r.get("ci_low", np.nan)):
        return f"{r['value']:.3f} ({r['ci_low']:.3f}–{r['ci_high']:.3f})"
    return f"{r['value']:.3f}"


def _row_name(r) -> str:
    if r["baseline"]:
        return r["baseline"]
    return "layer 0 without positions" if str(r["probe"]).endswith("-nopos") else str(int(r["layer"]))


def markdown_report(frame: pd.DataFrame, record: dict, comparisons: pd.DataFrame | None = None) -> str:
    model = record["model"]["name"]
    counts, inputs = record["counts"], record["inputs"]
    splits = [s for s in ("dev", "test") if s in counts]
    scored = ", ".join(f"{counts[s]['used']} {s} sentences ({counts[s]['truncated_left_out']} left out as longer "
                       f"than the model's limit)" for s in splits)
    text = (f"# Structural probes on {model}\n\nHewitt & Manning (2019): distance and depth probes of rank "
            f"{inputs['rank']} per layer, trained on {counts['train']['used']} sentences ({inputs['schedule']}; "
            f"the parameters are chosen on dev), scored on {scored}. UUAS: minimum spanning tree of the predicted "
            f"distances against the gold tree, punctuation excluded ({inputs['punctuation']}; Hewitt's code uses the PTB "
            f"punctuation tags). Spearman: per sentence, averaged within each "
            f"length, then over lengths 5–50. Root accuracy: {inputs['root_accuracy']}. Cells: value (95% "
            f"interval, {inputs['intervals']}).\n\n")
    for split in splits:
        sub = frame[frame["split"] == split].copy()
        sub["row"] = [_row_name(r) for _, r in sub.iterrows()]
        sub["cell"] = [_cell(r) for _, r in sub.iterrows()]
        table = sub.pivot_table(index="row", columns="metric", values="cell", aggfunc="first", sort=False)
        table = table[[m for m in LABELS if m in table.columns]].reset_index().rename(columns={"row": "layer",
                                                                                               **LABELS})
        text += f"## {split}\n\n" + markdown_table(table) + "\n"
        if sub[sub["metric"].isin(["dspr", "nspr"])]["value"].isna().any():
            text += "Spearman cells are empty when no sentence has 5–50 words.\n\n"
    if comparisons is not None and len(comparisons):
        text += ("## What the intervals support\n\nThe layer with the highest dev score against the runner-up and "
                 "the baselines, on the same sentences (paired bootstrap):\n\n")
        text += "".join(f"- {r.sentence}\n" for r in comparisons.itertuples())
    return text


def plot_by_layer(frame: pd.DataFrame, model: str) -> Figure:
    fig = Figure(figsize=(8.5, 4.2))
    ax = fig.subplots()
    split = "test" if (frame["split"] == "test").any() else "dev"
    frame = frame[frame["split"] == split]
    probes = frame[frame["layer"].notna() & ~frame["probe"].astype(str).str.endswith("-nopos")]
    base = frame[frame["layer"].isna()].set_index("metric")["value"]
    nopos = frame[frame["probe"].astype(str).str.endswith("-nopos")].set_index("metric")["value"]
    colours = {"uuas": "C0", "dspr": "C1", "root_acc": "C2", "nspr": "C3"}
    for metric, label in LABELS.items():
        sub = probes[probes["metric"] == metric].sort_values("layer")
        if sub.empty:
            continue
        err = None
        if "ci_low" in sub and np.isfinite(sub["ci_low"].to_numpy(dtype=float)).any():
            err = np.vstack([sub["value"] - sub["ci_low"], sub["ci_high"] - sub["value"]]).astype(float)
        ax.errorbar(sub["layer"].astype(int), sub["value"], yerr=err, marker="o", color=colours[metric],
                    capsize=3, label=label)
        if metric in base:
            ax.axhline(base[metric], color=colours[metric], linestyle=":", linewidth=1,
                       label=f"{label}, linear-position baseline")
        if metric in nopos:
            ax.axhline(nopos[metric], color=colours[metric], linestyle="--", linewidth=1,
                       label=f"{label}, layer 0 without positions")
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_ylabel(f"score on {split} (bars: 95% CI)")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Structural probes — {model}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    return fig


def plot_tree(words, gold: set, pred: set, keep, layer: int, model: str) -> Figure:
    """Gold arcs above the words, the predicted minimum spanning tree below (punctuation left out of both).

    ``gold`` and ``pred`` are (i, j) edge sets over word positions, from the probe's own tree code.
    """
    n = len(words)
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
