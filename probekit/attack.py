"""``python -m probekit.attack``: evaluate a trained model under adversarial inputs.

Examples::

    python -m probekit.attack --classifier runs/mc160 --data mc160:test --out runs/mc160-attack
    python -m probekit.attack --classifier runs/mc160 --data mc160:test --train mc160:train --dev mc160:dev \\
        --out runs/mc160-unanswerable              # + the six un-answerable retrainings (resumable)
    python -m probekit.attack --classifier runs/rt --data rt:test --limit 300 --out runs/rt-attack
    python -m probekit.attack --classifier runs/rt --data rt:train --attacks delete mask --augment rt-aug.jsonl \\
        --out runs/rt-aug                          # then: classify --train rt:train rt-aug.jsonl …

The pipeline is :func:`probekit.attacks.attack.attack` (``pk.attack``); this module parses the options, calls it and
writes the run folder (results.csv, table.csv, summary.md, keyword_curve.png for classifiers, config.json).
"""
from __future__ import annotations

import sys
from pathlib import Path

from probekit.attacks.attack import AttackOptions, attack
from probekit.cli import classifier_output, command, report_files
from probekit.core.plugins import load_plugins

#: what only the command line has: where to write, and the plug-in files to load first
OUTPUT = classifier_output("the run folder to write", required=True, plugins="attacks or attribution methods")


def _prepare(values: dict, out: dict) -> None:
    """The retraining checkpoints go beside ``--out`` unless named; ``--overwrite`` also covers ``--augment``."""
    if values["train"] is not None and values["checkpoints"] is None:
        values["checkpoints"] = str(Path(out["out"]).with_name(Path(out["out"]).name + "-checkpoints"))
    values["overwrite"] = out["overwrite"]


def _report(result, path, values: dict, out: dict) -> None:
    for caution in result.cautions():
        print(f"probekit: warning: {caution}", file=sys.stderr)
    report_files(result, path, values, out, f"; augmented data: {values['augment']}" if values["augment"] else "")


build_parser, main = command(
    "python -m probekit.attack", "Adversarial attacks: Si et al. (2019) on a multiple-choice model; word shuffle, "
    "distractors and key-word attacks on a classifier.", AttackOptions, attack,
    OUTPUT, _report, prepare=_prepare, load=load_plugins)

if __name__ == "__main__":
    raise SystemExit(main())
