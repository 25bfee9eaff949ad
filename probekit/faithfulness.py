"""``python -m probekit.faithfulness``: is the classifier's attention a faithful explanation?

Examples::

    python -m probekit.faithfulness --classifier runs/rt --data rt:dev --limit 500 --out runs/rt-faith
    python -m probekit.faithfulness --classifier runs/rt --data rt:dev --experiments tau permutation adversary \\
        --out runs/rt-jw
    python -m probekit.faithfulness --classifier runs/hx --data hatexplain:test --rationales --out runs/hx-faith

The pipeline is :func:`probekit.evaluation.faithfulness.faithfulness` (``pk.faithfulness``); this module parses the
options, calls it and writes the run folder (summary.md, findings.csv, ranking.csv, one CSV per experiment
table, the papers' figures, config.json).
"""
from __future__ import annotations

import argparse

from probekit.cli import classifier_output, command
from probekit.cli.generate import argument_spec
from probekit.core.options import meta
from probekit.core.plugins import load_plugins
from probekit.evaluation.experiments import option_fields
from probekit.evaluation.faithfulness import FaithfulnessOptions, faithfulness

#: what only the command line has: where to write, and the plug-in files to load first
OUTPUT = classifier_output("run folder (default runs/faithfulness-<model>-<time>)",
                           plugins="experiments or attribution methods")


def _experiment_options(parser, argv) -> None:
    """Every registered experiment's own options (a plug-in's too), declared by the experiment classes."""
    group = parser.add_argument_group("experiment options (defaults: the papers'; pk.list_experiments() lists them)")
    for f in option_fields().values():
        if meta(f).get("cli", True):
            flags, kw = argument_spec(f)
            default = kw.pop("default")
            shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else default
            if "(default" not in kw["help"]:
                kw["help"] = f"{kw['help']} (default {shown})"
            group.add_argument(*flags, **kw, default=argparse.SUPPRESS)


def _report(result, path, values: dict, out: dict) -> None:
    ran = [o.name for o in result.outcomes if not o.skipped]
    skipped = [o.name for o in result.outcomes if o.skipped]
    note = f"; skipped {', '.join(skipped)} (see summary.md)" if skipped else ""
    print(f"wrote {path / 'summary.md'} ({result.record['counts']['examples']} examples; ran {', '.join(ran)}{note})")


build_parser, main = command(
    "python -m probekit.faithfulness", "The faithfulness experiments of Jain & Wallace, Serrano & Smith and "
    "Wiegreffe & Pinter, and ERASER metrics, on a probekit classifier.", FaithfulnessOptions, faithfulness,
    OUTPUT, _report, load=load_plugins, extend=_experiment_options)

if __name__ == "__main__":
    raise SystemExit(main())
