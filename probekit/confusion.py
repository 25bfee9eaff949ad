"""``python -m probekit.confusion``: attention confusion scores (Lin et al. 2019 §5, Table 2).

For one sentence and layer: average the layer's attention over heads, sum it from the source word (the
matrix auxiliary, the reflexive) to the words of each candidate group, renormalise over the candidate groups
only, and take confusion = −log2 of the correct group's share. 0 means all the candidate attention goes to
the correct group; with equal attention to every candidate word it is the chance level, −log2(|correct| /
|all candidate words|): 1.0 with one distractor Det N, log2 3 with two. The same is done per head, so the
heads that best pick the antecedent can be named. Attention is word-level (to a word = sum over its pieces,
from a word = mean over its pieces), and maps are scored as they stream out of the model, never stored.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from .cli import Parser, add_common_options, add_model_options, main_wrapper, set_quiet
from .core.errors import UserError, where
from .corpora.conditions import CONDITIONS, PART_OF, Item, generate_items, parse_conditions

# Attention can underflow to exactly 0 in float32; a floor keeps every score finite (≤ ~126 bits) and
# changes nothing for any mass that is not itself below it.
_FLOOR = float(np.finfo(np.float32).tiny)


def group_mass(rows: np.ndarray, groups: Sequence[Sequence[int]]) -> np.ndarray:
    """Attention from the source summed within each group: rows [..., U] → [..., G] (float64)."""
    rows = np.asarray(rows, dtype=np.float64)
    return np.stack([rows[..., list(g)].sum(-1) for g in groups], -1)


def confusion(mass: np.ndarray) -> np.ndarray:
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
    return confusion(mass.mean(1)), confusion(mass)


class ConfusionScores:
    """Running sums per condition (and per part): one sentence is added at a time; no map is kept."""

    def __init__(self, num_layers: int, num_heads: int):
        self.L, self.H = num_layers, num_heads
        self.n: dict[str, int] = {}
        self._sum: dict[str, np.ndarray] = {}       # [L]
        self._sumsq: dict[str, np.ndarray] = {}     # [L]
        self._head: dict[str, np.ndarray] = {}      # [L, H]
        self._chance: dict[str, float] = {}

    def add(self, names: Iterable[str], mean: np.ndarray, per_head: np.ndarray, chance: float) -> None:
        for name in names:
            if name not in self.n:
                self.n[name] = 0
                self._sum[name] = np.zeros(self.L)
                self._sumsq[name] = np.zeros(self.L)
                self._head[name] = np.zeros((self.L, self.H))
                self._chance[name] = 0.0
            self.n[name] += 1
            self._sum[name] += mean
            self._sumsq[name] += mean * mean
            self._head[name] += per_head
            self._chance[name] += chance

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

    def chance(self, name: str) -> float:
        return self._chance[name] / self.n[name]

    def mean(self, name: str) -> float:
        """Lin et al.'s "mean confusion": the mean over layers of the per-layer means."""
        return float(self.by_layer(name).mean())

    def best_heads(self, name: str, k: int = 3) -> list[tuple[int, int, float]]:
        """The ``k`` heads with the lowest mean confusion: (layer, head, value), both numbered from 1."""
        heads = self.by_head(name)
        order = np.argsort(heads, axis=None, kind="stable")[:k]
        return [(int(i // self.H) + 1, int(i % self.H) + 1, float(heads.flat[i])) for i in order]

    def tidy(self, model: str) -> pd.DataFrame:
        """Rows (task, model, condition, layer, head, metric, value); layer/head "mean" for averages."""
        rows = []
        for name in self.names:
            base = {"task": "confusion", "model": model, "condition": name}
            lay, sem = self.by_layer(name), self.sem(name)
            for l in range(self.L):
                rows.append({**base, "layer": l + 1, "head": "mean", "metric": "confusion", "value": lay[l]})
                rows.append({**base, "layer": l + 1, "head": "mean", "metric": "confusion_sem", "value": sem[l]})
            heads = self.by_head(name)
            for l in range(self.L):
                for h in range(self.H):
                    rows.append({**base, "layer": l + 1, "head": h + 1, "metric": "confusion",
                                 "value": heads[l, h]})
            rows.append({**base, "layer": "mean", "head": "mean", "metric": "confusion", "value": self.mean(name)})
            rows.append({**base, "layer": "mean", "head": "mean", "metric": "chance", "value": self.chance(name)})
            rows.append({**base, "layer": "mean", "head": "mean", "metric": "n_items", "value": self.n[name]})
        return pd.DataFrame(rows)


def _ints(text: str, what: str, path, lineno: int) -> list[int]:
    try:
        return [int(t) for t in text.split()]
    except ValueError:
        raise UserError(f"{where(path, lineno)}: {what} must be whitespace-separated integers, "
                        f"got {text!r}") from None


def read_items(path: str | Path) -> list[Item]:
    """External items, one per line: ``sentence<TAB>source<TAB>correct indices<TAB>distractor indices``.

    Word indices are 0-based over the whitespace-separated words; the distractor field may be empty or
    missing (then the confusion is 0). Blank lines are skipped. The condition is named after the file.
    """
    p = Path(path)
    if not p.is_file():
        raise UserError(f"--data {p}: no such file")
    name = p.stem
    items: list[Item] = []
    with open(p, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) == 3:
                fields.append("")
            if len(fields) != 4:
                raise UserError(f"{where(p, lineno)}: expected 4 tab-separated fields (sentence, source index, "
                                f"correct group indices, distractor indices), got {len(fields)}")
            words = fields[0].split()
            if not words:
                raise UserError(f"{where(p, lineno)}: empty sentence")
            source = _ints(fields[1], "the source index", p, lineno)
            correct = _ints(fields[2], "the correct group", p, lineno)
            distractors = _ints(fields[3], "the distractor indices", p, lineno)
            if len(source) != 1:
                raise UserError(f"{where(p, lineno)}: the source field must be one index, got {fields[1]!r}")
            if not correct:
                raise UserError(f"{where(p, lineno)}: the correct group is empty")
            every = source + correct + distractors
            bad = [i for i in every if not 0 <= i < len(words)]
            if bad:
                raise UserError(f"{where(p, lineno)}: index {bad[0]} is outside the sentence's "
                                f"{len(words)} words (indices are 0-based)")
            if len(set(every)) != len(every):
                raise UserError(f"{where(p, lineno)}: an index appears twice (source, correct and distractor "
                                f"words must all differ)")
            items.append(Item(words=words, source=source[0], correct=correct,
                              distractors=[distractors] if distractors else [], condition=name, part=name))
    if not items:
        raise UserError(f"--data {p}: no items")
    return items


def score_items(encoder, items: Sequence[Item], *, batch_size: int = 32, max_length: int | None = None,
                attention_from: str = "mean") -> tuple[ConfusionScores, int]:
    """Stream word-level attention for every item into a :class:`ConfusionScores`; also the count of items
    left out because truncation cut off a word they need."""
    from .core.extraction import extract

    scores = ConfusionScores(encoder.num_layers, encoder.num_heads)
    examples = [it.to_example() for it in items]
    skipped = 0
    for act in extract(encoder, examples, hidden=False, attention=True, level="word", batch_size=batch_size,
                       max_length=max_length, attention_from=attention_from, desc="confusion scores"):
        it = items[act.index]
        unit = {int(w): u for u, w in enumerate(act.word_ids) if w >= 0}
        groups = [it.correct] + it.distractors
        needed = [it.source] + [w for g in groups for w in g]
        if any(w not in unit for w in needed):
            skipped += 1
            continue
        mean, per_head = item_scores(act.attention.array, unit[it.source], [[unit[w] for w in g] for g in groups])
        names = [it.condition] if it.part == it.condition else [it.part, it.condition]
        scores.add(names, mean, per_head, chance_level([len(g) for g in groups]))
    return scores, skipped


def build_parser() -> Parser:
    p = Parser(prog="python -m probekit.confusion",
               description="Attention confusion scores for agreement (A1-A4) and reflexives (R1-R8), "
                           "Lin et al. 2019 Table 2.")
    p.add_argument("--conditions", nargs="+", default=None,
                   help="conditions or parts to score: A1..A4, R1..R8, A3-srel, A3-orel, A4-srel, A4-orel, "
                        "agreement, reflexive, all (default: all twelve, or none with --data)")
    p.add_argument("--sentences", type=int, default=1000,
                   help="generated sentences per condition (default %(default)s; A3/A4 half per part)")
    p.add_argument("--data", nargs="+", default=None, metavar="FILE",
                   help="external items, one per line: sentence<TAB>source<TAB>correct indices<TAB>"
                        "distractor indices (0-based word indices); each file is a condition")
    p.add_argument("--attention-from", choices=["mean", "first"], default="mean",
                   help="attention FROM a split word: mean of its pieces (default) or its first piece")
    p.add_argument("--out", default=None, help="run folder (default runs/confusion-<model>-<time>)")
    add_model_options(p)
    add_common_options(p)
    return p


def load_items(args) -> list[Item]:
    if args.sentences < 1 or args.batch_size < 1:
        raise UserError("--sentences and --batch-size must be at least 1")
    names = parse_conditions(args.conditions) if (args.conditions or not args.data) else []
    external: list[Item] = []
    used = set(CONDITIONS) | set(PART_OF)
    for path in args.data or []:
        items = read_items(path)
        # A file is a condition of its own, named after it; never merged with a built-in or another file.
        name = next((n for n in (Path(path).stem, Path(path).name, str(path)) if n not in used),
                    f"{path} ({len(used)})")
        used.add(name)
        for it in items:
            it.condition = it.part = name
        external += items
    return generate_items(names, args.sentences, args.seed) + external


def _main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    set_quiet(args.quiet)
    from .report.confusion import write_run
    from .core.encoder import load_encoder

    items = load_items(args)
    encoder = load_encoder(args.model, attention=True, device=args.device)
    limit = min(args.max_length or encoder.max_length, encoder.max_length)
    scores, skipped = score_items(encoder, items, batch_size=args.batch_size, max_length=limit,
                                  attention_from=args.attention_from)
    if not scores.names:
        raise UserError(f"every item lost a word to truncation at {limit} tokens; nothing to score")
    path, table = write_run(args, encoder, scores, n_items=len(items), skipped=skipped)
    if not args.quiet:
        print(table)
        print(f"wrote {path}")
    return 0


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
