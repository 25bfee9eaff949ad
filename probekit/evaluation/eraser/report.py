"""The ERASER experiment's intervals, tables, ranking rows, summary findings and curves.

Every aggregate has a 95 % bootstrap interval over the examples it stands on; metrics that are not a mean
(micro and macro F1s) are recomputed on each resample of the examples. Methods are ranked per metric in
tiers (:func:`probekit.core.intervals.ranking`): a tier holds the methods whose paired interval against its
best cannot separate them, so a ranking lists ties instead of an order the data do not support.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from probekit.core import intervals as iv
from probekit.core.result import tidy
from probekit.evaluation import stats
from probekit.evaluation.base import finding
from probekit.evaluation.eraser.metrics import FAITHFULNESS, INFO, Metric

EXPERIMENT = "eraser"
RANDOM = "random"


def indexed(metric: Metric, methods) -> tuple[dict, object]:
    """(method → row indices into the stacked parts, NaN where the example does not count; the statistic that
    aggregates the rows of resampled indices). Method j's example e is row j·N + e, so a paired resample of
    example positions draws the same examples for every method. The statistic is vectorized (``axis``: the
    bootstrap hands it every resample at once, [resamples, n] indices), as the aggregates reduce the last axes."""
    N = metric.parts[methods[0]].shape[0]
    stacked = np.concatenate([metric.parts[m] for m in methods])

    def statistic(idx, axis=-1):
        idx = np.moveaxis(np.asarray(idx, dtype=np.int64), axis, -1)
        return metric.aggregate(stacked[idx])

    scores = {}
    for j, m in enumerate(methods):
        valid = ~np.isnan(metric.parts[m]).any(1)
        scores[m] = np.where(valid, j * N + np.arange(N), np.nan)
    return scores, statistic


def assess(ctx, metric: Metric, rankings) -> tuple[dict, list[list[str]]]:
    """(method → Interval of the metric, tiers best first), bootstrap over the examples (paired across
    methods); an example a method does not define drops out of that method's pairs only."""
    methods = list(rankings)
    scores, statistic = indexed(metric, methods)
    seed, resamples = int(ctx.seed), stats.resamples(ctx)
    out = {m: iv.over_examples(scores[m], statistic=statistic, seed=seed, resamples=resamples, vectorized=True)
           for m in methods}
    usable = {m: s for m, s in scores.items() if out[m].n}
    tiers = iv.ranking(usable, higher_is_better=metric.higher, seed=seed, statistic=statistic,
                       resamples=resamples, vectorized=True) if usable else []
    tiers += [[m for m in methods if m not in usable]] if len(usable) < len(methods) else []
    return out, tiers


def versus_random(ctx, metric: Metric, rankings, lead: str) -> iv.Interval:
    """``lead`` − random on the same examples, paired bootstrap."""
    scores, statistic = indexed(metric, list(rankings))
    return iv.paired_difference(scores[lead], scores[RANDOM], statistic=statistic, seed=int(ctx.seed),
                                resamples=stats.resamples(ctx), vectorized=True)


def per_k_intervals(ctx, per_k: pd.DataFrame) -> pd.DataFrame:
    """Mean comprehensiveness and sufficiency per method and k with bootstrap intervals over the examples."""
    rows = []
    for (m, k), g in per_k.groupby(["method", "k"], sort=False):
        for metric in ("comprehensiveness", "sufficiency"):
            i = stats.over_examples(ctx, g[metric].to_numpy(np.float64), vectorized=True)
            rows.append(dict(method=m, k=k, metric=metric, value=i.estimate, aggregate="mean over examples",
                             **stats.columns(i)))
    return pd.DataFrame(rows)


def tables(per_k: pd.DataFrame, per_ex: pd.DataFrame, k_rows: pd.DataFrame, results: dict, model: str) -> dict:
    """One tidy table ``eraser``: per example × method × k (comprehensiveness, sufficiency), per example ×
    method (AOPCs, flip fractions, per-example plausibility), then the aggregate rows with ``ci_low``,
    ``ci_high``, ``n`` (``aggregate`` says over what) and each method's ``tier`` per metric."""
    a = per_k.melt(id_vars=["example", "method", "k", "words", "n_words"],
                   value_vars=["comprehensiveness", "sufficiency"], var_name="metric")
    cols = [c for c in per_ex.columns if c not in ("example", "method")]
    b = per_ex.melt(id_vars=["example", "method"], value_vars=cols, var_name="metric")
    rows = []
    for name, (intervals, tiers) in results.items():
        tier_of = {m: t for t, tier in enumerate(tiers, 1) for m in tier}
        for m, i in intervals.items():
            rows.append(dict(method=m, metric=name, value=i.estimate, aggregate=INFO[name][2],
                             tier=tier_of.get(m), **stats.columns(i)))
    frame = pd.concat([a, b, k_rows, pd.DataFrame(rows)], ignore_index=True)
    for col in ("example", "words", "n_words", "n", "tier"):
        frame[col] = pd.array(frame[col], dtype="Int64")
    front = ["example", "method", "k", "metric", "value", "ci_low", "ci_high", "n", "tier", "words", "n_words",
             "aggregate"]
    frame = frame[front]
    return {EXPERIMENT: tidy(frame, task=EXPERIMENT, model=model, keys=["example", "method", "k"])}


def ranking(results: dict, rankings) -> list[dict]:
    """One row per method (and the random baseline): each metric's value, interval, n and tier."""
    out = []
    for m in rankings:
        row = {"method": m}
        for name, (intervals, tiers) in results.items():
            i = intervals[m]
            row[name] = i.estimate
            row[f"{name}_ci_low"], row[f"{name}_ci_high"], row[f"{name}_n"] = i.ci_low, i.ci_high, i.n
            row[f"{name}_tier"] = next((t for t, tier in enumerate(tiers, 1) if m in tier), None)
        out.append(row)
    return out


def _tiers_text(tiers) -> str:
    return " > ".join(" = ".join(t) for t in tiers)


def findings(ctx, metrics: dict, results: dict, rankings, counts, ks) -> list[dict]:
    """Per metric: the tiers (ties listed) with the lead's value and interval, and the lead against random on
    the same examples; the pooling attention's tier; all generated from the intervals."""
    ks_text = ", ".join(f"{k:g}" for k in ks)
    out = []
    for name, (intervals, tiers) in results.items():
        label, higher, _ = INFO[name]
        if not tiers or not tiers[0]:
            continue
        lead = tiers[0][0]
        lead_i = intervals[lead]
        if not lead_i.n:
            continue
        first = [m for m in tiers[0]]
        meaning = (f"{_tiers_text(tiers)} ({'higher' if higher else 'lower'} = "
                   f"{'more plausible' if name not in FAITHFULNESS else 'more faithful'}; '=' joins methods the "
                   f"paired 95% intervals cannot separate; n = {lead_i.n} examples)")
        if name.startswith("aopc"):
            meaning += f"; k = {ks_text} % of the words"
        if name == "flip_fraction":
            meaning += (f"; never-flip examples count as 1 (ERASER's definition: {counts.get(f'never_flip_{lead}', 0)}"
                        f" for {lead})")
        if name == "flip_fraction_flipped":
            meaning += "; Serrano & Smith's exclusion of the never-flip examples, so methods stand on different examples"
        out.append(finding(EXPERIMENT, f"{label}: first tier {', '.join(first)}", lead_i.estimate, meaning,
                           interval=lead_i))
        if lead != RANDOM and RANDOM in intervals and intervals[RANDOM].n:
            d = versus_random(ctx, metrics[name], rankings, lead)
            out.append(finding(EXPERIMENT, f"{label}: {lead} minus random", d.estimate,
                               stats.sentence(lead, "a random ranking", d, quantity=label,
                                              higher="higher" if higher else "higher (worse)"), interval=d))
    if "pooling" in rankings and "aopc_comprehensiveness" in results:
        intervals, tiers = results["aopc_comprehensiveness"]
        t = next((t for t, tier in enumerate(tiers, 1) if "pooling" in tier), None)
        if t is not None:
            tied = [m for m in tiers[t - 1] if m != "pooling"]
            out.append(finding(
                EXPERIMENT, "AOPC comprehensiveness of the pooling attention", intervals["pooling"].estimate,
                f"The head's own attention α is in tier {t} of {len(tiers)} by comprehensiveness"
                + (f", tied with {', '.join(tied)}" if tied else ", alone in its tier")
                + (" (the first tier: no method finds detectably more decisive words)" if t == 1 else
                   f" (below {', '.join(tiers[0])})") + ".", interval=intervals["pooling"]))
    if counts.get("empty_rationale") or counts.get("no_rationale"):
        out.append(finding(EXPERIMENT, "examples left out of plausibility", float(counts.get("empty_rationale", 0)
                                                                                  + counts.get("no_rationale", 0)),
                           f"{counts.get('empty_rationale', 0)} with an empty rationale and "
                           f"{counts.get('no_rationale', 0)} without one are not scored (ERASER would count an "
                           f"empty rationale's hard predictions as 0); plausible is not the same as faithful."))
    return out


def figure(k_rows: pd.DataFrame, rankings, ks):
    """``eraser-curves``: mean comprehensiveness and sufficiency against k, one line per method, with each
    mean's 95 % interval as an error bar."""

    def make():
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10, 4.2))
        axes = fig.subplots(1, 2, sharex=True)
        for ax, metric, better in zip(axes, ("comprehensiveness", "sufficiency"), ("higher", "lower")):
            for j, m in enumerate(rankings):
                g = k_rows[(k_rows["method"] == m) & (k_rows["metric"] == metric)].set_index("k").reindex(list(ks))
                if g["value"].isna().all():
                    continue
                y = g["value"].to_numpy(float)
                err = np.vstack([y - g["ci_low"].to_numpy(float), g["ci_high"].to_numpy(float) - y])
                err = np.where(np.isfinite(err), err, 0.0)
                x = np.asarray(list(ks), dtype=float) * (1 + 0.02 * (j - len(rankings) / 2))   # dodge the bars
                style = dict(color="grey", linestyle="--") if m == RANDOM else {}
                ax.errorbar(x, y, yerr=err, marker="o", capsize=2, label=m, **style)
            ax.axhline(0.0, color="black", linewidth=0.6)
            ax.set_xscale("log")
            ax.set_xticks(list(ks))
            ax.set_xticklabels([f"{k:g}" for k in ks])
            ax.set_xlabel("k (% of the words, by each method's ranking)")
            ax.set_ylabel(f"{metric}: Δ p(ŷ)")
            ax.set_title(f"{metric} ({better} = more faithful; bars: 95% CI)")
        axes[0].legend(fontsize="small", title="ranking")
        fig.tight_layout()
        return fig

    return make
