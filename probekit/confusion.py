"""``python -m probekit.confusion``: attention confusion scores (Lin et al. 2019 §5, Table 2).

Writes ``results.csv`` (tidy: confusion and candidate mass per condition, layer and head), ``results.md``
(Table 2, by layer, best heads), ``confusion_by_layer.png`` and ``config.json``. From Python:
``pk.confusion(**options)`` (:mod:`probekit.heads.confusion`, where the scores are defined).
"""
from __future__ import annotations

from typing import Sequence

from .cli import Parser, add_common_options, add_model_options, add_output_options, main_wrapper
from .heads.confusion import DEFAULTS, confusion


def build_parser() -> Parser:
    p = Parser(prog="python -m probekit.confusion",
               description="Attention confusion scores for agreement (A1-A4) and reflexives (R1-R8), "
                           "Lin et al. 2019 Table 2.")
    p.add_argument("--conditions", nargs="+", default=DEFAULTS["conditions"],
                   help="conditions or parts to score: A1..A4, R1..R8, A3-srel, A3-orel, A4-srel, A4-orel, "
                        "agreement, reflexive, all (default: all twelve, or none with --data)")
    p.add_argument("--sentences", type=int, default=DEFAULTS["sentences"],
                   help="generated sentences per condition (default %(default)s; A3/A4 half per part)")
    p.add_argument("--data", nargs="+", default=DEFAULTS["data"], metavar="FILE",
                   help="external items, one per line: sentence<TAB>source<TAB>correct indices<TAB>"
                        "distractor indices (0-based word indices); each file is a condition")
    p.add_argument("--attention-from", choices=["mean", "first"], default=DEFAULTS["attention_from"],
                   help="attention FROM a split word: mean of its pieces (default) or its first piece")
    p.add_argument("--min-mass", type=float, default=DEFAULTS["min_mass"],
                   help="heads whose mean candidate mass is below this are not ranked as best heads "
                        "(default %(default)s)")
    p.add_argument("--out", default=None, help="run folder (default runs/confusion-<model>-<time>)")
    add_model_options(p, batch_size=DEFAULTS["batch_size"])
    add_output_options(p)
    add_common_options(p)
    return p


def _main(argv: Sequence[str] | None = None) -> int:
    options = vars(build_parser().parse_args(argv))
    out, overwrite, figures = options.pop("out"), options.pop("overwrite"), options.pop("figures")
    result = confusion(**options)
    path = result.write(out, overwrite=overwrite, figures=figures)
    if not options["quiet"]:
        print(result.markdown()[1])
    print(f"wrote {path}")
    return 0


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
