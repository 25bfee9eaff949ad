"""The run folder of ``python -m probekit.compare``: summary.md and the figures (CKA by layer, the layer × head
JS heat map, Clark's statistics of both models side by side, one probe figure per task: base dashed,
fine-tuned solid). Object-oriented matplotlib; the run saves each with ``run.save_figure``."""
from __future__ import annotations

import numpy as np
import pandas as pd

from probekit.core.rundir import markdown_table

#: the statistics shown side by side (name, label), from probekit.heads.statistics.STATS
SIDE_BY_SIDE = [("cls", "[CLS]"), ("sep", "[SEP]"), ("punct", '". or ,"'), ("prev", "previous word"),
                ("next", "next word"), ("entropy", "entropy (nats)")]
LN2 = float(np.log(2.0))


def _figure(**kwargs):
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _names(record: dict) -> tuple[str, str]:
    return record["model"]["name"], record["finetuned"]["name"]


def grid(df: pd.DataFrame, value: str = "value") -> np.ndarray:
    """[L, H] array of a per-head frame (layer 1…L, head 1…H)."""
    piv = df.pivot_table(index="layer", columns="head", values=value, sort=True)
    return piv.to_numpy(dtype=float)


def plot_cka(cka: pd.DataFrame, record: dict):
    fig = _figure(figsize=(6.5, 4))
    ax = fig.subplots()
    err = None
    if {"ci_low", "ci_high"} <= set(cka.columns) and np.isfinite(cka["ci_low"].to_numpy(dtype=float)).any():
        err = np.vstack([cka["value"] - cka["ci_low"], cka["ci_high"] - cka["value"]]).astype(float)
    ax.errorbar(cka["layer"], cka["value"], yerr=err, marker="o", color="tab:blue", capsize=3,
                label="linear CKA (full batch, unbiased HSIC₁; bars: 95% CI)")
    ax.axhline(1.0, color="grey", linestyle=":", linewidth=1, label="identical representations")
    base, ft = _names(record)
    ax.set_title(f"CKA between {base} and {ft}", fontsize=9)
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_ylabel("linear CKA")
    ax.set_xticks(list(cka["layer"]))
    low = np.nanmin(cka["value"].to_numpy()) if len(cka) else 0.0
    ax.set_ylim(min(0.0, low - 0.05) if np.isfinite(low) else 0.0, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def cka_sentences(cka: pd.DataFrame) -> list[str]:
    """What the CKA table supports: the lowest layers with their intervals, and which layers' intervals lie
    below 1 (a change the data can detect) or reach 1."""
    rows = cka.dropna(subset=["value"]).sort_values("value")
    if not len(rows):
        return ["No layer has a CKA value (fewer than 4 words)."]

    def one(r):
        if "ci_low" in rows.columns and np.isfinite(r.ci_low):
            return f"layer {int(r.layer)} {r.value:.3f} (95% CI {r.ci_low:.3f}…{r.ci_high:.3f})"
        return f"layer {int(r.layer)} {r.value:.3f} (no interval)"

    lines = [f"Lowest: {', '.join(one(r) for r in rows.head(3).itertuples())}."]
    if "ci_high" in rows.columns:
        changed = [int(r.layer) for r in rows.itertuples() if np.isfinite(r.ci_high) and r.ci_high < 1.0]
        same = [int(r.layer) for r in rows.itertuples() if np.isfinite(r.ci_high) and r.ci_high >= 1.0]
        if changed:
            lines.append(f"Layers whose 95% interval lies below 1 (changed by fine-tuning, as far as these "
                         f"words show): {', '.join(map(str, sorted(changed)))}.")
        if same:
            lines.append(f"Layers with no detectable change (interval reaches 1): {', '.join(map(str, sorted(same)))}.")
        if not changed and not same:
            lines.append("No intervals: fewer than two CKA minibatches (lower --cka-batch-size or add inputs).")
    return lines


def plot_js(js: pd.DataFrame, record: dict):
    values = grid(js)
    fig = _figure(figsize=(max(5.0, 1.6 + 0.45 * values.shape[1]), max(3.2, 1.6 + 0.4 * values.shape[0])))
    ax = fig.subplots()
    top = float(np.nanmax(values)) if np.isfinite(values).any() and np.nanmax(values) > 0 else LN2
    im = ax.imshow(values, cmap="magma_r", vmin=0.0, vmax=top, aspect="auto")
    ax.set_xticks(range(values.shape[1]), [str(h + 1) for h in range(values.shape[1])], fontsize=7)
    ax.set_yticks(range(values.shape[0]), [str(l + 1) for l in range(values.shape[0])], fontsize=7)
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_title("attention change: mean Jensen–Shannon divergence\n(nats; 0 = same rows, ln 2 ≈ 0.693 = disjoint)",
                 fontsize=8)
    fig.colorbar(im, ax=ax, label="JS (nats)")
    fig.tight_layout()
    return fig


def plot_stats(stats: pd.DataFrame, record: dict):
    """Rows: statistics; columns: base and fine-tuned (one colour scale and bar per row) and the change
    (diverging, centred on 0, its own bar)."""
    panels = [(s, t) for s, t in SIDE_BY_SIDE if s in set(stats["metric"])]
    fig = _figure(figsize=(11, 2.1 * len(panels) + 0.7))
    axes = np.atleast_2d(fig.subplots(len(panels), 3, sharex=True, sharey=True))
    fig.subplots_adjust(left=0.06, right=0.93, top=1 - 0.75 / fig.get_figheight(), bottom=0.05, hspace=0.35,
                        wspace=0.35)
    base, ft = _names(record)
    for row, (stat, title) in zip(axes, panels):
        sub = stats[stats["metric"] == stat]
        b, f, d = grid(sub, "base"), grid(sub, "finetuned"), grid(sub, "change")
        lo, hi = float(np.nanmin([b.min(), f.min()])), float(np.nanmax([b.max(), f.max()]))
        span = float(np.nanmax(np.abs(d))) or 1e-9
        extent = (0.5, b.shape[1] + 0.5, b.shape[0] + 0.5, 0.5)
        im = None
        for ax, arr, label in ((row[0], b, "base"), (row[1], f, "fine-tuned")):
            im = ax.imshow(arr, aspect="auto", cmap="viridis", vmin=lo, vmax=hi, extent=extent,
                           interpolation="nearest")
            ax.set_title(f"{title}: {label}", fontsize=8)
        fig.colorbar(im, ax=list(row[:2]), fraction=0.03, pad=0.02).ax.tick_params(labelsize=6)
        im = row[2].imshow(d, aspect="auto", cmap="RdBu_r", vmin=-span, vmax=span, extent=extent,
                           interpolation="nearest")
        row[2].set_title(f"{title}: fine-tuned − base", fontsize=8)
        fig.colorbar(im, ax=row[2], fraction=0.06, pad=0.04).ax.tick_params(labelsize=6)
        for ax in row:
            ax.tick_params(labelsize=6)
            ax.set_ylabel("layer", fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("head", fontsize=7)
    fig.suptitle(f"Clark et al.'s attention statistics (word level): {base} vs {ft}", fontsize=9)
    return fig


def plot_probe(rows: pd.DataFrame, task: str, record: dict):
    """One panel per evaluation split; a colour per task key (or probe), base dashed, fine-tuned solid."""
    from matplotlib import colormaps

    acc = rows[(rows["metric"] == "accuracy") & ~rows["probe"].str.endswith("-nopos")]
    keys = [c for c in ("n",) if c in acc.columns and acc[c].notna().any()]
    splits = [s for s in dict.fromkeys(acc["split"]) if s != "train"] or list(dict.fromkeys(acc["split"]))
    fig = _figure(figsize=(4.6 * len(splits) + 2.2, 4))
    axes = np.atleast_1d(fig.subplots(1, len(splits), sharey=True))
    group = keys + ["probe"]
    palette = colormaps["tab10"].colors
    lines = list(dict.fromkeys(map(tuple, acc[group].astype(str).to_numpy())))
    colour = {g: palette[i % 10] for i, g in enumerate(lines)}
    for ax, split in zip(axes, splits):
        sub = acc[acc["split"] == split]
        for g, part in sub.groupby(group, sort=False):
            g = tuple(str(v) for v in (g if isinstance(g, tuple) else (g,)))
            for role, style in (("base", "--"), ("finetuned", "-")):
                r = part[part["model"] == role].groupby("layer")["value"].mean()
                label = ", ".join(f"{k}={v}" if k != "probe" else v for k, v in zip(group, g)) + f" ({role})"
                ax.plot(r.index, r.to_numpy(), linestyle=style, marker="o", markersize=3, color=colour[g],
                        label=label if ax is axes[-1] else None)
        ax.set_title(f"{task}: {split}", fontsize=9)
        ax.set_xlabel("layer (0 = embeddings)")
        ax.set_xticks(sorted(int(v) for v in acc["layer"].dropna().unique()))
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    axes[-1].legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0,
                    title="base dashed, fine-tuned solid", title_fontsize=6)
    base, ft = _names(record)
    fig.suptitle(f"probing {base} (dashed) and {ft} (solid)", fontsize=9)
    fig.tight_layout()
    return fig


def summary_markdown(result, top: int = 5) -> str:
    rec = result.record
    base, ft = _names(rec)
    c = rec["counts"]
    lines = [f"# {ft} compared with {base}", "",
             f"- corpus: {rec['inputs']['corpus']}: {c['n_inputs']} inputs, {c['n_words']} words "
             f"({c['n_truncated']} inputs truncated)",
             f"- fine-tuned model: {rec['inputs']['finetuned']['kind']} {rec['inputs']['finetuned']['path'] or ''}",
             f"- fingerprints: base {rec['model']['fingerprint']}, fine-tuned {rec['finetuned']['fingerprint']}"
             + (" (identical weights)" if rec["same_weights"] else ""),
             f"- time: joint pass {rec['timing']['joint_pass_s']} s, probing {rec['timing']['probing_s']} s", ""]
    cka = result.cka.sort_values("value")
    table = result.cka.rename(columns={"value": "CKA", "n_words": "words"})
    lines += ["## Representations: linear CKA per layer", "",
              "CKA compares the two models' word vectors on the same words: 1 means the same representation up to "
              "rotation and scale, lower values mean fine-tuning reshaped that layer. "
              f"{rec['estimators']['cka']}; {c['cka_minibatches']} minibatches, {c['cka_words_used']} words.", "",
              markdown_table(table, ".4f"), *cka_sentences(result.cka), ""]
    js = result.js.sort_values("value", ascending=False)
    per_layer = result.js.groupby("layer")["value"].mean()
    lines += ["## Attention: Jensen–Shannon divergence per head", "",
              "How differently a head distributes its attention after fine-tuning, on the same inputs: "
              f"{rec['estimators']['attention_js']}. 0 = unchanged, ln 2 ≈ 0.693 = no overlap.", "",
              f"Heads that changed most (point estimates over {c['n_inputs']} inputs, without intervals: an order, "
              f"not a detected difference between these heads): "
              + ", ".join(f"L{int(r.layer)}-H{int(r.head)} ({r.value:.3f})" for r in js.head(top).itertuples()) + ".",
              "Mean per layer: " + ", ".join(f"layer {int(l)} {v:.3f}" for l, v in per_layer.items()) + ".", ""]
    rows = []
    for stat, label in SIDE_BY_SIDE:
        sub = result.stats[result.stats["metric"] == stat]
        if not len(sub):
            continue
        top_head = sub.loc[sub["change"].abs().idxmax()]
        by_layer = sub.assign(a=sub["change"].abs()).groupby("layer")["a"].mean()
        rows.append({"statistic": label, "mean base": sub["base"].mean(), "mean fine-tuned": sub["finetuned"].mean(),
                     "mean |change|": sub["change"].abs().mean(),
                     "largest change": f"L{int(top_head['layer'])}-H{int(top_head['head'])}: {top_head['base']:.3f} → "
                                       f"{top_head['finetuned']:.3f}",
                     "layer most changed": int(by_layer.idxmax())})
    lines += ["## What the heads attend to (Clark et al.'s statistics, word level)", "",
              "Share of each head's attention on [CLS], [SEP], punctuation and the previous / next word (0…1, "
              "averaged over the rows of an input, then over inputs), and the entropy of its rows (nats; higher = "
              "broader), in each model. Per statistic: the means over heads, the mean absolute change, the head "
              "that changed most and the layer whose heads changed most on average (`attention_stats.png` shows "
              "every head). Point estimates without intervals: a description of these inputs, not a tested "
              "change.", "",
              markdown_table(pd.DataFrame(rows)), ""]
    if result.probing is not None:
        lines += ["## Probing (mean accuracy over the task keys)", "",
                  "Each accuracy has its own 95% interval in results.csv (`ci_low`, `ci_high`); the change "
                  "(fine-tuned − base, rows `accuracy_change`) is paired over the same sentences.", "",
                  *probe_change_sentences(result.probing), ""]
        acc = result.probing[(result.probing["metric"] == "accuracy") & (result.probing["split"] != "train")
                             & ~result.probing["probe"].str.endswith("-nopos")]
        piv = acc.pivot_table(index=["task", "probe", "split", "model"], columns="layer", values="value",
                              sort=False)
        piv.columns = [f"layer {l}" for l in piv.columns]
        lines += [markdown_table(piv.reset_index()), ""]
    return "\n".join(lines) + "\n"


def probe_change_sentences(probing: pd.DataFrame) -> list[str]:
    """Per task, probe and held-out split (the first probe seed): the layer whose accuracy changed most, in a
    sentence its paired interval supports, and how many layers changed detectably either way."""
    from probekit.core.intervals import Interval, compare_sentence

    ch = probing[(probing["metric"] == "accuracy_change") & (probing["split"] != "train")
                 & ~probing["probe"].str.endswith("-nopos")]
    if not len(ch):
        return []
    ch = ch[ch["seed"] == ch["seed"].min()]
    out = []
    for (task, probe, split), g in ch.groupby(["task", "probe", "split"], sort=False):
        top = g.loc[g["value"].abs().idxmax()]
        diff = Interval(float(top["value"]), float(top["ci_low"]), float(top["ci_high"]), int(top["n_sentences"]))
        up, down = int((g["ci_low"] > 0).sum()), int((g["ci_high"] < 0).sum())
        out.append(f"- {task}, {probe}, {split}: at layer {int(top['layer'])} (the largest change), "
                   f"{compare_sentence('fine-tuned', 'base', diff, quantity='accuracy')}; detectably higher "
                   f"after fine-tuning at {up} of {len(g)} layers, lower at {down}.")
    return out
