"""``pk.data(task, …)``: a task's generated data, one record per sentence, exactly as the probes and confusion
scores see it (same options, same seed → same sentences as ``pk.probe`` / ``pk.confusion``).

Probing tasks (nth_token, auxiliary, subject, …) give each sentence's words, tags, split and target word index;
the condition families (agreement, reflexive) give each item's condition, source word, correct group and
distractor groups::

    import probekit as pk
    d = pk.data("agreement", conditions=["A1", "A3"], sentences=10)
    d.frame[["part", "sentence", "source", "correct"]]
    d.write("data/agr", tsv=True)     # agreement.jsonl (+ one <condition>.tsv per condition), config.json
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from probekit.core import checks
from probekit.core.options import RunOptions, option, takes
from probekit.core.errors import UserError
from probekit.core.result import Result
from probekit.probing.registry import SIZE_NAMES
from probekit.corpora.conditions import FAMILIES, Item, generate_items, parse_conditions

CONDITION_TASKS = tuple(FAMILIES)      # agreement, reflexive
#: Generated sentences per condition when ``sentences`` is not given (A3/A4: half per part).
SENTENCES = 1000


class DataResult(Result):
    """``.frame``: one row per sentence (the JSON Lines records); ``.records`` the records themselves;
    ``.items`` the condition items (agreement/reflexive) or None."""

    command = "data"

    def __init__(self, frame: pd.DataFrame, record: dict, records: list[dict], task: str,
                 items: list[Item] | None = None, tsv: bool = False):
        super().__init__(frame, record)
        self.records, self.task, self.items, self.tsv = records, task, items, tsv
        self.main_table = f"{task}.jsonl"

    def write_files(self, run) -> None:
        with open(run.file(f"{self.task}.jsonl"), "w", encoding="utf-8") as f:
            for r in self.records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        if self.tsv and self.items:
            for cond in dict.fromkeys(it.condition for it in self.items):
                lines = [tsv_line(it) for it in self.items if it.condition == cond]
                run.write_text(f"{cond}.tsv", "\n".join(lines) + "\n")

    def files(self) -> list[str]:
        extra = [f"{c}.tsv" for c in dict.fromkeys(it.condition for it in self.items)] if self.tsv and self.items else []
        return [self.main_table, *extra]


def tsv_line(item: Item) -> str:
    """One item in the ``--data`` format of ``python -m probekit.confusion`` (distractor groups pooled)."""
    pooled = sorted(w for g in item.distractors for w in g)
    return "\t".join([" ".join(item.words), str(item.source), " ".join(map(str, item.correct)),
                      " ".join(map(str, pooled))])


def probing_records(probing_data) -> list[dict]:
    """A probing task's examples as records: words, tags, split, target (or targets per key), gold tree."""
    from probekit.probing.registry import NO_TARGET

    records = []
    for ex in probing_data.examples:
        targets = ex.meta["targets"]
        rec = {"split": ex.meta["split"], "sentence": " ".join(ex.words or []), "words": ex.words, "tags": ex.tags}
        if probing_data.keys == [{}]:
            rec["target"] = targets[0] if targets[0] != NO_TARGET else None
        else:
            rec["targets"] = {",".join(f"{k}={v}" for k, v in key.items()): (t if t != NO_TARGET else None)
                              for key, t in zip(probing_data.keys, targets)}
        for name in ("heads", "deprels"):
            if name in ex.meta:
                rec[name] = ex.meta[name]
        records.append(rec)
    return records


def condition_items(task: str, conditions=None, sentences: int = SENTENCES, seed: int = 0) -> list[Item]:
    """The items of ``task``'s conditions (default all of the family), ``sentences`` per condition."""
    names = parse_conditions(conditions or [task])
    other = [n for n in names if not n.startswith("A" if task == "agreement" else "R")]
    if other:
        raise UserError(f"--conditions {', '.join(other)} not of --task {task}")
    return generate_items(names, checks.positive("sentences", sentences), seed)


def _known_tasks() -> list[str]:
    from probekit.probing.registry import available_tasks

    return sorted(set(available_tasks()) | set(CONDITION_TASKS))


def _task(name, task):
    known = _known_tasks()
    if not isinstance(task, str) or (task not in known and not task.endswith(".py")):
        raise UserError(f"unknown task {task!r}; known tasks: {', '.join(known)}")
    return task


def _task_help() -> str:
    from probekit.probing.registry import available_tasks

    return f"one of: {', '.join(sorted(available_tasks()) + list(CONDITION_TASKS))}"


@dataclass(frozen=True, kw_only=True)
class DataOptions(RunOptions):
    """The options of :func:`data` (and ``python -m probekit.data``); a probing task's own options come on top."""

    task: str = option(help=_task_help, check=_task)
    size: str | None = option(None, "probing tasks: data size (default quick)", choices=SIZE_NAMES)
    sentences: int | None = option(None, f"agreement/reflexive: sentences per condition (default {SENTENCES}; "
                                         f"A3/A4: half per part)", type=int)
    conditions: tuple | None = option(None, "agreement/reflexive: which conditions (default: all of the family)",
                                      nargs="+")
    tsv: bool = option(False, "agreement/reflexive: also one <condition>.tsv per condition in the format of "
                              "python -m probekit.confusion --data")


@takes(DataOptions, args=("task",), extra=True)
def data(o: DataOptions, **task_options) -> DataResult:
    """The data of ``o.task`` as records; returns a :class:`DataResult` (``.frame``, ``.write(out)``).

    Options: :class:`DataOptions`. ``size`` and the task's own options (``n``, ``corpus``, ``split_sizes``) are
    for probing tasks; ``sentences`` (default 1000), ``conditions`` and ``tsv`` for agreement/reflexive. An
    option that does nothing for the chosen task is refused, not ignored.
    """
    from probekit.probing.registry import build_data
    from probekit.core.rundir import run_record

    task, size, sentences, conditions, tsv, seed = o.task, o.size, o.sentences, o.conditions, o.tsv, o.seed
    arguments = o.record()
    if task in CONDITION_TASKS:
        unused = [n for n, v in (("size", size), *task_options.items()) if v is not None]
        if unused:
            raise UserError(f"{', '.join(checks.flag(n) for n in unused)}: not an option of --task {task} "
                            f"(its options: --sentences, --conditions, --tsv, --seed)")
        sentences = SENTENCES if sentences is None else sentences
        items = condition_items(task, conditions, sentences, seed)
        records = [it.record() for it in items]
        counts: dict[str, int] = {}
        for it in items:
            counts[it.part] = counts.get(it.part, 0) + 1
        arguments.update(sentences=sentences, conditions=parse_conditions(conditions or [task]), tsv=bool(tsv))
        inputs = {"grammar": FAMILIES[task]}
    else:
        unused = [n for n, given in (("sentences", sentences is not None), ("conditions", conditions is not None),
                                     ("tsv", bool(tsv))) if given]
        if unused:
            raise UserError(f"{', '.join(checks.flag(n) for n in unused)} only apply to --task "
                            f"{' or '.join(CONDITION_TASKS)}, not to --task {task}")
        built = build_data(task, seed=seed, **({"size": size} if size is not None else {}), **task_options)
        items, records = None, probing_records(built)
        counts = {}
        for r in records:
            counts[r["split"]] = counts.get(r["split"], 0) + 1
        arguments.update(built.options)
        inputs = {k: v for k, v in built.notes.items() if not isinstance(v, dict)}
        if built.options.get("corpus"):
            inputs["corpus"] = built.options["corpus"]
    record = run_record("data", arguments, inputs=inputs, counts=counts, task=task)
    return DataResult(pd.DataFrame(records), record, records, task, items=items, tsv=bool(tsv))
