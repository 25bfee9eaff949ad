"""``python -m probekit.attack``: evaluate a trained model under adversarial inputs.

Examples::

    python -m probekit.attack --classifier runs/mc160 --data mc160:test --out runs/mc160-attack
    python -m probekit.attack --classifier runs/mc160 --data mc160:test --train mc160:train --dev mc160:dev \\
        --out runs/mc160-unanswerable              # + the six un-answerable retrainings (resumable)
    python -m probekit.attack --classifier runs/rt --data rt:test --limit 300 --out runs/rt-attack
    python -m probekit.attack --classifier runs/rt --data rt:train --attacks delete mask --augment rt-aug.jsonl \\
        --out runs/rt-aug                          # then: classify --train rt:train rt-aug.jsonl …

The pipeline is :func:`probekit.attacks.run.attack` (``pk.attack``); this module parses the options, calls it and
writes the run folder (results.csv, table.csv, summary.md, keyword_curve.png for classifiers, config.json).
"""
from __future__ import annotations

import inspect
import sys
from pathlib import Path

from .attacks.run import CLASSIFIER_ATTACKS, attack
from .attacks.mc import ATTACKS, TRAINING
from .cli import (Parser, add_common_options, add_encoder_source_option, add_output_options, encoder_source_scope,
                  main_wrapper)

_D = {k: v.default for k, v in inspect.signature(attack).parameters.items()}


def build_parser() -> Parser:
    p = Parser(prog="python -m probekit.attack",
               description="Adversarial attacks: Si et al. (2019) on a multiple-choice model; word shuffle, "
                           "distractors and key-word attacks on a classifier.")
    p.add_argument("--classifier", required=True, metavar="DIR",
                   help="a classifier folder (probekit.classify --out), multiple-choice or not; a Hugging Face "
                        "…ForSequenceClassification folder, or a model id in the local Hugging Face cache")
    p.add_argument("--data", required=True, nargs="+", metavar="FILE",
                   help="test data: a file or a named set (rt:test, mc160:test); several give several columns")
    p.add_argument("--out", required=True, metavar="DIR", help="the run folder to write")
    p.add_argument("--attacks", nargs="+", default=None, metavar="ATTACK",
                   help=f"a subset; multiple choice: {' '.join(ATTACKS)}; classifier: "
                        f"{' '.join(CLASSIFIER_ATTACKS)} (default: all)")
    p.add_argument("--limit", type=int, default=_D["limit"], metavar="N", help="a seeded random sample of N items of each --data (kept in file order)")
    p.add_argument("--draws", type=int, default=_D["draws"], help="seeded draws of every random setting")
    p.add_argument("--ks", nargs="+", type=float, default=list(_D["ks"]), metavar="K",
                   help="key-word attacks: percentages of the words (default 1 2 5 10)")
    p.add_argument("--method", default=_D["method"],
                   help="attribution method that ranks the words for the key-word attacks")
    p.add_argument("--augment", default=None, metavar="FILE",
                   help="also write the perturbed items as a JSON Lines data file for probekit.classify")
    r = p.add_argument_group("un-answerable retraining (multiple choice)")
    r.add_argument("--train", default=None, help="training items: retrain on P-/Q-/PQ-Shuffle and -Remove versions")
    r.add_argument("--dev", default=None, help="dev items for the retrainings' model selection (corrupted alike)")
    r.add_argument("--unanswerable", nargs="+", default=None, metavar="SETTING",
                   help=f"retrain only on these: {' '.join(TRAINING)} (default: all six)")
    r.add_argument("--checkpoints", default=None, metavar="DIR",
                   help="retraining checkpoints, one folder per setting (default: OUT-checkpoints beside --out); "
                        "a killed run resumes from its last finished epoch")
    own = "(default: the attacked model's own, from its run's config.json)"
    r.add_argument("--epochs", type=int, default=None, help=f"retraining epochs {own}")
    r.add_argument("--lr", type=float, default=None, help=f"retraining learning rate {own}")
    r.add_argument("--max-length", type=int, default=None, help=f"retraining max length {own}")
    p.add_argument("--resamples", type=int, default=None,
                   help="bootstrap resamples of the drops' 95%% intervals, 1000 to 1000000 (default 9999)")
    p.add_argument("--batch-size", type=int, default=_D["batch_size"], help="items per forward pass")
    p.add_argument("--device", default=_D["device"], help="torch device")
    p.add_argument("--data-root", default=None, help="folder of the named sets (default $PROBEKIT_DATA, else ~/.local/share/probekit/data)")
    add_output_options(p)
    add_common_options(p)
    add_encoder_source_option(p)
    return p


def _main(argv=None) -> int:
    options = vars(build_parser().parse_args(argv))
    out, overwrite, figures = options.pop("out"), options.pop("overwrite"), options.pop("figures")
    if options["train"] is not None and options["checkpoints"] is None:
        options["checkpoints"] = str(Path(out).with_name(Path(out).name + "-checkpoints"))
    data = options.pop("data")
    with encoder_source_scope(options):
        result = attack(options.pop("classifier"), data[0] if len(data) == 1 else data, overwrite=overwrite,
                        **options)
    path = result.write(out, overwrite=overwrite, figures=figures)
    for caution in result.cautions():
        print(f"probekit: warning: {caution}", file=sys.stderr)
    extra = f"; augmented data: {options['augment']}" if options["augment"] else ""
    print(f"results: {', '.join(str(path / f) for f in result.files())}{extra}")
    return 0


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
