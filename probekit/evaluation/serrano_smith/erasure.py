"""Serrano & Smith 2019, "Is Attention Interpretable?": erase attention weights and watch the decision
(their §3 erasure, §4 single weights, §5 sets of weights). The hidden states stay fixed; erasing is
α′ = α ⊙ (1 − e_i), then α′ ← α′/‖α′‖₁ (``F.normalize(p=1)``, eps 1e-12), and the output is
``ctx.source.output`` at α′.

- ``single-weight``: zero i* = argmax α, and separately one word r drawn uniformly from the *other* real
  words (the original code drew a rank and used it as a position, so r could be i*; fixed here).
  ΔJS = JS(p, p₋i*) − JS(p, p₋r) in nats, against α_i* − α_r (their Fig. 4), and the 2×2 table of decision
  flips (i* flips × r flips, their Fig. 5).
- ``sets`` (``ss_sets.py``): zero words one by one in several orders until the decision flips (their Fig. 8).

Examples with a single real word are excluded from both (every erasure of them is total) and counted.
"""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from probekit.core.progress import progress
from probekit.evaluation.base import Outcome, finding
from probekit.evaluation.metrics import LN2, jsd

SALT_SINGLE = 41


# --- shared pieces --------------------------------------------------------------------------------------------

def erase(alpha: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """α with the unit ``positions[b]`` of every row zeroed, then L1-renormalised (all-zero rows stay 0)."""
    out = alpha.clone()
    out[torch.arange(len(out), device=out.device), positions] = 0.0
    return F.normalize(out, p=1, dim=1, eps=1e-12)


def take(units, rows: torch.Tensor):
    """The rows ``rows`` of a source's ``units`` (a tensor, or a tuple/list/dict of them)."""
    if isinstance(units, torch.Tensor):
        return units[rows]
    if isinstance(units, dict):
        return {k: take(v, rows) for k, v in units.items()}
    if isinstance(units, (tuple, list)):
        return type(units)(take(v, rows) for v in units)
    return units


def _model_name(ctx) -> str:
    clf = ctx.classifier
    enc = getattr(clf, "source", None) or getattr(clf, "encoder", None)
    return str(getattr(enc, "name", "") or getattr(getattr(enc, "config", None), "_name_or_path", "") or "")


def _batches(ctx, desc: str):
    """(example indices, units, mask, α, p) per batch; α and p without gradients."""
    src = ctx.source
    for idx in progress(list(src.batches(ctx.batch_size)), desc=desc, unit="batch"):
        units, mask = src.batch(idx)
        mask = mask.bool()
        with torch.no_grad():
            alpha = src.attention(units, mask).float()
            p = src.output(units, mask, alpha).float()
        yield idx, units, mask, alpha, p


def _tidy(df, ctx, experiment, keys):
    from probekit.core.result import tidy

    df = df.copy()
    for col in ("example", "n_words", "top_word", "random_word"):
        if col in df.columns:                 # integers, empty on the summary rows
            df[col] = pd.array(df[col], dtype="Int64")
    return tidy(df, task=experiment, model=_model_name(ctx), keys=keys)


def _long(rows: list[dict], metrics: list[str], keys: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=keys + ["metric", "value"])
    return frame.melt(id_vars=keys, value_vars=metrics, var_name="metric", value_name="value")


# --- single weight --------------------------------------------------------------------------------------------

def single_weight(ctx) -> pd.DataFrame:
    """One row per example with at least two real words: i*, r, their weights, the JS divergences, flips."""
    draws = ctx.rng(SALT_SINGLE).random(len(ctx.source))       # one uniform per example, batch-independent
    rows = []
    for idx, units, mask, alpha, p in _batches(ctx, "single-weight"):
        B, U = alpha.shape
        n = mask.sum(1)
        top = alpha.masked_fill(~mask, -1.0).argmax(1)
        others = mask.clone()
        others[torch.arange(B), top] = False
        k = torch.from_numpy(np.floor(draws[idx.numpy()] * np.maximum(n.cpu().numpy() - 1, 1))).long()
        k = torch.minimum(k, (n.cpu() - 2).clamp(min=0)).to(alpha.device)
        rank = others.long().cumsum(1) - 1                    # rank of each candidate among the others
        rand = torch.where(others & (rank == k[:, None]), torch.arange(U, device=alpha.device), U).min(1).values
        rand = torch.where(n >= 2, rand, top)                 # length-1 rows: a placeholder, dropped below
        with torch.no_grad():
            p_top = ctx.source.output(units, mask, erase(alpha, top)).float()
            p_rand = ctx.source.output(units, mask, erase(alpha, rand)).float()
        js_top, js_rand = jsd(p, p_top), jsd(p, p_rand)
        yhat = p.argmax(1)
        for b in range(B):
            if int(n[b]) < 2:
                rows.append({"example": int(idx[b]), "n_words": int(n[b])})
                continue
            rows.append({
                "example": int(idx[b]), "n_words": int(n[b]), "top_word": int(top[b]), "random_word": int(rand[b]),
                "alpha_top": float(alpha[b, top[b]]), "alpha_random": float(alpha[b, rand[b]]),
                "weight_difference": float(alpha[b, top[b]] - alpha[b, rand[b]]),
                "js_top": float(js_top[b]), "js_random": float(js_rand[b]),
                "delta_js": float(js_top[b] - js_rand[b]),
                "flip_top": int(p_top[b].argmax() != yhat[b]), "flip_random": int(p_rand[b].argmax() != yhat[b]),
            })
    return pd.DataFrame(rows)


def run_single(ctx) -> Outcome:
    """Serrano & Smith's single-weight test: zero the top α vs a random other α (Fig. 4, Fig. 5)."""
    name = "single-weight"
    frame = single_weight(ctx)
    short = frame[frame["n_words"] < 2] if len(frame) else frame
    ok = frame[frame["n_words"] >= 2].reset_index(drop=True) if len(frame) else frame
    counts = {"length_1_excluded": int(len(short)), "examples": int(len(ok))}
    if not len(ok):
        return Outcome(name, counts=counts, skipped="no example has two or more real words")
    metrics = ["alpha_top", "alpha_random", "weight_difference", "js_top", "js_random", "delta_js", "flip_top",
               "flip_random"]
    keys = ["example", "n_words", "top_word", "random_word"]
    per_example = _long(ok.to_dict("records"), metrics, keys)
    negative = int((ok["delta_js"] < 0).sum())
    counts["negative_delta_js"] = negative
    table = pd.crosstab(ok["flip_top"].astype(bool), ok["flip_random"].astype(bool)).reindex(
        index=[True, False], columns=[True, False], fill_value=0)
    both, top_only = int(table.loc[True, True]), int(table.loc[True, False])
    rand_only, neither = int(table.loc[False, True]), int(table.loc[False, False])
    N = len(ok)
    from probekit.evaluation import stats

    dj = ok["delta_js"].to_numpy(float)
    ft, fr = ok["flip_top"].to_numpy(float), ok["flip_random"].to_numpy(float)
    iv = {"mean_delta_js": stats.over_examples(ctx, dj),
          "median_delta_js": stats.over_examples(ctx, dj, statistic=np.median),
          "negative_delta_js_share": stats.share(ctx, (dj < 0).astype(float)),
          "flip_top_share": stats.share(ctx, ft), "flip_random_share": stats.share(ctx, fr),
          "flip_top_minus_random": stats.difference(ctx, ft, fr)}
    summary = pd.DataFrame([{"aggregate": "examples" if m != "flip_top_minus_random" else
                             "examples (paired: the same examples, top vs random word)",
                             "metric": m, "value": i.estimate, **stats.columns(i)} for m, i in iv.items()]
                           + [{"aggregate": "examples", "metric": "examples", "value": N}])
    main = pd.concat([per_example, summary], ignore_index=True)
    main["n"] = pd.array(main["n"], dtype="Int64")
    flips = pd.DataFrame([{"top_flips": t, "random_flips": r, "metric": "count", "value": int(table.loc[t, r])}
                          for t in (True, False) for r in (True, False)])
    flips = pd.concat([flips, flips.assign(metric="share", value=flips["value"] / N)], ignore_index=True)
    tables = {name: _tidy(main, ctx, name, ["example", "aggregate"]),
              f"{name}-flips": _tidy(flips, ctx, name, ["top_flips", "random_flips"])}
    d = iv["flip_top_minus_random"]
    med = iv["median_delta_js"]
    findings = [
        finding(name, "share of negative ΔJS (random word mattered more than the top word)", negative / N,
                f"erasing the top-weighted word changed the output distribution less than erasing a random "
                f"other word in {negative} of {N} examples ({stats.fmt(iv['negative_delta_js_share'], pct=True)})",
                interval=iv["negative_delta_js_share"]),
        finding(name, "share of examples whose decision flips when the top word is zeroed",
                (top_only + both) / N, f"zeroing the single highest α changed the predicted class in "
                f"{top_only + both} of {N} examples (a random other word: {rand_only + both})",
                paper="most instances do not flip (§4)", interval=iv["flip_top_share"]),
        finding(name, "share of examples whose decision flips when a random other word is zeroed",
                (rand_only + both) / N, "the baseline for the line above: erasing a word the attention does not "
                "rank first", interval=iv["flip_random_share"]),
        finding(name, "flip share, top word minus random word (paired)", d.estimate,
                stats.sentence("zeroing the top word", "zeroing a random other word", d,
                               quantity="the share of decisions that flip") +
                f"; top-only flips {top_only}, random-only flips {rand_only}",
                paper="i*-only flips dominate r-only, mostly (§4)", interval=d),
        finding(name, "median ΔJS (nats)", med.estimate,
                ("removing the top weight moves the output more than removing a random one (the interval is above 0)"
                 if med.ci_low > 0 else
                 "removing a random weight moves the output more than removing the top one (the interval is "
                 "below 0)" if med.ci_high < 0 else
                 "no detectable difference between removing the top weight and a random one (the interval "
                 "covers 0)") + f": {stats.fmt(med, 4)}", interval=med),
    ]
    figures = {"serrano-smith-fig4": lambda: _fig4(ok), "serrano-smith-fig5": lambda: _fig5(table, N)}
    return Outcome(name, tables=tables, findings=findings, figures=figures, counts=counts)


def _fig4(ok: pd.DataFrame):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4), layout="constrained")
    ax = fig.add_subplot()
    d = ok["delta_js"].to_numpy()
    ax.scatter(ok["weight_difference"], d, s=8, alpha=0.5, c=np.where(d < 0, "tab:red", "tab:blue"),
               edgecolors="none")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlim(0, 1)
    lim = max(float(np.abs(d).max()) * 1.1, 1e-3) if len(d) else LN2
    ax.set_ylim(-min(lim, LN2), min(lim, LN2))
    ax.set_xlabel(r"difference in attention weight  $\alpha_{i^*} - \alpha_r$")
    ax.set_ylabel(r"$\Delta JS = JS(p, p_{-i^*}) - JS(p, p_{-r})$  (nats)")
    ax.set_title(f"Zeroing the top vs a random weight: {int((d < 0).sum())} of {len(d)} ΔJS negative",
                 fontsize=9)
    return fig


def _fig5(table: pd.DataFrame, N: int):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.8, 3.8), layout="constrained")
    ax = fig.add_subplot()
    share = table.to_numpy(dtype=float) / max(N, 1) * 100
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=100)
    for i, j in itertools.product(range(2), range(2)):
        ax.text(j, i, f"{share[i, j]:.1f}%\n({int(table.iloc[i, j])})", ha="center", va="center",
                color="white" if share[i, j] > 60 else "black", fontsize=9)
    ax.set_xticks([0, 1], ["r flips", "r does not"])
    ax.set_yticks([0, 1], ["i* flips", "i* does not"])
    ax.set_xlabel("zeroing a random other word r")
    ax.set_ylabel("zeroing the top word i*")
    ax.set_title(f"Decision flips, {N} examples", fontsize=9)
    fig.colorbar(im, ax=ax, label="% of examples")
    return fig
