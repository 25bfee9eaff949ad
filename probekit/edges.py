"""``python -m probekit.edges --train F --dev F``: edge probing with a scalar mix over layers (Tenney et al. 2019).

Tasks: UPOS (one word) and dependency relations (dependent–head pairs) from CoNLL-U, coreference of
(pronoun, name) pairs from GAP. Writes ``results.csv`` (scores per layer and split with 95 % intervals,
cumulative scores, mixing weights, center of gravity, expected layer), ``comparisons.csv``, ``results.md``, ``edges_by_layer.png`` and ``config.json``.
``pk.edges(train=…, dev=…)`` does the same from Python.
"""
from __future__ import annotations

import inspect

from .cli import (Parser, add_cache_options, add_common_options, add_model_options, add_output_options,
                  main_wrapper, run_and_write)
from .probing.edges_run import TASKS, edges

_DEFAULTS = {k: p.default for k, p in inspect.signature(edges).parameters.items()}


def build_parser() -> Parser:
    p = Parser(prog="python -m probekit.edges", description=__doc__.split("\n\n")[0])
    p.add_argument("--train", default=None, help="training treebank (CoNLL-U), for upos and deprel")
    p.add_argument("--dev", default=None, help="development treebank (CoNLL-U), for upos and deprel: picks each "
                   "probe's parameters and is scored")
    p.add_argument("--test", default=None, help="test treebank (CoNLL-U), scored with the probes chosen on --dev")
    p.add_argument("--tasks", nargs="+", choices=TASKS, default=list(_DEFAULTS["tasks"]))
    p.add_argument("--gap-train", default=None, help="GAP TSV to train the coref probe on")
    p.add_argument("--gap-dev", default=None, help="GAP TSV that picks the coref probe's parameters (scored)")
    p.add_argument("--gap-test", default=None, help="GAP TSV scored with the coref probe chosen on --gap-dev")
    p.add_argument("--epochs", type=int, default=_DEFAULTS["epochs"],
                   help="most epochs per probe (Tenney et al.'s schedule stops earlier when dev micro-F1 stalls)")
    p.add_argument("--val-interval", type=int, default=_DEFAULTS["val_interval"],
                   help="training steps between dev checks (or one epoch, when shorter)")
    p.add_argument("--seeds", type=int, default=_DEFAULTS["seeds"],
                   help="probes per layer with seeds seed…seed+N-1: mean and Student-t interval over them")
    p.add_argument("--resamples", type=int, default=_DEFAULTS["resamples"], help="bootstrap resamples")
    p.add_argument("--lr", type=float, default=_DEFAULTS["lr"], help="Adam learning rate")
    p.add_argument("--probe-batch-size", type=int, default=_DEFAULTS["probe_batch_size"],
                   help="targets per probe training step")
    p.add_argument("--limit", type=int, default=None, help="use only the first N sentences (or GAP rows) of each file")
    p.add_argument("--skip-bad", action="store_true", help="skip malformed sentences or rows (counted)")
    p.add_argument("--out", default=None, help="run folder (default runs/edges-<model>-<time>)")
    add_model_options(p)
    add_cache_options(p)
    add_output_options(p)
    add_common_options(p)
    return p


def _main(argv=None) -> int:
    return run_and_write(build_parser(), edges, argv)


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
