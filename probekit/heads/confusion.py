"""Attention confusion scores (Lin et al. 2019 §5, Table 2), and ``pk.confusion(…)``.

For one sentence and layer: average the layer's attention over heads, sum it from the source word (the
matrix auxiliary, the reflexive) to the words of each candidate group, renormalise over the candidate groups
only, and take confusion = −log2 of the correct group's share. 0 means all the candidate attention goes to
the correct group; with equal attention to every candidate word it is the chance level, −log2(|correct| /
|all candidate words|): 1.0 with one distractor Det N, log2 3 with two. The same is done per head, so the
heads that best pick the antecedent can be named. Attention is word-level (to a word = sum over its pieces,
from a word = mean over its pieces), and maps are scored as they stream out of the model, never stored.

The renormalisation hides how much attention the candidates get at all: a head that sends 2e-7 of its
attention to the candidates can still score 0.000. So the raw candidate mass (the sum of attention from the
source to every candidate group, before renormalising) is recorded too, and heads whose mean candidate mass
is below ``min_mass`` (default :data:`MIN_CANDIDATE_MASS` = 0.01) are never named as best heads::

    import probekit as pk
    result = pk.confusion(conditions=["A3", "R5"], sentences=100)
    result.frame.query("metric == 'confusion' and head.isna() and layer.notna()")   # per layer
    result.best_heads                                                               # lowest confusion
    result.write("runs/conf")
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from probekit.core import checks
from probekit.core.options import ModelOptions, RunOptions, option, positive, takes
from probekit.core.analysis import Analysis
from probekit.core.errors import UserError
from probekit.corpora.conditions import CONDITIONS, PART_OF, Item, generate_items, parse_conditions, read_items
from probekit.core.result import Result, tidy

# Attention can underflow to exactly 0 in float32; a floor keeps every score finite (≤ ~126 bits) and
# changes nothing for any mass that is not itself below it.
_FLOOR = float(np.finfo(np.float32).tiny)

#: Heads whose mean candidate mass (attention from the source to all candidate groups) is below this are left
#: out of the best-head lists: their renormalised share is decided by almost no attention.
MIN_CANDIDATE_MASS = 0.01


def group_mass(rows: np.ndarray, groups: Sequence[Sequence[int]]) -> np.ndarray:
    """Attention from the source summed within each group: rows [..., U] → [..., G] (float64)."""
    rows = np.asarray(rows, dtype=np.float64)
    return np.stack([rows[..., list(g)].sum(-1) for g in groups], -1)


def confusion_bits(mass: np.ndarray) -> np.ndarray:
    """−log2 of group 0's share of the mass over all groups: [..., G] → [...]. One group gives 0."""
    mass = np.maximum(np.asarray(mass, dtype=np.float64), _FLOOR)
    return 0.0 - np.log2(mass[..., 0] / mass.sum(-1))


def chance_level(group_sizes: Sequence[int]) -> float:
    """The score of uniform attention: −log2(|correct| / |all candidate words|)."""
    return 0.0 - math.log2(group_sizes[0] / sum(group_sizes))


def item_scores(attention: np.ndarray, source: int, groups: Sequence[Sequence[int]]):
    """Scores of one sentence from its attention [L, H, U, U] (units as indices): (head mean [L], [L, H]).

    The head mean averages the attention over heads before the groups are summed and renormalised, as Lin
    et al. did; it is not the mean of the per-head scores.
    """
    mass = group_mass(np.asarray(attention)[:, :, source, :], groups)     # [L, H, G]
    return confusion_bits(mass.mean(1)), confusion_bits(mass)


class ConfusionScores(Analysis):
    """Running sums per condition (and per part): one sentence is added at a time; no map is kept.

    As an :class:`~probekit.core.analysis.Analysis` (``pk.analyze(encoder, examples, [ConfusionScores()])``)
    each example carries its item in ``meta``: ``source``, ``correct``, ``distractors`` (word indices),
    ``condition`` and ``part`` (as :meth:`Item.to_example` writes them); ``result()`` returns the scores.
    Items that truncation cut a needed word from are counted in ``skipped``.
    """

    needs_hidden = False
    needs_attention = True
    level = "word"

    def __init__(self, num_layers: int | None = None, num_heads: int | None = None, *,
                 min_mass: float = MIN_CANDIDATE_MASS):
        self.L, self.H = num_layers, num_heads
        self.min_mass = checks.number("min_mass", min_mass, minimum=0)
        self.skipped = 0
        self.n: dict[str, int] = {}
        self._sum: dict[str, np.ndarray] = {}       # [L]
        self._sumsq: dict[str, np.ndarray] = {}     # [L]
        self._head: dict[str, np.ndarray] = {}      # [L, H]
        self._mass: dict[str, np.ndarray] = {}      # [L, H] raw candidate mass
        self._n_mass: dict[str, int] = {}
        self._chance: dict[str, float] = {}

    # --- one pass ------------------------------------------------------------------------------------------
    def update(self, activations, example) -> None:
        meta = example.meta
        att = activations.attention.array
        if self.L is None:
            self.L, self.H = int(att.shape[0]), int(att.shape[1])
        unit = {int(w): u for u, w in enumerate(activations.word_ids) if w >= 0}
        groups = [list(meta["correct"])] + [list(g) for g in meta.get("distractors", [])]
        needed = [meta["source"]] + [w for g in groups for w in g]
        if any(w not in unit for w in needed):
            self.skipped += 1
            return
        mass = group_mass(att[:, :, unit[meta["source"]], :], [[unit[w] for w in g] for g in groups])  # [L,H,G]
        condition = meta["condition"]
        part = meta.get("part", condition)
        names = [condition] if part == condition else [part, condition]
        self.add(names, confusion_bits(mass.mean(1)), confusion_bits(mass), chance_level([len(g) for g in groups]),
                 candidate_mass=mass.sum(-1))

    def result(self) -> "ConfusionScores":
        return self

    def add(self, names: Iterable[str], mean: np.ndarray, per_head: np.ndarray, chance: float,
            candidate_mass: np.ndarray | None = None) -> None:
        """Add one item's scores (and its raw candidate mass [L, H], when known) to every name it counts for."""
        if self.L is None:
            self.L, self.H = np.shape(per_head)
        for name in names:
            if name not in self.n:
                self.n[name] = 0
                self._sum[name] = np.zeros(self.L)
                self._sumsq[name] = np.zeros(self.L)
                self._head[name] = np.zeros((self.L, self.H))
                self._mass[name] = np.zeros((self.L, self.H))
                self._n_mass[name] = 0
                self._chance[name] = 0.0
            self.n[name] += 1
            self._sum[name] += mean
            self._sumsq[name] += mean * mean
            self._head[name] += per_head
            self._chance[name] += chance
            if candidate_mass is not None:
                self._mass[name] += candidate_mass
                self._n_mass[name] += 1

    # --- what was accumulated ------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return list(self.n)

    def by_layer(self, name: str) -> np.ndarray:
        """Mean confusion per layer [L] (head-averaged attention)."""
        return self._sum[name] / self.n[name]

    def sem(self, name: str) -> np.ndarray:
        """Standard error of the per-layer mean over sentences [L]."""
        n = self.n[name]
        if n < 2:
            return np.full(self.L, np.nan)
        var = (self._sumsq[name] - self._sum[name] ** 2 / n) / (n - 1)
        return np.sqrt(np.maximum(var, 0.0) / n)

    def by_head(self, name: str) -> np.ndarray:
        """Mean confusion of every head [L, H]."""
        return self._head[name] / self.n[name]

    def candidate_mass(self, name: str) -> np.ndarray:
        """Mean raw attention from the source to all candidate groups, per head [L, H] (NaN if not recorded)."""
        if not self._n_mass.get(name):
            return np.full((self.L, self.H), np.nan)
        return self._mass[name] / self._n_mass[name]

    def low_mass(self, name: str) -> np.ndarray:
        """[L, H] bool: heads whose mean candidate mass is below ``min_mass`` (never named as best)."""
        mass = self.candidate_mass(name)
        return ~np.isnan(mass) & (mass < self.min_mass)

    def chance(self, name: str) -> float:
        return self._chance[name] / self.n[name]

    def mean(self, name: str) -> float:
        """Lin et al.'s "mean confusion": the mean over layers of the per-layer means."""
        return float(self.by_layer(name).mean())

    def best_heads(self, name: str, k: int = 3) -> list[tuple[int, int, float]]:
        """The ``k`` heads with the lowest mean confusion among those with enough candidate mass:
        (layer, head, value), both numbered from 1."""
        heads = self.by_head(name)
        keep = ~self.low_mass(name).ravel()
        order = [i for i in np.argsort(heads, axis=None, kind="stable") if keep[i]][:k]
        return [(int(i // self.H) + 1, int(i % self.H) + 1, float(heads.flat[i])) for i in order]

    def tidy(self, model: str) -> pd.DataFrame:
        """Rows (task, model, condition, layer, head, metric, value, aggregate).

        Per head: ``confusion`` and ``candidate_mass``. Per layer with an empty head (aggregate ``all heads``,
        the attention averaged over heads): ``confusion``, ``confusion_sem``, ``candidate_mass``. Empty layer
        and head: the mean ``confusion`` over layers (``all layers``); ``chance``, ``n_items`` and
        ``low_mass_heads`` (heads below ``min_mass``) of the condition (``all items``).
        """
        rows = []
        NA = pd.NA
        for name in self.names:
            base = {"task": "confusion", "model": model, "condition": name}
            lay, sem = self.by_layer(name), self.sem(name)
            mass = self.candidate_mass(name)
            for l in range(self.L):
                rows.append({**base, "layer": l + 1, "head": NA, "metric": "confusion", "value": lay[l],
                             "aggregate": "all heads"})
                rows.append({**base, "layer": l + 1, "head": NA, "metric": "confusion_sem", "value": sem[l],
                             "aggregate": "all heads"})
            heads = self.by_head(name)
            for l in range(self.L):
                for h in range(self.H):
                    rows.append({**base, "layer": l + 1, "head": h + 1, "metric": "confusion",
                                 "value": heads[l, h], "aggregate": NA})
            rows.append({**base, "layer": NA, "head": NA, "metric": "confusion", "value": self.mean(name),
                         "aggregate": "all layers"})
            rows.append({**base, "layer": NA, "head": NA, "metric": "chance", "value": self.chance(name),
                         "aggregate": "all items"})
            rows.append({**base, "layer": NA, "head": NA, "metric": "n_items", "value": self.n[name],
                         "aggregate": "all items"})
            if self._n_mass.get(name):
                for l in range(self.L):
                    rows.append({**base, "layer": l + 1, "head": NA, "metric": "candidate_mass",
                                 "value": float(mass[l].mean()), "aggregate": "all heads"})
                    for h in range(self.H):
                        rows.append({**base, "layer": l + 1, "head": h + 1, "metric": "candidate_mass",
                                     "value": mass[l, h], "aggregate": NA})
                rows.append({**base, "layer": NA, "head": NA, "metric": "low_mass_heads",
                             "value": int(self.low_mass(name).sum()), "aggregate": "all items"})
        return tidy(pd.DataFrame(rows), task="confusion", model=model, keys=["condition"])


def score_items(encoder, items: Sequence[Item], *, batch_size: int = 32, max_length: int | None = None,
                attention_from: str = "mean", min_mass: float = MIN_CANDIDATE_MASS) -> tuple[ConfusionScores, int]:
    """Stream word-level attention for every item into a :class:`ConfusionScores`; also the count of items
    left out because truncation cut off a word they need."""
    from probekit.core.analysis import analyze

    scores = ConfusionScores(encoder.num_layers, encoder.num_heads, min_mass=min_mass)
    analyze(encoder, [it.to_example() for it in items], [scores], batch_size=batch_size, max_length=max_length,
            attention_from=attention_from, desc="confusion scores")
    return scores, scores.skipped


def load_items(conditions=None, sentences: int = 1000, data=None, seed: int = 0) -> list[Item]:
    """Generated items of ``conditions`` (all twelve by default, none when only ``data`` is given) and the
    items of every ``data`` file, each file a condition of its own named after it."""
    names = parse_conditions(conditions) if (conditions or not data) else []
    external: list[Item] = []
    used = set(CONDITIONS) | set(PART_OF)
    for path in ([data] if isinstance(data, (str, Path)) else data or []):
        items = read_items(path)
        # A file is a condition of its own, named after it; never merged with a built-in or another file.
        name = next((n for n in (Path(path).stem, Path(path).name, str(path)) if n not in used),
                    f"{path} ({len(used)})")
        used.add(name)
        for it in items:
            it.condition = it.part = name
        external += items
    return generate_items(names, sentences, seed) + external


class ConfusionResult(Result):
    """``.frame``: results.csv (see :meth:`ConfusionScores.tidy`); ``.scores``: the :class:`ConfusionScores`;
    ``.by_layer``: confusion per condition × layer; ``.best_heads``: the lowest-confusion heads per condition
    (low-mass heads left out, and counted)."""

    command = "confusion"

    def __init__(self, frame, record, scores: ConfusionScores, *, skipped: int, attention_from: str):
        from probekit.report.confusion_report import heads_table, layer_table

        super().__init__(frame, record)
        self.scores, self.skipped, self.attention_from = scores, skipped, attention_from
        self.by_layer = layer_table(scores)
        self.best_heads = heads_table(scores)

    def markdown(self) -> tuple[str, str]:
        """(whole results.md, the Table-2-shaped part alone for the terminal)."""
        from probekit.report.confusion_report import markdown

        return markdown(self.scores, self.model, skipped=self.skipped, attention_from=self.attention_from)

    def write_files(self, run) -> None:
        from probekit.report.confusion_report import confusion_figure
        from probekit.core.rundir import write_tidy

        write_tidy(run, self.frame)
        run.write_text("results.md", self.markdown()[0])
        run.save_figure(confusion_figure(self.scores, self.model), "confusion_by_layer")

    def files(self) -> list[str]:
        return ["results.csv", "results.md", "confusion_by_layer.png"]


def _data_files(name, paths):
    return tuple(checks.input_files(name, paths))


@dataclass(frozen=True, kw_only=True)
class ConfusionOptions(ModelOptions, RunOptions):
    """The options of :func:`confusion` (and ``python -m probekit.confusion``). Once built, ``conditions`` are
    the condition and part names scored (none when only ``data`` is given) and ``data`` the files."""

    conditions: Any = option(None, "conditions or parts to score: A1..A4, R1..R8, A3-srel, A3-orel, A4-srel, "
                                   "A4-orel, agreement, reflexive, all (default: all twelve, or none with --data)",
                             nargs="+")
    sentences: int = option(1000, "generated sentences per condition (default %(default)s; A3/A4 half per part)",
                            check=positive)
    data: Any = option(None, "external items, one per line: sentence<TAB>source<TAB>correct indices<TAB>"
                             "distractor indices (0-based word indices); each file is a condition",
                       nargs="+", metavar="FILE", check=_data_files)
    attention_from: str = option("mean", "attention FROM a split word: mean of its pieces (default) or its first "
                                         "piece", choices=("mean", "first"))
    min_mass: float = option(MIN_CANDIDATE_MASS, "heads whose mean candidate mass is below this are not ranked as "
                                                 "best heads (default %(default)s)",
                             check=lambda n, v: checks.number(n, v, minimum=0))

    def check(self) -> None:
        given = self.conditions or not self.data
        self._set(conditions=tuple(parse_conditions(self.conditions)) if given else ())


@takes(ConfusionOptions)
def confusion(o: ConfusionOptions) -> ConfusionResult:
    """Confusion scores of generated conditions (``A1``…``A4``, ``R1``…``R8``, parts such as ``A3-orel``,
    ``agreement``, ``reflexive``, ``all``) and/or external ``data`` files; returns a :class:`ConfusionResult`.
    Options: :class:`ConfusionOptions`."""
    from probekit.core.encoder import load_encoder
    from probekit.core.rundir import run_record

    max_length, attention_from, min_mass = o.max_length, o.attention_from, o.min_mass
    items = load_items(o.conditions, o.sentences, o.data, o.seed)
    encoder = load_encoder(o.model, attention=True, device=o.device)
    limit = min(max_length or encoder.max_length, encoder.max_length)
    scores, skipped = score_items(encoder, items, batch_size=o.batch_size, max_length=limit,
                                  attention_from=attention_from, min_mass=min_mass)
    if not scores.names:
        raise UserError(f"every item lost a word to truncation at {limit} tokens; nothing to score")
    arguments = o.record()
    record = run_record("confusion", arguments, encoder=encoder,
                        inputs={"conditions": arguments["conditions"], "data": arguments["data"]},
                        counts={"items": len(items), "skipped_truncated": skipped,
                                **{n: scores.n[n] for n in scores.names}},
                        task="confusion", min_candidate_mass=min_mass)
    return ConfusionResult(scores.tidy(encoder.name), record, scores, skipped=skipped,
                           attention_from=attention_from)

