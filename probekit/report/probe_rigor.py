"""The ``--seeds`` / ``--control`` / ``--mdl`` tables of ``results.md``: mean ± std over seeds, by layer."""
from __future__ import annotations

import pandas as pd

from probekit.core.intervals import over_seeds
from probekit.core.rundir import markdown_table

TITLES = {"accuracy": "Accuracy", "control_accuracy": "Control-task accuracy (Hewitt & Liang)",
          "selectivity": "Selectivity = accuracy − control accuracy",
          "online_codelength_kbits": "Online codelength (kbits of 1024 bits, as Voita & Titov's code; MDL)",
          "uniform_codelength_kbits": "Uniform codelength (kbits of 1024 bits)",
          "compression": "Compression = uniform / online codelength",
          "control_online_codelength_kbits": "Control task: online codelength (kbits of 1024 bits)",
          "control_compression": "Control task: compression"}

MDL_NOTE = ("Blocks end at 0.1 … 100 % of the training sentences, floored as Voita & Titov's code; below 1,000 "
            "sentences an end that floors to 0 becomes 1 and repeated ends are dropped. The uniform code of a "
            "sentence is log₂ of its word count (a selection task's classes are the sentence's words).\n\n")


def seed_summary(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """probe × split rows, layer columns: the task-key mean, then mean (± std and [95 % Student-t interval]
    over seeds where > 1)."""
    sub = df[df["metric"] == metric]
    seed = "seed" if "seed" in sub.columns else None
    per_seed = sub.groupby(["probe", "split", "layer"] + ([seed] if seed else []), sort=False)["value"].mean()
    g = per_seed.groupby(["probe", "split", "layer"], sort=False)
    mean, std, n = g.mean(), g.std(ddof=1), g.size()
    ci = g.apply(lambda v: over_seeds(v.to_numpy()))
    fmt = "{:.2f}" if "kbits" in metric or metric.endswith("compression") else "{:.3f}"
    cells = [fmt.format(m) + (f" ± {fmt.format(s)} [{fmt.format(i.ci_low)}, {fmt.format(i.ci_high)}]"
                              if c > 1 else "") for m, s, c, i in zip(mean, std, n, ci)]
    table = pd.Series(cells, index=mean.index).unstack("layer")
    table.columns = [f"layer {c}" for c in table.columns]
    return table.reset_index()


def rigor_markdown(df: pd.DataFrame) -> str:
    """Sections for every metric besides plain accuracy, and accuracy mean ± std when there are several seeds."""
    text = ""
    seeds = df["seed"].nunique() if "seed" in df.columns else 1
    for metric, title in TITLES.items():
        if metric not in set(df["metric"]) or (metric == "accuracy" and seeds < 2):
            continue
        note = f" — mean ± std [95% CI, Student t] over {seeds} seeds" if seeds > 1 else ""
        text += f"## {title}{note}\n\n" + markdown_table(seed_summary(df, metric)) + "\n"
        if metric == "online_codelength_kbits":
            text += MDL_NOTE
    return text
