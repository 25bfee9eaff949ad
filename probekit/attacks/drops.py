"""How much each attack lowers accuracy, with a 95 % interval, and the sentences the summary says about it.

The attacked and the intact inputs are the same examples, so a drop is a *paired* difference: per example,
correct on the intact input (0/1) minus correct under the attack (the mean over the draws of a random
setting), bootstrapped over the examples (:func:`probekit.core.intervals.paired_difference`, seeded). For the
key-word attacks, the top-k words are also set against k random words on the same examples (does the
attribution pick words that matter more than chance?). Rows carry ``ci_low``, ``ci_high`` and ``n``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from probekit.core import intervals as iv

#: rows of these metrics are the drops (and top-vs-random gaps) this module adds
METRICS = ("accuracy_drop", "top_minus_random_drop")


def correct(pred, gold) -> np.ndarray:
    """Per example 1.0 when ``pred`` equals the gold answer, NaN where there is no gold answer (< 0)."""
    pred, gold = np.asarray(pred), np.asarray(gold)
    out = (pred == gold).astype(np.float64)
    return np.where(gold >= 0, out, np.nan)


class Drops:
    """Collects per-example correctness of every setting of one data set, then writes the drop rows."""

    def __init__(self, dataset: str, intact: np.ndarray, *, seed: int = 0, resamples: int = iv.RESAMPLES):
        self.dataset, self.intact, self.seed, self.resamples = dataset, np.asarray(intact, float), seed, resamples
        self.settings: dict[tuple, list[np.ndarray]] = {}

    def add(self, setting: str, values, *, k=None, operation=None, selection=None, group=None) -> None:
        """One draw's per-example correctness under ``setting`` (several calls: several draws)."""
        key = (setting, k, operation, selection, group)
        self.settings.setdefault(key, []).append(np.asarray(values, dtype=np.float64))

    def intact_interval(self) -> dict:
        """The intact accuracy's 95% interval over the examples (``ci_low``, ``ci_high``, ``n``): what the
        caution against a trivial baseline reads."""
        ci = iv.over_examples(self.intact, seed=self.seed, resamples=self.resamples)
        return {"ci_low": ci.ci_low, "ci_high": ci.ci_high, "n": ci.n}

    def per_example(self, key) -> np.ndarray:
        return np.mean(np.stack(self.settings[key]), axis=0)

    def rows(self) -> list[dict]:
        out = []
        for key in self.settings:
            setting, k, operation, selection, group = key
            d = iv.paired_difference(self.intact, self.per_example(key), seed=self.seed, resamples=self.resamples)
            draws = len(self.settings[key])
            out.append(self._row(setting, "accuracy_drop", d, k=k, operation=operation, selection=selection,
                                 group=group, aggregate="intact − attacked, paired over examples"
                                 + (f" (mean of {draws} draws per example)" if draws > 1 else "")))
            if selection == "top":
                rand = (setting.replace("-top", "-random"), k, operation, "random", group)
                if rand in self.settings:
                    g = iv.paired_difference(self.per_example(rand), self.per_example(key), seed=self.seed,
                                             resamples=self.resamples)
                    out.append(self._row(setting, "top_minus_random_drop", g, k=k, operation=operation,
                                         selection=selection, group=group,
                                         aggregate="accuracy with k random words − with the top k words, paired"))
        return out

    def _row(self, setting, metric, d: iv.Interval, **kw) -> dict:
        row = dict(dataset=self.dataset, setting=setting, metric=metric, value=d.estimate, ci_low=d.ci_low,
                   ci_high=d.ci_high, n=d.n)
        row.update({k: v for k, v in kw.items() if v is not None})
        return row


def sentences(frame: pd.DataFrame) -> list[str]:
    """One sentence per attack and data set, written from its interval ("no detectable drop" when it covers 0)."""
    if "metric" not in frame.columns:
        return []
    rows = frame[frame["metric"].isin(METRICS)]
    out = []
    for _, r in rows.iterrows():
        d = iv.Interval(float(r["value"]), float(r["ci_low"]), float(r["ci_high"]), int(r["n"]))
        k = r.get("k")
        what = r["setting"] + (f" at k = {k:g}%" if k is not None and not pd.isna(k) else "")
        if r["metric"] == "accuracy_drop":
            text = iv.compare_sentence("intact inputs", what, d, quantity="accuracy")
        else:
            text = iv.compare_sentence(f"k random words ({r['operation']})", f"the top k words ({what})", d,
                                       quantity="accuracy")
        out.append(f"{r['dataset']}: {text}.")
    return out
