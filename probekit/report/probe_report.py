"""The run folder of ``python -m probekit.probe``: the Markdown pivot and the accuracy-by-layer figure."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from probekit.core.rundir import markdown_table


def markdown_report(df: pd.DataFrame, key_names: Sequence[str], *, warning: str | None = None,
                    correctness: dict | None = None) -> str:
    """Pivot: one row per probe × split, one column per layer (task keys averaged), then per key; with the
    sweep's per-sentence ``correctness``, a sentence per split comparing the best layer with the runner-up."""
    title = f"# {df['task'].iloc[0]} probes on {df['model'].iloc[0]}\n\n"
    if warning:
        title += f"**Note:** {warning}\n\n"
    from probekit.report.probe_ci import layer_sentences, probe_sentences
    from probekit.report.probe_rigor import rigor_markdown

    full, df = df, df[df["metric"] == "accuracy"]
    keys = [k for k in key_names if k in df.columns]
    mean = df.groupby(["probe", "split", "layer"], sort=False)["value"].mean().unstack("layer")
    mean.columns = [f"layer {c}" for c in mean.columns]
    text = title + "Accuracy by layer" + (f" (averaged over {', '.join(keys)})" if keys else "") + ":\n\n"
    text += markdown_table(mean.reset_index()) + "\n"
    text += ("Probes `*-nopos` read layer 0 with the position embeddings removed.\n\n")
    seed = int(df["seed"].min()) if "seed" in df.columns and len(df) else 0
    text += layer_sentences(full, correctness or {}, seed=seed)
    text += probe_sentences(full, keys, correctness or {}, seed=seed)
    for key in keys:
        for split in df["split"].unique():
            sub = df[(df["split"] == split) & ~df["probe"].str.endswith("-nopos")]
            piv = sub.pivot_table(index=["probe", key], columns="layer", values="value", sort=False)
            piv.columns = [f"layer {c}" for c in piv.columns]
            text += f"## {split}, by {key}\n\n" + markdown_table(piv.reset_index()) + "\n"
    return text + rigor_markdown(full)


def accuracy_figure(df: pd.DataFrame, key_names: Sequence[str]):
    """Layers on x; one line per probe × split (task keys averaged); no-position probes as markers at 0.
    Error bars: 95 % intervals — over seeds (Student t) with several seeds, else the rows' bootstrap intervals
    over sentences (averaged over the task keys).

    Colour is the split, line style and marker the probe, so a split reads the same across probes.
    Object-oriented matplotlib (no backend switch): the caller saves it with ``RunDir.save_figure``.
    """
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.5, 4.5))
    ax = fig.subplots()
    seeded = "seed" if "seed" in df.columns else None
    sel = df[df["metric"] == "selectivity"] if "metric" in df.columns else df.iloc[:0]
    df = df[df["metric"] == "accuracy"] if "metric" in df.columns else df
    mean = _error_bars(df, seeded)
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
            bars = g[["below", "above"]].to_numpy().T
            ax.errorbar(g["layer"], g["value"], yerr=bars if np.nansum(bars) > 0 else None, linestyle=style,
                        marker=marker, markersize=4, color=colour[split], capsize=2,
                        alpha=0.6 if split == "train" else 1.0, label=f"{probe} / {split}")
    if len(sel):
        sm = sel[~sel["probe"].str.endswith("-nopos")].groupby(["probe", "split", "layer"])["value"].mean()
        for (probe, split), g in sm.reset_index().groupby(["probe", "split"], sort=False):
            ax.plot(g["layer"], g["value"], linestyle=":", marker="v", markersize=3, color=colour[split],
                    label=f"{probe} / {split}: selectivity")
    keys = [k for k in key_names if k in df.columns]
    ax.set_xlabel("layer (0 = embeddings); bars: 95% CI " + ("over seeds" if seeded and df[seeded].nunique() > 1
                                                          else "over sentences"))
    ax.set_ylabel("accuracy" + (f" (mean over {', '.join(keys)})" if keys else ""))
    ax.set_title(f"{df['task'].iloc[0]} — {df['model'].iloc[0]}")
    ax.set_ylim(0, 1.02)
    ax.set_xticks(sorted(int(v) for v in mean["layer"].unique()))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    return fig


def _error_bars(df: pd.DataFrame, seeded: str | None) -> pd.DataFrame:
    """probe, split, layer, value, below, above: the key-mean accuracy and its 95 % interval's reach below and
    above it (over seeds by Student t when there are several, else the bootstrap columns over sentences)."""
    from probekit.core.intervals import over_seeds

    group = ["probe", "split", "layer"]
    if seeded and df[seeded].nunique() > 1:
        per_seed = df.groupby(group + [seeded])["value"].mean()
        rows = []
        for (probe, split, layer), v in per_seed.groupby(group, sort=False):
            i = over_seeds(v.to_numpy())
            rows.append({"probe": probe, "split": split, "layer": layer, "value": i.estimate,
                         "low": i.ci_low, "high": i.ci_high})
        mean = pd.DataFrame(rows)
    else:
        cols = {"value": "value", **({c: c for c in ("ci_low", "ci_high") if c in df.columns})}
        mean = df.groupby(group, sort=False)[list(cols)].mean().reset_index()
        mean = mean.rename(columns={"ci_low": "low", "ci_high": "high"})
        for c in ("low", "high"):
            if c not in mean.columns:
                mean[c] = mean["value"]
    below = (mean["value"] - mean["low"]).clip(lower=0).fillna(0.0)
    above = (mean["high"] - mean["value"]).clip(lower=0).fillna(0.0)
    return mean.assign(below=below, above=above)
