"""Wiegreffe & Pinter 2019 §5: an end-to-end adversary, a fresh attention head trained to keep the base model's
predictions while moving its attention away (their Algorithm 1, Fig. 4).

Per training batch the loss is mean_b ½·TVD(p_adv, p_base) − λ · mean_b KL(α_adv ‖ α_base), with p_base and
α_base the base head's outputs on the same fixed training vectors. On two classes ½·TVD is exactly their
output term 0.5·|σ(ŷ_adv) − ŷ_base|, so λ is on the paper's scale (beyond two classes it is ½·TVD); the
terms are means over the batch where theirs are sums, which scales both alike. For each λ of
``ctx.option("lambdas")``: Adam with amsgrad (lr 1e-3, weight decay 1e-5 except on the attention parameters,
Jain & Wallace's trainer that theirs builds on), at most ``ctx.option("adversary_epochs")`` epochs (80, theirs),
seeded batch order, the epoch with the lowest training loss kept, stopping after ``ctx.option("patience")``
(10) epochs without improvement. Still different: the encoder is held fixed (they retrain the BiLSTM), except
for an encoder trained from scratch, where a whole fresh model is trained on the same loss (``wp_whole``).
Reported on the evaluation examples: mean
TVD(p_adv, p_base), mean JSD(α_base, α_adv), accuracy and macro-F1, each with a bootstrap interval, and the
adversary's median JSD against the seeds' per-example median JSD, paired (``wiegreffe-pinter-fig4``: TVD
against JSD per λ with interval bars, the seeds' median JSD as the reference line when it ran in the same
Context).

The adversary of the largest λ whose mean dev TVD stays within ``ctx.option("accept")`` (else the one with the
smallest dev TVD) is left in ``ctx.options["_shared"]["wp:adversary"]`` (its head, and its α on every split under ``"alpha"``) for
the diagnostic's adversary row.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from probekit.classifiers.pooling import AttentionHead
from probekit.core.result import tidy
from probekit.evaluation import metrics, stats
from probekit.evaluation.base import Outcome, finding
from probekit.evaluation.wiegreffe_pinter import common as wp_common
from probekit.evaluation.wiegreffe_pinter.common import (adversarial_loss, build, data, derived_seed, head_options,
                                                         head_outputs, lowest_loss, model_name, one_thread, scores,
                                                         shared, skip_reason, train_options)

SALT = 504
#: Jain & Wallace's optimiser (Adam, amsgrad), which Wiegreffe & Pinter's code trains with
LR, WEIGHT_DECAY = 1e-3, 1e-5


def train_adversary(ctx, d, lam: float, seed: int):
    """A fresh attention head trained on the adversarial loss; returns (head, per-epoch training losses)."""
    opts = train_options(ctx, seed)
    tr = d["train"]
    head = _new_head(ctx, tr.feats.flat.shape[1], seed)
    device = ctx.device
    head.to(device)
    feats = tr.feats.to(device)
    a_base, p_base = tr.alpha.float().to(device), tr.probs.float().to(device)
    with torch.random.fork_rng(devices=[]), one_thread():
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        attention = [p for n, p in head.named_parameters() if n.split(".")[0] in ("W", "v")]
        rest = [p for n, p in head.named_parameters() if n.split(".")[0] not in ("W", "v")]
        opt = torch.optim.Adam([{"params": rest, "weight_decay": WEIGHT_DECAY},
                                {"params": attention, "weight_decay": 0.0}], lr=LR, amsgrad=True)

        def epoch():
            head.train()
            order = torch.randperm(len(feats), generator=gen)
            total = 0.0
            for i in range(0, len(order), opts["batch_size"]):
                idx = order[i:i + opts["batch_size"]]
                units, mask, cls = feats.batch(idx)
                logits, alpha, _ = head(units, mask, cls)
                idx_d = idx.to(device)
                loss = adversarial_loss(logits, alpha, p_base[idx_d], a_base[idx_d], lam)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            return total / len(feats)

        losses = lowest_loss(head, epoch, epochs=int(ctx.option("adversary_epochs")),
                             patience=int(ctx.option("patience")))
    return head.to("cpu").eval(), losses


def _new_head(ctx, dim: int, seed: int):
    hopts = head_options(ctx)
    return build(lambda: AttentionHead(dim, ctx.classifier.n_classes, dropout=hopts["dropout"],
                                       attention_dim=hopts["attention_dim"], heads=1), seed)


def train_adversaries(ctx, d, lambdas, seeds):
    """:func:`train_adversary` for every (λ, seed) at once, stacked into one model (``classify.stacked``): the
    same optimiser, per-member batch order, dropout, kept epoch and early stop, so the same heads and losses up
    to float rounding (in a Ray session, one stack per worker). Returns [(head, per-epoch training losses)] in
    the order of ``lambdas``."""
    if not (wp_common.STACK and wp_common.STACK_ADVERSARY) or len(lambdas) < 2:
        return [train_adversary(ctx, d, lam, seed) for lam, seed in zip(lambdas, seeds)]
    from probekit.core.distributed import grid

    tr = d["train"]
    heads = [_new_head(ctx, tr.feats.flat.shape[1], seed) for seed in seeds]
    options = dict(patience=int(ctx.option("patience")), epochs=int(ctx.option("adversary_epochs")),
                   batch_size=train_options(ctx, 0)["batch_size"], device=ctx.device)
    cells = {f"lambdas {[lambdas[i] for i in g]} seeds {[seeds[i] for i in g]}":
             dict(heads=[heads[i] for i in g], lambdas=[lambdas[i] for i in g], seeds=[seeds[i] for i in g])
             for g in grid.groups(len(heads))}
    done = grid.run(adversary_group, cells, shared=dict(feats=tr.feats, alpha=tr.alpha, probs=tr.probs,
                                                          options=options))
    out = []
    for head, (state, losses) in zip(heads, (r for group in done.values() for r in group)):
        head.load_state_dict(state)
        out.append((head.to("cpu").eval(), losses))
    return out


def adversary_group(heads, lambdas, seeds, feats, alpha, probs, options) -> list[tuple[dict, list[float]]]:
    """Adversaries ``heads`` (one per λ and seed) trained stacked; per head its kept weights and per-epoch
    training losses. A grid cell (``distributed.grid``)."""
    from probekit.classifiers.stacked import StackedAttention, train_epochs

    device = options["device"]
    stack = StackedAttention(heads).to(device)
    feats = feats.to(device)
    a_base, p_base = alpha.float().to(device), probs.float().to(device)
    lam = torch.tensor([float(x) for x in lambdas], device=device)

    def loss_of(logits, alpha, idx):
        idx = idx.to(device)
        p = torch.softmax(logits.float(), -1)
        return (0.5 * metrics.tvd(p, p_base[idx]).mean(1)
                - lam * metrics.kl(alpha, a_base[idx, :alpha.shape[-1]]).mean(1))

    opt = torch.optim.Adam([{"params": stack.other_parameters(), "weight_decay": WEIGHT_DECAY},
                            {"params": stack.attention_parameters(), "weight_decay": 0.0}], lr=LR, amsgrad=True)
    M = len(heads)
    losses, best, bad = [[] for _ in heads], [float("inf")] * M, [0] * M
    best_state = [stack.state(m) for m in range(M)]
    active = set(range(M))
    with one_thread():
        epochs = train_epochs(stack, feats, seeds, options["batch_size"], loss_of, opt)
        for _, epoch_loss in zip(range(options["epochs"]), epochs):
            for m in sorted(active):      # a stopped member trains on unseen (its result is fixed)
                losses[m].append(float(epoch_loss[m]))
                if losses[m][-1] < best[m]:
                    best[m], best_state[m], bad[m] = losses[m][-1], stack.state(m), 0
                else:
                    bad[m] += 1
                    if bad[m] >= options["patience"]:
                        active.discard(m)
            if not active:
                break
    return [({k: v.cpu() for k, v in state.items()}, loss) for state, loss in zip(best_state, losses)]


def _compare(alpha, probs, split):
    """(JSD to the base α, TVD to the base predictions) per example of ``split``."""
    return metrics.jsd(split.alpha.numpy(), alpha.numpy()), metrics.tvd(split.probs.numpy(), probs.numpy())


def _adversary_whole(ctx, d, lam: float, seed: int):
    """(per-epoch losses, {split: (α, probabilities)}, None): for a classifier that retrains whole (an encoder
    from scratch), a whole model (``wp_whole.adversary``)."""
    from probekit.evaluation.wiegreffe_pinter import whole as wp_whole

    model, losses = wp_whole.adversary(ctx.classifier, ctx.train, d["train"].alpha, d["train"].probs, lam,
                                       seed=seed, epochs=int(ctx.option("adversary_epochs")),
                                       patience=int(ctx.option("patience")), batch_size=int(ctx.batch_size))
    examples = {"train": ctx.train, "dev": ctx.dev, "eval": ctx.examples}
    return losses, {s: wp_whole.outputs(model, examples[s], d[s].alpha.shape[1]) for s in examples}, None


def _adversaries(ctx, d, lambdas, seeds):
    """Per λ: (per-epoch losses, {split: (α, probabilities)}, head or None): heads over the fixed vectors
    (:func:`train_adversaries`), or whole models for a classifier that retrains whole."""
    if getattr(ctx.classifier, "retrains_whole", False):
        return [_adversary_whole(ctx, d, lam, seed) for lam, seed in zip(lambdas, seeds)]
    return [(losses, {s: head_outputs(head, d[s].feats) for s in ("train", "dev", "eval")}, head)
            for head, losses in train_adversaries(ctx, d, lambdas, seeds)]


def run(ctx) -> Outcome:
    why = skip_reason(ctx)
    if why:
        return Outcome("e2e-adversary", skipped=why)
    d = data(ctx)
    ev = d["eval"]
    lambdas = [float(x) for x in ctx.option("lambdas")]
    accept = float(ctx.option("accept"))
    rows, summary, heads, alphas = [], [], {}, {}
    trained = _adversaries(ctx, d, lambdas, [derived_seed(ctx, SALT, k) for k in range(len(lambdas))])
    for lam, (losses, out, heads[lam]) in zip(lambdas, trained):
        alphas[lam] = {s: a for s, (a, _) in out.items()}
        probs = out["eval"][1]
        jsd, tvd = _compare(*out["eval"], ev)
        dev_jsd, dev_tvd = _compare(*out["dev"], d["dev"])
        for i in range(len(jsd)):
            rows += [{"lambda": lam, "example": i, "split": "eval", "metric": "jsd", "value": float(jsd[i])},
                     {"lambda": lam, "example": i, "split": "eval", "metric": "tvd", "value": float(tvd[i])}]
        s = scores(probs.numpy(), ev.y)
        agg = {"lambda": lam, "split": "eval"}
        ij, it = stats.over_examples(ctx, jsd), stats.over_examples(ctx, tvd)
        rows += [{**agg, "metric": "jsd", "value": ij.estimate, "aggregate": "mean over examples",
                  **stats.columns(ij)},
                 {**agg, "metric": "tvd", "value": it.estimate, "aggregate": "mean over examples",
                  **stats.columns(it)},
                 {**agg, "metric": "epochs", "value": float(len(losses)), "aggregate": "training"},
                 {**agg, "metric": "train_loss", "value": float(min(losses)), "aggregate": "lowest epoch"}]
        rows += [{**agg, "metric": m, "value": v, "aggregate": "examples"} for m, v in s.items()]
        rows += [{"lambda": lam, "split": "dev", "metric": m, "value": float(np.mean(v)),
                  "aggregate": "mean over examples"} for m, v in (("jsd", dev_jsd), ("tvd", dev_tvd))]
        summary.append({"lambda": lam, "jsd": ij.estimate, "tvd": it.estimate, "jsd_i": ij, "tvd_i": it,
                        "per_example_jsd": jsd, "dev_jsd": float(np.mean(dev_jsd)),
                        "dev_tvd": float(np.mean(dev_tvd)), **s})
    frame = pd.DataFrame(rows)
    if "n" in frame:
        frame["n"] = pd.array(frame["n"], dtype="Int64")
    table = tidy(frame, task="e2e-adversary", model=model_name(ctx), keys=["lambda", "split", "example"])
    within = [r for r in summary if r["dev_tvd"] <= accept]
    chosen = max(within, key=lambda r: r["lambda"]) if within else min(summary, key=lambda r: r["dev_tvd"])
    shared(ctx)["wp:adversary"] = {"lambda": chosen["lambda"], "head": heads[chosen["lambda"]], "heads": heads,
                                   "alpha": alphas[chosen["lambda"]]}
    seed_jsd = shared(ctx).get("wp:seed_jsd")

    findings = []
    base_s = scores(ev.probs.numpy(), ev.y)
    seed_examples = shared(ctx).get("wp:seed_jsd_examples")
    for r in summary:
        f1 = f", macro-F1 {r['macro_f1']:.3f} (base {base_s['macro_f1']:.3f})" if "macro_f1" in r else ""
        noise = ""
        if seed_examples is not None and len(seed_examples) == len(r["per_example_jsd"]):
            d = stats.difference(ctx, r["per_example_jsd"], seed_examples, statistic=np.median)
            noise = "; " + stats.sentence("the adversary", "retrained seeds", d,
                                          quantity="the median JSD to the base attention", higher="larger")
        findings.append(finding(
            "e2e-adversary", f"mean JSD(α_base, α_adv), λ={r['lambda']:g}", r["jsd"],
            f"With mean TVD {stats.fmt(r['tvd_i'])} to the base predictions{f1}, the adversary moved attention "
            f"by {stats.fmt(r['jsd_i'])} nats{noise}. λ on Wiegreffe & Pinter's scale (output term ½·TVD).",
            interval=r["jsd_i"]))
    findings.append(finding(
        "e2e-adversary", "λ of the adversary passed to the diagnostic", chosen["lambda"],
        f"The largest λ whose dev TVD stays within {accept:g}" if within else
        f"No λ kept dev TVD within {accept:g}; the closest one was taken"))
    figures = {"wiegreffe-pinter-fig4": lambda: adversary_figure(summary, seed_jsd)}
    return Outcome("e2e-adversary", tables={"e2e-adversary": table}, findings=findings, figures=figures,
                   counts={"lambdas": len(lambdas), "lambdas_within_accept_on_dev": len(within)})


def adversary_figure(summary, seed_jsd=None):
    """Mean TVD from the base predictions against mean JSD from the base attention, one point per λ."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4.2), constrained_layout=True)
    ax = fig.subplots()
    x = np.array([r["jsd"] for r in summary])
    y = np.array([r["tvd"] for r in summary])

    def err(key, v):
        lo = np.array([r[key].ci_low if key in r else np.nan for r in summary])
        hi = np.array([r[key].ci_high if key in r else np.nan for r in summary])
        return np.nan_to_num(np.vstack([v - lo, hi - v]), nan=0.0)

    ax.errorbar(x, y, xerr=err("jsd_i", x), yerr=err("tvd_i", y), fmt="o-", color="C3", capsize=2,
                label="end-to-end adversary (95% CI)")
    for r in summary:
        ax.annotate(f"λ={r['lambda']:g}", (r["jsd"], r["tvd"]), textcoords="offset points", xytext=(4, 4),
                    fontsize=8)
    if seed_jsd is not None and np.isfinite(seed_jsd):
        ax.axvline(seed_jsd, color="grey", ls="--", label=f"seed variance (median JSD {seed_jsd:.3f})")
    ax.set_xlim(-0.05, 0.7)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("mean JSD(α_base, α_adv) (nats)")
    ax.set_ylabel("mean TVD(p_base, p_adv)")
    ax.set_title("end-to-end adversary: attention moved vs predictions kept")
    ax.legend(loc="upper left", fontsize=8)
    return fig
