"""Serrano & Smith 2019, the multi-weight ("sets") test: zero words one by one (renormalising each time) in the
order of attention, of the gradient ∂p_ŷ/∂α (signed, at the original α), of gradient × α, and of seeded random
permutations, until the decision flips (Serrano & Smith 2019 §4.3). Recorded per example and ordering: the fraction
removed k/n and the original attention mass removed (their Fig. 8 box plots).

The orderings are compared on the same examples: the medians, their ranking (with ties) and the differences
are taken over the examples where every ordering flips (for ``random``: the mean over the draws, defined when
every draw flips), with paired bootstrap intervals, and the summary says on how many. Serrano & Smith drop
the never-flip examples per ordering, so their medians stand on different subsets; those per-ordering medians
are in the table too, labelled so. Examples with a single real word are excluded (every erasure is total).
"""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import torch

from probekit.core import intervals as iv
from probekit.core.errors import UserError
from probekit.evaluation import stats
from probekit.evaluation.base import Outcome, finding
from probekit.evaluation.serrano_smith.erasure import _batches, _long, _tidy, erase, take

SALT_SETS = 42
#: the non-random orderings, in report order
ORDERINGS = ("attention", "gradient", "gradient-x-attention")
GROUPS = ORDERINGS + ("random",)


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


def paired_fractions(ok: pd.DataFrame) -> pd.DataFrame:
    """Example × group fraction removed: each ordering's own, ``random`` the mean over the draws (NaN unless
    every draw flipped), NaN where the ordering never flips."""
    wide = ok.pivot(index="example", columns="ordering", values="fraction_removed")
    draws = [c for c in wide.columns if str(c).startswith("random-")]
    out = wide.reindex(columns=list(ORDERINGS)).copy()
    out["random"] = wide[draws].mean(axis=1, skipna=False) if draws else np.nan
    return out


def run_sets(ctx) -> Outcome:
    """Serrano & Smith's multi-weight test: the fraction of words erased before the decision flips (Fig. 8)."""
    name = "sets"
    frame, names = sets(ctx)
    if not len(frame):
        return Outcome(name, skipped="no examples")
    short = frame[frame["n_words"] < 2]
    ok = frame[frame["n_words"] >= 2].copy()
    n_ex = ok["example"].nunique()
    counts = {"length_1_excluded": int(short["example"].nunique()), "examples": int(n_ex)}
    if not n_ex:
        return Outcome(name, counts=counts, skipped="no example has two or more real words")
    ok["group"] = ok["ordering"].map(_ordering_group)
    wide = paired_fractions(ok)
    common = wide.dropna()
    counts["every_ordering_flips"] = int(len(common))
    summary, ranking, med = [], [], {}
    for g in GROUPS:
        sub = ok[ok["group"] == g]
        flipped = sub[sub["flipped"] == 1]
        counts[f"never_flip_{g}"] = int((sub["flipped"] == 0).sum())
        never = stats.share(ctx, sub.groupby("example")["flipped"].mean().rsub(1.0).to_numpy())
        own = stats.over_examples(ctx, flipped["fraction_removed"].to_numpy(float), statistic=np.median)
        med[g] = stats.over_examples(ctx, common[g].to_numpy(float), statistic=np.median)
        summary += [
            {"ordering": g, "aggregate": "examples where every ordering flips (paired)",
             "metric": "median_fraction_removed", "value": med[g].estimate, **stats.columns(med[g])},
            {"ordering": g, "aggregate": "examples where this ordering flips (S&S; subsets differ by ordering)",
             "metric": "median_fraction_removed", "value": own.estimate, **stats.columns(own)},
            {"ordering": g, "aggregate": "examples that flipped", "metric": "median_mass_removed",
             "value": float(flipped["mass_removed"].median()) if len(flipped) else np.nan},
            {"ordering": g, "aggregate": "examples" + (" (mean over the draws)" if g == "random" else ""),
             "metric": "never_flip_share", "value": never.estimate, **stats.columns(never)}]
    tiers = iv.ranking({g: common[g].to_numpy(float) for g in GROUPS}, higher_is_better=False, seed=int(ctx.seed),
                       statistic=np.median, resamples=stats.resamples(ctx)) if len(common) else [list(GROUPS)]
    for t, tier in enumerate(tiers, 1):
        for g in tier:
            ranking.append({"method": g, "median_fraction_removed": med[g].estimate, "ci_low": med[g].ci_low,
                            "ci_high": med[g].ci_high, "n": med[g].n, "tier": t})
    pair = pairwise(ok, list(ORDERINGS) + ["random-1"])
    diffs = {(a, b): stats.difference(ctx, common[a].to_numpy(float), common[b].to_numpy(float), statistic=np.median)
             for a, b in (("attention", "random"), ("gradient", "attention"), ("gradient-x-attention", "attention"))}
    summary += [{"ordering": f"{a} minus {b}", "aggregate": "examples where every ordering flips (paired)",
                 "metric": "median_fraction_removed_difference", "value": d.estimate, **stats.columns(d)}
                for (a, b), d in diffs.items()]
    per_example = _long(ok.drop(columns="group").to_dict("records"),
                        ["items_removed", "flipped", "fraction_removed", "mass_removed"],
                        ["example", "ordering", "n_words"])
    main = pd.concat([per_example, pd.DataFrame(summary)], ignore_index=True)
    main["n"] = pd.array(main["n"], dtype="Int64")
    tables = {name: _tidy(main, ctx, name, ["example", "ordering", "aggregate"]),
              f"{name}-pairwise": _tidy(pair, ctx, name, ["first", "second"])}
    on = f"on the {len(common)} of {n_ex} examples where every ordering flips"
    findings = [finding(name, f"median fraction removed before a flip: {g} (paired)", med[g].estimate,
                        f"{stats.fmt(med[g], pct=True)} of the words had to be erased in {g} order before the "
                        f"decision changed, {on} (this ordering alone never flips on {counts[f'never_flip_{g}']} "
                        f"{'example × draw rows' if g == 'random' else 'examples'})", interval=med[g])
                for g in GROUPS]
    findings.append(finding(name, "orderings by median fraction removed (fewest first)", float(len(common)),
                            f"{iv.ranking_sentence(tiers, len(common))}; '=' joins orderings the paired "
                            f"intervals cannot separate; fewer words removed = finds the deciding words sooner",
                            paper="gradient rankings flip sooner (abstract)"))
    g_vs_a = ok[ok["ordering"].isin(["attention", "gradient"])].pivot(
        index="example", columns="ordering", values="items_removed")
    fa, fg = g_vs_a["attention"].to_numpy() >= 1, g_vs_a["gradient"].to_numpy() >= 1
    ka, kg = g_vs_a["attention"].to_numpy(), g_vs_a["gradient"].to_numpy()
    decided = fa | fg
    sooner = (fg & (~fa | (kg < ka)))[decided].astype(float)
    share = stats.share(ctx, sooner)
    findings.append(finding(
        name, "share of examples where gradient order flips sooner than attention order", share.estimate,
        f"{stats.fmt(share, pct=True)} of the examples where either flips (S&S's rule: one that never flips loses; "
        f"ties count against gradient): gradient first in {int(sooner.sum())}, attention first in "
        f"{int((fa & (~fg | (ka < kg)))[decided].sum())}", paper="gradient rankings flip sooner (abstract)",
        interval=share))
    d = diffs[("attention", "random")]
    findings.append(finding(name, "median fraction removed: attention minus random (paired)", d.estimate,
                            stats.sentence("attention order", "random order", d, quantity="the median fraction "
                                           "of words removed before a flip", higher="larger") + f", {on}",
                            interval=d))
    figures = {"serrano-smith-fig8": lambda: _fig8(ok, common, med, "fraction_removed"),
               "serrano-smith-fig8-mass": lambda: _fig8(ok, common, med, "mass_removed")}
    return Outcome(name, tables=tables, findings=findings, figures=figures, counts=counts, ranking=ranking)


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


def _fig8(ok: pd.DataFrame, common: pd.DataFrame, med: dict, column: str):
    """Box plots over the examples where every ordering flips, with each median's 95 % interval as an error bar
    (fraction removed; the mass panel shows the same examples)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    keep = ok[ok["example"].isin(common.index) & (ok["flipped"] == 1)]
    data = [keep.groupby("example")[column].mean().to_numpy() if g == "random" else
            keep[keep["ordering"] == g][column].dropna().to_numpy() for g in GROUPS]
    labels = {"attention": "Attention", "gradient": "Gradient", "gradient-x-attention": "Attn * Grad",
              "random": "Random"}
    if column == "fraction_removed":
        data[-1] = common["random"].to_numpy()
    ax.boxplot([d if len(d) else [np.nan] for d in data], tick_labels=[labels[g] for g in GROUPS])
    if column == "fraction_removed":
        x = np.arange(1, len(GROUPS) + 1)
        y = np.array([med[g].estimate for g in GROUPS])
        lo = np.array([med[g].ci_low for g in GROUPS])
        hi = np.array([med[g].ci_high for g in GROUPS])
        ok_ci = np.isfinite(lo) & np.isfinite(hi)
        ax.errorbar(x[ok_ci] + 0.3, y[ok_ci], yerr=[y[ok_ci] - lo[ok_ci], hi[ok_ci] - y[ok_ci]], fmt="o",
                    color="tab:red", ms=4, capsize=3, label="median, 95% CI")
        if ok_ci.any():
            ax.legend(fontsize=7, loc="upper right")
    ax.set_ylim(0, 1)
    ax.set_yticks(np.linspace(0, 1, 6))
    what = "Fractions of Original Attended Items" if column == "fraction_removed" else \
        "Probability Mass of Original Attended Items"
    ax.set_ylabel("fraction removed" if column == "fraction_removed" else "attention mass removed")
    ax.set_title(f"{what} Removed\nBefore First Decision Flip Occurred ({len(common)} examples where every "
                 f"ordering flips)", fontsize=9)
    return fig
