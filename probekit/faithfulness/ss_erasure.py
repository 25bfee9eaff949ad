"""Serrano & Smith 2019, "Is Attention Interpretable?": erase attention weights and watch the decision
(their §3 erasure, §4 single weights, §5 sets of weights). The hidden states stay fixed; erasing is
α′ = α ⊙ (1 − e_i), then α′ ← α′/‖α′‖₁ (``F.normalize(p=1)``, eps 1e-12), and the output is
``ctx.source.output`` at α′.

- ``single-weight``: zero i* = argmax α, and separately one word r drawn uniformly from the *other* real
  words (the original code drew a rank and used it as a position, so r could be i*; fixed here).
  ΔJS = JS(p, p₋i*) − JS(p, p₋r) in nats, against α_i* − α_r (their Fig. 4), and the 2×2 table of decision
  flips (i* flips × r flips, their Fig. 5).
- ``sets``: zero words one by one (renormalising each time) in the order of attention, of the gradient
  ∂p_ŷ/∂α (signed, at the original α), of gradient × α, and of seeded random permutations, until the
  decision flips; the fraction removed k/n per ordering (their Fig. 8 box plots), never-flip cases counted
  and excluded per ordering, and which ordering flips sooner, pairwise.

Examples with a single real word are excluded from both (every erasure of them is total) and counted.
"""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..core.errors import UserError
from ..core.progress import progress
from .base import Outcome, finding
from .metrics import LN2, jsd

SALT_SINGLE, SALT_SETS = 41, 42
#: the non-random orderings of ``sets``, in report order
ORDERINGS = ("attention", "gradient", "gradient-x-attention")


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
    from ..report.result import tidy

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
    summary = pd.DataFrame([
        {"aggregate": "examples", "metric": m, "value": v} for m, v in [
            ("mean_delta_js", float(ok["delta_js"].mean())), ("median_delta_js", float(ok["delta_js"].median())),
            ("negative_delta_js_share", negative / N), ("flip_top_share", float(ok["flip_top"].mean())),
            ("flip_random_share", float(ok["flip_random"].mean())), ("examples", N)]])
    main = pd.concat([per_example, summary], ignore_index=True)
    flips = pd.DataFrame([{"top_flips": t, "random_flips": r, "metric": "count", "value": int(table.loc[t, r])}
                          for t in (True, False) for r in (True, False)])
    flips = pd.concat([flips, flips.assign(metric="share", value=flips["value"] / N)], ignore_index=True)
    tables = {name: _tidy(main, ctx, name, ["example", "aggregate"]),
              f"{name}-flips": _tidy(flips, ctx, name, ["top_flips", "random_flips"])}
    findings = [
        finding(name, "share of negative ΔJS (random word mattered more than the top word)", negative / N,
                f"erasing the top-weighted word changed the output distribution less than erasing a random "
                f"other word in {negative} of {N} examples"),
        finding(name, "share of examples whose decision flips when the top word is zeroed",
                (top_only + both) / N, f"zeroing the single highest α changed the predicted class in "
                f"{top_only + both} of {N} examples (a random other word: {rand_only + both})",
                paper="most instances do not flip (§4)"),
        finding(name, "share of examples whose decision flips when a random other word is zeroed",
                (rand_only + both) / N, "the baseline for the line above: erasing a word the attention does not "
                "rank first"),
        finding(name, "top-only flips minus random-only flips (share of examples)", (top_only - rand_only) / N,
                (f"top-only flips ({top_only}) outnumber random-only flips ({rand_only}): higher weights matter "
                 f"more, as the paper argues") if top_only > rand_only else
                (f"random-only flips ({rand_only}) are at least as common as top-only ones ({top_only}): the "
                 f"highest weight is no better a predictor of a flip than a random one"),
                paper="i*-only flips dominate r-only, mostly (§4)"),
        finding(name, "median ΔJS (nats)", float(ok["delta_js"].median()), _median_meaning(ok["delta_js"].median())),
    ]
    figures = {"serrano-smith-fig4": lambda: _fig4(ok), "serrano-smith-fig5": lambda: _fig5(table, N)}
    return Outcome(name, tables=tables, findings=findings, figures=figures, counts=counts)


def _median_meaning(median: float) -> str:
    """Says what the median's sign means, and calls a median that prints as 0.000 zero rather than signed."""
    if not np.isfinite(median) or abs(median) < 5e-4:
        return "about zero (|median| < 0.0005 nats): removing the top weight typically moves the output no more " \
               "than removing a random one"
    if median > 0:
        return "positive: removing the top weight moves the output more than removing a random one"
    return "negative: removing a random weight moves the output more than removing the top one"


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


# --- sets -----------------------------------------------------------------------------------------------------

def _gradient(ctx, units, mask, alpha, yhat):
    """∂p_ŷ/∂α at the original α [B, U] (autograd through ``source.output``)."""
    a = alpha.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        p = ctx.source.output(units, mask, a)
        grad, = torch.autograd.grad(p[torch.arange(len(p)), yhat].sum(), a)
    return grad


def _orders(ctx, idx, mask, alpha, grad, draws: int) -> tuple[list[str], torch.Tensor]:
    """(ordering names, positions [B, O, U] in erasure order; real units first, then padding)."""
    B, U = mask.shape
    neg = torch.tensor(float("-inf"), device=alpha.device)
    keys = [alpha, grad, grad * alpha]
    orders = [torch.sort(torch.where(mask, k, neg), dim=1, descending=True, stable=True).indices for k in keys]
    for d in range(draws):
        perm = torch.empty(B, U, dtype=torch.long)
        for b in range(B):
            real = torch.nonzero(mask[b].cpu()).view(-1).numpy()
            rest = torch.nonzero(~mask[b].cpu()).view(-1).numpy()
            gen = np.random.default_rng([ctx.seed, SALT_SETS, int(idx[b]), d])
            perm[b] = torch.from_numpy(np.concatenate([gen.permutation(real), rest]).astype(np.int64))
        orders.append(perm.to(alpha.device))
    names = list(ORDERINGS) + [f"random-{d + 1}" for d in range(draws)]
    return names, torch.stack(orders, 1)


def flip_steps(ctx, units, mask, alpha, p, orders: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(items removed before the first flip [B, O], −1 when none; original α mass removed [B, O]).

    Every (example, ordering) row still unflipped at step k is erased and re-run in one batched output call.
    """
    B, O, U = orders.shape
    n = mask.sum(1)
    yhat = p.argmax(1)
    ex = torch.arange(B, device=alpha.device).repeat_interleave(O)          # example of each row
    order = orders.reshape(B * O, U)
    cur = alpha[ex].clone()
    steps = torch.full((B * O,), -1, dtype=torch.long)
    active = torch.ones(B * O, dtype=torch.bool, device=alpha.device)
    for k in range(1, int(n.max()) + 1 if B else 1):
        active &= n[ex] >= k
        rows = torch.nonzero(active).view(-1)
        if not len(rows):
            break
        cur[rows] = erase(cur[rows], order[rows, k - 1])
        with torch.no_grad():
            q = ctx.source.output(take(units, ex[rows]), mask[ex[rows]], cur[rows]).float()
        flipped = q.argmax(1) != yhat[ex[rows]]
        steps[rows[flipped].cpu()] = k
        active[rows[flipped]] = False
    removed = steps.view(B, O).numpy()
    steps_np = steps.numpy()
    # probability mass removed: Σ of the original α over the first k items of the ordering
    cum = torch.cumsum(torch.gather(alpha[ex], 1, order), 1).cpu()                 # [B*O, U]
    mass = np.where(steps_np >= 1, cum[torch.arange(B * O), (steps - 1).clamp(min=0)].numpy(), -1.0)
    return removed, mass.reshape(B, O)


def sets(ctx) -> tuple[pd.DataFrame, list[str]]:
    draws = ctx.option("random_draws")
    if not isinstance(draws, (int, np.integer)) or isinstance(draws, bool) or draws < 1:
        raise UserError(f"--random-draws must be a whole number of at least 1 (got {draws!r})")
    rows, names = [], []
    for idx, units, mask, alpha, p in _batches(ctx, "sets"):
        grad = _gradient(ctx, units, mask, alpha, p.argmax(1))
        names, orders = _orders(ctx, idx, mask, alpha, grad.float(), int(draws))
        removed, mass = flip_steps(ctx, units, mask, alpha, p, orders)
        n = mask.sum(1).cpu().numpy()
        for b in range(len(idx)):
            for o, name in enumerate(names):
                k = int(removed[b, o])
                rows.append({"example": int(idx[b]), "ordering": name, "n_words": int(n[b]),
                             "items_removed": k, "flipped": int(k >= 1),
                             "fraction_removed": k / n[b] if k >= 1 else np.nan,
                             "mass_removed": float(mass[b, o]) if k >= 1 else np.nan})
    return pd.DataFrame(rows), names


def _ordering_group(name: str) -> str:
    return "random" if name.startswith("random-") else name


def run_sets(ctx) -> Outcome:
    """Serrano & Smith's multi-weight test: the fraction of words erased before the decision flips (Fig. 8)."""
    name = "sets"
    frame, names = sets(ctx)
    if not len(frame):
        return Outcome(name, skipped="no examples")
    short = frame[frame["n_words"] < 2]
    ok = frame[frame["n_words"] >= 2].copy()
    n_short = short["example"].nunique()
    n_ex = ok["example"].nunique()
    counts = {"length_1_excluded": int(n_short), "examples": int(n_ex)}
    if not n_ex:
        return Outcome(name, counts=counts, skipped="no example has two or more real words")
    ok["group"] = ok["ordering"].map(_ordering_group)
    groups = list(ORDERINGS) + ["random"]
    summary, ranking = [], []
    for g in groups:
        sub = ok[ok["group"] == g]
        flipped = sub[sub["flipped"] == 1]
        never = int((sub["flipped"] == 0).sum())
        counts[f"never_flip_{g}"] = never
        vals = {"median_fraction_removed": float(flipped["fraction_removed"].median()) if len(flipped) else np.nan,
                "mean_fraction_removed": float(flipped["fraction_removed"].mean()) if len(flipped) else np.nan,
                "median_mass_removed": float(flipped["mass_removed"].median()) if len(flipped) else np.nan,
                "never_flip_share": never / len(sub), "flipped": int(len(flipped))}
        summary += [{"ordering": g, "aggregate": "examples that flipped" if m != "never_flip_share"
                     else "examples", "metric": m, "value": v} for m, v in vals.items()]
        ranking.append({"method": g, "median_fraction_removed": vals["median_fraction_removed"],
                        "mean_fraction_removed": vals["mean_fraction_removed"],
                        "never_flip_share": vals["never_flip_share"]})
    pair = pairwise(ok, list(ORDERINGS) + ["random-1"])
    per_example = _long(ok.drop(columns="group").to_dict("records"),
                        ["items_removed", "flipped", "fraction_removed", "mass_removed"],
                        ["example", "ordering", "n_words"])
    main = pd.concat([per_example, pd.DataFrame(summary)], ignore_index=True)
    tables = {name: _tidy(main, ctx, name, ["example", "ordering", "aggregate"]),
              f"{name}-pairwise": _tidy(pair, ctx, name, ["first", "second"])}
    med = {r["method"]: r["median_fraction_removed"] for r in ranking}
    findings = [finding(name, f"median fraction removed before a flip: {g}", med[g],
                        f"{_pct(med[g])} of the words had to be erased in {g} order before the decision changed "
                        f"(never flipped: {counts[f'never_flip_{g}']} "
                        f"{'rows' if g == 'random' else 'examples'}, excluded)")
                for g in groups]
    g_vs_a = pair[(pair["first"] == "attention") & (pair["second"] == "gradient")].set_index("metric")["value"]
    decided = int(g_vs_a["first_sooner"] + g_vs_a["second_sooner"] + g_vs_a["tie"])
    share = g_vs_a["second_sooner"] / decided if decided else np.nan
    findings.append(finding(name, "share of examples where gradient order flips sooner than attention order",
                            share, f"of {decided} examples where either flips, the gradient ranking reached a flip "
                            f"first in {int(g_vs_a['second_sooner'])}, attention in {int(g_vs_a['first_sooner'])} "
                            f"(ties {int(g_vs_a['tie'])})", paper="gradient rankings flip sooner (abstract)"))
    findings.append(finding(name, "median fraction removed: attention minus random", med["attention"] - med["random"],
                            "negative: attention order finds the deciding words sooner than random order"
                            if med["attention"] < med["random"] else
                            "attention order is no better than random at finding the words that decide"))
    figures = {"serrano-smith-fig8": lambda: _fig8(ok, groups, "fraction_removed"),
               "serrano-smith-fig8-mass": lambda: _fig8(ok, groups, "mass_removed")}
    return Outcome(name, tables=tables, findings=findings, figures=figures, counts=counts, ranking=ranking)


def _pct(x) -> str:
    return "NaN" if x != x else f"{100 * x:.0f}%"


def pairwise(ok: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Which of two orderings flips sooner, per example: rows where both never flip are dropped; where one
    never flips the other counts as sooner (Serrano & Smith's rule)."""
    wide = ok.pivot(index="example", columns="ordering", values="items_removed")
    out = []
    for a, b in itertools.combinations(names, 2):
        ka, kb = wide[a].to_numpy(), wide[b].to_numpy()
        fa, fb = ka >= 1, kb >= 1
        keep = fa | fb
        a_first = keep & fa & (~fb | (ka < kb))
        b_first = keep & fb & (~fa | (kb < ka))
        tie = keep & fa & fb & (ka == kb)
        for metric, v in (("first_sooner", a_first.sum()), ("second_sooner", b_first.sum()), ("tie", tie.sum()),
                          ("both_never", (~keep).sum())):
            out.append({"first": a, "second": b, "metric": metric, "value": int(v)})
    return pd.DataFrame(out)


def _fig8(ok: pd.DataFrame, groups: list[str], column: str):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    data = [ok[(ok["group"] == g) & (ok["flipped"] == 1)][column].dropna().to_numpy() for g in groups]
    labels = {"attention": "Attention", "gradient": "Gradient", "gradient-x-attention": "Attn * Grad",
              "random": "Random"}
    ax.boxplot([d if len(d) else [np.nan] for d in data], tick_labels=[labels[g] for g in groups])
    ax.set_ylim(0, 1)
    ax.set_yticks(np.linspace(0, 1, 6))
    what = "Fractions of Original Attended Items" if column == "fraction_removed" else \
        "Probability Mass of Original Attended Items"
    ax.set_ylabel("fraction removed" if column == "fraction_removed" else "attention mass removed")
    ax.set_title(f"{what} Removed\nBefore First Decision Flip Occurred", fontsize=9)
    return fig
