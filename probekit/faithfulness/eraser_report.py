"""The ERASER experiment's tables, ranking rows, summary findings and comprehensiveness/sufficiency curves."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..report.result import tidy
from .base import finding

EXPERIMENT = "eraser"
RANDOM = "random"
#: per-method metric → (what the aggregate averages over, True when higher = more faithful / plausible)
METRIC_INFO = {
    "aopc_comprehensiveness": ("mean over examples", True),
    "aopc_sufficiency": ("mean over examples", False),
    "flip_fraction": ("mean over examples whose decision flips", False),
    "token_f1": ("mean over examples with a non-empty rationale", True),
    "auprc": ("mean over examples with a non-empty rationale", True),
}


def _metrics(plausibility: bool) -> list[str]:
    return [m for m in METRIC_INFO if plausibility or m not in ("token_f1", "auprc")]


def tables(per_k: pd.DataFrame, per_ex: pd.DataFrame, model: str, ks, plausibility: bool) -> dict:
    """One tidy table ``eraser``: per example × method × k (comprehensiveness, sufficiency), per example ×
    method (AOPCs, flip fraction, plausibility), then the aggregate rows (``aggregate`` says over what, ``n``
    how many examples)."""
    a = per_k.melt(id_vars=["example", "method", "k", "words", "n_words"],
                   value_vars=["comprehensiveness", "sufficiency"], var_name="metric")
    metrics = _metrics(plausibility)
    b = per_ex.melt(id_vars=["example", "method"], value_vars=metrics, var_name="metric")
    agg_k = (per_k.groupby(["method", "k"], sort=False)[["comprehensiveness", "sufficiency"]]
             .agg(["mean", "count"]))
    rows = []
    for (m, k), r in agg_k.iterrows():
        for metric in ("comprehensiveness", "sufficiency"):
            rows.append(dict(method=m, k=k, metric=metric, value=r[(metric, "mean")],
                             aggregate="mean over examples", n=int(r[(metric, "count")])))
    for m, g in per_ex.groupby("method", sort=False):
        for metric in metrics:
            v = g[metric].to_numpy(np.float64)
            ok = ~np.isnan(v)
            rows.append(dict(method=m, metric=metric, value=float(v[ok].mean()) if ok.any() else np.nan,
                             aggregate=METRIC_INFO[metric][0], n=int(ok.sum())))
    frame = pd.concat([a, b, pd.DataFrame(rows)], ignore_index=True)
    frame["example"] = pd.array(frame["example"], dtype="Int64")
    for col in ("words", "n_words", "n"):
        frame[col] = pd.array(frame[col], dtype="Int64")
    frame = frame[["example", "method", "k", "metric", "value", "words", "n_words", "aggregate", "n"]]
    return {EXPERIMENT: tidy(frame, task=EXPERIMENT, model=model, keys=["example", "method", "k"])}


def ranking(per_ex: pd.DataFrame, rankings, plausibility: bool) -> list[dict]:
    """One row per method (and the random baseline): the aggregates the runner's ranking table shows."""
    out = []
    for m in rankings:
        g = per_ex[per_ex["method"] == m]
        row = {"method": m}
        for metric in _metrics(plausibility):
            v = g[metric].to_numpy(np.float64)
            row[metric] = float(np.nanmean(v)) if (~np.isnan(v)).any() else float("nan")
        out.append(row)
    return out


def _best(rows, metric):
    """(best method, its value, the random baseline's value) by ``metric`` among the methods (not random)."""
    higher = METRIC_INFO[metric][1]
    cand = [r for r in rows if r["method"] != RANDOM and not np.isnan(r[metric])]
    rand = next((r[metric] for r in rows if r["method"] == RANDOM), float("nan"))
    if not cand:
        return None, float("nan"), rand
    best = max(cand, key=lambda r: r[metric]) if higher else min(cand, key=lambda r: r[metric])
    return best["method"], best[metric], rand


def findings(rows, counts, ks, plausibility: bool) -> list[dict]:
    ks_text = ", ".join(f"{k:g}" for k in ks)
    out = []
    m, v, r = _best(rows, "aopc_comprehensiveness")
    if m is not None:
        beat = sum(1 for x in rows if x["method"] != RANDOM and x["aopc_comprehensiveness"] > r)
        n = sum(1 for x in rows if x["method"] != RANDOM)
        out.append(finding(EXPERIMENT, f"AOPC comprehensiveness, best method: {m}", v,
                           f"Deleting the top words of {m} (k = {ks_text} %) lowers p(ŷ) most, by {v:.3f} on "
                           f"average against {r:.3f} for a random ranking; {beat} of {n} methods beat random "
                           f"(higher comprehensiveness = more faithful, DeYoung et al. 2020)."))
    m, v, r = _best(rows, "aopc_sufficiency")
    if m is not None:
        out.append(finding(EXPERIMENT, f"AOPC sufficiency, best method: {m}", v,
                           f"Keeping only the top words of {m} loses the least of p(ŷ), {v:.3f} on average "
                           f"against {r:.3f} for random words (lower sufficiency = more faithful; below 0: the "
                           f"words alone make the model surer than the whole input)."))
    m, v, r = _best(rows, "flip_fraction")
    if m is not None:
        out.append(finding(EXPERIMENT, f"decision-flip fraction, best method: {m}", v,
                           f"Deleting words in the order of {m} flips the decision after {v:.1%} of the words, "
                           f"against {r:.1%} in random order (smaller = the ranking finds the decisive words "
                           f"sooner; never-flip examples excluded: {counts.get(f'never_flip_{m}', 0)} for {m})."))
    att = next((x for x in rows if x["method"] == "pooling"), None)
    if att is not None and not np.isnan(att["aopc_comprehensiveness"]):
        methods = sorted((x for x in rows if x["method"] != RANDOM and not np.isnan(x["aopc_comprehensiveness"])),
                         key=lambda x: -x["aopc_comprehensiveness"])
        place = [x["method"] for x in methods].index("pooling") + 1
        rand = next((x["aopc_comprehensiveness"] for x in rows if x["method"] == RANDOM), float("nan"))
        out.append(finding(EXPERIMENT, "AOPC comprehensiveness of the pooling attention", att["aopc_comprehensiveness"],
                           f"The head's own attention α ranks {place} of {len(methods)} methods by "
                           f"comprehensiveness ({att['aopc_comprehensiveness']:.3f}; random {rand:.3f}): "
                           + ("its top words are among the most decisive ones." if place == 1 else
                              "other explanations find more decisive words than attention does.")))
    if plausibility:
        for metric, name in (("token_f1", "token F1"), ("auprc", "AUPRC")):
            m, v, r = _best(rows, metric)
            if m is not None:
                out.append(finding(EXPERIMENT, f"plausibility {name}, best method: {m}", v,
                                   f"The scores of {m} agree best with the human rationales ({name} {v:.3f}, "
                                   f"random {r:.3f}; {counts.get('empty_rationale', 0)} examples with an empty "
                                   f"rationale excluded); plausible is not the same as faithful."))
    return out


def figure(per_k: pd.DataFrame, rankings, ks):
    """``eraser-curves``: mean comprehensiveness and sufficiency against k, one line per method."""

    def make():
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10, 4.2))
        axes = fig.subplots(1, 2, sharex=True)
        mean = per_k.groupby(["method", "k"], sort=False)[["comprehensiveness", "sufficiency"]].mean()
        for ax, metric, better in zip(axes, ("comprehensiveness", "sufficiency"), ("higher", "lower")):
            for m in rankings:
                if m not in mean.index.get_level_values(0):
                    continue
                s = mean.loc[m, metric].reindex(list(ks))
                style = dict(color="grey", linestyle="--") if m == RANDOM else {}
                ax.plot(list(ks), s.to_numpy(), marker="o", label=m, **style)
            ax.axhline(0.0, color="black", linewidth=0.6)
            ax.set_xscale("log")
            ax.set_xticks(list(ks))
            ax.set_xticklabels([f"{k:g}" for k in ks])
            ax.set_xlabel("k (% of the words, by each method's ranking)")
            ax.set_ylabel(f"{metric}: Δ p(ŷ)")
            ax.set_title(f"{metric} ({better} = more faithful)")
        axes[0].legend(fontsize="small", title="ranking")
        fig.tight_layout()
        return fig

    return make
