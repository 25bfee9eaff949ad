"""``python -m probekit.compare``: a fine-tuned model against the model it came from, on one corpus.

Writes into a run directory: ``results.csv`` (tidy: task ``cka`` per layer, ``attention_js`` per layer × head,
``attention`` = Clark's statistics per head with model ``base``/``finetuned``, and each probe task's rows),
``summary.md`` (layers and heads that changed most), ``cka_by_layer.png``, ``attention_js.png``,
``attention_stats.png``, ``probe_<task>.png`` (base dashed, fine-tuned solid) and ``config.json``.
From Python: ``pk.compare(finetuned, **options)`` (same options).
"""
from __future__ import annotations

from probekit.cli import classifier_output, command
from probekit.finetuned.compare import CompareOptions, compare

build_parser, main = command(
    "python -m probekit.compare", __doc__.split("\n\n")[0], CompareOptions, compare,
    classifier_output("run directory (default runs/compare-<model>-<time>)"))

if __name__ == "__main__":
    raise SystemExit(main())
