"""``python -m probekit.browse``: an offline head-browser page for one input, static head figures, bertviz pages.

Examples::

    python -m probekit.browse --text "The cat sat on the mat." --out page.html
    python -m probekit.browse --corpus dev.conllu --sentence 12 --stats runs/attention-x --out page.html
    python -m probekit.browse --text "…" --png head.png --layer 3 --head 7      # one head
    python -m probekit.browse --text "…" --svg layer3.svg --layer 3             # all heads of layer 3
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from .cli import Parser, add_common_options, add_model_options, is_quiet, main_wrapper, set_quiet
from .core.errors import UserError, where

LEVELS = ("token", "word")


def build_parser() -> Parser:
    p = Parser(prog="python -m probekit.browse",
               description="Write a self-contained, offline HTML page to browse the attention heads of one input "
                           "(and optionally PNG/SVG figures of a head or a layer).")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--text", help="the input text")
    src.add_argument("--corpus", metavar="FILE", help="a .txt file (one sentence per line) or a .conllu file")
    p.add_argument("--sentence", type=int, default=None, metavar="N",
                   help="which sentence of --corpus, counting from 1 (non-empty lines of a .txt; default 1)")
    p.add_argument("--out", metavar="PAGE.html", help="the HTML page to write")
    p.add_argument("--level", choices=LEVELS, default="token",
                   help="units shown first and used for figures: sub-tokens or words (default %(default)s)")
    p.add_argument("--one-level", action="store_true",
                   help="put only --level in the page (default: both levels, with a toggle)")
    p.add_argument("--stats", metavar="RUN_DIR",
                   help="a statistics run folder (python -m probekit.attention); its stats.csv adds a sortable "
                        "gallery of all heads")
    p.add_argument("--layer", type=int, metavar="L", help="layer (1..L) for the figures and the page's first view")
    p.add_argument("--head", type=int, metavar="H", help="head (1..H); without it the figures show the layer's grid of heads")
    p.add_argument("--png", metavar="PATH", help="write a PNG figure of --layer (and --head) here")
    p.add_argument("--svg", metavar="PATH", help="write an SVG figure of --layer (and --head) here")
    p.add_argument("--top-k", type=int, default=64, metavar="K",
                   help="largest weights kept per row in the page (default %(default)s; 0 = no cap)")
    p.add_argument("--bertviz", action="store_true",
                   help="also write bertviz's head_view and model_view pages beside --out (they need the internet)")
    add_model_options(p, batch_size=1)
    add_common_options(p)
    return p


def read_sentence(path: str, n: int):
    """The n-th sentence (from 1) of a .txt (non-empty lines) or .conllu file (FORM column) as an Example."""
    from .core.examples import Example

    p = Path(path)
    if not p.is_file():
        raise UserError(f"corpus {p} does not exist")
    if n < 1:
        raise UserError(f"--sentence counts from 1, got {n}")
    try:
        lines = p.read_text(encoding="utf-8").lstrip("\ufeff").splitlines()
    except UnicodeDecodeError:
        raise UserError(f"{p}: not UTF-8 text") from None
    count = 0
    if p.suffix.lower() != ".conllu":
        for number, line in enumerate(lines, 1):
            if line.strip():
                count += 1
                if count == n:
                    return Example(words=line.split(), meta={"source": where(p, number)})
        raise UserError(f"{p} has {count} sentence(s); --sentence {n} is out of range")
    words, start = [], None
    for number, line in enumerate(lines + [""], 1):
        line = line.rstrip("\r\n")
        if not line.strip():
            if words:
                count += 1
                if count == n:
                    return Example(words=words, meta={"source": where(p, start)})
            words, start = [], None
            continue
        if line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) < 2:
            raise UserError(f"{where(p, number)}: not a CoNLL-U token line (expected tab-separated columns)")
        if not cols[0].isdigit():  # multiword ranges 1-2 and empty nodes 1.1 are not surface words
            continue
        start = start or number
        words.extend(cols[1].split() or ["_"])
    raise UserError(f"{p} has {count} sentence(s); --sentence {n} is out of range")


def load_stats(run_dir: str):
    """The tidy statistics table of a run folder (or a stats.csv path), checked for its columns."""
    import pandas as pd

    p = Path(run_dir)
    csv = p / "stats.csv" if p.is_dir() else p
    if not csv.is_file():
        raise UserError(f"--stats: {csv} does not exist (expected a run folder of python -m probekit.attention)")
    try:
        df = pd.read_csv(csv)
    except (ValueError, pd.errors.ParserError) as exc:
        raise UserError(f"--stats: cannot read {csv}: {str(exc).splitlines()[0]}") from None
    missing = [c for c in ("layer", "head", "stat", "value") if c not in df.columns]
    if missing:
        raise UserError(f"--stats: {csv} lacks column(s) {', '.join(missing)}")
    return df, str(csv)


def _attention(encoder, example, level: str, max_length, warn: bool = True):
    from .core.extraction import extract

    acts = list(extract(encoder, [example], hidden=False, attention=True, level=level, max_length=max_length,
                        batch_size=1, desc=f"{level} attention", warn=warn))
    return acts[0]


def _bertviz_pages(out: Path, units, attention) -> list[Path]:
    import torch

    try:
        from bertviz import head_view, model_view
    except ImportError:
        raise UserError("--bertviz needs the bertviz package (pip install 'bertviz>=1.4.1')") from None
    from .viz.browser import write_page

    layers = tuple(torch.from_numpy(a[None]) for a in attention)
    written = []
    for name, fn in (("head_view", head_view), ("model_view", model_view)):
        body = fn(layers, list(units), html_action="return").data
        page = f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>bertviz {name}</title></head>' \
               f"<body>\n{body}\n</body></html>\n"
        written.append(write_page(out.with_name(f"{out.stem}.bertviz_{name}.html"), page))
    return written


def _say(msg: str) -> None:
    if not is_quiet():
        print(msg, file=sys.stderr)


def _main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    set_quiet(args.quiet)
    from .core.examples import Example

    if args.text is None and args.corpus is None:
        raise UserError("give the input with --text or --corpus FILE [--sentence N]")
    if args.sentence is not None and args.corpus is None:
        raise UserError("--sentence picks a sentence of --corpus FILE; give --corpus too")
    if not (args.out or args.png or args.svg):
        raise UserError("nothing to write: give --out PAGE.html and/or --png/--svg PATH")
    if args.bertviz and not args.out:
        raise UserError("--bertviz writes its pages beside --out; give --out too")
    for opt, path in (("--png", args.png), ("--svg", args.svg)):
        if path and Path(path).suffix.lower() != f".{opt[2:]}":
            raise UserError(f"{opt} {path}: the file name must end in .{opt[2:]}")
    if (args.png or args.svg) and args.layer is None:
        raise UserError("--png/--svg need --layer (and --head for a single head)")
    if args.top_k < 0:
        raise UserError("--top-k must be 0 (no cap) or positive")
    if args.text is not None:
        if not args.text.strip():
            raise UserError("--text is empty")
        example, source = Example(words=None, text=args.text), args.text
    else:
        example = read_sentence(args.corpus, 1 if args.sentence is None else args.sentence)
        source = " ".join(example.words)
    stats, stats_path = load_stats(args.stats) if args.stats else (None, None)

    from .core.encoder import load_encoder

    encoder = load_encoder(args.model, attention=True, device=args.device)
    L, H = encoder.num_layers, encoder.num_heads
    if args.layer is not None and not 1 <= args.layer <= L:
        raise UserError(f"--layer {args.layer} is out of range: {encoder.name} has layers 1..{L}")
    if args.head is not None and not 1 <= args.head <= H:
        raise UserError(f"--head {args.head} is out of range: {encoder.name} has heads 1..{H}")
    levels = [args.level] if args.one_level else [args.level, LEVELS[1 - LEVELS.index(args.level)]]
    acts = {lvl: _attention(encoder, example, lvl, args.max_length, warn=i == 0) for i, lvl in enumerate(levels)}
    shown = acts[args.level]
    if len(shown.units) <= 2 and bool(shown.special.all()):
        raise UserError("the input has no tokens once tokenised")

    if args.out:
        from .viz.browser import HeadMap, render_head_view, write_page

        t0 = time.perf_counter()
        short = source if len(source) <= 90 else source[:87] + "…"
        title = f"{short} — {encoder.name}" + (" (truncated)" if shown.truncated else "")
        other = None
        if len(levels) > 1:
            o = acts[levels[1]]
            other = HeadMap(o.units, o.attention.array, o.special)
        try:
            page = render_head_view(shown.units, shown.attention.array, title=title, level=args.level, stats=stats,
                                    special=shown.special, other=other, top_k=args.top_k or None,
                                    stats_source=stats_path, initial_layer=args.layer, initial_head=args.head)
        except ValueError as exc:  # statistics of another model
            raise UserError(f"--stats {stats_path}: {exc}") from None
        path = write_page(args.out, page)
        _say(f"wrote {path} ({len(page.encode('utf-8')) / 1e6:.1f} MB, {len(shown.units)} {args.level}s, "
             f"{time.perf_counter() - t0:.1f} s)")
        if args.bertviz:
            for p in _bertviz_pages(path, shown.units, shown.attention.array):
                _say(f"wrote {p}")
            print("probekit: note: the bertviz pages load require.js, d3 and jQuery from cdnjs.cloudflare.com, "
                  "so they need an internet connection to display (the probekit page does not)", file=sys.stderr)

    if args.png or args.svg:
        from .viz.headplots import plot_head, plot_layer_grid

        for path in (args.png, args.svg):
            if not path:
                continue
            if args.head is not None:
                plot_head(shown.units, shown.attention[args.layer, args.head - 1], path,
                          title=f"layer {args.layer}, head {args.head} ({encoder.name})")
            else:
                plot_layer_grid(shown.units, shown.attention[args.layer], path, layer=args.layer,
                                title=f"layer {args.layer} ({encoder.name})")
            _say(f"wrote {path}")
    return 0


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
