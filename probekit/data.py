"""``python -m probekit.data --task TASK --out DIR``: write a task's generated data as JSON Lines.

So that a user can read exactly what was probed: one record per sentence with its words, tags and split and
its target word index (probing tasks: nth_token, auxiliary, subject, ...), or its condition, source word,
correct group and distractor groups (agreement, reflexive). The same options give the same sentences as
``python -m probekit.probe`` / ``python -m probekit.confusion`` with that seed and size.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from .cli import Parser, add_common_options, main_wrapper, peek_task, set_quiet
from .core.errors import UserError
from .corpora.conditions import FAMILIES, generate_items, parse_conditions
from .report.rundir import RunDir, config_record
from .probing.registry import NO_TARGET, available_tasks, get_task

CONDITION_TASKS = tuple(FAMILIES)      # agreement, reflexive


def build_parser(task_name: str | None = None) -> Parser:
    tasks = sorted(available_tasks()) + list(CONDITION_TASKS)
    p = Parser(prog="python -m probekit.data", description=__doc__.split("\n\n")[0])
    p.add_argument("--task", required=True, help=f"one of: {', '.join(tasks)}")
    p.add_argument("--out", required=True, help="folder to write <task>.jsonl and config.json into")
    p.add_argument("--size", choices=["quick", "paper"], default="quick", help="probing tasks: data size")
    p.add_argument("--sentences", type=int, default=1000,
                   help="agreement/reflexive: sentences per condition (A3/A4: half per part)")
    p.add_argument("--conditions", nargs="+", default=None,
                   help="agreement/reflexive: which conditions (default: all of the family)")
    p.add_argument("--tsv", action="store_true",
                   help="agreement/reflexive: also one <condition>.tsv per condition in the format of "
                        "python -m probekit.confusion --data")
    add_common_options(p)
    if task_name in available_tasks():
        group = p.add_argument_group(f"options of --task {task_name}")
        get_task(task_name).add_arguments(group)
    return p


def probing_records(task_name: str, options: argparse.Namespace) -> list[dict]:
    task = get_task(task_name)
    from .probing.registry import build_data, task_options
    data = build_data(task, **{k: getattr(options, k) for k in task_options(task) if hasattr(options, k)})
    records = []
    for ex in data.examples:
        targets = ex.meta["targets"]
        rec = {"split": ex.meta["split"], "sentence": " ".join(ex.words or []), "words": ex.words,
               "tags": ex.tags}
        if data.keys == [{}]:
            rec["target"] = targets[0] if targets[0] != NO_TARGET else None
        else:
            rec["targets"] = {",".join(f"{k}={v}" for k, v in key.items()): (t if t != NO_TARGET else None)
                              for key, t in zip(data.keys, targets)}
        for field in ("heads", "deprels"):
            if field in ex.meta:
                rec[field] = ex.meta[field]
        records.append(rec)
    return records


def condition_items(task_name: str, options: argparse.Namespace):
    names = parse_conditions(options.conditions or [task_name])
    other = [n for n in names if not n.startswith("A" if task_name == "agreement" else "R")]
    if other:
        raise UserError(f"--conditions {', '.join(other)} not of --task {task_name}")
    if options.sentences < 1:
        raise UserError("--sentences must be at least 1")
    return generate_items(names, options.sentences, options.seed)


def tsv_line(item) -> str:
    """One item in the ``--data`` format of ``python -m probekit.confusion`` (distractor groups pooled)."""
    pooled = sorted(w for g in item.distractors for w in g)
    return "\t".join([" ".join(item.words), str(item.source), " ".join(map(str, item.correct)),
                      " ".join(map(str, pooled))])


def _main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    task_name = peek_task(argv)
    args = build_parser(task_name).parse_args(argv)
    set_quiet(args.quiet)
    known = set(available_tasks()) | set(CONDITION_TASKS)
    if args.task not in known:
        raise UserError(f"unknown task {args.task!r}; known tasks: {', '.join(sorted(known))}")
    counts: dict[str, int] = {}
    with RunDir(args.out, overwrite=getattr(args, "overwrite", False)) as run:
        if args.task in CONDITION_TASKS:
            items = condition_items(args.task, args)
            records = [it.record() for it in items]
            for it in items:
                counts[it.part] = counts.get(it.part, 0) + 1
            if args.tsv:
                for cond in dict.fromkeys(it.condition for it in items):
                    lines = [tsv_line(it) for it in items if it.condition == cond]
                    run.write_text(f"{cond}.tsv", "\n".join(lines) + "\n")
        else:
            records = probing_records(args.task, args)
            for r in records:
                counts[r["split"]] = counts.get(r["split"], 0) + 1
        with open(run.file(f"{args.task}.jsonl"), "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        run.write_json("config.json", config_record(args, counts=counts))
        path = run.commit()
    if not args.quiet:
        print(f"wrote {len(records)} sentences ({', '.join(f'{k}: {v}' for k, v in counts.items())}) "
              f"to {path}/{args.task}.jsonl")
    return 0


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
