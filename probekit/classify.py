"""``python -m probekit.classify``: train a classifier with an explainable pooling head, evaluate, save.

``--train F --dev F [--test F] --out DIR`` trains (files: JSON Lines, TSV/CSV; or shared sets by name,
``rt:train``); ``--load DIR --test F --out DIR2`` evaluates a saved classifier. ``--task multiple-choice``
trains a reading-comprehension model instead (:mod:`probekit.classifiers.multiple_choice.run`; MCTest, JSON Lines). From Python:
``pk.classify(train, dev, test, **options)`` (:mod:`probekit.classifiers.classify`).
"""
from __future__ import annotations

from probekit.cli import classifier_output, command, report_files
from probekit.classifiers.options import ClassifyOptions
from probekit.classifiers.classify import classify


def _prepare(values: dict, out: dict) -> None:
    """Multiple choice checkpoints beside ``--out`` and refuses a non-empty one before training."""
    values.update(out=out["out"], overwrite=out["overwrite"])


def _report(result, path, values: dict, out: dict) -> None:
    if not values["quiet"]:
        from probekit.classifiers.report import summary_table
        from probekit.core.rundir import markdown_table

        print(markdown_table(summary_table(result.frame)))
        if result.record.get("baselines", {}).get("head_vs_linear"):
            print(f"head against the linear baseline: {result.record['baselines']['head_vs_linear']}")
    report_files(result, path, values, out,
                 f"; {result.truncation_line()}" if hasattr(result, "truncation_line") else "")


build_parser, main = command(
    "python -m probekit.classify", __doc__.split("\n\n")[0], ClassifyOptions, classify,
    classifier_output("run folder (default runs/classify-<model>-<time>)"), _report, prepare=_prepare)

if __name__ == "__main__":
    raise SystemExit(main())
