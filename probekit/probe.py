"""``python -m probekit.probe --task TASK``: selection probes on every layer of an encoder.

Writes ``results.csv`` (tidy), ``results.md``, ``accuracy_by_layer.png`` and ``config.json`` into a run
directory. From Python: ``pk.probe(task, **options)`` (:mod:`probekit.probing.probe`).
"""
from __future__ import annotations

import inspect
import sys
from typing import Sequence

from .cli import (Parser, add_cache_options, add_common_options, add_model_options, add_output_options,
                  main_wrapper, peek_task)
from .probing.probe import POOLINGS, PROBES, probe
from .probing.registry import SIZE_NAMES, available_tasks

DEFAULTS = {k: p.default for k, p in inspect.signature(probe).parameters.items() if p.default is not p.empty}


def build_parser(task_name: str | None = DEFAULTS["task"]) -> Parser:
    tasks = available_tasks()
    parser = Parser(prog="python -m probekit.probe", description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default=DEFAULTS["task"],
                        help=f"probing task: {', '.join(sorted(tasks))}, or a task file my_task.py")
    parser.add_argument("--out", default=None, help="run directory (default runs/<task>-<model>-<time>)")
    parser.add_argument("--probes", nargs="+", choices=PROBES, default=list(DEFAULTS["probes"]),
                        help="probe kinds to train on every layer")
    parser.add_argument("--pooling", choices=POOLINGS, default=DEFAULTS["pooling"],
                        help="how a word's vector is pooled from its sub-tokens")
    parser.add_argument("--size", choices=SIZE_NAMES, default=DEFAULTS["size"],
                        help="generated data size: quick, or the paper's 40k/10k/10k")
    parser.add_argument("--epochs", type=int, default=DEFAULTS["epochs"],
                        help="training epochs of the MLP probe (the linear probe is fitted to convergence, "
                             "its L2 chosen on the training split)")
    parser.add_argument("--lr", type=float, default=DEFAULTS["lr"], help="Adam learning rate of the MLP probe")
    parser.add_argument("--seeds", type=int, default=DEFAULTS["seeds"],
                        help="train every probe with this many seeds (seed … seed+N-1); tables show mean ± std")
    parser.add_argument("--control", action="store_true",
                        help="also train on a control task (Hewitt & Liang) and report selectivity")
    parser.add_argument("--mdl", action="store_true",
                        help="online codelength (Voita & Titov MDL) per layer, and for the control task")
    parser.add_argument("--mlp-hidden", type=int, default=DEFAULTS["mlp_hidden"], help="hidden units of the MLP probe")
    add_model_options(parser, batch_size=DEFAULTS["batch_size"])
    add_cache_options(parser)
    add_output_options(parser)
    add_common_options(parser)
    if task_name in tasks or (task_name or "").endswith(".py"):
        from .probing.registry import get_task

        task = get_task(task_name)
        task.add_arguments(parser.add_argument_group(f"options of --task {task.name}"))
    return parser


def _main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    options = vars(build_parser(peek_task(argv, DEFAULTS["task"])).parse_args(argv))
    out, overwrite, figures = options.pop("out"), options.pop("overwrite"), options.pop("figures")
    result = probe(**options)
    path = result.write(out, overwrite=overwrite, figures=figures)
    print(f"results: {', '.join(str(path / f) for f in result.files())}")
    return 0


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
