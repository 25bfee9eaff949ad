"""Perturbation and key-word attacks on a classifier: the long table, the summary table and the curve figure.

Metrics per setting: ``accuracy`` (against the gold labels) and ``flip_rate`` (share of examples whose
prediction differs from the prediction on the intact input). Random settings (word shuffle, distractor, random
words) are run ``draws`` times with seeds ``seed, seed + 1, …``; the table keeps every draw and adds
``mean``/``std`` rows over the draws (``aggregate`` says which).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from probekit.core.errors import UserError
from probekit.attacks import perturb
from probekit.attacks.catalogue import attack_names, get_attack

SETTING_ORDER = ["intact", "word-shuffle", "distractor", "delete-top", "delete-random", "mask-top", "mask-random"]


def gold_ids(classifier, examples, dataset: str) -> np.ndarray:
    labels = [str(l) for l in classifier.labels]
    out = []
    for ex in examples:
        lab = ex.meta.get("label")
        if lab is None or str(lab) not in labels:
            src = ex.meta.get("source", dataset)
            raise UserError(f"{src}: label {lab!r} is not one of the classifier's labels ({', '.join(labels)})")
        out.append(labels.index(str(lab)))
    return np.asarray(out, dtype=np.int64)


def word_scores(classifier, examples, *, method: str, batch_size: int, seed: int, **method_options):
    """(words, scores) per example from ``attribution.explain`` with one method (target: the predicted class)."""
    from probekit.attribution.explain import explain

    explained = explain(classifier, list(examples), [method], batch_size=batch_size, seed=seed, **method_options)
    return [[str(w) for w in ws] for ws in explained.units], explained.scores(method)


def _row(dataset, setting, metric, value, *, k=None, draw=None, aggregate=None, operation=None, selection=None,
         n_words=None):
    return dict(dataset=dataset, setting=setting, operation=operation, selection=selection, k=k, draw=draw,
                metric=metric, value=float(value), aggregate=aggregate, words_changed=n_words)


def _score(pred, gold, base) -> tuple[float, float]:
    return float(np.mean(pred == gold)), float(np.mean(pred != base))


def evaluate(classifier, examples, dataset: str, *, ks, draws: int, method: str, seed: int, batch_size: int,
             attacks=("word-shuffle", "distractor", "delete", "mask"), resamples: int | None = None):
    """(rows of the long table, augmented Examples: top-word deletion and masking at the largest k). The rows
    end with each setting's accuracy drop from intact, with its paired interval (:mod:`.drops`)."""
    from probekit.core.progress import progress
    from probekit.attacks.drops import Drops, correct

    gold = gold_ids(classifier, examples, dataset)
    base = perturb.predict_ids(classifier, examples, batch_size)
    drops = Drops(dataset, correct(base, gold), seed=seed, **({"resamples": resamples} if resamples else {}))
    rows = [{**_row(dataset, "intact", "accuracy", np.mean(base == gold)), **drops.intact_interval()},
            _row(dataset, "intact", "flip_rate", 0.0)]
    chosen = [get_attack(n) for n in attack_names("single-text", "test") if n in attacks]
    ops = [a.operation for a in chosen if a.kind == "keyword"]
    simple = [(a.name, a().apply) for a in chosen if a.kind == "transform"]
    bar = progress(total=len(simple) * draws + len(ops) * len(ks) * (1 + draws), desc=f"attacks {dataset}",
                   unit="setting")
    for name, fn in simple:
        for d in range(draws):
            pred = perturb.predict_ids(classifier, fn(examples, seed + d), batch_size)
            acc, flip = _score(pred, gold, base)
            drops.add(name, correct(pred, gold))
            rows += [_row(dataset, name, "accuracy", acc, draw=d), _row(dataset, name, "flip_rate", flip, draw=d)]
            bar.update(1)
    augmented = []
    if not ops:
        bar.close()
        return with_draw_means(rows) + drops.rows(), augmented
    words, scores = word_scores(classifier, examples, method=method, batch_size=batch_size, seed=seed)
    token = perturb.mask_token(classifier.tokenizer)
    for op in ops:
        for k in ks:
            m = [perturb.n_selected(k, len(w)) for w in words]
            changed = float(np.mean(m)) if m else 0.0
            top = [perturb.keyword_variant(ex, w, perturb.top_indices(s, n), op, token)
                   for ex, w, s, n in zip(examples, words, scores, m)]
            pred = perturb.predict_ids(classifier, top, batch_size)
            acc, flip = _score(pred, gold, base)
            drops.add(f"{op}-top", correct(pred, gold), k=k, operation=op, selection="top")
            kw = dict(k=k, operation=op, selection="top", n_words=changed)
            rows += [_row(dataset, f"{op}-top", "accuracy", acc, **kw),
                     _row(dataset, f"{op}-top", "flip_rate", flip, **kw)]
            if k == max(ks):
                augmented += [_tag(v, f"{op}-top-{k:g}%") for v in top]
            bar.update(1)
            for d in range(draws):
                rng = np.random.default_rng(seed + d)
                rand = [perturb.keyword_variant(ex, w, perturb.random_indices(len(w), n, rng), op, token)
                        for ex, w, n in zip(examples, words, m)]
                pred = perturb.predict_ids(classifier, rand, batch_size)
                acc, flip = _score(pred, gold, base)
                drops.add(f"{op}-random", correct(pred, gold), k=k, operation=op, selection="random")
                kw = dict(k=k, operation=op, selection="random", n_words=changed, draw=d)
                rows += [_row(dataset, f"{op}-random", "accuracy", acc, **kw),
                         _row(dataset, f"{op}-random", "flip_rate", flip, **kw)]
                bar.update(1)
    bar.close()
    return with_draw_means(rows) + drops.rows(), augmented


def _tag(example, attack: str):
    example.meta = {**example.meta, "attack": attack}
    return example


def with_draw_means(rows: list[dict]) -> list[dict]:
    """Add ``mean`` and ``std`` (sample, ddof=1; 0 for one draw) rows over the draws of each random setting."""
    df = pd.DataFrame(rows)
    drawn = df[df["draw"].notna()]
    keys = ["dataset", "setting", "operation", "selection", "k", "metric"]
    out = list(rows)
    for key, g in drawn.groupby(keys, dropna=False, sort=False):
        first = g.iloc[0].to_dict()
        v = g["value"].to_numpy()
        n = len(v)
        for agg, val in (("mean", v.mean()), ("std", v.std(ddof=1) if n > 1 else 0.0)):
            out.append({**first, "draw": None, "value": float(val), "aggregate": f"{agg} over {n} draws"})
    return out


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows = settings (with k), columns = datasets; cells ``mean ± std`` accuracy (flip rate in brackets)."""
    def cell(g):
        acc = _stat(g, "accuracy")
        flip = _stat(g, "flip_rate")
        return f"{acc} ({flip})"

    def _stat(g, metric):
        g = g[g["metric"] == metric]
        mean = g[g["aggregate"].fillna("").str.startswith("mean")]
        if len(mean):
            std = g[g["aggregate"].fillna("").str.startswith("std")]["value"].iloc[0]
            return f"{mean['value'].iloc[0]:.3f} ± {std:.3f}"
        return f"{g['value'].iloc[0]:.3f}"

    df = frame.copy()
    df["k_"] = df["k"].map(lambda k: "" if pd.isna(k) else f"{k:g}%")
    table = {}
    for (ds, setting, k), g in df.groupby(["dataset", "setting", "k_"], sort=False):
        table.setdefault((setting, k), {})[ds] = cell(g)
    order = sorted(table, key=lambda sk: (SETTING_ORDER.index(sk[0]) if sk[0] in SETTING_ORDER else 99,
                                         float(sk[1][:-1]) if sk[1] else -1))
    out = pd.DataFrame([{"setting": s, "k": k, **table[(s, k)]} for s, k in order])
    return out


def curve_figure(frame: pd.DataFrame, dataset: str, chance: float):
    """Accuracy and flip rate against k: top-k words vs k random words (±1 std band over the draws), deletion and
    masking; accuracy bars: the 95 % interval of the drop from intact, paired over the examples."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    df = frame[frame["dataset"] == dataset]
    intact = df[(df["setting"] == "intact") & (df["metric"] == "accuracy")]["value"].iloc[0]
    colours = {"delete": "tab:red", "mask": "tab:blue"}
    for ax, metric in zip(axes, ("accuracy", "flip_rate")):
        for op in perturb.OPERATIONS:
            for sel, style in (("top", "-"), ("random", "--")):
                g = df[(df["setting"] == f"{op}-{sel}") & (df["metric"] == metric)]
                if sel == "random":
                    mean = g[g["aggregate"].fillna("").str.startswith("mean")].sort_values("k")
                    std = g[g["aggregate"].fillna("").str.startswith("std")].sort_values("k")
                    ax.fill_between(mean["k"], mean["value"] - std["value"].to_numpy(),
                                    mean["value"] + std["value"].to_numpy(), color=colours[op], alpha=0.15)
                    g = mean
                g = g.sort_values("k")
                drop = df[(df["setting"] == f"{op}-{sel}") & (df["metric"] == "accuracy_drop")]
                if metric == "accuracy" and len(drop) and "ci_low" in drop:   # the drop's 95% CI, paired
                    drop = drop.set_index("k").reindex(g["k"])
                    y = g["value"].to_numpy(float)
                    err = np.vstack([y - (intact - drop["ci_high"].to_numpy(float)),
                                     (intact - drop["ci_low"].to_numpy(float)) - y])
                    ax.errorbar(g["k"], y, yerr=np.nan_to_num(np.abs(err)), fmt="none", ecolor=colours[op],
                                capsize=2, alpha=0.8)
                ax.plot(g["k"], g["value"], style, marker="o" if sel == "top" else "s", color=colours[op],
                        markerfacecolor=colours[op] if sel == "top" else "white",
                        label=f"{op} {'top-k words' if sel == 'top' else 'k random words'}")
        if metric == "accuracy":
            ax.axhline(intact, color="black", linewidth=1, label=f"intact ({intact:.3f})")
            ax.axhline(chance, color="grey", linestyle=":", linewidth=1, label=f"majority class ({chance:.3f})")
        ax.set_xscale("log")
        ks = sorted(df["k"].dropna().unique())
        ax.set_xticks(ks)
        ax.set_xticklabels([f"{k:g}" for k in ks])
        ax.set_xlabel("k (% of the words)")
        ax.set_ylabel(metric.replace("_", " "))
        ax.legend(fontsize=7)
    fig.suptitle(f"key-word attacks — {dataset}")
    fig.tight_layout()
    return fig
