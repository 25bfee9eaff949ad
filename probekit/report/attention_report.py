"""Figures and the written summary of an attention-statistics run, shaped like Clark et al. (2019):
Figure 2 (attention to token classes, heads scattered per layer with the layer mean), Figure 3 (gradients),
Figure 4 (entropies with the uniform-attention line) and Figure 6 (MDS map of the heads coloured by layer), plus
layer × head grids of the main statistics (``head_grid``), each with a colour bar.

Everything reads the tidy ``stats.csv`` frame (layer, head, metric, value), so a run can be re-plotted later.
Each ``plot_*`` returns a matplotlib :class:`~matplotlib.figure.Figure` (object-oriented API, no backend switch);
the run saves it with ``run.save_figure`` in every format asked for.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from probekit.core.rundir import markdown_table

FIG2_PANELS = [("cls", "[CLS]"), ("sep", "[SEP]"), ("punct", '". or ,"'), ("sep_sep", "[SEP] → [SEP]"),
               ("rest_sep", "other → [SEP]"), ("prev", "previous token"), ("next", "next token"),
               ("self", "itself")]
POSITION_THRESHOLD = 0.5        # Clark's "attends to the previous / next token"
SPECIAL_TOKEN_THRESHOLD = 0.6   # Clark's "attends to [CLS] / [SEP] / punctuation"
BROAD_MAX_WEIGHT = 0.1          # "at most 10% of its attention on any single word"


def _figure(**kwargs):
    """A figure of the object-oriented API: no pyplot state, no backend switch (safe inside a notebook)."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def per_head(stats: pd.DataFrame, stat: str) -> pd.DataFrame:
    """Rows of one statistic with a head number (per-layer rows, e.g. gradients, have none)."""
    return stats[(stats["metric"] == stat) & stats["head"].notna()]


def layer_means(stats: pd.DataFrame, stat: str) -> pd.Series:
    return per_head(stats, stat).groupby("layer")["value"].mean()


def _scatter_panel(ax, stats: pd.DataFrame, stat: str, title: str, jitter: np.random.Generator) -> None:
    sub = per_head(stats, stat)
    x = sub["layer"].to_numpy(dtype=float) + jitter.uniform(-0.18, 0.18, len(sub))
    ax.scatter(x, sub["value"], s=9, alpha=0.55, color="tab:blue", linewidths=0)
    means = sub.groupby("layer")["value"].mean()
    ax.plot(means.index, means.to_numpy(), color="black", linewidth=1.4)
    ax.set_title(title, fontsize=9)
    ax.set_xticks(list(means.index))
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.25)


def plot_attention_to(stats: pd.DataFrame, model: str = ""):
    """Figure 2: average attention to each token class, one dot per head, line = layer mean."""
    fig = _figure(figsize=(12, 5.4))
    axes = fig.subplots(2, 4, sharex=True)
    rng = np.random.default_rng(0)
    for ax, (stat, title) in zip(axes.ravel(), FIG2_PANELS):
        _scatter_panel(ax, stats, stat, title, rng)
        ax.set_ylim(-0.02, 1.02)
    for ax in axes[1]:
        ax.set_xlabel("layer", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("avg. attention", fontsize=8)
    fig.suptitle(f"Attention to token classes{' — ' + model if model else ''}", fontsize=10)
    fig.tight_layout()
    return fig


def plot_entropy(stats: pd.DataFrame, model: str = ""):
    """Figure 4: entropy of each head's rows and of the [CLS] row, with uniform attention's entropy."""
    fig = _figure(figsize=(10, 3.8))
    axes = fig.subplots(1, 2, sharey=True)
    rng = np.random.default_rng(0)
    uniform = float(per_head(stats, "uniform_entropy")["value"].mean())
    for ax, (stat, title) in zip(axes, [("entropy", "all tokens"), ("entropy_cls", "[CLS]")]):
        _scatter_panel(ax, stats, stat, f"Entropy of attention from {title}", rng)
        ax.axhline(uniform, color="tab:red", linestyle="--", linewidth=1, label=f"uniform ({uniform:.2f})")
        ax.set_xlabel("layer", fontsize=8)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("entropy (nats)", fontsize=8)
    fig.suptitle(model, fontsize=9)
    fig.tight_layout()
    return fig


def plot_gradients(grads: pd.DataFrame, objective: str, labels: dict[str, str], model: str = ""):
    """Figure 3: average |∂L/∂α| per layer for attention to [SEP], to "." / ",", and to every unmasked token.

    ``labels`` names each gradient class (metric → legend text); the analysis owns them, the figure only draws.
    """
    fig = _figure(figsize=(6, 3.8))
    ax = fig.subplots()
    for stat, label in [("grad_unmasked", labels["grad_unmasked"]), ("grad_sep", labels["grad_sep"]),
                        ("grad_punct", labels["grad_punct"])]:
        g = grads[grads["metric"] == stat]
        ax.plot(g["layer"], g["value"], marker="o", label=label)
    ax.set_xlabel("layer")
    ax.set_ylabel("average |∂L/∂α|")
    ax.set_xticks(sorted(grads["layer"].unique()))
    ax.set_title(f"Gradient of the {objective} loss w.r.t. attention{' — ' + model if model else ''}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_head_map(coords: np.ndarray, num_heads: int, model: str = ""):
    """Figure 6: the heads placed by MDS on their Jensen–Shannon distances, coloured by layer."""
    layers = np.arange(len(coords)) // num_heads + 1
    fig = _figure(figsize=(6.5, 5.5))
    ax = fig.subplots()
    sc = ax.scatter(coords[:, 0], coords[:, 1], c=layers, cmap="viridis", s=30)
    for k, (x, y) in enumerate(coords):
        ax.annotate(f"{layers[k]}-{k % num_heads + 1}", (x, y), fontsize=5, alpha=0.7,
                    xytext=(2, 2), textcoords="offset points")
    fig.colorbar(sc, ax=ax, label="layer")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"Heads by Jensen–Shannon distance (MDS){' — ' + model if model else ''}", fontsize=9)
    fig.tight_layout()
    return fig


GRID_PANELS = [("cls", "to [CLS]"), ("sep", "to [SEP]"), ("prev", "to the previous token"),
               ("next", "to the next token"), ("entropy", "entropy (nats)"), ("max_weight", "largest weight")]


def plot_head_grid(stats: pd.DataFrame, model: str = ""):
    """Layer × head grids of the main statistics, each with its colour bar (rows = layers, columns = heads)."""
    fig = _figure(figsize=(13, 6.4))
    axes = fig.subplots(2, 3)
    for ax, (stat, title) in zip(axes.ravel(), GRID_PANELS):
        grid = per_head(stats, stat).pivot(index="layer", columns="head", values="value")
        im = ax.imshow(grid.to_numpy(float), aspect="auto", cmap="viridis",
                       vmin=0.0 if stat != "entropy" else None, vmax=1.0 if stat != "entropy" else None)
        ax.set_title(title, fontsize=9)
        ax.set_xticks(range(len(grid.columns)), [str(int(h)) for h in grid.columns], fontsize=6)
        ax.set_yticks(range(len(grid.index)), [str(int(l)) for l in grid.index], fontsize=7)
        ax.set_xlabel("head", fontsize=8)
        ax.set_ylabel("layer", fontsize=8)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03).ax.tick_params(labelsize=7)
    fig.suptitle(f"Every head's statistics{' — ' + model if model else ''}", fontsize=10)
    fig.tight_layout()
    return fig


def _heads(df: pd.DataFrame, k: int | None = None) -> str:
    rows = df if k is None else df.head(k)
    return ", ".join(f"{int(r.layer)}-{int(r.head)} ({r.value:.2f})" for r in rows.itertuples())


def notable(stats: pd.DataFrame, distances: np.ndarray | None, num_heads: int) -> list[str]:
    """Sentences naming the heads and layers that stand out, with Clark et al.'s thresholds."""
    out = []
    sep = layer_means(stats, "sep")
    heavy = [int(l) for l, v in sep.items() if v > 0.5]
    out.append(f"Layers where more than half of the attention goes to [SEP]: "
               f"{', '.join(map(str, heavy)) if heavy else 'none'} (largest layer mean {sep.max():.2f}, "
               f"layer {int(sep.idxmax())}).")
    for stat, name in [("prev", "previous"), ("next", "next")]:
        sub = per_head(stats, stat).sort_values("value", ascending=False)
        n_over = int((sub["value"] > POSITION_THRESHOLD).sum())
        out.append(f"Strongest {name}-token heads: {_heads(sub, 3)}; {n_over} head(s) put more than "
                   f"{POSITION_THRESHOLD:.0%} of their attention on the {name} token.")
    for stat, name in [("cls", "[CLS]"), ("sep", "[SEP]"), ("punct", '"." or ","')]:
        sub = per_head(stats, stat).sort_values("value", ascending=False)
        over = sub[sub["value"] > SPECIAL_TOKEN_THRESHOLD]
        out.append(f"Heads with more than {SPECIAL_TOKEN_THRESHOLD:.0%} of their attention on {name}: "
                   f"{len(over)}" + (f" (strongest {_heads(over, 5)})" if len(over) else
                                     f" (strongest {_heads(sub, 1)})") + ".")
    mw = per_head(stats, "max_weight").sort_values("value")
    broad = mw[mw["value"] <= BROAD_MAX_WEIGHT]
    if len(broad):
        more = f" and {len(broad) - 10} more" if len(broad) > 10 else ""
        out.append(f"Broad heads (on average no word gets more than {BROAD_MAX_WEIGHT:.0%} of a row): "
                   f"{len(broad)}: {_heads(broad, 10)}{more}.")
    else:
        out.append(f"No broad head: every head's average largest weight exceeds {BROAD_MAX_WEIGHT:.0%} "
                   f"(broadest {_heads(mw, 3)}); inputs shorter than {int(1 / BROAD_MAX_WEIGHT)} units "
                   f"cannot be broad in this sense.")
    ent = layer_means(stats, "entropy")
    cls_ent = layer_means(stats, "entropy_cls")
    uniform = float(per_head(stats, "uniform_entropy")["value"].mean())
    if len(cls_ent.dropna()):
        last = int(cls_ent.index.max())
        out.append(f"Entropy of [CLS] attention in the last layer: {cls_ent[last]:.2f} nats (all-token average "
                   f"{ent[last]:.2f}; uniform attention {uniform:.2f}).")
    if distances is not None and np.isfinite(distances).all():
        K = distances.shape[0]
        layer = np.arange(K) // num_heads
        same = (layer[:, None] == layer[None, :]) & ~np.eye(K, dtype=bool)
        other = layer[:, None] != layer[None, :]
        if same.any() and other.any():
            out.append(f"Heads of the same layer are {'closer' if distances[same].mean() < distances[other].mean() else 'not closer'} "
                       f"than heads of different layers: mean Jensen–Shannon divergence "
                       f"{distances[same].mean():.3g} within layers vs {distances[other].mean():.3g} across.")
    return out


def summary_markdown(stats: pd.DataFrame, distances: np.ndarray | None, num_heads: int, header: dict,
                     grads: pd.DataFrame | None = None, gradient_record: dict | None = None) -> str:
    """``summary.md``: what was run, the notable heads and layers, layer means, and the gradient table."""
    lines = ["# Attention statistics", ""]
    lines += [f"- **{k}**: {v}" for k, v in header.items()]
    lines += ["", "Heads are written layer-head, both from 1 (8-10 = layer 8, head 10).", "", "## Notable heads and layers", ""]
    lines += [f"- {s}" for s in notable(stats, distances, num_heads)]
    cols = ["cls", "sep", "punct", "sep_sep", "rest_sep", "self", "prev", "next", "entropy", "entropy_cls",
            "max_weight"]
    table = pd.DataFrame({c: layer_means(stats, c) for c in cols})
    table.insert(0, "layer", table.index.astype(int))
    lines += ["", "## Layer means (over heads)", "", markdown_table(table.reset_index(drop=True))]
    uniform = float(per_head(stats, "uniform_entropy")["value"].mean())
    lines += [f"Uniform attention would have entropy {uniform:.3f} nats (mean ln n over the inputs).", ""]
    if grads is not None and gradient_record is not None:
        piv = grads.pivot(index="layer", columns="metric", values="value").reset_index()
        lines += ["## Gradients (Figure 3)", "", f"Objective: **{gradient_record['objective']}** — "
                  f"{gradient_record['description']}; {gradient_record['inputs']} inputs.",
                  f"Data: {gradient_record['data']}." if gradient_record.get("data") else "", "",
                  markdown_table(piv, floatfmt=".3g")]
    return "\n".join(lines) + "\n"
