"""``python -m probekit.attribute``: which words mattered to a trained classifier's decisions.

Examples::

    python -m probekit.attribute --classifier runs/rt --text "A gorgeous, witty film." --show --out runs/rt-attr
    python -m probekit.attribute --classifier runs/rt --data rt:test --limit 200 --out runs/rt-attr
    python -m probekit.attribute --classifier runs/rt --data dev.jsonl --methods integrated-gradients occlusion \\
        --steps 100 --png example.png --out runs/rt-ig

The pipeline is :func:`probekit.attribution.attribute.attribute` (``pk.attribute``); this module parses the
options, calls it and writes the run folder (attributions.csv, agreement.csv, attributions.html, example.png).
"""
from __future__ import annotations

import inspect
import sys

from .attribution.attribute import LEVELS, attribute
from .cli import Parser, add_common_options, add_output_options, main_wrapper, set_quiet
from .core import checks
from .core.outputs import write_atomic

_D = {k: v.default for k, v in inspect.signature(attribute).parameters.items()}


def build_parser() -> Parser:
    from .attribution.registry import method_names

    p = Parser(prog="python -m probekit.attribute",
               description="Word attributions of a classifier (python -m probekit.classify): pooling weights, "
                           "gradients, integrated gradients, occlusion, attention; a coloured-text page.")
    p.add_argument("--classifier", required=True, metavar="DIR", help="a classifier folder (probekit.classify --out)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", action="append", metavar="TEXT", help="a text to explain (repeatable)")
    src.add_argument("--data", metavar="FILE",
                     help="examples with labels: JSON Lines, TSV/CSV, or a named set such as rt:test")
    p.add_argument("--limit", type=int, default=_D["limit"], metavar="N",
                   help="a seeded random sample of N examples of --data (kept in file order; --seed)")
    p.add_argument("--out", required=True, metavar="DIR", help="the run folder to write")
    p.add_argument("--methods", nargs="+", default=_D["methods"], metavar="METHOD",
                   help=f"any of {', '.join(method_names())} (default: every one that applies to the classifier)")
    p.add_argument("--target", default=_D["target"], metavar="LABEL",
                   help="the label to explain (default: each example's predicted label)")
    p.add_argument("--steps", type=int, default=_D["steps"], help="integrated-gradients steps (default %(default)s)")
    p.add_argument("--retry-steps", type=int, default=_D["retry_steps"], metavar="N",
                   help="retry integrated gradients with N steps where |delta| > 5%% of F(x) - F(x') "
                        "(default: no retry)")
    p.add_argument("--batch-size", type=int, default=_D["batch_size"],
                   help="examples per batch, and rows per forward pass inside integrated gradients "
                        "(default %(default)s)")
    p.add_argument("--level", choices=LEVELS, default=_D["level"], help="words or sub-tokens (default %(default)s)")
    p.add_argument("--show", action="store_true", help="print the coloured text (colour only on a terminal)")
    p.add_argument("--png", metavar="FILE", help="also write a figure of the first example (all methods) here")
    add_output_options(p)
    add_common_options(p)
    return p


def _main(argv=None) -> int:
    options = vars(build_parser().parse_args(argv))
    out, overwrite, figures = options.pop("out"), options.pop("overwrite"), options.pop("figures")
    show, png = options.pop("show"), options.pop("png")
    if png:
        checks.output_file("png", png, overwrite=overwrite, inputs=[options["data"]] if options["data"] else [])
    set_quiet(options["quiet"])
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
