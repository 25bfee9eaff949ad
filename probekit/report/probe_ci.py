"""The interval sentence of ``results.md``: per split, the best layer against the runner-up on the same sentences."""
from __future__ import annotations

import numpy as np
import pandas as pd

from probekit.core.intervals import compare_sentence, paired_difference


def per_sentence(correctness: dict, layer, probe: str, split: str, k: int) -> np.ndarray | None:
    """[N] accuracy of each sentence over the task's ``k`` keys, averaged over the seeds (NaN: no target)."""
    runs = [c[:, :k] for (l, p, s, _), c in correctness.items() if l == layer and p == probe and s == split]
    if not runs:
        return None
    stacked = np.stack(runs).astype(np.float64)
    have = np.isfinite(stacked)
    total = np.where(have, stacked, 0.0).sum(axis=(0, 2))
    count = have.sum(axis=(0, 2))
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def layer_sentences(df: pd.DataFrame, correctness: dict, *, seed: int = 0) -> str:
    """One sentence per split: the best (layer, probe) by mean accuracy against the best other layer of that probe,
    the difference bootstrapped paired over the same sentences. Empty when there is nothing to compare."""
    acc = df[(df["metric"] == "accuracy") & ~df["probe"].str.endswith("-nopos")]
    if not correctness or acc.empty:
        return ""
    k = int(acc.groupby([c for c in ("layer", "probe", "split", "seed") if c in acc.columns]).size().max())
    lines = []
    for split in acc["split"].unique():
        mean = acc[acc["split"] == split].groupby(["probe", "layer"], sort=False)["value"].mean().dropna()
        if mean.empty:
            continue
        probe, best = mean.idxmax()
        others = mean.loc[probe].drop(best)
        if others.empty:
            continue
        second = others.idxmax()
        a = per_sentence(correctness, best, probe, split, k)
        b = per_sentence(correctness, second, probe, split, k)
        if a is None or b is None:
            continue
        diff = paired_difference(a, b, seed=seed, vectorized=True)
        text = compare_sentence(f"layer {best}", f"layer {second}", diff, quantity=f"{probe}-probe accuracy")
        lines.append(f"- **{split}**: best layer {best} against runner-up layer {second}: {text}.")
    if not lines:
        return ""
    return ("## Best layer against the runner-up (paired over the same sentences)\n\n" + "\n".join(lines)
            + "\n\nIntervals are 95 % paired bootstrap intervals over sentences (BCa); `ci_low`/`ci_high` in "
              "results.csv give every accuracy, control accuracy and selectivity its own interval.\n\n")


def probe_sentences(df: pd.DataFrame, key_names=(), correctness: dict | None = None, *, seed: int = 0) -> str:
    """Per split and pair of probes (``accuracy_difference`` rows, paired over the same sentences): the pair's
    difference at the layer where either probe scores best, then how many layers each probe wins. With several
    seeds and the sweep's ``correctness``, each sentence's accuracy is first averaged over the seeds (and the
    task's keys), and the pair is compared on those, paired over the same sentences."""
    from probekit.core.intervals import Interval

    diff = df[(df["metric"] == "accuracy_difference") & ~df["probe"].str.endswith("-nopos")]
    if diff.empty:
        return ""
    acc = df[df["metric"] == "accuracy"]
    if "seed" in diff.columns and diff["seed"].nunique() > 1:
        if correctness:
            return _seed_averaged_pairs(diff, acc, correctness, seed)
        diff = diff[diff["seed"] == diff["seed"].min()]
    keys = [k for k in key_names if k in diff.columns]
    lines = []
    for split in diff["split"].unique():
        for pair in diff["probe"].unique():
            a, b = pair.split(" vs ")
            rows = diff[(diff["split"] == split) & (diff["probe"] == pair)]
            mean = acc[(acc["split"] == split) & acc["probe"].isin([a, b])].groupby("layer")["value"].mean()
            if rows.empty or mean.empty:
                continue
            layer = mean.idxmax()
            for _, r in rows[rows["layer"] == layer].iterrows():
                i = Interval(r["value"], r["ci_low"], r["ci_high"], int(r["n_sentences"]))
                key = ", ".join(f"{k} = {r[k]}" for k in keys)
                text = compare_sentence(a, b, i, quantity="accuracy")
                lines.append(f"- **{split}**, layer {layer}{f' ({key})' if key else ''}: {text}.")
            lines.append(_wins(split, a, b, rows["ci_low"], rows["ci_high"], " × keys" if keys else ""))
    return _section(lines, "layer's")



def _seed_averaged_pairs(diff: pd.DataFrame, acc: pd.DataFrame, correctness: dict, seed: int) -> str:
    """:func:`probe_sentences` over several seeds: per layer, a − b of each sentence's accuracy averaged over the
    seeds and keys, bootstrapped paired over the sentences."""
    seeds = diff["seed"].nunique()
    k = int(acc.groupby([c for c in ("layer", "probe", "split", "seed") if c in acc.columns]).size().max())
    lines = []
    for split in diff["split"].unique():
        for pair in diff["probe"].unique():
            a, b = pair.split(" vs ")
            mean = acc[(acc["split"] == split) & acc["probe"].isin([a, b])].groupby("layer")["value"].mean()
            if mean.empty:
                continue
            found = {}
            for layer in sorted(diff[(diff["split"] == split) & (diff["probe"] == pair)]["layer"].unique()):
                x, y = (per_sentence(correctness, layer, p, split, k) for p in (a, b))
                if x is not None and y is not None:
                    found[layer] = paired_difference(x, y, seed=seed, vectorized=True)
            if not found:
                continue
            best = mean.idxmax()
            if best in found:
                text = compare_sentence(a, b, found[best], quantity="accuracy")
                lines.append(f"- **{split}**, layer {best} (each sentence's accuracy averaged over {seeds} seeds "
                             f"and the keys): {text}.")
            lines.append(_wins(split, a, b, [d.ci_low for d in found.values()],
                               [d.ci_high for d in found.values()], " (seeds averaged)"))
    return _section(lines, "layer's, key's and seed's")


def _wins(split: str, a: str, b: str, lows, highs, what: str) -> str:
    """How many of the layers' paired intervals favour ``a``, favour ``b``, or cover 0."""
    low, high = np.asarray(lows, dtype=float), np.asarray(highs, dtype=float)
    wins_a, wins_b = int((low > 0).sum()), int((high < 0).sum())
    return (f"- **{split}**, over {len(low)} layer{'' if len(low) == 1 else 's'}{what}: {a} higher on {wins_a}, "
            f"{b} higher on {wins_b}, no detectable difference on {len(low) - wins_a - wins_b}.")


def _section(lines: list[str], rows: str) -> str:
    if not lines:
        return ""
    return ("## Probe against probe (same layer, paired over the same sentences)\n\n" + "\n".join(lines)
            + f"\n\nRows `accuracy_difference` of results.csv (probe `a vs b`, value a − b) give every {rows} "
              "difference with its 95 % paired bootstrap interval.\n\n")
