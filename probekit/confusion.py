"""``python -m probekit.confusion``: attention confusion scores (Lin et al. 2019 §5, Table 2).

Writes ``results.csv`` (tidy: confusion and candidate mass per condition, layer and head), ``results.md``
(Table 2, by layer, best heads), ``confusion_by_layer.png`` and ``config.json``. From Python:
``pk.confusion(**options)`` (:mod:`probekit.heads.confusion`, where the scores are defined).
"""
from __future__ import annotations

from typing import Sequence

from .cli import main_wrapper, options_parser, parse_options
from .core.options import output_options
from .heads.confusion import ConfusionOptions, confusion

OUTPUT = output_options("run folder (default runs/confusion-<model>-<time>)")


def build_parser():
    return options_parser("python -m probekit.confusion",
                          "Attention confusion scores for agreement (A1-A4) and reflexives (R1-R8), "
                          "Lin et al. 2019 Table 2.", ConfusionOptions, OUTPUT)


def _main(argv: Sequence[str] | None = None) -> int:
    options, out = parse_options(build_parser(), argv, OUTPUT)
    result = confusion(**options)
    path = result.write(out["out"], overwrite=out["overwrite"], figures=out["figures"])
    if not options["quiet"]:
        print(result.markdown()[1])
    print(f"wrote {path}")
    return 0


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
