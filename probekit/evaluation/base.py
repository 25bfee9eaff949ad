"""What every experiment gets and gives back, so the runner can run any subset and write one report.

An experiment (:class:`~.experiment.Experiment`, registered in ``experiments.py`` under its CLI name) maps a
:class:`Context` to an :class:`Outcome`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from probekit.core.examples import Example


@dataclass
class Context:
    """The inputs of a faithfulness run. ``examples`` are the evaluation examples (after ``--limit``), in the
    order of ``source``; ``train``/``dev`` are what retraining experiments (Wiegreffe & Pinter) fit and select
    on (None: those experiments say they were skipped); ``options`` holds experiment options by name
    (``permutations``, ``epsilon``, ``adversary_steps``, ``seeds`` …) with the defaults the experiments declare (``experiments.defaults()``)."""

    classifier: object
    examples: list[Example]
    source: object                      # an AttentionSource (None until an experiment that reads it runs)
    seed: int = 0
    batch_size: int = 32
    device: str = "cpu"
    quiet: bool = False
    train: list[Example] | None = None
    dev: list[Example] | None = None
    rationales: bool = False            # examples carry meta["rationale"] (0/1 per word): ERASER plausibility
    methods: Sequence[str] | None = None  # attribution methods for ERASER (None: every one that applies)
    options: dict = field(default_factory=dict)
    cache_dir: object = None
    no_cache: bool = False

    def option(self, name: str):
        from probekit.evaluation.experiments import defaults

        return self.options.get(name, defaults()[name])

    def rng(self, salt: int = 0) -> np.random.Generator:
        """A generator seeded from the run's seed and a per-experiment salt (same seed → same draws)."""
        return np.random.default_rng([self.seed, salt])


@dataclass
class Outcome:
    """``tables``: CSV stem → tidy table (``report.result.tidy`` core columns first); ``findings``: rows of the
    summary, each ``{"experiment", "quantity", "value", "paper", "meaning", "ci_low", "ci_high", "n"}`` (``paper``: the paper's number on
    its nearest dataset with the dataset named, or "" when the notes give none); ``figures``: file stem
    (named by the paper's figure number, e.g. ``jain-wallace-fig10``) → a function returning a matplotlib
    Figure; ``counts``: exclusions and NaN cases, reported in config.json and the summary; ``ranking``: for
    experiments that rank explanation methods, rows ``{"method", "<metric>": value …}``."""

    name: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    findings: list[dict] = field(default_factory=list)
    figures: dict[str, Callable] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    ranking: list[dict] = field(default_factory=list)
    metrics: dict[str, str] = field(default_factory=dict)   # ranking metric → "higher"/"lower" is more faithful
    paper: str = ""                     # the experiment's paper and question (the summary's heading)
    seconds: float = 0.0
    skipped: str = ""                   # why the experiment did not run here (then everything else is empty)


def finding(experiment: str, quantity: str, value, meaning: str, paper: str = "", interval=None) -> dict:
    """A summary row; ``interval`` (a :class:`~probekit.core.intervals.Interval`) gives its 95 % ``ci_low``,
    ``ci_high`` and the ``n`` it stands on (and, when given, its estimate is the value)."""
    row = {"experiment": experiment, "quantity": quantity, "value": value, "paper": paper, "meaning": meaning,
           "ci_low": float("nan"), "ci_high": float("nan"), "n": None}
    if interval is not None:
        row.update(value=interval.estimate, ci_low=interval.ci_low, ci_high=interval.ci_high, n=int(interval.n))
    return row

