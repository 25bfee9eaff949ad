"""``python -m probekit.browse``: an offline head-browser page for one input, static head figures, bertviz pages.

Examples::

    python -m probekit.browse --text "The cat sat on the mat." --out page.html
    python -m probekit.browse --corpus dev.conllu --sentence 12 --stats runs/attention-x --out page.html
    python -m probekit.browse --text "…" --png head.png --layer 3 --head 7      # one head
    python -m probekit.browse --text "…" --svg layer3.svg --layer 3             # all heads of layer 3

Browse writes files at the paths given (not a run folder). From Python: ``pk.browse(text=...).write("page.html")``.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probekit.cli import main_wrapper, options_parser, parse_options
from probekit.core.options import Options, option
from probekit.viz.browse import BrowseOptions, browse, check_outputs


@dataclass(frozen=True, kw_only=True)
class Output(Options):
    """Where browse writes: files at these paths, not a run folder."""

    out: Any = option(None, "the HTML page to write", metavar="PAGE.html")
    png: Any = option(None, "write a PNG figure of --layer (and --head) here", metavar="PATH")
    svg: Any = option(None, "write an SVG figure of --layer (and --head) here", metavar="PATH")
    bertviz: bool = option(False, "also write bertviz's head_view and model_view pages beside --out (they need the "
                                  "internet)")
    overwrite: bool = option(False, "replace files that already exist at --out, --png or --svg")


def build_parser():
    return options_parser("python -m probekit.browse",
                          "Write a self-contained, offline HTML page to browse the attention heads of one input "
                          "(and optionally PNG/SVG figures of a head or a layer).", BrowseOptions, Output)


def _main(argv=None) -> int:
    args, out = parse_options(build_parser(), argv, Output)
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
