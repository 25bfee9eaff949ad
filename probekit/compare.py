"""``python -m probekit.compare``: a fine-tuned model against the model it came from, on one corpus.

Writes into a run directory: ``results.csv`` (tidy: task ``cka`` per layer, ``attention_js`` per layer × head,
``attention`` = Clark's statistics per head with model ``base``/``finetuned``, and each probe task's rows),
``summary.md`` (layers and heads that changed most), ``cka_by_layer.png``, ``attention_js.png``,
``attention_stats.png``, ``probe_<task>.png`` (base dashed, fine-tuned solid) and ``config.json``.
From Python: ``pk.compare(finetuned, **options)`` (same options).
"""
from __future__ import annotations

from typing import Sequence

from .cli import (Parser, add_cache_options, add_common_options, add_encoder_source_option, add_output_options,
                  main_wrapper, run_and_write)
from .finetuned.compare import compare, defaults
from .probing.probe import PROBES


def build_parser() -> Parser:
    d = defaults()
    p = Parser(prog="python -m probekit.compare", description=__doc__.split("\n\n")[0])
    p.add_argument("--finetuned", required=True, metavar="DIR",
                   help="a classifier folder from python -m probekit.classify --finetune, a Hugging Face model "
                        "folder (a sequence classifier's too), or a classifier's model id in the local Hugging "
                        "Face cache")
    p.add_argument("--base", default=None, metavar="MODEL",
                   help="model id or folder (default: the encoder the classifier was trained from, else the "
                        "bundled all-MiniLM-L6-v2)")
    p.add_argument("--corpus", default=None,
                   help="a .txt (one sentence per line), .conllu, a classifier's data (.jsonl, .tsv) or a named set "
                        "such as rt:dev (default: 500 sentences generated from the english grammar)")
    p.add_argument("--data-root", default=d["data_root"],
                   help="folder of the named sets (default $PROBEKIT_DATA, else ~/.local/share/probekit/data)")
    p.add_argument("--limit", type=int, default=d["limit"], help="use the first N inputs of the corpus")
    p.add_argument("--tasks", nargs="*", default=list(d["tasks"]), metavar="TASK",
                   help="probe tasks run on both models, each on its own data (none: no probing)")
    p.add_argument("--probes", nargs="+", choices=PROBES, default=list(d["probes"]), help="probes per layer")
    p.add_argument("--probe-epochs", type=int, default=d["probe_epochs"], help="epochs of each probe")
    p.add_argument("--cka-batch-size", type=int, default=d["cka_batch_size"],
                   help="words per CKA minibatch, the units of CKA's bootstrap interval (the CKA value is the "
                        "full-batch one whatever the size)")
    p.add_argument("--attention-from", choices=["mean", "first"], default=d["attention_from"],
                   help="a word's attention row: the mean of its pieces' rows, or the first piece's")
    p.add_argument("--out", default=None, help="run directory (default runs/compare-<model>-<time>)")
    p.add_argument("--batch-size", type=int, default=d["batch_size"], help="inputs per forward pass")
    p.add_argument("--max-length", type=int, default=None,
                   help="truncate inputs to this many tokens (default: a classifier's own max_length, else the "
                        "models' maximum)")
    p.add_argument("--device", default=d["device"], help="torch device")
    add_cache_options(p)
    add_output_options(p)
    add_common_options(p)
    add_encoder_source_option(p)
    return p


def _main(argv: Sequence[str] | None = None) -> int:
    return run_and_write(build_parser(), compare, argv)


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
