"""ERASER-style faithfulness (DeYoung et al. 2020) of every attribution method of ``pk.attribute``.

For each example, each method's word scores rank the words (target = the predicted class ŷ). Highest score
first, for signed methods too: a word that *supports* ŷ ranks high, one that argues against it ranks last
(so removing the top words is removing the evidence for ŷ). NaN scores (words without a piece) rank last,
ties keep word order. With n words and k %, the top ``max(1, ⌈k·n/100⌉)`` words (at most n) are the rationale:

- comprehensiveness(k) = p(ŷ|x) − p(ŷ|x without the rationale)   (higher: the method found what mattered)
- sufficiency(k)       = p(ŷ|x) − p(ŷ|the rationale only)        (lower: the rationale alone keeps ŷ)
- AOPC = the mean of each over the bins k ∈ ``ks`` (default 1, 5, 10, 20, 50 %).

Words are removed by *deletion*: the kept words, in their original order, are re-encoded (from each word's
cached token pieces where the tokenizer gives the same ids that way, ``attribution.pieces``), as
occlusion's ``without_word`` does (a pair keeps its two segments; deleting every word leaves ``[CLS] [SEP]``).
Only the words the classifier saw count (words cut by its length limit are never put back), and p(ŷ|x) is
computed the same way from all of them, so removing nothing changes nothing.

Besides the methods, a seeded ``random`` ranking (one permutation per example) is the baseline every method
should beat. The decision-flip fraction (on deletion): words are removed one at a time in each ranking's order
until argmax changes; fraction = removed / n. ``flip_fraction`` is ERASER's: every example counts, a never-flip
(or one-word) example as 1; ``flip_fraction_flipped`` averages the examples that flip only (Serrano & Smith's
exclusion; never-flip examples are counted). Every removal size 1…n is tried, batched over all (example, ranking)
pairs per size, each pair stopping at its first flip, and one forward pass per distinct input (rankings that
agree share it) — cost ≈ Σ over pairs of the words removed before the flip (n for a never-flip pair).
``flip_max_words`` caps the sizes tried (0: no cap); pairs not flipped by then count as never-flip (so
``flip_fraction`` is then an upper bound).

Word scores come from one ``attribution.explain`` call over all examples with ``ctx.batch_size`` examples per batch;
integrated gradients (50 Gauss–Legendre steps, forward and backward) packs its steps × examples into passes of its
own row budget (``ig_rows``). Every deletion variant — occlusion's inside the attribution, the bins', the flips' —
is run once per distinct input (occlusion's remembered for ERASER by ``occlusion.shared_variants``), in passes of
one token count (no padding). Both are
at their floor (the passes' matrix products): IG is about 40 % of the CPU time, the variants about 55 %, and the
bootstrap intervals (vectorized: all resamples at once) about 1 %.

With ``ctx.rationales`` (examples carrying ``meta["rationale"]``, 0/1 per word: HateXplain), plausibility per
method against the human rationale r, under ERASER's names and definitions (``eraser_metrics``): AUPRC,
average precision, token F1 and IOU F1 (macro and micro) of its top-|r| words. Examples with an empty (all-0)
or missing rationale are excluded and counted. Every aggregate has a 95 % bootstrap interval over the examples
and the methods are ranked in tiers with ties (``eraser_report``).
"""
from __future__ import annotations

import math
import time
from fractions import Fraction

import numpy as np
import pandas as pd

from probekit.attribution.occlusion import class_distributions
from probekit.core.examples import Example
from probekit.evaluation.base import Context, Outcome
from probekit.evaluation.eraser.metrics import PLAUSIBILITY, _f1, metrics, plausibility_parts

EXPERIMENT = "eraser"
RANDOM = "random"


def bin_size(k, n: int) -> int:
    """Words in a k % rationale of n words: ⌈k·n/100⌉ computed exactly, at least 1, at most n."""
    if n <= 0:
        return 0
    return int(min(n, max(1, math.ceil(Fraction(str(k)) * n / 100))))


def rank(scores) -> np.ndarray:
    """Word indices from the highest score to the lowest (NaN last; ties in word order)."""
    s = np.asarray(scores, dtype=np.float64)
    key = np.where(np.isnan(s), np.inf, -s)
    return np.argsort(key, kind="stable")


def _example_value(name: str, part: np.ndarray) -> float:
    """One example's own value of a plausibility metric (its F1 from its counts; NaN when it does not count)."""
    if np.isnan(part).any():
        return float("nan")
    if len(part) == 3:
        hits, pred, true = part
        return _f1(hits / pred if pred else 0.0, hits / true if true else 0.0)
    return float(part[0])


class Unit:
    """One example as the classifier saw it: its n words (the attribution frame's), and how to delete some."""

    def __init__(self, example: Example, words: list[str]):
        self.n = len(words)
        if example.words is not None:      # pre-split (pairs always are): the example's own words, both segments
            self.all = list(example.words) + list(example.words_b or [])
            self.n_a = len(example.words)
            self.pair = example.words_b is not None
        else:                              # text: the words of the tokenizer's pre-tokenisation
            self.all, self.n_a, self.pair = list(words), len(words), False

    def keep(self, kept) -> Example:
        """The example with only the words ``kept`` (indices < n, any order), in their original order."""
        kept = sorted(kept)
        a = [self.all[i] for i in kept if i < self.n_a]
        b = [self.all[i] for i in kept if i >= self.n_a]
        return Example(words=a, words_b=b if self.pair else None)


class Evaluator:
    """p(· | example with only some words kept), one forward pass per distinct (example, kept words)."""

    def __init__(self, classifier, units: list[Unit], batch_size: int):
        from probekit.attribution.pieces import Pieces

        self.classifier, self.units, self.batch_size = classifier, units, batch_size
        self.cache: dict[tuple, np.ndarray] = {}
        self.pieces = Pieces(classifier) if hasattr(classifier, "tokenize") else None   # shared by every size

    def __call__(self, requests) -> list[np.ndarray]:
        """``requests``: (unit index, kept indices) pairs → their class distributions (in request order)."""
        keys = [(u, tuple(sorted(int(i) for i in kept))) for u, kept in requests]
        todo = list(dict.fromkeys(k for k in keys if k not in self.cache))
        if todo:
            probs = class_distributions(self.classifier, [self.units[u].keep(kept) for u, kept in todo],
                                        self.batch_size, desc="eraser inputs", pieces=self.pieces)
            self.cache.update(zip(todo, probs))
        return [self.cache[k] for k in keys]

    @property
    def passes(self) -> int:
        """Distinct inputs asked for (``counts["distinct_inputs"]``); those occlusion already ran are not run again."""
        return len(self.cache)


def first_flips(evaluate: Evaluator, pairs, pred, max_words: int = 0, bar=None) -> dict:
    """For each (unit, ranking name, order): the words removed in that order before argmax ≠ ŷ (None: never).
    One batched evaluation per removal size over every pair still unflipped; ``max_words`` caps the sizes."""
    active = list(range(len(pairs)))
    found = {}
    size = 0
    while active:
        size += 1
        active = [p for p in active if size <= evaluate.units[pairs[p][0]].n and (not max_words or size <= max_words)]
        if not active:
            break
        req = [(pairs[p][0], pairs[p][2][size:]) for p in active]
        dists = evaluate(req)
        still = []
        for p, d in zip(active, dists):
            if int(np.argmax(d)) != pred[pairs[p][0]]:
                found[p] = size
            else:
                still.append(p)
        active = still
        if bar is not None:
            bar.update(1)
    return {p: found.get(p) for p in range(len(pairs))}


def run(ctx: Context) -> Outcome:
    """The experiment; ``ctx.quiet`` silences its progress bars, and every deletion variant (occlusion's inside
    the attribution, ERASER's own) is run once however many methods, bins and flip sizes produce it (ERASER's own
    repeats by :class:`Evaluator`'s cache, occlusion's by the shared memo)."""
    from probekit.attribution.occlusion import shared_variants
    from probekit.core.progress import quiet

    with quiet(ctx.quiet), shared_variants():
        return _run(ctx)


def _run(ctx: Context) -> Outcome:
    from probekit.attribution import registry
    from probekit.attribution.explain import explain
    from probekit.core.progress import progress

    t0 = time.perf_counter()
    out = Outcome(EXPERIMENT)
    clf = ctx.classifier
    if not ctx.examples:
        out.skipped = "no examples"
        return out
    ks = [float(k) if not float(k).is_integer() else int(k) for k in ctx.option("ks")]
    max_words = int(ctx.option("flip_max_words"))
    methods = registry.resolve(ctx.methods, clf)
    explained = explain(clf, ctx.examples, methods, seed=ctx.seed, batch_size=ctx.batch_size)
    N = len(ctx.examples)
    words, pred = explained.units, explained.target_ids()
    scores = {m: explained.scores(m) for m in methods}
    units = [Unit(ex, w) for ex, w in zip(ctx.examples, words)]
    rng = ctx.rng(salt=10)
    scores[RANDOM] = [rng.permutation(u.n).astype(np.float64) for u in units]
    rankings = [*methods, RANDOM]
    orders = {m: [rank(s) for s in scores[m]] for m in rankings}
    evaluate = Evaluator(clf, units, ctx.batch_size)

    # comprehensiveness and sufficiency: every (example, ranking, k) variant in one batched sweep
    full = evaluate([(e, range(u.n)) for e, u in enumerate(units)])
    pred = np.where(pred >= 0, pred, [int(np.argmax(p)) for p in full])   # examples without any word
    full = [p[pred[e]] for e, p in enumerate(full)]
    req, meta = [], []
    for m in rankings:
        for e, u in enumerate(units):
            for k in ks:
                c = bin_size(k, u.n)
                o = orders[m][e]
                req += [(e, o[c:]), (e, o[:c])]
                meta.append((e, m, k, c, u.n))
    dists = evaluate(req)
    rows = []
    for j, (e, m, k, c, n) in enumerate(meta):
        y = pred[e]
        rows.append(dict(example=e, method=m, k=k, words=c, n_words=n,
                         comprehensiveness=full[e] - dists[2 * j][y], sufficiency=full[e] - dists[2 * j + 1][y]))
    per_k = pd.DataFrame(rows)

    # decision flips, every ranking at once, one removal size at a time
    pairs = [(e, m, orders[m][e]) for m in rankings for e, u in enumerate(units) if u.n >= 2]
    steps = max((u.n for u in units), default=0)
    bar = progress(total=min(steps, max_words) if max_words else steps, desc="eraser flips", unit="size")
    flips = first_flips(evaluate, pairs, pred, max_words, bar)
    bar.close()
    flip = {(pairs[p][0], pairs[p][1]): (None if s is None else s / units[pairs[p][0]].n) for p, s in flips.items()}

    per_ex = per_k.groupby(["example", "method"], sort=False)[["comprehensiveness", "sufficiency"]].mean()
    per_ex = per_ex.rename(columns=lambda c: f"aopc_{c}").reset_index()
    fractions = [flip.get((e, m), np.nan) for e, m in zip(per_ex["example"], per_ex["method"])]
    n_words = np.array([units[e].n for e in per_ex["example"]])
    flipped = np.array([np.nan if f is None else f for f in fractions], dtype=np.float64)
    # ERASER's fraction counts every example: a never-flip one (or one word) as all its words removed
    per_ex["flip_fraction"] = np.where(n_words < 1, np.nan, np.where(np.isnan(flipped), 1.0, flipped))
    per_ex["flip_fraction_flipped"] = flipped
    out.counts = {"examples": N, "single_word": sum(u.n < 2 for u in units),
                  "nan_scores": int(sum(np.isnan(s).sum() for m in methods for s in scores[m])),
                  "distinct_inputs": evaluate.passes}
    for m in rankings:
        out.counts[f"never_flip_{m}"] = sum(1 for (e, mm), v in flip.items() if mm == m and v is None)

    plausibility = None
    if ctx.rationales:
        rationales, missing, empty = [], 0, 0
        for ex, u in zip(ctx.examples, units):
            r = ex.meta.get("rationale")
            if r is None or len(r) < u.n:
                missing += 1
                rationales.append(None)
                continue
            r = np.asarray(r[:u.n], dtype=int)
            empty += int(r.sum() == 0)
            rationales.append(r if r.sum() else None)
        parts = {m: plausibility_parts(orders[m], scores[m], rationales) for m in rankings}
        plausibility = {name: {m: parts[m][name] for m in rankings} for name in PLAUSIBILITY}
        for name in (n for n in PLAUSIBILITY if not n.endswith("_micro")):   # per-example values (micro: pooled)
            per_ex[name] = [_example_value(name, plausibility[name][m][e])
                            for e, m in zip(per_ex["example"], per_ex["method"])]
        out.counts.update(no_rationale=missing, empty_rationale=empty)

    from probekit.evaluation.eraser.report import assess, figure, findings, per_k_intervals, ranking, tables

    measures = metrics(per_ex, rankings, plausibility)
    results = {name: assess(ctx, metric, rankings) for name, metric in measures.items()}
    k_rows = per_k_intervals(ctx, per_k)
    out.tables = tables(per_k, per_ex, k_rows, results, clf.source.name)
    out.ranking = ranking(results, rankings)
    out.findings = findings(ctx, measures, results, rankings, out.counts, ks)
    out.figures = {"eraser-curves": figure(k_rows, rankings, ks)}
    out.seconds = time.perf_counter() - t0
    return out
