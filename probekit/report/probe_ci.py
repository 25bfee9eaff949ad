"""The interval sentence of ``results.md``: per split, the best layer against the runner-up on the same sentences."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.intervals import compare_sentence, paired_difference


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
