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
import inspect
import sys

from .attribution.attribute import LEVELS, attribute
from .cli import (Parser, add_common_options, add_encoder_source_option, add_output_options, encoder_source_scope,
                  main_wrapper, set_quiet)
from .core import checks
from .core.outputs import write_atomic

_D = {k: v.default for k, v in inspect.signature(attribute).parameters.items()}


def _plugins(argv) -> list[str]:
    """The ``--plugin`` files in ``argv``, loaded before the parser is built so their methods are choices."""
    import argparse

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--plugin", action="append", default=[])
    return pre.parse_known_args(argv)[0].plugin


def build_parser(argv=()) -> Parser:
    """The command's parser; ``argv``'s ``--plugin`` files are loaded first (their methods become choices)."""
    from .attribution.plugins import load_plugin
    from .attribution.registry import all_options, method_names

    for path in _plugins(list(argv)):
        load_plugin(path)
    p = Parser(prog="python -m probekit.attribute",
               description="Word attributions of a classifier (python -m probekit.classify): pooling weights, "
                           "gradients, integrated gradients, occlusion, attention, SmoothGrad, GradientSHAP; a "
                           "coloured-text page.")
    p.add_argument("--classifier", required=True, metavar="DIR",
                   help="a classifier folder (probekit.classify --out), a Hugging Face …ForSequenceClassification "
                        "folder, or a model id in the local Hugging Face cache")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", action="append", metavar="TEXT", help="a text to explain (repeatable)")
    src.add_argument("--data", metavar="FILE",
                     help="examples with labels: JSON Lines, TSV/CSV, or a named set such as rt:test")
    p.add_argument("--limit", type=int, default=_D["limit"], metavar="N",
                   help="a seeded random sample of N examples of --data (kept in file order; --seed)")
    p.add_argument("--out", required=True, metavar="DIR", help="the run folder to write")
    p.add_argument("--plugin", action="append", metavar="FILE",
                   help="a Python file that registers attribution methods (repeatable); its methods become "
                        "--methods choices")
    p.add_argument("--methods", nargs="+", default=_D["methods"], choices=method_names(), metavar="METHOD",
                   help=f"any of {', '.join(method_names())} (default: every one that applies to the classifier, "
                        f"except the sampling ones: see pk.list_methods())")
    p.add_argument("--target", default=_D["target"], metavar="LABEL",
                   help="the label to explain (default: each example's predicted label)")
    group = p.add_argument_group("method options", "each method's own options (pk.list_methods() lists them)")
    for name, owners in all_options().items():
        cls, f = owners[0]
        users = ", ".join(f"{c.name}: {f_.default}" for c, f_ in owners)
        group.add_argument(checks.flag(name), type=f.metadata.get("type", str), default=argparse.SUPPRESS,
                           metavar=name.split("_")[0].upper() if f.metadata.get("type") in (int, float) else None,
                           help=f"{f.metadata.get('help', '')} (default {users})".replace("%", "%%"))
    p.add_argument("--batch-size", type=int, default=_D["batch_size"],
                   help="examples per batch, and rows per forward pass of occlusion (integrated gradients: "
                        "--ig-rows) (default %(default)s)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N or mps (default cpu)")
    p.add_argument("--level", choices=LEVELS, default=_D["level"], help="words or sub-tokens (default %(default)s)")
    p.add_argument("--show", action="store_true", help="print the coloured text (colour only on a terminal)")
    p.add_argument("--png", metavar="FILE", help="also write a figure of the first example (all methods) here")
    add_output_options(p)
    add_common_options(p)
    add_encoder_source_option(p)
    return p


def _main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    options = vars(build_parser(argv).parse_args(argv))
    out, overwrite, figures = options.pop("out"), options.pop("overwrite"), options.pop("figures")
    show, png = options.pop("show"), options.pop("png")
    options.pop("plugin")
    if png:
        checks.output_file("png", png, overwrite=overwrite, inputs=[options["data"]] if options["data"] else [])
    set_quiet(options["quiet"])
    with encoder_source_scope(options):
        result = attribute(options.pop("classifier"), options.pop("text"), **options)
    path = result.write(out, overwrite=overwrite, figures=figures)
    if show:
        print(result.ansi(color=sys.stdout.isatty()))
    if png:
        fig = result.figure(int(result.frame["example"].iloc[0]))
        write_atomic(png, lambda tmp: fig.savefig(tmp, dpi=150, format="png"), name="png")
    flagged = result.record["counts"].get("ig_flagged", 0)
    note = f"; integrated gradients flagged on {flagged} example(s) (|delta| > 5%)" if flagged else ""
    print(f"wrote {path} ({result.record['counts']['examples']} examples, "
          f"{', '.join(result.record['arguments']['methods'])}){note}")
    return 0


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
