"""Validation: probekit's ERASER metrics against an independent port of ERASER's own definitions, on held-out data.

DeYoung et al. (2020) score a results file with ``rationale_benchmark/metrics.py``. This script re-implements
those definitions over ERASER's own data shapes — evidence spans (start inclusive, end exclusive) keyed by
(annotation id, document id), and per-instance ``classification_scores`` / ``thresholded_scores`` dicts — and
feeds them what a submitter would: a probekit classifier's class probabilities on the full, reduced and
rationale-only inputs (computed here, one model pass per input), each method's word scores (soft predictions),
its top-|r| words as contiguous spans (hard predictions) and the words removed before the decision flips.
It then runs ``probekit.evaluation.eraser.experiment`` on the same held-out examples and prints both sets of numbers and
the largest absolute difference per metric.

Port of (each section of ERASER's ``metrics.py``):

- token F1: ``score_hard_rationale_predictions`` on token-level rationales — micro over the pooled set of
  (instance, token) pairs, macro the mean per-instance F1 over every instance with a human or predicted token;
- IOU F1: ``partial_match_score`` at 0.5 — a predicted span is a hit when its best IOU with a human span of its
  instance reaches 0.5; micro from pooled counts, macro the F1 of the mean per-instance precision and recall;
- AUPRC: ``_auprc`` (sklearn's precision–recall curve, trapezoidal ``auc``, averaged); average precision with
  single-class rationales discarded (``_score_aggregator``);
- comprehensiveness / sufficiency per threshold and AOPC: ``_instances_aopc`` (mean of p(ŷ|x) − p(ŷ|x'));
- decision-flip fraction: ``tokens_to_flip`` / document length, averaged over every annotation.

What ERASER leaves to the submitter is fixed as probekit's README states it: the k % bin is ⌈k·n/100⌉ words
(at least 1), a never-flipping example reports all n words, NaN scores rank last. Examples are the held-out
split's posts with a non-empty human rationale (probekit leaves out empty rationales and counts them).

    PYTHONPATH=. python scripts/validate_eraser.py --data-root ../shared/data [--limit 800] [--examples 60]
"""
from __future__ import annotations

import argparse
import math
import time
from collections import defaultdict
from fractions import Fraction

import numpy as np

THRESHOLDS = (1, 5, 10, 20, 50)


# --- the port: ERASER's definitions over its own shapes ------------------------------------------------------

def _f1(p, r):
    return 0.0 if p == 0 or r == 0 else 2 * p * r / (p + r)


def evidence_spans(flags, key):
    """ERASER-style evidences of one document: (key, start, end) per maximal run of 1s."""
    out, start = [], None
    for t, f in enumerate(list(flags) + [0]):
        if f and start is None:
            start = t
        elif not f and start is not None:
            out.append((key, start, t))
            start = None
    return out


def hard_scores(truth_spans, pred_spans):
    """``score_hard_rationale_predictions`` on token-level rationales: (micro F1, macro F1)."""
    truth = {(k, t) for k, a, b in truth_spans for t in range(a, b)}
    pred = {(k, t) for k, a, b in pred_spans for t in range(a, b)}
    micro = _f1(len(truth & pred) / len(pred), len(truth & pred) / len(truth))
    by_truth, by_pred = defaultdict(set), defaultdict(set)
    for k, t in truth:
        by_truth[k].add(t)
    for k, t in pred:
        by_pred[k].add(t)
    f1s = []
    for k in set(by_truth) | set(by_pred):
        both = len(by_truth[k] & by_pred[k])
        p = both / len(by_pred[k]) if by_pred[k] else 0.0
        r = both / len(by_truth[k]) if by_truth[k] else 0.0
        f1s.append(_f1(p, r))
    return micro, sum(f1s) / len(f1s)


def iou_scores(truth_spans, pred_spans, threshold=0.5):
    """``partial_match_score`` at one threshold: (micro F1, macro F1)."""
    truth, pred = defaultdict(list), defaultdict(list)
    for k, a, b in truth_spans:
        truth[k].append((a, b))
    for k, a, b in pred_spans:
        pred[k].append((a, b))
    hits = {}
    for k in set(truth) | set(pred):
        n = 0
        for a, b in pred.get(k, []):
            best = 0.0
            for c, d in truth.get(k, []):
                p, t = set(range(a, b)), set(range(c, d))
                best = max(best, len(p & t) / len(p | t) if p | t else 0.0)
            n += int(best >= threshold)
        hits[k] = n
    n_true = {k: len(v) for k, v in truth.items()}
    n_pred = {k: len(v) for k, v in pred.items()}
    tp = sum(hits.values())
    micro = _f1(tp / sum(n_pred.values()), tp / sum(n_true.values()))
    rs = [hits.get(k, 0) / n for k, n in n_true.items()]
    ps = [hits.get(k, 0) / n for k, n in n_pred.items()]
    return micro, _f1(sum(ps) / len(ps), sum(rs) / len(rs))


def soft_scores(truths, scores):
    """``score_soft_tokens``: (AUPRC as ``_auprc``, average precision without single-class rationales)."""
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve

    areas, aps = [], []
    for t, s in zip(truths, scores):
        precision, recall, _ = precision_recall_curve([int(x) for x in t], s)
        areas.append(auc(recall, precision))
        if 0 < sum(t) < len(t):
            aps.append(average_precision_score([int(x) for x in t], s))
    return float(np.average(areas)), float(np.average(aps))


def aopc(instances, field):
    """``_instances_aopc``: the mean over instances and thresholds of p(ŷ|x) − p(ŷ|x_k)."""
    table = []
    for inst in instances:
        label = inst["classification"]
        full = inst["classification_scores"][label]
        table.append([full - s[field][label] for s in sorted(inst["thresholded_scores"], key=lambda x: x["threshold"])])
    table = np.array(table)
    return float(np.average(table)), np.average(table, axis=0)


def flip_fraction(instances, lengths):
    """``score_classifications``' token percentage: tokens_to_flip / document length, averaged."""
    return float(np.average([inst["tokens_to_flip"] / lengths[inst["annotation_id"]] for inst in instances]))


# --- what a submitter computes with the classifier ----------------------------------------------------------

def ranking(scores):
    """Word indices from the highest score down; NaN last; ties in word order."""
    keyed = [(1 if math.isnan(s) else 0, -s if not math.isnan(s) else 0.0, i) for i, s in enumerate(scores)]
    return [i for _, _, i in sorted(keyed)]


def bin_words(k, n):
    return min(n, max(1, math.ceil(Fraction(k) * n / 100)))


class Model:
    """Class probabilities of word lists, one forward pass per distinct list."""

    def __init__(self, clf, batch_size=32):
        self.clf, self.batch_size, self.memo = clf, batch_size, {}

    def __call__(self, word_lists):
        import torch

        from probekit.attribution.words import model_inputs
        from probekit.core.examples import Example

        todo = [w for w in dict.fromkeys(map(tuple, word_lists)) if w not in self.memo]
        with torch.no_grad():
            if () in todo:          # every word removed: the tokenizer's input for "" ([CLS] [SEP])
                enc = self.clf.tokenizer("", return_tensors="pt")
                batch = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask")}
                if "token_type_ids" in enc and self.clf.uses_token_types:
                    batch["token_type_ids"] = enc["token_type_ids"]
                batch["word_ids"] = torch.full_like(batch["input_ids"], -1)
                self.memo[()] = torch.softmax(self.clf(**batch).float(), -1).cpu().numpy()[0].astype(np.float64)
                todo.remove(())
            for i in range(0, len(todo), self.batch_size):
                chunk = todo[i:i + self.batch_size]
                batch = self.clf.encode([Example(words=list(w)) for w in chunk], warn=False)
                probs = torch.softmax(self.clf(**model_inputs(batch)).float(), -1).cpu().numpy()
                self.memo.update(zip(chunk, probs.astype(np.float64)))
        return [self.memo[tuple(w)] for w in word_lists]


def instances_for(model, labels, examples, method_scores):
    """ERASER result instances of one method (hard and soft predictions, thresholded scores, tokens to flip)."""
    out, pred_spans = [], []
    for e, (ex, scores) in enumerate(zip(examples, method_scores)):
        words, r = list(ex.words), ex.meta["rationale"]
        n, key = len(words), str(e)
        order = ranking(list(scores))
        top = set(order[:sum(r)])
        pred_spans += evidence_spans([int(i in top) for i in range(n)], key)
        full = model([words])[0]
        y = int(np.argmax(full))
        thresholded = []
        for k in THRESHOLDS:
            c = bin_words(k, n)
            gone = set(order[:c])
            without, only = model([[w for i, w in enumerate(words) if i not in gone],
                                   [w for i, w in enumerate(words) if i in gone]])
            thresholded.append({"threshold": k / 100,
                                "comprehensiveness_classification_scores": dict(zip(labels, without)),
                                "sufficiency_classification_scores": dict(zip(labels, only))})
        flip = n
        for size in range(1, n + 1):
            gone = set(order[:size])
            if int(np.argmax(model([[w for i, w in enumerate(words) if i not in gone]])[0])) != y:
                flip = size
                break
        finite = np.asarray(scores, dtype=np.float64)
        soft = np.where(np.isnan(finite), np.nanmin(finite) - 1.0, finite) if not np.isnan(finite).all() \
            else np.zeros(n)
        out.append({"annotation_id": key, "classification": labels[y], "classification_scores": dict(zip(labels, full)),
                    "thresholded_scores": thresholded, "tokens_to_flip": flip if n > 1 else 1,
                    "soft": soft.tolist()})
    return out, pred_spans


def port(model, labels, examples, method_scores):
    instances, pred_spans = instances_for(model, labels, examples, method_scores)
    truth_spans = [s for e, ex in enumerate(examples) for s in evidence_spans(ex.meta["rationale"], str(e))]
    token_micro, token_macro = hard_scores(truth_spans, pred_spans)
    iou_micro, iou_macro = iou_scores(truth_spans, pred_spans)
    auprc, ap = soft_scores([ex.meta["rationale"] for ex in examples], [i["soft"] for i in instances])
    comp, _ = aopc(instances, "comprehensiveness_classification_scores")
    suff, _ = aopc(instances, "sufficiency_classification_scores")
    lengths = {str(e): len(ex.words) for e, ex in enumerate(examples)}
    return {"token_f1": token_macro, "token_f1_micro": token_micro, "iou_f1": iou_macro, "iou_f1_micro": iou_micro,
            "auprc": auprc, "average_precision": ap, "aopc_comprehensiveness": comp, "aopc_sufficiency": suff,
            "flip_fraction": flip_fraction(instances, lengths)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", default="../shared/data")
    p.add_argument("--limit", type=int, default=800, help="training posts of the quick classifier")
    p.add_argument("--examples", type=int, default=60, help="held-out posts with a human rationale")
    p.add_argument("--methods", nargs="+", default=["pooling", "gradient"])
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    import probekit as pk
    from probekit.attribution.explain import explain
    from probekit.corpora.labelled import load_split
    from probekit.evaluation.eraser import experiment as eraser
    from probekit.evaluation.base import Context

    t0 = time.perf_counter()
    train, dev, test = (load_split(f"hatexplain:{s}", what=s, data_root=args.data_root) for s in ("train", "dev", "test"))
    clf = pk.classify(train, dev, limit=args.limit, head="attention", baselines=False, quiet=True,
                      seed=args.seed).classifier
    held = [ex for ex in test if sum(ex.meta.get("rationale") or []) > 0]
    pick = np.sort(np.random.default_rng(args.seed).permutation(len(held))[:args.examples])
    held = [held[i] for i in pick]
    print(f"classifier: attention head on {args.limit} HateXplain training posts ({time.perf_counter() - t0:.0f} s); "
          f"held out: {len(held)} test posts with a human rationale")

    ctx = Context(classifier=clf, examples=held, source=None, seed=args.seed, batch_size=32, quiet=True,
                  rationales=True, methods=args.methods)
    out = eraser.run(ctx)
    table = out.tables[eraser.EXPERIMENT]
    agg = table[table["example"].isna() & table["k"].isna() & table["aggregate"].notna()]
    ours = {(r.method, r.metric): float(r.value) for r in agg.itertuples()}

    explained = explain(clf, held, args.methods, seed=args.seed, batch_size=32)
    for ex, units in zip(held, explained.units):
        assert len(units) == len(ex.words), "a post was cut by the length limit"
    scores = {m: explained.scores(m) for m in args.methods}
    rng = np.random.default_rng([args.seed, 10])           # the random ranking's generator (seed, salt 10)
    scores[eraser.RANDOM] = [rng.permutation(len(ex.words)).astype(np.float64) for ex in held]
    model = Model(clf)
    labels = [str(l) for l in clf.labels]
    worst = {}
    print("\n| method | metric | probekit | ERASER port | abs diff |\n|---|---|---|---|---|")
    for m, s in scores.items():
        theirs = port(model, labels, held, s)
        for metric, value in theirs.items():
            mine = ours.get((m, metric), float("nan"))
            diff = abs(mine - value)
            worst[metric] = max(worst.get(metric, 0.0), diff)
            print(f"| {m} | {metric} | {mine:.6f} | {value:.6f} | {diff:.2e} |")
    print("\nlargest absolute difference per metric (over methods): "
          + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))
    print(f"overall max abs difference: {max(worst.values()):.2e} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
