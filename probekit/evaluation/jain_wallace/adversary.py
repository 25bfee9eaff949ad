"""Jain & Wallace 2019, adversarial attention (their §4.2.2): how far can the attention move while
the output stays put?

For every example K log-attention vectors θ start at log(1/n) + 3·N(0,1) (n = the example's real words;
``AdversaryMulti``) and are trained for 500 Adam steps (lr 0.01, amsgrad) on

    L = Σ_{b,k} [ −JSD(α̃_bk, α_b) + 500·ReLU(TVD(ŷ̃_bk, ŷ_b) − ε) ] − mean_{k,k′} Σ_b JSD(α̃_bk, α̃_bk′)

(α̃ = softmax of θ over the real words, padding filled with ``finfo.min`` so it gets exactly 0; the diversity
term is the mean over all K×K pairs, diagonal included, as in the original). ε is on the TVD scale. The hidden
states are fixed: ŷ̃ = ``source.output(units, mask, α̃)``. Then the ε-max JSD: the largest JSD(α̃, α) among the
candidates whose TVD ≤ ``accept`` (0.05), with the original attention (JSD 0, TVD 0) as the fallback.

All examples of a batch and all K candidates are one tensor [B, K, U], optimised together.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from probekit.core.progress import progress
from probekit.core.result import tidy
from probekit.evaluation.base import Context, Outcome, finding
from probekit.evaluation.jain_wallace.permutation import (class_summary, label_of, max_attention_violins, model_name,
                                                          take)
from probekit.evaluation.metrics import LN2, jsd, tvd


def adversarial_attention(source, units, mask, alpha, *, candidates: int = 5, steps: int = 500,
                          lr: float = 0.01, hinge: float = 500.0, epsilon: float = 0.01,
                          generator: torch.Generator | None = None):
    """(α̃ [B, K, U], TVD(ŷ̃, ŷ) [B, K], JSD(α̃, α) [B, K]) after the optimisation, for one batch."""
    B, U = mask.shape
    K = int(candidates)
    with torch.no_grad():
        p0 = source.output(units, mask, alpha).detach()
    alpha = alpha.detach()
    n = mask.sum(1).clamp(min=1).to(alpha.dtype)
    noise = torch.randn(B, K, U, generator=generator).to(mask.device, alpha.dtype)
    theta = (torch.log(1.0 / n)[:, None, None] + 3.0 * noise).requires_grad_(True)
    maskK = mask[:, None, :].expand(B, K, U)
    unitsK = take(units, torch.arange(B, device=mask.device).repeat_interleave(K))    # [B·K, …], fixed
    maskF = maskK.reshape(B * K, U)
    low = torch.finfo(theta.dtype).min

    def forward():
        a = torch.softmax(theta.masked_fill(~maskK, low), -1).masked_fill(~maskK, 0.0)
        p = source.output(unitsK, maskF, a.reshape(B * K, U)).reshape(B, K, -1)
        return a, p

    opt = torch.optim.Adam([theta], lr=float(lr), amsgrad=True)
    with torch.enable_grad():
        for _ in range(int(steps)):
            a, p = forward()
            d = tvd(p, p0[:, None, :])
            j = jsd(a, alpha[:, None, :])
            cross = jsd(a[:, None, :, :], a[:, :, None, :])          # [B, K, K]
            loss = (-j + hinge * torch.relu(d - epsilon)).sum() - cross.sum(0).mean()
            (theta.grad,) = torch.autograd.grad(loss, [theta])     # the model's own .grad stay untouched
            opt.step()
    with torch.no_grad():
        a, p = forward()
        return a.detach(), tvd(p, p0[:, None, :]), jsd(a, alpha[:, None, :])


def epsilon_max_jsd(tvds: torch.Tensor, jsds: torch.Tensor, accept: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(max JSD over candidates with TVD ≤ accept, or 0 for the original [B]; that candidate's TVD [B]; number of
    candidates accepted [B])."""
    ok = tvds <= accept
    masked = torch.where(ok, jsds, torch.full_like(jsds, -1.0))
    best, k = masked.max(1)
    found = best >= 0
    best = torch.where(found, best, torch.zeros_like(best))
    chosen_tvd = torch.where(found, tvds.gather(1, k[:, None])[:, 0], torch.zeros_like(best))
    return (best.double().cpu().numpy(), chosen_tvd.double().cpu().numpy(), ok.sum(1).cpu().numpy())


def _histograms(frame: pd.DataFrame, labels):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2 * max(len(labels), 1), 3.2), layout="constrained")
    axes = fig.subplots(1, max(len(labels), 1), sharex=True, squeeze=False)[0]
    for ax, lab in zip(axes, labels):
        v = frame.loc[frame["predicted"] == lab, "value"].to_numpy(float)
        v = v[np.isfinite(v)]
        ax.hist(v, bins=40, range=(0, 0.7), weights=np.full(len(v), 1 / max(len(v), 1)), color="C0")
        ax.axvline(LN2, color="0.3", ls="--", lw=1, label="ln 2 (disjoint support)")
        ax.set_xlim(0, 0.7)
        ax.set_xlabel("ε-max JSD (nats)")
        ax.set_title(f"predicted {lab} (n={len(v)})", fontsize=9)
    axes[0].set_ylabel("share of examples")
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle("Jain & Wallace Fig. 11: ε-max JSD of adversarial attention", fontsize=10)
    return fig


def run(ctx: Context) -> Outcome:
    t0 = time.perf_counter()
    source = ctx.source
    opts = dict(candidates=int(ctx.option("candidates")), steps=int(ctx.option("adversary_steps")),
                lr=float(ctx.option("adversary_lr")), hinge=float(ctx.option("hinge")),
                epsilon=float(ctx.option("epsilon")))
    accept = float(ctx.option("accept"))
    gen = torch.Generator().manual_seed(int(ctx.rng(11).integers(2 ** 62)))
    rows = []
    within_eps = total = 0
    for idx in progress(list(source.batches(ctx.batch_size)), desc="adversary", unit="batch"):
        units, mask = source.batch(idx)
        with torch.no_grad():
            alpha = source.attention(units, mask)
            pred = source.output(units, mask, alpha).argmax(1).cpu().numpy()
        _, d, j = adversarial_attention(source, units, mask, alpha, generator=gen, **opts)
        best, chosen, n_ok = epsilon_max_jsd(d, j, accept)
        real = mask.any(1)
        within_eps += int(((d <= opts["epsilon"] + 1e-6) & real[:, None]).sum())
        total += int(real.sum()) * opts["candidates"]
        n = mask.sum(1).cpu().numpy()
        amax = alpha.max(1).values.double().cpu().numpy()
        for b, i in enumerate(idx.tolist()):
            rows.append({"example": i, "predicted": label_of(ctx, pred[b]), "words": int(n[b]),
                         "max_attention": float(amax[b]), "chosen_tvd": float(chosen[b]),
                         "accepted": int(n_ok[b]), "value": float(best[b]) if n[b] > 1 else np.nan})
    frame = pd.DataFrame(rows, columns=["example", "predicted", "words", "max_attention", "chosen_tvd",
                                        "accepted", "value"])
    frame.insert(0, "metric", "max_jsd")
    defined = frame[frame["words"] > 1]
    model = model_name(ctx)
    summary = class_summary(defined, "value", ctx, {
        "mean_max_jsd": np.mean, "median_max_jsd": np.median, "share_max_jsd_ge_0.5": lambda v: np.mean(v >= 0.5),
        "examples": len})
    labels = [label_of(ctx, c) for c in range(ctx.classifier.n_classes)]
    from probekit.evaluation import stats

    values = defined["value"].to_numpy(float)
    med_i = stats.over_examples(ctx, values, statistic=np.median)
    share_i = stats.share(ctx, (values >= 0.5).astype(float))
    summary = pd.concat([summary, pd.DataFrame([
        {"class": "all", "metric": m, "value": i.estimate, "aggregate": "examples, 95% bootstrap interval",
         **stats.columns(i)} for m, i in (("median_max_jsd", med_i), ("share_max_jsd_ge_0.5", share_i))])],
        ignore_index=True)
    summary["n"] = pd.array(summary["n"], dtype="Int64")
    med, share = med_i.estimate, share_i.estimate
    fallback = int((defined["accepted"] == 0).sum())
    paper_share = "SST (BiLSTM, per class): 0.44 / 0.47; IMDB 0.91 / 0.86"
    findings = [
        finding("adversary", "median ε-max JSD (nats)", med,
                f"a typical example has an attention map {stats.fmt(med_i, 2)} nats from its own (ceiling ln 2 = "
                f"0.69) that changes the output by at most {accept} TVD: " + (
                    "very different attention gives the same prediction (the whole interval is at least 0.4)"
                    if med_i.ci_low >= 0.4 else
                    "the prediction is tied to the attention more than in the paper's BiLSTMs (the whole "
                    "interval is below 0.4)" if med_i.ci_high < 0.4 else
                    "the interval straddles 0.4, between a tied and a free attention"),
                paper="SST (BiLSTM, per class): ≈ 0.50 / 0.50", interval=med_i),
        finding("adversary", "share of examples with ε-max JSD ≥ 0.5", share,
                f"{stats.fmt(share_i, pct=True)} of examples admit an adversarial attention at least 0.5 nats away "
                f"within the TVD bound", paper=paper_share, interval=share_i),
    ]
    figures = {
        "jain-wallace-fig11": lambda: _histograms(defined, labels),
        "jain-wallace-fig12": lambda: max_attention_violins(
            defined, "value", "ε-max JSD (nats)",
            "Jain & Wallace Fig. 12: ε-max JSD against max attention", labels, xlim=(-0.05, 0.7)),
    }
    counts = {"adversary_single_word": int((frame["words"] <= 1).sum()), "adversary_fallback_original": fallback,
              "adversary_candidates_within_epsilon": within_eps, "adversary_candidates": total}
    return Outcome("adversary",
                   tables={"adversary": tidy(frame, task="adversary", model=model, keys=["example"]),
                           "adversary-summary": tidy(summary, task="adversary", model=model, keys=["class"])},
                   findings=findings, figures=figures, counts=counts, seconds=time.perf_counter() - t0)
