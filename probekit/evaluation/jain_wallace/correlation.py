"""Jain & Wallace 2019, Kendall τ between attention and two importance measures (their §4.1, Table 2).

Per example, over its real words (the classifier's units: words, or sub-tokens at token level):

- **gradient** importance |Σ_{pieces} Σ_d ∂σ(ŷ)/∂e_{t,d} · e_{t,d}|: the gradient of the predicted class's
  probability w.r.t. the input word embeddings e (output of ``classifier.embedding_layer``) through the live
  encoder. Order of operations: gradient × input summed over the embedding dims per sub-token (signed), summed
  over the sub-tokens of the word (signed), then the absolute value per word (J&W have one token per word and
  take |·| per token). For the attention-pooling source the pooling weights are computed and **detached**
  (pooled = Σ α.detach()·h), so the gradient flows only through the hidden states; for the ``cls`` source
  (last-layer [CLS] attention) the gradient is simply through the model.
- **leave-one-out**: TVD between the class distribution of the input and of the input with the word deleted
  (re-tokenised and re-encoded, so attention is recomputed: J&W's ``remove_and_run``); for two classes this is
  |Δσ|. At token level the sub-token is deleted from the id sequence.

τ is scipy's tau-b (``metrics.kendall``) for (attention, gradient), (attention, LOO) and (gradient, LOO), the
last the yardstick. Summaries: mean and std (NaN-free cases), share with p ≤ 0.05 (of the defined cases), per
predicted class, the means and shares with 95 % bootstrap intervals over the examples; the differences
τ(gradient, LOO) − τ(attention, ·) paired over the examples where both are defined. NaN cases (constant
vectors, one-word inputs) are counted.

One precision: the pooling head's α is recomputed in the same float32 forward pass the gradients come from
(not read from the float16 activation cache the other experiments use), and LOO's outputs are float32 too.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from probekit.attribution.occlusion import class_distributions, without_word
from probekit.attribution.words import model_inputs, to_words
from probekit.core.progress import progress
from probekit.core.result import tidy
from probekit.evaluation.base import Context, Outcome, finding
from probekit.evaluation.jain_wallace.permutation import label_of, model_name
from probekit.evaluation.metrics import kendall, tvd

PAIRS = {"attention-gradient": ("attention", "gradient"), "attention-loo": ("attention", "loo"),
         "gradient-loo": ("gradient", "loo")}

#: J&W's repo values (BiLSTM + tanh attention, SST, the nearest sentiment set) and the range over their datasets
PAPER = {"attention-gradient": "SST (BiLSTM): 0.35 ± 0.21; −0.02…0.47 across datasets",
         "attention-loo": "SST (BiLSTM): 0.29 ± 0.19; −0.01…0.47 across datasets",
         "gradient-loo": "SST (BiLSTM): 0.66 ± 0.16; 0.44…0.68 across datasets (SNLI 0.24)"}
PAPER_AVERAGE = {"attention-gradient": "SST (non-contextual 'average' encoder): 0.61 ± 0.20"}


def gradient_importance(classifier, batch: dict, kind: str = "pooling", keep: dict | None = None):
    """(|gradient × input| per unit, one array per example; class probabilities [B, C] of the live forward).

    ``kind="pooling"``: the head's attention is detached; ``"cls"``: the plain forward pass. ``keep`` (a dict)
    receives the pooling head's α [B, U] and unit mask of this same float32 forward pass (``"alpha"``,
    ``"mask"``), so τ compares attention and gradients computed at one precision."""
    from probekit.attribution.gradients import embedding_gradients
    from probekit.classifiers.pooling import masked_softmax

    out = {}

    def predicted_probability(inputs):
        if kind == "pooling":
            head = classifier.head
            units, mask, _ = classifier.units(**inputs)
            alpha = masked_softmax(head.v(torch.tanh(head.W(units)))[..., 0], mask).detach()
            out["alpha"], out["mask"] = alpha, mask
            logits = head.out(head.dropout(torch.einsum("bu,bud->bd", alpha, units)))
        else:
            logits = classifier(**inputs)
        probs = out["probs"] = torch.softmax(logits.float(), -1)
        return probs.gather(1, probs.argmax(1)[:, None]).sum()

    grad, e = embedding_gradients(classifier, batch, objective=predicted_probability)
    probs = out["probs"]
    if keep is not None and "alpha" in out:
        keep["alpha"] = out["alpha"].double().cpu().numpy()
        keep["mask"] = out["mask"].bool().cpu().numpy()
    token = (grad.float() * e.float()).sum(-1)         # Σ_d, signed, per sub-token
    scores = [np.abs(to_words(token[b], batch["word_ids"][b], len(batch["words"][b]), "sum"))
              for b in range(len(token))]
    return scores, probs.detach().cpu().numpy().astype(np.float64)


def _forward_probs(classifier, batch: dict) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(classifier(**model_inputs(batch)).float(), -1).cpu().numpy().astype(np.float64)


def _token_deletions(classifier, batch: dict, batch_size: int) -> list[np.ndarray]:
    """Token level: class distributions with each real sub-token deleted from the id sequence, per example."""
    ids, att = batch["input_ids"].cpu(), batch["attention_mask"].cpu()
    tt = batch.get("token_type_ids")
    tt = tt.cpu() if tt is not None else None
    real = (att.bool() & (batch["word_ids"].cpu() >= 0))
    variants, owner = [], []
    for b in range(len(ids)):
        n = int(att[b].sum())
        for t in np.flatnonzero(real[b].numpy()):
            keep = [i for i in range(n) if i != t]
            variants.append((ids[b, keep], None if tt is None else tt[b, keep]))
            owner.append(b)
    probs = np.zeros((len(variants), classifier.n_classes))
    pad = classifier.tokenizer.pad_token_id or 0
    for start in range(0, len(variants), batch_size):
        chunk = variants[start:start + batch_size]
        T = max(len(v[0]) for v in chunk)
        x = torch.full((len(chunk), T), pad, dtype=torch.long)
        m = torch.zeros((len(chunk), T), dtype=torch.long)
        y = torch.zeros((len(chunk), T), dtype=torch.long)
        for r, (v, w) in enumerate(chunk):
            x[r, :len(v)], m[r, :len(v)] = v, 1
            if w is not None:
                y[r, :len(v)] = w
        inputs = {"input_ids": x, "attention_mask": m}
        if tt is not None:
            inputs["token_type_ids"] = y
        inputs = {k: v.to(classifier.device) for k, v in inputs.items()}
        probs[start:start + len(chunk)] = _forward_probs(classifier, inputs)
    owner = np.asarray(owner, dtype=np.int64)
    return [probs[owner == b] for b in range(len(ids))]


def leave_one_out(classifier, examples, batch: dict, p0: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """TVD(p(x), p(x without unit i)) per unit of each example (word level: the word deleted from the text)."""
    if classifier.level == "token":
        deleted = _token_deletions(classifier, batch, batch_size)
        out = []
        for b, p in enumerate(deleted):
            n = len(batch["words"][b])
            s = np.full(n, np.nan)
            s[:len(p)] = tvd(p, p0[b][None, :])
            out.append(s)
        return out
    variants, owner = [], []
    for b, words in enumerate(batch["words"]):
        for i in range(len(words)):
            variants.append(without_word(examples[b], words, i))
            owner.append(b)
    p = class_distributions(classifier, variants, batch_size)
    owner = np.asarray(owner, dtype=np.int64)
    return [tvd(p[owner == b], p0[b][None, :]) for b in range(len(examples))]


def summarise(frame: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    """Per pair and class (all, each predicted class): mean τ and the share with p ≤ 0.05, each with its 95 %
    bootstrap interval over the examples (``ci_low``, ``ci_high``, ``n``: the examples with a defined τ), the
    std, and the NaN cases."""
    from probekit.evaluation import stats

    rows = []
    labels = ["all"] + [label_of(ctx, c) for c in range(ctx.classifier.n_classes)]
    for pair in PAIRS:
        part = frame[frame["pair"] == pair]
        for cls in labels:
            sel = part if cls == "all" else part[part["predicted"] == cls]
            tau = sel.loc[sel["metric"] == "tau", "value"].to_numpy(float)
            p = sel.loc[sel["metric"] == "p", "value"].to_numpy(float)
            ok = np.isfinite(tau)
            agg = "examples" if cls == "all" else f"examples predicted {cls}"
            base = {"pair": pair, "class": cls, "aggregate": agg}
            mean = stats.over_examples(ctx, tau[ok])
            sig = stats.share(ctx, (p[ok] <= 0.05).astype(float))
            rows += [{**base, "metric": "tau_mean", "value": mean.estimate, **stats.columns(mean)},
                     {**base, "metric": "share_p_le_0.05", "value": sig.estimate, **stats.columns(sig)},
                     {**base, "metric": "tau_std", "value": float(np.std(tau[ok])) if ok.any() else np.nan},
                     {**base, "metric": "n_nan", "value": float((~ok).sum())}]
    out = pd.DataFrame(rows)
    out["n"] = pd.array(out["n"], dtype="Int64")
    return out


def run(ctx: Context) -> Outcome:
    t0 = time.perf_counter()
    clf, source = ctx.classifier, ctx.source
    kind = "cls" if getattr(source, "kind", "") == "cls" else "pooling"
    rows = []
    for idx in progress(list(source.batches(ctx.batch_size)), desc="tau", unit="batch"):
        examples = [ctx.examples[i] for i in idx.tolist()]
        batch = clf.encode(examples, warn=False)
        live: dict = {}
        grads, p0 = gradient_importance(clf, batch, kind, keep=live)
        if "alpha" in live:              # the head's α of the same float32 pass the gradients come from
            alpha, mask = live["alpha"], live["mask"]
        else:                            # [CLS] attention: the source computes it live in float32
            units, mask = source.batch(idx)
            with torch.no_grad():
                alpha = source.attention(units, mask).double().cpu().numpy()
            mask = mask.cpu().numpy()
        loo = leave_one_out(clf, examples, batch, p0, ctx.batch_size)
        for b, i in enumerate(idx.tolist()):
            n = len(batch["words"][b])
            pos = np.flatnonzero(mask[b][:n])
            pos = pos[np.isfinite(grads[b][pos]) & np.isfinite(loo[b][pos])]
            vec = {"attention": alpha[b][pos], "gradient": grads[b][pos], "loo": loo[b][pos]}
            pred = label_of(ctx, int(p0[b].argmax()))
            for pair, (x, y) in PAIRS.items():
                tau, p = kendall(vec[x], vec[y])
                for metric, v in (("tau", tau), ("p", p)):
                    rows.append({"example": i, "pair": pair, "metric": metric, "value": v, "words": len(pos),
                                 "predicted": pred})
    frame = pd.DataFrame(rows, columns=["example", "pair", "metric", "value", "words", "predicted"])
    summary = summarise(frame, ctx)
    model = model_name(ctx)
    taus = frame[frame["metric"] == "tau"]
    counts = {"tau_single_word": int(taus.loc[taus["pair"] == "gradient-loo", "words"].le(1).sum())}
    for pair in PAIRS:
        counts[f"tau_nan_{pair}"] = int(taus.loc[taus["pair"] == pair, "value"].isna().sum())
    findings, differences = _findings(ctx, taus, summary, getattr(clf, "encoder_mode", "") == "none")
    summary = pd.concat([summary, differences], ignore_index=True)
    summary["n"] = pd.array(summary["n"], dtype="Int64")
    return Outcome("tau",
                   tables={"tau": tidy(frame, task="tau", model=model, keys=["example", "pair"]),
                           "tau-summary": tidy(summary, task="tau", model=model, keys=["pair", "class"])},
                   findings=findings, counts=counts, seconds=time.perf_counter() - t0)


WHAT = {"attention-gradient": "attention and gradient importance",
        "attention-loo": "attention and leave-one-out",
        "gradient-loo": "gradient importance and leave-one-out (the yardstick)"}


def _findings(ctx: Context, taus: pd.DataFrame, summary: pd.DataFrame, noncontextual: bool):
    """Mean τ per pair, and τ(gradient, LOO) − τ(attention, ·) paired over the examples where both are
    defined, each with its interval; the sentences say only what the intervals support."""
    from probekit.evaluation import stats

    wide = taus.pivot_table(index="example", columns="pair", values="value", dropna=False)
    wide = wide.reindex(columns=list(PAIRS))
    findings = []
    for pair in PAIRS:
        row = summary.query("pair == @pair and `class` == 'all' and metric == 'tau_mean'").iloc[0]
        m = float(row["value"])
        interval = stats.Interval(m, float(row["ci_low"]), float(row["ci_high"]), int(row["n"]))
        strength = ("undefined" if not np.isfinite(m) else "strong" if m >= 0.5 else "moderate" if m >= 0.3
                    else "weak" if m >= 0.1 else "hardly any")
        paper = PAPER_AVERAGE.get(pair, PAPER[pair]) if noncontextual else PAPER[pair]
        findings.append(finding("tau", f"mean τ({pair.replace('-', ', ').replace('loo', 'LOO')})", m,
                                f"τ = {stats.fmt(interval, 2)}: {strength} agreement between {WHAT[pair]} on "
                                f"which words matter", paper=paper, interval=interval))
    rows = []
    for other in ("attention-gradient", "attention-loo"):
        d = stats.difference(ctx, wide["gradient-loo"].to_numpy(float), wide[other].to_numpy(float))
        name = "gradients" if other == "attention-gradient" else "leave-one-out"
        label = other.replace("-", ", ").replace("loo", "LOO")
        if d.n == 0:
            sentence = "undefined here (no example with both τ defined)"
        elif not d.excludes_zero:
            sentence = (f"no detectable difference between how well attention agrees with {name} and how well "
                        f"gradients agree with LOO ({stats.fmt(d)}, paired over examples)")
        elif d.estimate > 0:
            sentence = (f"attention agrees with {name} less than gradients agree with LOO ({stats.fmt(d)}, paired "
                        f"over examples), the direction Jain & Wallace found for BiLSTMs")
        else:
            sentence = (f"attention agrees with {name} better than gradients agree with LOO ({stats.fmt(d)}, "
                        f"paired over examples), unlike Jain & Wallace's BiLSTMs")
        findings.append(finding("tau", f"τ(gradient, LOO) − τ({label})", d.estimate, sentence, interval=d,
                                paper="SST (BiLSTM): 0.66 − 0.35 = 0.31" if other == "attention-gradient"
                                else "SST (BiLSTM): 0.66 − 0.29 = 0.37"))
        rows.append({"pair": f"gradient-loo minus {other}", "class": "all", "metric": "tau_mean_difference",
                     "value": d.estimate, "aggregate": "paired over examples with both τ defined",
                     **stats.columns(d)})
    return findings, pd.DataFrame(rows)
