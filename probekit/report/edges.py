"""Tables and the figure of edge probing: scores by layer, mixing weights, center of gravity, expected layer."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .rundir import markdown_table


def markdown_report(frame: pd.DataFrame, record: dict) -> str:
    text = (f"# Edge probing of {record['model']['name']}\n\nTenney et al. (2019): {record['inputs']['probe']}. "
            f"`layer` probes read one layer, `cumulative` probes the mix of layers 0…l. E_s[l] is the center of "
            f"gravity of the all-layer mix, E_Δ[l] the expected layer from the cumulative scores "
            f"({record['inputs']['expected_layer_score']}).\n\n")
    summary = []
    for task, g in frame.groupby("task", sort=False):
        c = record["counts"][task]
        table = g[g["probe"].isin(["layer", "cumulative"]) & g["layer"].notna()]
        table = table.pivot_table(index="layer", columns=["probe", "metric"], values="value", sort=False)
        table.columns = [f"{p} {m}" for p, m in table.columns]
        weights = g[g["metric"] == "mix_weight"].set_index("layer")["value"]
        table["mix weight"] = weights
        text += (f"## {task}\n\n{c['train']} training and {c['dev']} dev targets, {c['classes']} classes"
                 + (f" ({c['dev_dropped_unseen_label']} dev targets with labels unseen in training left out)"
                    if c["dev_dropped_unseen_label"] else "") + ".\n\n" + markdown_table(table.reset_index()) + "\n")
        agg = g[g["layer"].isna()].set_index("metric")["value"]
        summary.append({"task": task, "E_s[l]": agg.get("center_of_gravity", np.nan),
                        "E_Δ[l]": agg.get("expected_layer", np.nan)})
    return text + "## Where each task sits\n\n" + markdown_table(pd.DataFrame(summary), ".2f")


def plot_layers(frame: pd.DataFrame, model: str) -> Figure:
    """One row per task, as in Tenney et al.: mixing weights (bars) and per-layer scores, with E_s and E_Δ."""
    tasks = list(dict.fromkeys(frame["task"]))
    fig = Figure(figsize=(8.5, 1.9 * len(tasks) + 0.8))
    axes = fig.subplots(len(tasks), 1, squeeze=False)[:, 0]
    for ax, task in zip(axes, tasks):
        g = frame[frame["task"] == task]
        w = g[g["metric"] == "mix_weight"].sort_values("layer")
        layers = w["layer"].astype(int).to_numpy()
        ax.bar(layers, w["value"], color="#9ecae1", label="mixing weight s_l")
        agg = g[g["layer"].isna()].set_index("metric")["value"]
        for metric, colour, name in (("center_of_gravity", "#08519c", "E_s[l]"), ("expected_layer", "#cb181d", "E_Δ[l]")):
            if np.isfinite(agg.get(metric, np.nan)):
                ax.axvline(agg[metric], color=colour, linestyle="--", label=f"{name} = {agg[metric]:.2f}")
        main = "f1" if "f1" in set(g["metric"]) else "accuracy"
        per = g[(g["probe"] == "layer") & (g["metric"] == main)].sort_values("layer")
        twin = ax.twinx()
        twin.plot(per["layer"].astype(int), per["value"], color="#555", marker="o", markersize=3,
                  label=f"{main} of the layer's own probe")
        twin.set_ylim(0, 1.02)
        twin.set_ylabel(main, fontsize=8)
        ax.set_ylabel(task)
        ax.set_xticks(layers)
        handles = ax.get_legend_handles_labels()
        handles2 = twin.get_legend_handles_labels()
        ax.legend(handles[0] + handles2[0], handles[1] + handles2[1], fontsize=7, loc="upper left",
                  bbox_to_anchor=(1.08, 1.0), borderaxespad=0)
    axes[-1].set_xlabel("layer (0 = embeddings)")
    fig.suptitle(f"Edge probing with a scalar mix — {model}", fontsize=10)
    fig.tight_layout()
    return fig
