"""Wiegreffe & Pinter 2019 §3: is attention needed (uniform weights), and how much does it move between seeds?

- ``uniform``: the head retrained with α fixed at 1/n over the real words (their §3, Table 2), against the
  classifier's trained attention head on the evaluation examples: accuracy, macro-F1, and how far the uniform
  head's outputs are from the base model's (TVD) and how often it decides the same.
- ``seeds``: the attention head retrained from scratch with ≥ 5 seeds (initialisation, batch order, dropout);
  per example the median over seeds of JSD(α_base, α_seed) and the mean TVD(p_base, p_seed), against the base
  model's max attention (§5.2, their seed graphs, ``wiegreffe-pinter-fig2``). The median over examples is the
  yardstick for "how different is different" (kept for the adversary's figure as ``_shared["wp:seed_jsd"]``).
  ``ctx.option("seeds")`` is a count (seeds derived from ``ctx.seed``) or an explicit list of seeds.

Both retrain over the fixed hidden states (the encoder is held fixed, unlike the paper's retrained BiLSTM); an
encoder trained from scratch is retrained whole, as the paper did (``wp_common.retrained``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from probekit.classifiers.pooling import AttentionHead
from probekit.core import intervals as iv
from probekit.core.result import tidy
from probekit.evaluation import metrics, stats
from probekit.evaluation.base import Outcome, finding
from probekit.evaluation.wiegreffe_pinter.common import (UniformHead, build, data, derived_seed, head_options,
                                                         max_attention_bins, model_name, retrained, retrained_many,
                                                         scores, shared, skip_reason)

SALT_UNIFORM, SALT_SEEDS = 501, 502

#: Wiegreffe & Pinter Table 2 (F1): the nearest sentiment data set is SST
PAPER_TRAINED = "SST: 0.831 (reproduced; J&W 0.81)"
PAPER_UNIFORM = "SST: 0.822"
PAPER_DROP = "SST: 0.009; IMDb 0.023; Diabetes 0.069"
#: how the retrained heads differ from the paper's training, said where their numbers are shown
TRAINING = ("Heads are trained as classify trains frozen heads (AdamW, its learning rate, --epochs, the best dev "
            "epoch kept) over the fixed hidden states; Wiegreffe & Pinter retrain the whole BiLSTM for 8 epochs "
            "with Adam (amsgrad).")
#: the same for an encoder trained from scratch, which is retrained whole (``wp_common.retrained``)
TRAINING_WHOLE = ("The whole model (embeddings, encoder, head) is retrained from random weights by Jain & Wallace's "
                  "recipe (Adam 1e-3, weight decay 1e-5, --epochs or 8, the best dev epoch kept), as Wiegreffe & "
                  "Pinter retrain their BiLSTM.")


def training(ctx) -> str:
    """How the retrained models were trained, said where their numbers are shown."""
    return TRAINING_WHOLE if getattr(ctx.classifier, "retrains_whole", False) else TRAINING


def _attention_head(ctx, dim):
    opts = head_options(ctx)
    return lambda: AttentionHead(dim, ctx.classifier.n_classes, dropout=opts["dropout"],
                                 attention_dim=opts["attention_dim"], heads=1)


def run_uniform(ctx) -> Outcome:
    why = skip_reason(ctx)
    if why:
        return Outcome("uniform", skipped=why)
    d = data(ctx)
    dim = d["train"].feats.flat.shape[1]
    seed = derived_seed(ctx, SALT_UNIFORM)
    head = build(lambda: UniformHead(dim, ctx.classifier.n_classes, dropout=head_options(ctx)["dropout"]), seed)
    ev = d["eval"]
    (_, probs_u), (_, dev_u) = retrained(ctx, head, seed, ("eval", "dev"))
    tvd = metrics.tvd(ev.probs.numpy(), probs_u.numpy())

    rows = [{"example": i, "weights": "uniform", "split": "eval", "metric": "tvd_to_base", "value": float(v)}
            for i, v in enumerate(tvd)]
    for weights, p_eval, p_dev in (("trained", ev.probs, d["dev"].probs), ("uniform", probs_u, dev_u)):
        for split, p, y in (("eval", p_eval, ev.y), ("dev", p_dev, d["dev"].y)):
            rows += [{"weights": weights, "split": split, "metric": k, "value": v, "aggregate": "examples"}
                     for k, v in scores(p.numpy(), y).items()]

    findings = []
    t_i = stats.over_examples(ctx, tvd)
    agree_i = stats.share(ctx, (ev.probs.argmax(1) == probs_u.argmax(1)).double().numpy())
    extra = [{"weights": "uniform", "split": "eval", "metric": m, "value": i.estimate,
              "aggregate": "95% bootstrap interval over examples", **stats.columns(i)}
             for m, i in (("tvd_to_base", t_i), ("agreement_with_base", agree_i))]
    extra[0]["aggregate"] = "mean over examples (95% bootstrap interval)"
    extra[1]["aggregate"] = "share of examples (95% bootstrap interval)"
    s_base = scores(ev.probs.numpy(), ev.y)
    if s_base:
        y, pb, pu = ev.y, ev.probs.numpy().argmax(1), probs_u.numpy().argmax(1)
        f_b, f_u = stats.metric_interval(ctx, stats.macro_f1, y, pb), stats.metric_interval(ctx, stats.macro_f1, y, pu)
        drop = stats.metric_difference(ctx, stats.macro_f1, (y, pb), (y, pu))
        extra += [{"weights": w, "split": "eval", "metric": m, "value": i.estimate,
                   "aggregate": "examples (95% bootstrap interval" + (", paired)" if w == "trained − uniform"
                                                                      else ")"), **stats.columns(i)}
                  for w, m, i in (("trained", "macro_f1", f_b), ("uniform", "macro_f1", f_u),
                                  ("trained − uniform", "macro_f1_difference", drop))]
        verdict = stats.sentence("the trained attention head", "uniform weights", drop, quantity="macro-F1")
        findings += [
            finding("uniform", "macro-F1, trained attention head", f_b.estimate,
                    "The classifier's own attention-pooling head on the evaluation data.", paper=PAPER_TRAINED,
                    interval=f_b),
            finding("uniform", "macro-F1, uniform attention", f_u.estimate,
                    f"The same head retrained with α fixed at 1/n over the real words. {training(ctx)}",
                    paper=PAPER_UNIFORM, interval=f_u),
            finding("uniform", "macro-F1 drop with uniform attention", drop.estimate,
                    f"{verdict}; paired over the same examples", paper=PAPER_DROP, interval=drop)]
    findings.append(finding("uniform", "mean TVD(p_base, p_uniform)", t_i.estimate,
                            f"The uniform head decides as the trained one on {stats.fmt(agree_i, pct=True)} of the "
                            f"examples.", interval=t_i))
    done = {(r["weights"], r["metric"]) for r in extra}
    rows = [r for r in rows if not (r["split"] == "eval" and (r["weights"], r["metric"]) in done
                                    and "example" not in r)] + extra
    table = pd.DataFrame(rows)
    table["n"] = pd.array(table["n"], dtype="Int64")
    table = tidy(table, task="uniform", model=model_name(ctx), keys=["weights", "split", "example"])
    return Outcome("uniform", tables={"uniform": table}, findings=findings)


def seed_list(ctx) -> list[int]:
    opt = ctx.option("seeds")
    if isinstance(opt, (list, tuple)):
        return [int(s) for s in opt]
    return [derived_seed(ctx, SALT_SEEDS, i) for i in range(int(opt))]


def run_seeds(ctx) -> Outcome:
    why = skip_reason(ctx)
    if why:
        return Outcome("seeds", skipped=why)
    d = data(ctx)
    ev = d["eval"]
    dim = d["train"].feats.flat.shape[1]
    base_alpha, base_probs = ev.alpha.numpy(), ev.probs.numpy()
    seeds = seed_list(ctx)
    J, T, rows = [], [], []
    heads = [build(_attention_head(ctx, dim), seed) for seed in seeds]
    for seed, ((alpha_s, probs_s),) in zip(seeds, retrained_many(ctx, heads, seeds)):
        j = metrics.jsd(base_alpha, alpha_s.numpy())
        t = metrics.tvd(base_probs, probs_s.numpy())
        J.append(j)
        T.append(t)
        agg = {"seed": seed, "split": "eval", "aggregate": "examples"}
        rows += [{**agg, "metric": k, "value": v} for k, v in scores(probs_s.numpy(), ev.y).items()]
        rows += [{**agg, "metric": "jsd", "value": float(np.median(j)), "aggregate": "median over examples"},
                 {**agg, "metric": "tvd", "value": float(np.mean(t)), "aggregate": "mean over examples"}]
    J, T = np.stack(J), np.stack(T)
    jsd_med, tvd_mean = np.median(J, axis=0), T.mean(axis=0)
    max_att = base_alpha.max(1) if base_alpha.size else np.zeros(0)
    for i in range(len(jsd_med)):
        rows += [{"example": i, "split": "eval", "metric": m, "value": float(v)}
                 for m, v in (("jsd_median_over_seeds", jsd_med[i]), ("tvd_mean_over_seeds", tvd_mean[i]),
                              ("max_attention", max_att[i]))]
    bins, labels = max_attention_bins(max_att)
    for b, label in enumerate(labels):
        sel = bins == b
        rows += [{"bin": label, "split": "eval", "metric": "jsd_median_over_seeds",
                  "value": float(np.median(jsd_med[sel])) if sel.any() else np.nan,
                  "aggregate": f"median over the {int(sel.sum())} examples of the max-attention bin"}]
    yardstick = float(np.median(jsd_med)) if len(jsd_med) else float("nan")
    rows += [{"split": "eval", "metric": "jsd_median_over_seeds", "value": yardstick,
              "aggregate": "median over examples"},
             {"split": "eval", "metric": "tvd_mean_over_seeds", "value": float(np.mean(tvd_mean)),
              "aggregate": "mean over examples"}]
    table = tidy(pd.DataFrame(rows), task="seeds", model=model_name(ctx),
                 keys=["seed", "bin", "split", "example"])
    shared(ctx)["wp:seed_jsd"] = yardstick
    shared(ctx)["wp:seed_jsd_examples"] = jsd_med

    f1s = [r["value"] for r in rows if r.get("seed") is not None and r["metric"] == "macro_f1"]
    y_i = stats.over_examples(ctx, jsd_med, statistic=np.median)
    t_i = stats.over_examples(ctx, tvd_mean)
    findings = [
        finding("seeds", "median JSD(α_base, α_seed) (median over seeds, then examples)", yardstick,
                f"Retraining the head with {len(seeds)} other seeds moves its attention by a median "
                f"{stats.fmt(y_i)} nats (bound ln 2 = 0.693): attention that differs by less is within seed "
                f"noise. {training(ctx)}", interval=y_i),
        finding("seeds", "mean TVD(p_base, p_seed)", t_i.estimate,
                "How far the seeds' predictions are from the base model's while their attention moves.",
                interval=t_i)]
    if f1s:
        f_i = iv.over_seeds(f1s)
        findings.append(finding("seeds", "macro-F1 over seeds (mean, Student-t interval over seeds)", f_i.estimate,
                                f"Seed-to-seed spread of F1 (std {np.std(f1s, ddof=1) if len(f1s) > 1 else 0:.3f} "
                                f"over {len(f1s)} seeds), the noise floor for comparing retrained heads.",
                                interval=f_i))
    figures = {"wiegreffe-pinter-fig2": lambda: seed_figure(jsd_med, tvd_mean, max_att, len(seeds))}
    return Outcome("seeds", tables={"seeds": table}, findings=findings, figures=figures,
                   counts={"seeds": len(seeds)})


def seed_figure(jsd_med, tvd_mean, max_att, n_seeds: int):
    """Violins of the per-example median JSD by max-attention bin, and JSD against the output change."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), constrained_layout=True)
    ax, ax2 = fig.subplots(1, 2)
    bins, labels = max_attention_bins(max_att)
    for b, label in enumerate(labels):
        vals = jsd_med[bins == b]
        if len(vals) >= 2 and np.ptp(vals) > 0:
            try:                                   # matplotlib ≥ 3.10 (vert= is deprecated there)
                parts = ax.violinplot([vals], positions=[b], orientation="horizontal", showmedians=True,
                                      widths=0.8)
            except TypeError:                      # older matplotlib
                parts = ax.violinplot([vals], positions=[b], vert=False, showmedians=True, widths=0.8)
            for body in parts["bodies"]:
                body.set_alpha(0.5)
        elif len(vals):
            ax.plot(vals, np.full(len(vals), b), "o", color="C0")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlim(-0.05, 0.7)
    ax.set_xlabel("median JSD(α_base, α_seed) over seeds (nats)")
    ax.set_ylabel("max attention of the base model")
    ax.set_title(f"seed variance ({n_seeds} seeds)")
    ax2.scatter(jsd_med, tvd_mean, s=8, alpha=0.6)
    ax2.set_xlim(-0.05, 0.7)
    ax2.set_xlabel("median JSD(α_base, α_seed) (nats)")
    ax2.set_ylabel("mean TVD(p_base, p_seed)")
    ax2.set_title("attention change vs output change")
    return fig
