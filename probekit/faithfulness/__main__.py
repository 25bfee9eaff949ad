"""``python -m probekit.faithfulness``: is the classifier's attention a faithful explanation?

Examples::

    python -m probekit.faithfulness --classifier runs/rt --data rt:dev --limit 500 --out runs/rt-faith
    python -m probekit.faithfulness --classifier runs/rt --data rt:dev --experiments tau permutation adversary \\
        --out runs/rt-jw
    python -m probekit.faithfulness --classifier runs/hx --data hatexplain:test --rationales --out runs/hx-faith

The pipeline is :func:`probekit.faithfulness.run.faithfulness` (``pk.faithfulness``); this module parses the
options, calls it and writes the run folder (summary.md, findings.csv, ranking.csv, one CSV per experiment
table, the papers' figures, config.json).
"""
from __future__ import annotations

import inspect
import sys
from typing import Sequence

from ..cli import (Parser, add_common_options, add_encoder_source_option, add_output_options, encoder_source_scope,
                   main_wrapper)
from .experiments import DEFAULTS, names
from .run import faithfulness

_D = {k: v.default for k, v in inspect.signature(faithfulness).parameters.items()}


def build_parser() -> Parser:
    from ..attribution.registry import method_names

    p = Parser(prog="python -m probekit.faithfulness",
               description="The faithfulness experiments of Jain & Wallace, Serrano & Smith and Wiegreffe & Pinter, "
                           "and ERASER metrics, on a probekit classifier.")
    p.add_argument("--classifier", required=True, metavar="DIR",
                   help="a classifier folder (probekit.classify --out), a Hugging Face …ForSequenceClassification "
                        "folder, or a model id in the local Hugging Face cache")
    p.add_argument("--data", required=True, metavar="FILE",
                   help="examples with labels: JSON Lines, TSV/CSV, or a named set such as rt:dev")
    p.add_argument("--out", default=None, metavar="DIR", help="run folder (default runs/faithfulness-<model>-<time>)")
    p.add_argument("--experiments", nargs="+", default=None, choices=names(), metavar="NAME",
                   help=f"any of {', '.join(names())} (default: all)")
    p.add_argument("--attention", choices=["pooling", "cls"], default=_D["attention"],
                   help="the attention under test: the pooling head's weights, or the last layer's [CLS] "
                        "attention (default %(default)s)")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="a seeded random sample of N examples of --data, kept in file order")
    p.add_argument("--train", default=None, help="training data of the retraining experiments (default: the "
                                                 "classifier's own, from its config.json)")
    p.add_argument("--dev", default=None, help="dev data they select on (default: the classifier's own)")
    p.add_argument("--rationales", action="store_true",
                   help="ERASER plausibility against each example's 'rationale' field (0/1 per word)")
    p.add_argument("--methods", nargs="+", default=None, metavar="METHOD",
                   help=f"attribution methods ERASER ranks, any of {', '.join(method_names())} (default: all "
                        f"that apply)")
    p.add_argument("--data-root", default=None, help="folder of the named sets (default $PROBEKIT_DATA, else "
                                                     "~/.local/share/probekit/data)")
    p.add_argument("--batch-size", type=int, default=_D["batch_size"], help="examples per batch (default %(default)s)")
    p.add_argument("--device", default=_D["device"], help="torch device (default %(default)s)")
    p.add_argument("--cache-dir", default=None, help="activation cache folder (default: the user's cache directory)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the activation cache")
    p.add_argument("--ray", default=None, metavar="auto|ADDRESS",
                   help="run on Ray (needs probekit[ray]): auto (a local cluster) or a cluster ADDRESS; the "
                        "retrained seeds and λ, and extraction, are spread over its workers (same numbers)")
    e = p.add_argument_group("experiment options (defaults: the papers')")
    e.add_argument("--permutations", type=int, default=None,
                   help=f"shuffles of the attention per example (default {DEFAULTS['permutations']})")
    e.add_argument("--epsilon", type=float, default=None,
                   help=f"adversary: TVD allowed by the hinge (default {DEFAULTS['epsilon']})")
    e.add_argument("--accept", type=float, default=None,
                   help=f"adversary: reject candidates with TVD above this (default {DEFAULTS['accept']})")
    e.add_argument("--candidates", type=int, default=None,
                   help=f"adversary: attention vectors per example (default {DEFAULTS['candidates']})")
    e.add_argument("--adversary-steps", type=int, default=None,
                   help=f"adversary: Adam steps (default {DEFAULTS['adversary_steps']})")
    e.add_argument("--random-draws", type=int, default=None,
                   help=f"sets: random erasure orders (default {DEFAULTS['random_draws']})")
    e.add_argument("--seeds", type=int, default=None,
                   help=f"seed variance: retrained seeds (default {DEFAULTS['seeds']})")
    e.add_argument("--epochs", type=int, default=None,
                   help=f"epochs of every retrained head (default {DEFAULTS['epochs']})")
    e.add_argument("--lambdas", type=float, nargs="+", default=None,
                   help=f"end-to-end adversary: KL weights (default {' '.join(map(str, DEFAULTS['lambdas']))})")
    e.add_argument("--adversary-epochs", type=int, default=None,
                   help=f"end-to-end adversary: most epochs (default {DEFAULTS['adversary_epochs']}, Wiegreffe & "
                        f"Pinter's)")
    e.add_argument("--ks", type=float, nargs="+", default=None,
                   help=f"ERASER: percentages of words removed or kept (default "
                        f"{' '.join(map(str, DEFAULTS['ks']))})")
    e.add_argument("--flip-max-words", type=int, default=None,
                   help="ERASER decision flips: remove at most this many words one by one (default: all)")
    e.add_argument("--resamples", type=int, default=None,
                   help=f"bootstrap resamples of every 95%% interval, 1000 to 1000000 (default "
                        f"{DEFAULTS['resamples']})")
    add_output_options(p)
    add_common_options(p)
    add_encoder_source_option(p)
    return p


def _main(argv: Sequence[str] | None = None) -> int:
    options = vars(build_parser().parse_args(list(sys.argv[1:] if argv is None else argv)))
    out, overwrite, figures = options.pop("out"), options.pop("overwrite"), options.pop("figures")
    with encoder_source_scope(options):
        result = faithfulness(options.pop("classifier"), options.pop("data"), **options)
    path = result.write(out, overwrite=overwrite, figures=figures)
    ran = [o.name for o in result.outcomes if not o.skipped]
    skipped = [o.name for o in result.outcomes if o.skipped]
    note = f"; skipped {', '.join(skipped)} (see summary.md)" if skipped else ""
    print(f"wrote {path / 'summary.md'} ({result.record['counts']['examples']} examples; ran {', '.join(ran)}{note})")
    return 0


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
