"""``python -m probekit.confusion``: attention confusion scores (Lin et al. 2019 §5, Table 2).

Writes ``results.csv`` (tidy: confusion and candidate mass per condition, layer and head), ``results.md``
(Table 2, by layer, best heads), ``confusion_by_layer.png`` and ``config.json``. From Python:
``pk.confusion(**options)`` (:mod:`probekit.heads.confusion`, where the scores are defined).
"""
from __future__ import annotations

from probekit.cli import table_command
from probekit.heads.confusion import ConfusionOptions, confusion

build_parser, main = table_command(
    "python -m probekit.confusion", "Attention confusion scores for agreement (A1-A4) and reflexives (R1-R8), Lin "
    "et al. 2019 Table 2.", ConfusionOptions, confusion, "run folder (default runs/confusion-<model>-<time>)",
    show=lambda result: result.markdown()[1])

if __name__ == "__main__":
    raise SystemExit(main())
