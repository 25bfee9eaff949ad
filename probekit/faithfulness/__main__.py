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

from ..cli import classifier_output, command
from .run import FaithfulnessOptions, faithfulness


def _report(result, path, values: dict, out: dict) -> None:
    ran = [o.name for o in result.outcomes if not o.skipped]
    skipped = [o.name for o in result.outcomes if o.skipped]
    note = f"; skipped {', '.join(skipped)} (see summary.md)" if skipped else ""
    print(f"wrote {path / 'summary.md'} ({result.record['counts']['examples']} examples; ran {', '.join(ran)}{note})")


build_parser, main = command(
    "python -m probekit.faithfulness", "The faithfulness experiments of Jain & Wallace, Serrano & Smith and "
    "Wiegreffe & Pinter, and ERASER metrics, on a probekit classifier.", FaithfulnessOptions, faithfulness,
    classifier_output("run folder (default runs/faithfulness-<model>-<time>)"), _report)

if __name__ == "__main__":
    raise SystemExit(main())
