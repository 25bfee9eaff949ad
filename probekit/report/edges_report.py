"""Tables and the figure of edge probing: scores by layer, mixing weights, center of gravity, expected layer."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from probekit.core.rundir import markdown_table


def _cell(r) -> str:
    if not np.isfinite(r["value"]):
        return ""
    if np.isfinite(r["ci_low"]) if "ci_low" in r else False:
        return f"{r['value']:.3f} ({r['ci_low']:.3f}–{r['ci_high']:.3f})"
    return f"{r['value']:.3f}"


def markdown_report(frame: pd.DataFrame, record: dict, comparisons: pd.DataFrame | None = None) -> str:
    inputs = record["inputs"]
    text = (f"# Edge probing of {record['model']['name']}\n\nTenney et al. (2019): {inputs['probe']}; "
            f"{inputs['schedule']}. `layer` probes read one layer, `cumulative` probes the mix of layers 0…l, "
            f"`layer-nopos` layer 0 without position embeddings (a non-contextual baseline). micro-F1 is Tenney "
            f"et al.'s score (a decision per label at 0.5); accuracy and macro-F1 are of the top label. E_s[l] is "
            f"the center of gravity of the all-layer mix, E_Δ[l] the expected layer from the cumulative scores "
            f"({inputs['expected_layer_score']}). Cells: value (95% interval, {inputs['intervals']}).\n\n")
    summary = []
    for task, g in frame.groupby("task", sort=False):
        c = record["counts"][task]
        for split in [s for s in ("dev", "test") if s in c]:
            sub = g[g["probe"].isin(["layer", "cumulative", "layer-nopos"]) & g["layer"].notna()
                    & (g["split"] == split)].copy()
            sub["cell"] = [_cell(r) for _, r in sub.iterrows()]
            table = sub.pivot_table(index="layer", columns=["probe", "metric"], values="cell", aggfunc="first",
                                    sort=False)
            table.columns = [f"{p} {m}" for p, m in table.columns]
            if split == "dev":
                weights = g[g["metric"] == "mix_weight"].set_index("layer")["value"]
                table["mix weight"] = weights.map(lambda v: f"{v:.3f}")
            dropped = c.get(f"{split}_dropped_unseen_label", 0)
            text += (f"## {task}, {split}\n\n{c['train']} training and {c[split]} {split} targets, {c['classes']} "
                     f"classes" + (f" ({dropped} {split} targets with labels unseen in training left out)"
                                   if dropped else "") + ".\n\n" + markdown_table(table.reset_index()) + "\n")
        agg = g[g["layer"].isna()]
        row = {"task": task}
        for _, r in agg.iterrows():
            name = "E_s[l]" if r["metric"] == "center_of_gravity" else f"E_Δ[l] ({r['split']})"
            row[name] = _cell(r).replace(" (", " (95% CI ") if np.isfinite(r.get("ci_low", np.nan)) else _cell(r)
        summary.append(row)
    text += "## Where each task sits\n\n" + markdown_table(pd.DataFrame(summary)) + "\n"
    if comparisons is not None and len(comparisons):
        text += ("## What the intervals support\n\nThe per-layer probe best on dev against the runner-up and the "
                 "non-contextual probe, on the same targets (bootstrap paired over sentences):\n\n")
        text += "".join(f"- {r.sentence}\n" for r in comparisons.itertuples())
    return text


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
        split = "test" if (g["split"] == "test").any() else "dev"
        agg = g[g["layer"].isna() & g["split"].isin(["", split])].set_index("metric")["value"]
        for metric, colour, name in (("center_of_gravity", "#08519c", "E_s[l]"), ("expected_layer", "#cb181d", "E_Δ[l]")):
            if np.isfinite(agg.get(metric, np.nan)):
                ax.axvline(agg[metric], color=colour, linestyle="--", label=f"{name} = {agg[metric]:.2f}")
        twin = ax.twinx()
        for main, colour, marker in (("micro_f1", "#555", "o"), ("macro_f1", "#a63603", "s")):
            per = g[(g["probe"] == "layer") & (g["metric"] == main) & (g["split"] == split)].sort_values("layer")
            if per.empty:
                continue
            err = None
            if "ci_low" in per and np.isfinite(per["ci_low"].to_numpy(dtype=float)).any():
                err = np.vstack([per["value"] - per["ci_low"], per["ci_high"] - per["value"]]).astype(float)
            twin.errorbar(per["layer"].astype(int), per["value"], yerr=err, color=colour, marker=marker,
                          markersize=3, capsize=2, label=f"{split} {main} of the layer's own probe (95% CI)")
        twin.set_ylim(0, 1.02)
        twin.set_ylabel("micro- / macro-F1", fontsize=8)
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
