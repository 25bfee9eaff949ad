"""``python -m probekit.browse``: an offline head-browser page for one input, static head figures, bertviz pages.

Examples::

    python -m probekit.browse --text "The cat sat on the mat." --out page.html
    python -m probekit.browse --corpus dev.conllu --sentence 12 --stats runs/attention-x --out page.html
    python -m probekit.browse --text "…" --png head.png --layer 3 --head 7      # one head
    python -m probekit.browse --text "…" --svg layer3.svg --layer 3             # all heads of layer 3

Browse writes files at the paths given (not a run folder). From Python: ``pk.browse(text=...).write("page.html")``.
"""
from __future__ import annotations

import inspect
import sys
from pathlib import Path

from .cli import Parser, add_common_options, add_model_options, main_wrapper
from .viz.browse import LEVELS, browse, check_outputs

_OUTPUT = ("out", "png", "svg", "bertviz", "overwrite")


def build_parser() -> Parser:
    d = {k: p.default for k, p in inspect.signature(browse).parameters.items()}
    p = Parser(prog="python -m probekit.browse",
               description="Write a self-contained, offline HTML page to browse the attention heads of one input "
                           "(and optionally PNG/SVG figures of a head or a layer).")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--text", help="the input text")
    src.add_argument("--corpus", metavar="FILE", help="a .txt file (one sentence per line) or a .conllu file")
    p.add_argument("--sentence", type=int, default=d["sentence"], metavar="N",
                   help="which sentence of --corpus, counting from 1 (non-empty lines of a .txt; default 1)")
    p.add_argument("--out", metavar="PAGE.html", help="the HTML page to write")
    p.add_argument("--level", choices=LEVELS, default=d["level"],
                   help="units shown first and used for figures: sub-tokens or words (default %(default)s)")
    p.add_argument("--one-level", action="store_true",
                   help="put only --level in the page (default: both levels, with a toggle)")
    p.add_argument("--stats", metavar="RUN_DIR",
                   help="a statistics run folder (python -m probekit.attention); its stats.csv fills the sortable "
                        "gallery of all heads (default: this input's own statistics)")
    p.add_argument("--layer", type=int, metavar="L",
                   help="layer (1..L) for the figures and the page's first view (default: the sharpest head's)")
    p.add_argument("--head", type=int, metavar="H",
                   help="head (1..H); without it the figures show the layer's grid of heads and the page opens on "
                        "the sharpest head")
    p.add_argument("--png", metavar="PATH", help="write a PNG figure of --layer (and --head) here")
    p.add_argument("--svg", metavar="PATH", help="write an SVG figure of --layer (and --head) here")
    p.add_argument("--top-k", type=int, default=d["top_k"], metavar="K",
                   help="largest weights kept per row in the page (default %(default)s; 0 = no cap)")
    p.add_argument("--bertviz", action="store_true",
                   help="also write bertviz's head_view and model_view pages beside --out (they need the internet)")
    add_model_options(p, batch_size=d["batch_size"])
    add_common_options(p)
    return p


def _main(argv=None) -> int:
    args = vars(build_parser().parse_args(argv))
    out = {k: args.pop(k) for k in _OUTPUT}
    check_outputs(out["out"], png=out["png"], svg=out["svg"], bertviz=out["bertviz"], layer=args["layer"],
                  overwrite=out["overwrite"])          # before the model runs
    result = browse(**args)
    result.write(out["out"], png=out["png"], svg=out["svg"], bertviz=out["bertviz"], overwrite=out["overwrite"])
    for path in result.written:
        extra = ""
        if out["out"] is not None and path == Path(out["out"]):
            extra = (f" ({result.record['counts']['page_bytes'] / 1e6:.1f} MB, {len(result.units)} {result.level}s; "
                     f"opens on layer {result.first['layer']}, head {result.first['head']})")
        print(f"wrote {path}{extra}")
    if out["bertviz"]:
        print("probekit: note: the bertviz pages load require.js, d3 and jQuery from cdnjs.cloudflare.com, "
              "so they need an internet connection to display (the probekit page does not)", file=sys.stderr)
    return 0


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
