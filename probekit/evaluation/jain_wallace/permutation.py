"""Jain & Wallace 2019, attention permutation (their §4.2.1): shuffle α among each example's real words
100 times with the hidden states held fixed, recompute the output, and take the median TVD per example —
plotted against the example's max attention (their Fig. 10).

All permutations of a batch are drawn in one tensor op: random keys [B, P, U] with the padding keys pushed to
the end, argsorted, so the first n_b entries of each row are a random order of example b's real positions;
the weights are gathered in that order and scattered back onto the real positions (a bijection, so every
shuffle keeps the multiset of weights and leaves padding at 0). Outputs are recomputed in chunks of (example,
permutation) rows sized by memory, not by a loop over examples.

Also home of the helpers the adversary shares: per-class summaries and the max-attention violin figure.
"""
from __future__ import annotations

import inspect
import time

import numpy as np
import pandas as pd
import torch

from probekit.core.progress import progress
from probekit.core.result import tidy
from probekit.evaluation.base import Context, Outcome, finding
from probekit.evaluation.metrics import tvd

#: Jain & Wallace's max-attention bins of the violin plots (Fig. 10, 12)
MAX_ATTENTION_BINS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: (example, permutation) rows × units × dims of one output chunk (≈ 128 MB of float32)
CHUNK_ELEMENTS = 1 << 25


def model_name(ctx: Context) -> str:
    src = getattr(ctx.classifier, "source", None)
    return str(getattr(src, "name", "") or "model")


def label_of(ctx: Context, c: int) -> str:
    return str(ctx.classifier.labels[int(c)])


def permuted_attention(alpha: torch.Tensor, mask: torch.Tensor, n_perm: int,
                       generator: torch.Generator) -> torch.Tensor:
    """[B, P, U]: ``n_perm`` random shuffles of each row of ``alpha`` among its real (``mask``) positions."""
    B, U = alpha.shape
    keys = torch.rand(B, n_perm, U, generator=generator).to(alpha.device)
    keys = keys.masked_fill(~mask[:, None, :], 2.0)                    # padding sorts last
    order = keys.argsort(-1)                                           # [B, P, U]
    pos = torch.arange(U, device=alpha.device).expand(B, U)
    real = torch.where(mask, pos, pos + U).argsort(-1)                 # [B, U]: real positions first, ascending
    src = alpha[:, None, :].expand(B, n_perm, U).gather(2, order)
    return torch.zeros_like(src).scatter(2, real[:, None, :].expand(B, n_perm, U), src)


def take(units, rows: torch.Tensor):
    """The rows ``rows`` of a batch's units: a tensor [B, …] or (``ClsSource``) a dict of them."""
    if isinstance(units, dict):
        return {k: take(v, rows) for k, v in units.items()}
    return units[rows]


def row_elements(units) -> int:
    """Elements one example's units hold (for sizing chunks)."""
    if isinstance(units, dict):
        return sum(row_elements(v) for v in units.values())
    return max(int(units[0].numel()), 1) if len(units) else 1


def outputs_for(source, units, mask: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """Class probabilities [B, R, C] of ``R`` weight vectors per example (``alphas`` [B, R, U]), fixed units."""
    B, R, U = alphas.shape
    flat = alphas.reshape(B * R, U)
    step = max(1, CHUNK_ELEMENTS // row_elements(units))
    out = []
    for start in range(0, B * R, step):
        rows = torch.arange(start, min(start + step, B * R), device=mask.device)
        ex = rows // R
        out.append(source.output(take(units, ex), mask[ex], flat[rows]))
    return torch.cat(out).reshape(B, R, -1)


def median_permutation_tvd(source, units, mask, alpha, n_perm, generator) -> tuple[np.ndarray, torch.Tensor]:
    """(median TVD over the shuffles [B], the shuffled weights [B, P, U]) of one batch."""
    with torch.no_grad():
        p0 = source.output(units, mask, alpha)
        perms = permuted_attention(alpha, mask, n_perm, generator)
        p = outputs_for(source, units, mask, perms)
        d = tvd(p, p0[:, None, :])                                     # [B, P]
    # np.median (the mean of the two middle values for an even count), as J&W's numpy code; torch.median
    # would take the lower one
    return np.median(d.double().cpu().numpy(), axis=1), perms


def class_summary(frame: pd.DataFrame, value: str, ctx: Context, stats: dict) -> pd.DataFrame:
    """Rows (class, metric, value, aggregate) of ``stats`` (name → fn(values)) over all examples and each
    predicted class."""
    rows = []
    groups = [("all", frame)] + [(label_of(ctx, c), frame[frame["predicted"] == label_of(ctx, c)])
                                 for c in range(ctx.classifier.n_classes)]
    for cls, part in groups:
        vals = part[value].to_numpy(dtype=np.float64)
        agg = "examples" if cls == "all" else f"examples predicted {cls}"
        for name, fn in stats.items():
            rows.append({"class": cls, "metric": name, "value": float(fn(vals)) if len(vals) else np.nan,
                         "aggregate": agg})
    return pd.DataFrame(rows)


def max_attention_violins(frame: pd.DataFrame, value: str, xlabel: str, title: str, labels, xlim=None):
    """Horizontal violins of ``value`` per max-attention bin, one panel per predicted class (J&W Fig. 10/12)."""
    from matplotlib.figure import Figure

    bins = MAX_ATTENTION_BINS
    names = [f"[{bins[i]:.2f}, {bins[i + 1]:.2f}{']' if i == len(bins) - 2 else ')'}" for i in range(len(bins) - 1)]
    fig = Figure(figsize=(4.2 * max(len(labels), 1), 3.6), layout="constrained")
    axes = fig.subplots(1, max(len(labels), 1), sharex=True, squeeze=False)[0]
    which = np.clip(np.digitize(frame["max_attention"].to_numpy(float), bins[1:-1]), 0, len(names) - 1)
    for ax, lab in zip(axes, labels):
        sel = (frame["predicted"] == lab).to_numpy()
        data = [frame[value].to_numpy(float)[sel & (which == i)] for i in range(len(names))]
        data = [d[np.isfinite(d)] for d in data]
        pos = [i for i, d in enumerate(data) if len(d) > 1]
        if pos:
            horizontal = ({"orientation": "horizontal"}      # matplotlib ≥ 3.10; `vert` before (deprecated)
                          if "orientation" in inspect.signature(ax.violinplot).parameters else {"vert": False})
            parts = ax.violinplot([data[i] for i in pos], positions=pos, showmedians=True, widths=0.8,
                                  **horizontal)
            for body in parts["bodies"]:
                body.set_alpha(0.6)
        for i, d in enumerate(data):
            if len(d) == 1:
                ax.plot(d, [i], "o", color="C0", ms=3)
        ax.set_yticks(range(len(names)), [f"{nm}\nn={len(d)}" for nm, d in zip(names, data)], fontsize=8)
        ax.set_ylim(-0.6, len(names) - 0.4)
        ax.set_xlabel(xlabel)
        ax.set_title(f"predicted {lab}", fontsize=9)
        if xlim is not None:
            ax.set_xlim(*xlim)
    axes[0].set_ylabel("max attention")
    fig.suptitle(title, fontsize=10)
    return fig


def run(ctx: Context) -> Outcome:
    t0 = time.perf_counter()
    source, P = ctx.source, int(ctx.option("permutations"))
    gen = torch.Generator().manual_seed(int(ctx.rng(10).integers(2 ** 62)))
    rows = []
    for idx in progress(list(source.batches(ctx.batch_size)), desc="permutation", unit="batch"):
        units, mask = source.batch(idx)
        with torch.no_grad():
            alpha = source.attention(units, mask)
            pred = source.output(units, mask, alpha).argmax(1).cpu().numpy()
        med, _ = median_permutation_tvd(source, units, mask, alpha, P, gen)
        n = mask.sum(1).cpu().numpy()
        amax = alpha.max(1).values.double().cpu().numpy()
        for b, i in enumerate(idx.tolist()):
            rows.append({"example": i, "predicted": label_of(ctx, pred[b]), "words": int(n[b]),
                         "max_attention": float(amax[b]), "value": float(med[b]) if n[b] > 1 else np.nan})
    frame = pd.DataFrame(rows, columns=["example", "predicted", "words", "max_attention", "value"])
    single = int((frame["words"] <= 1).sum())
    frame.insert(0, "metric", "median_tvd")
    model = model_name(ctx)
    defined = frame[frame["words"] > 1]
    summary = class_summary(defined, "value", ctx, {
        "mean_median_tvd": np.mean, "median_median_tvd": np.median,
        "share_median_tvd_below_0.01": lambda v: np.mean(v < 0.01), "examples": len})
    labels = [label_of(ctx, c) for c in range(ctx.classifier.n_classes)]
    from probekit.evaluation import stats

    values = defined["value"].to_numpy(float)
    mean = stats.over_examples(ctx, values)
    share = stats.share(ctx, (values < 0.01).astype(float))
    summary = pd.concat([summary, pd.DataFrame([
        {"class": "all", "metric": m, "value": i.estimate, "aggregate": "examples, 95% bootstrap interval",
         **stats.columns(i)} for m, i in (("mean_median_tvd", mean), ("share_median_tvd_below_0.01", share))])],
        ignore_index=True)
    summary["n"] = pd.array(summary["n"], dtype="Int64")
    if not mean.n:
        verdict = "undefined (no example with two or more words)"
    elif mean.ci_high < 0.05:
        verdict = "the decision barely depends on which word gets which weight (the whole interval is below 0.05)"
    elif mean.ci_low >= 0.05:
        verdict = "the output does depend on where the weight goes (the whole interval is at least 0.05)"
    else:
        verdict = "the interval straddles 0.05, so these examples cannot tell whether the output depends on it"
    findings = [
        finding("permutation", f"mean median TVD under {P} shuffles of α", mean.estimate,
                f"shuffling the attention over the words moves the output by {stats.fmt(mean)} (median over "
                f"shuffles, mean over examples): {verdict}", interval=mean),
        finding("permutation", "share of examples with median TVD < 0.01", share.estimate,
                f"{stats.fmt(share, pct=True)} of examples are essentially indifferent to a random reassignment "
                f"of their attention weights", interval=share),
    ]
    figures = {"jain-wallace-fig10": lambda: max_attention_violins(
        defined, "value", "median TVD of the output under permutation",
        "Jain & Wallace Fig. 10: permuted attention", labels)}
    return Outcome("permutation",
                   tables={"permutation": tidy(frame, task="permutation", model=model, keys=["example"]),
                           "permutation-summary": tidy(summary, task="permutation", model=model,
                                                       keys=["class"])},
                   findings=findings, figures=figures, counts={"permutation_single_word": single},
                   seconds=time.perf_counter() - t0)
