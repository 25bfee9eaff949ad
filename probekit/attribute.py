"""``python -m probekit.attribute``: which words mattered to a trained classifier's decisions.

Examples::

    python -m probekit.attribute --classifier runs/rt --text "A gorgeous, witty film." --show --out runs/rt-attr
    python -m probekit.attribute --classifier runs/rt --data rt:test --limit 200 --out runs/rt-attr
    python -m probekit.attribute --classifier runs/rt --data dev.jsonl --methods integrated-gradients occlusion \\
        --steps 100 --png example.png --out runs/rt-ig
    python -m probekit.attribute --classifier runs/rt --text "Not bad at all." --plugin my_method.py \\
        --methods my-method smoothgrad --samples 20 --out runs/rt-mine

The pipeline is :func:`probekit.attribution.attribute.attribute` (``pk.attribute``); this module parses the
options, calls it and writes the run folder (attributions.csv, agreement.csv, attributions.html, example.png).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import make_dataclass
from typing import Any

from probekit.attribution.attribute import AttributeOptions, attribute
from probekit.cli import classifier_output, command
from probekit.core import checks
from probekit.core.options import option
from probekit.core.outputs import write_atomic
from probekit.core.plugins import load_plugins

#: what only the command line has: where to write, what to show, which plug-in files to load first
OUTPUT = make_dataclass("AttributeOutput", [
    ("show", bool, option(False, "print the coloured text (colour only on a terminal)")),
    ("png", Any, option(None, "also write a figure of the first example (all methods) here", metavar="FILE"))],
    bases=(classifier_output("the run folder to write", required=True, plugins="attribution methods"),),
    frozen=True, kw_only=True)


def _method_options(parser, argv) -> None:
    """Each registered method's own options (``--steps``, ``--samples`` …), declared by the method classes."""
    from probekit.attribution.registry import all_options

    group = parser.add_argument_group("method options", "each method's own options (pk.list_methods() lists them)")
    for name, owners in all_options().items():
        cls, f = owners[0]
        users = ", ".join(f"{c.name}: {f_.default}" for c, f_ in owners)
        group.add_argument(checks.flag(name), type=f.metadata.get("type", str), default=argparse.SUPPRESS,
                           metavar=name.split("_")[0].upper() if f.metadata.get("type") in (int, float) else None,
                           help=f"{f.metadata.get('help', '')} (default {users})".replace("%", "%%"))


def _prepare(values: dict, out: dict) -> None:
    if out["png"]:
        checks.output_file("png", out["png"], overwrite=out["overwrite"],
                           inputs=[values["data"]] if values["data"] else [])


def _report(result, path, values: dict, out: dict) -> None:
    if out["show"]:
        print(result.ansi(color=sys.stdout.isatty()))
    first = result.first_example() if out["png"] else None
    if first is not None:
        fig = result.figure(first)
        write_atomic(out["png"], lambda tmp: fig.savefig(tmp, dpi=150, format="png"), name="png")
    flagged = result.record["counts"].get("ig_flagged", 0)
    note = f"; integrated gradients flagged on {flagged} example(s) (|delta| > 5%)" if flagged else ""
    print(f"wrote {path} ({result.record['counts']['examples']} examples, "
          f"{', '.join(result.record['arguments']['methods'])}){note}")


build_parser, main = command(
    "python -m probekit.attribute", "Word attributions of a classifier (python -m probekit.classify): pooling "
    "weights, gradients, integrated gradients, occlusion, attention, SmoothGrad, GradientSHAP; a coloured-text "
    "page.", AttributeOptions, attribute, OUTPUT, _report, prepare=_prepare, load=load_plugins,
    extend=_method_options)

if __name__ == "__main__":
    raise SystemExit(main())
