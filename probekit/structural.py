"""``python -m probekit.structural --train F --dev F``: Hewitt & Manning's structural probes on every layer.

Writes ``results.csv`` (UUAS, distance Spearman, root accuracy and depth Spearman per layer and split, with
95 % intervals, the linear-position and non-contextual baselines), ``comparisons.csv``, ``history.csv``, ``results.md``, ``structural_by_layer.png``, ``tree.png`` (one dev
sentence, gold vs predicted) and ``config.json``. ``pk.structural(train=…, dev=…)`` does the same from Python.
"""
from __future__ import annotations

import inspect

from .cli import (Parser, add_cache_options, add_common_options, add_model_options, add_output_options,
                  main_wrapper, run_and_write)
from .probing.structural_run import structural

_DEFAULTS = {k: p.default for k, p in inspect.signature(structural).parameters.items()}


def build_parser() -> Parser:
    p = Parser(prog="python -m probekit.structural", description=__doc__.split("\n\n")[0])
    p.add_argument("--train", required=True, help="training treebank (CoNLL-U)")
    p.add_argument("--dev", required=True, help="development treebank (CoNLL-U): picks each probe's parameters "
                   "(lowest dev loss) and is scored")
    p.add_argument("--test", default=None, help="test treebank (CoNLL-U), scored with the probes chosen on --dev")
    p.add_argument("--out", default=None, help="run folder (default runs/structural-<model>-<time>)")
    p.add_argument("--probes", nargs="+", choices=["distance", "depth"], default=list(_DEFAULTS["probes"]))
    p.add_argument("--rank", type=int, default=None, help="rank of the projection (default: the hidden size)")
    p.add_argument("--layers", type=int, nargs="+", default=None, help="layers to probe (default: 0…L)")
    p.add_argument("--epochs", type=int, default=_DEFAULTS["epochs"],
                   help="most epochs per probe (Hewitt & Manning: learning rate x0.1 when the dev loss stalls, stop "
                        "after 5 epochs without improvement, the lowest dev loss kept)")
    p.add_argument("--seeds", type=int, default=_DEFAULTS["seeds"],
                   help="probes per layer with seeds seed…seed+N-1: mean and Student-t interval over them "
                        "(1: a bootstrap interval over sentences)")
    p.add_argument("--resamples", type=int, default=_DEFAULTS["resamples"], help="bootstrap resamples")
    p.add_argument("--lr", type=float, default=_DEFAULTS["lr"], help="Adam learning rate")
    p.add_argument("--probe-batch-size", type=int, default=_DEFAULTS["probe_batch_size"],
                   help="sentences per probe training step")
    p.add_argument("--limit", type=int, default=None, help="use only the first N sentences of each file")
    p.add_argument("--skip-bad", action="store_true", help="skip malformed sentences (counted) instead of stopping")
    add_model_options(p)
    add_cache_options(p)
    add_output_options(p)
    add_common_options(p)
    return p


def _main(argv=None) -> int:
    return run_and_write(build_parser(), structural, argv)


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
