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
predicted class; NaN cases (constant vectors, one-word inputs) are counted.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from ..attribution.occlusion import class_distributions, without_word
from ..attribution.words import model_inputs, to_words
from ..core.progress import progress
from ..report.result import tidy
from .base import Context, Outcome, finding
from .jw_permutation import label_of, model_name
from .metrics import kendall, tvd

PAIRS = {"attention-gradient": ("attention", "gradient"), "attention-loo": ("attention", "loo"),
         "gradient-loo": ("gradient", "loo")}

#: J&W's repo values (BiLSTM + tanh attention, SST, the nearest sentiment set) and the range over their datasets
PAPER = {"attention-gradient": "SST (BiLSTM): 0.35 ± 0.21; −0.02…0.47 across datasets",
         "attention-loo": "SST (BiLSTM): 0.29 ± 0.19; −0.01…0.47 across datasets",
         "gradient-loo": "SST (BiLSTM): 0.66 ± 0.16; 0.44…0.68 across datasets (SNLI 0.24)"}
PAPER_AVERAGE = {"attention-gradient": "SST (non-contextual 'average' encoder): 0.61 ± 0.20"}


def gradient_importance(classifier, batch: dict, kind: str = "pooling"):
    """(|gradient × input| per unit, one array per example; class probabilities [B, C] of the live forward).

    ``kind="pooling"``: the head's attention is detached; ``"cls"``: the plain forward pass."""
    from ..attribution.gradients import embedding_gradients
    from ..classify.heads import masked_softmax

    out = {}

    def predicted_probability(inputs):
        if kind == "pooling":
            head = classifier.head
            units, mask, _ = classifier.units(**inputs)
            alpha = masked_softmax(head.v(torch.tanh(head.W(units)))[..., 0], mask).detach()
            logits = head.out(head.dropout(torch.einsum("bu,bud->bd", alpha, units)))
        else:
            logits = classifier(**inputs)
        probs = out["probs"] = torch.softmax(logits.float(), -1)
        return probs.gather(1, probs.argmax(1)[:, None]).sum()

    grad, e = embedding_gradients(classifier, batch, objective=predicted_probability)
    probs = out["probs"]
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
    """Per pair and class (all, each predicted class): mean, std, share p ≤ 0.05, defined cases, NaN cases."""
    rows = []
    labels = ["all"] + [label_of(ctx, c) for c in range(ctx.classifier.n_classes)]
    for pair in PAIRS:
        part = frame[frame["pair"] == pair]
        for cls in labels:
            sel = part if cls == "all" else part[part["predicted"] == cls]
            tau = sel.loc[sel["metric"] == "tau", "value"].to_numpy(float)
            p = sel.loc[sel["metric"] == "p", "value"].to_numpy(float)
            ok = np.isfinite(tau)
            stats = {"tau_mean": np.mean(tau[ok]) if ok.any() else np.nan,
                     "tau_std": np.std(tau[ok]) if ok.any() else np.nan,
                     "share_p_le_0.05": np.mean(p[ok] <= 0.05) if ok.any() else np.nan,
                     "n": int(ok.sum()), "n_nan": int((~ok).sum())}
            agg = "examples" if cls == "all" else f"examples predicted {cls}"
            rows += [{"pair": pair, "class": cls, "metric": k, "value": float(v), "aggregate": agg}
                     for k, v in stats.items()]
    return pd.DataFrame(rows)


def run(ctx: Context) -> Outcome:
    t0 = time.perf_counter()
    clf, source = ctx.classifier, ctx.source
    kind = "cls" if getattr(source, "kind", "") == "cls" else "pooling"
    rows = []
    for idx in progress(list(source.batches(ctx.batch_size)), desc="tau", unit="batch"):
        examples = [ctx.examples[i] for i in idx.tolist()]
        units, mask = source.batch(idx)
        with torch.no_grad():
            alpha = source.attention(units, mask).double().cpu().numpy()
        mask = mask.cpu().numpy()
        batch = clf.encode(examples, warn=False)
        grads, p0 = gradient_importance(clf, batch, kind)
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
    mean = {pair: float(summary.query("pair == @pair and `class` == 'all' and metric == 'tau_mean'")["value"].iloc[0])
            for pair in PAIRS}
    noncontextual = getattr(clf, "encoder_mode", "") == "none"
    findings = []
    what = {"attention-gradient": "attention and gradient importance",
            "attention-loo": "attention and leave-one-out",
            "gradient-loo": "gradient importance and leave-one-out (the yardstick)"}
    for pair in PAIRS:
        m = mean[pair]
        strength = ("undefined" if not np.isfinite(m) else "strong" if m >= 0.5 else "moderate" if m >= 0.3
                    else "weak" if m >= 0.1 else "hardly any")
        paper = PAPER_AVERAGE.get(pair, PAPER[pair]) if noncontextual else PAPER[pair]
        findings.append(finding("tau", f"mean τ({pair.replace('-', ', ').replace('loo', 'LOO')})", m,
                                f"τ = {m:.2f}: {strength} agreement between {what[pair]} on which words matter",
                                paper=paper))
    for other in ("attention-gradient", "attention-loo"):
        gap = mean["gradient-loo"] - mean[other]
        name = "gradients" if other == "attention-gradient" else "leave-one-out"
        if not np.isfinite(gap):
            sentence = "undefined here (no example with a defined τ)"
        elif abs(gap) < 0.02:
            sentence = (f"attention agrees with {name} about as well as gradients agree with LOO (within "
                        f"{abs(gap):.2f}), unlike Jain & Wallace's BiLSTM on SST, where the gap was "
                        f"{0.31 if other == 'attention-gradient' else 0.37:.2f}")
        elif gap > 0:
            sentence = (f"attention agrees with {name} less than gradients agree with LOO (by {gap:.2f}), "
                        f"as Jain & Wallace found for BiLSTMs")
        else:
            sentence = (f"attention agrees with {name} better than gradients agree with LOO (by {-gap:.2f}), "
                        f"unlike Jain & Wallace's BiLSTMs")
        findings.append(finding("tau", f"τ(gradient, LOO) − τ({other.replace('-', ', ').replace('loo', 'LOO')})",
                                gap, sentence,
                                paper="SST (BiLSTM): 0.66 − 0.35 = 0.31" if other == "attention-gradient"
                                else "SST (BiLSTM): 0.66 − 0.29 = 0.37"))
    return Outcome("tau",
                   tables={"tau": tidy(frame, task="tau", model=model, keys=["example", "pair"]),
                           "tau-summary": tidy(summary, task="tau", model=model, keys=["pair", "class"])},
                   findings=findings, counts=counts, seconds=time.perf_counter() - t0)
