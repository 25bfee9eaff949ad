"""``pk.browse(...)``: the attention of one input, as an offline head-browser page and static head figures.

``pk.browse(text="The cat sat on the mat.")`` runs the model on one input (or sentence ``sentence`` of a
.txt/.conllu ``corpus``, read by the corpus readers every command uses) and returns a :class:`BrowseResult`:

- ``frame`` — what the page shows about the heads: Clark's statistics of *this input* per layer and head at the
  shown level (tidy: task ``browse``, model, layer, head, metric, value, level; ``uniform_entropy``, the same
  ln n for every head, is left out, as are statistics this input leaves undefined); the page's gallery shows them
  unless ``stats`` names a statistics run (``python -m probekit.attention``), whose ``stats.csv`` is shown instead;
- ``units``, ``attention`` ([L, H, U, U], rows = from) of the shown level, ``first`` (the head the page opens
  on and why), ``page`` (the HTML text).

Browse writes files, not a run folder: ``write("page.html", png=..., svg=..., bertviz=...)`` writes the page and
the figures at exactly those paths (what ``python -m probekit.browse --out page.html --png … --svg …`` writes);
an existing file is refused unless ``overwrite=True``. Figures show ``layer`` (and ``head``) as asked.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from probekit.core import checks
from probekit.core.errors import UserError
from probekit.core.options import (ModelOptions, RunOptions, batch_size_option, non_negative, option, optional_positive,
                            takes)
from probekit.core.result import Result, tidy

LEVELS = ("token", "word")


class BrowseResult(Result):
    """One input's attention: ``frame`` (this input's head statistics), ``page``, ``first``, ``write(out)``.

    Unlike the other results it writes files at the paths given, not a run folder (see the module docstring)."""

    command = "browse"
    main_table = "page.html"

    def __init__(self, frame: pd.DataFrame, record: dict, *, page: str, units, attention: np.ndarray,
                 level: str, first: dict, layer: int | None, head: int | None, title: str):
        super().__init__(frame, record)
        self.page = page
        self.units = list(units)
        self.attention = attention
        self.level = level
        self.first = first
        self.layer, self.head = layer, head
        self.title = title
        self.written: list[Path] = []

    def write(self, out: str | os.PathLike | None = None, *, png=None, svg=None, bertviz: bool = False,
              overwrite: bool = False, figures=None) -> Path:
        """Write the page to ``out`` (a file, e.g. ``page.html``) and figures to ``png`` / ``svg``; returns the
        first path written (every one is in ``self.written``). Nothing is written if any path is unusable.
        ``figures`` is accepted for the shared interface; the figure formats follow ``png`` / ``svg``."""
        check_outputs(out, png=png, svg=svg, bertviz=bertviz, layer=self.layer, overwrite=overwrite)
        from probekit.viz.head_view import write_page

        self.written = []
        if out is not None:
            page = write_page(out, self.page)
            self.written.append(page)
            if bertviz:
                self.written += _bertviz_pages(page, self.units, self.attention)
        for path in (png, svg):
            if path is not None:
                self._figure(path)
                self.written.append(Path(path))
        return self.written[0]

    def _repr_html_(self) -> str:
        """The page in an isolated frame, then the head figure or layer grid asked for, then the statistics."""
        from probekit.core.notebook import result_html

        figures = []
        if self.layer is not None:
            import tempfile

            with tempfile.TemporaryDirectory(prefix="probekit-nb-") as tmp:
                png = Path(tmp) / "head.png"
                self._figure(png)
                figures.append((png.name, png.read_bytes()))
        return result_html(self, figures=figures, pages=[("page.html", self.page)])

    def _figure(self, path) -> None:
        from probekit.viz.headplots import plot_head, plot_layer_grid

        if self.head is not None:
            plot_head(self.units, self.attention[self.layer - 1, self.head - 1], path,
                      title=f"layer {self.layer}, head {self.head} ({self.model})")
        else:
            plot_layer_grid(self.units, self.attention[self.layer - 1], path, layer=self.layer,
                            title=f"layer {self.layer} ({self.model})")

    def __repr__(self) -> str:
        return (f"<BrowseResult: {len(self.units)} {self.level}s, opens on layer {self.first['layer']} head "
                f"{self.first['head']}; frame {len(self.frame)} rows>")


def check_outputs(out=None, *, png=None, svg=None, bertviz: bool = False, layer: int | None = None,
                  overwrite: bool = False) -> list[Path]:
    """The output paths, checked before any work: files (not folders), the right extensions, not existing
    unless ``overwrite``, and something to write."""
    if out is None and png is None and svg is None:
        raise UserError("nothing to write: give --out PAGE.html and/or --png/--svg PATH")
    if bertviz and out is None:
        raise UserError("--bertviz writes its pages beside --out; give --out too")
    if bertviz:
        _need_bertviz()
    paths = []
    for name, path in (("out", out), ("png", png), ("svg", svg)):
        if path is None:
            continue
        p = checks.output_file(name, path, overwrite=overwrite)
        if name != "out" and p.suffix.lower() != f".{name}":
            raise UserError(f"--{name} {p}: the file name must end in .{name}")
        if p.exists() and not overwrite:
            raise UserError(f"--{name} {p} already exists (pass --overwrite to replace it)")
        paths.append(p)
    if (png is not None or svg is not None) and layer is None:
        raise UserError("--png/--svg need --layer (and --head for a single head)")
    return paths


def read_sentence(path, n: int):
    """Sentence ``n`` (from 1) of a .txt (non-empty lines) or .conllu file, read by the shared corpus readers."""
    from probekit.corpora.sentences import read_sentences

    p = checks.input_file("corpus", path, what="corpus")
    n = checks.positive("sentence", n)
    examples = read_sentences(p)
    if n > len(examples):
        raise UserError(f"{p} has {len(examples)} sentence(s); --sentence {n} is out of range")
    return examples[n - 1]


def load_stats(run_dir) -> tuple[pd.DataFrame, str]:
    """The tidy statistics table of a run folder (or a stats.csv path), checked for its columns.

    Older runs name the ``metric`` column ``stat``; both are read."""
    p = Path(run_dir)
    csv = p / "stats.csv" if p.is_dir() else p
    if not csv.is_file():
        raise UserError(f"--stats: {csv} does not exist (expected a run folder of python -m probekit.attention)")
    try:
        df = pd.read_csv(csv)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise UserError(f"--stats: cannot read {csv}: {str(exc).splitlines()[0]}") from None
    if "metric" not in df.columns and "stat" in df.columns:
        df = df.rename(columns={"stat": "metric"})
    missing = [c for c in ("layer", "head", "metric", "value") if c not in df.columns]
    if missing:
        raise UserError(f"--stats: {csv} lacks column(s) {', '.join(missing)}")
    return df, str(csv)


def input_frame(act, encoder, level: str) -> pd.DataFrame:
    """Clark's statistics of this one input per layer and head (tidy), as the page's gallery shows them."""
    from probekit.heads.statistics import SpecialTokens, input_stats, unit_classes

    classes = unit_classes(act.units, act.special, SpecialTokens.of(encoder.tokenizer))
    rows = []
    for metric, value in input_stats(act.attention.array, *classes).items():
        if value is None or metric == "uniform_entropy":   # undefined here, or ln n for every head
            continue
        for l in range(value.shape[0]):
            for h in range(value.shape[1]):
                rows.append((l + 1, h + 1, metric, float(value[l, h])))
    df = pd.DataFrame(rows, columns=["layer", "head", "metric", "value"]).assign(level=level)
    return tidy(df, task="browse", model=encoder.name)


@dataclass(frozen=True, kw_only=True)
class BrowseOptions(ModelOptions, RunOptions):
    """The options of :func:`browse` (and ``python -m probekit.browse``, whose output paths are its own)."""

    text: str | None = option(None, "the input text", exclusive="input")
    corpus: Any = option(None, "a .txt file (one sentence per line) or a .conllu file", metavar="FILE",
                         exclusive="input")
    sentence: int | None = option(None, "which sentence of --corpus, counting from 1 (non-empty lines of a .txt; "
                                        "default 1)", type=int, metavar="N")
    level: str = option("token", "units shown first and used for figures: sub-tokens or words (default "
                                 "%(default)s)", choices=LEVELS)
    one_level: bool = option(False, "put only --level in the page (default: both levels, with a toggle)")
    stats: Any = option(None, "a statistics run folder (python -m probekit.attention); its stats.csv fills the "
                              "sortable gallery of all heads (default: this input's own statistics)",
                        metavar="RUN_DIR")
    layer: int | None = option(None, "layer (1..L) for the figures and the page's first view (default: the "
                                     "sharpest head's)", type=int, metavar="L", check=optional_positive)
    head: int | None = option(None, "head (1..H); without it the figures show the layer's grid of heads and the "
                                    "page opens on the sharpest head", type=int, metavar="H",
                              check=optional_positive)
    top_k: int = option(64, "largest weights kept per row in the page (default %(default)s; 0 = no cap)",
                        metavar="K", check=non_negative)
    batch_size: int = batch_size_option(1)

    def check(self) -> None:
        if self.text is not None and self.corpus is not None:
            raise UserError("give the input with --text or with --corpus FILE, not both")
        if self.text is None and self.corpus is None:
            raise UserError("give the input with --text or --corpus FILE [--sentence N]")
        if self.sentence is not None and self.corpus is None:
            raise UserError("--sentence picks a sentence of --corpus FILE; give --corpus too")
        if self.text is not None and not str(self.text).strip():
            raise UserError("--text is empty")


@takes(BrowseOptions, args=("text",))
def browse(o: BrowseOptions) -> BrowseResult:
    """The head browser of one input: ``text``, or sentence ``sentence`` (from 1) of ``corpus``.

    ``level`` (token or word) is shown first; both levels go in the page unless ``one_level``. ``stats`` (a run
    folder of the attention command) fills the gallery with that run's statistics, else this input's own are
    shown. The page opens on ``layer``/``head`` when given, else on the sharpest head (of ``layer``), named in
    the page. ``top_k`` caps the weights kept per row (0 = no cap). Options: :class:`BrowseOptions`. Returns a
    :class:`BrowseResult`.
    """
    text, corpus, sentence, level, stats = o.text, o.corpus, o.sentence, o.level, o.stats
    layer, head = o.layer, o.head
    max_length, batch_size, model, device, one_level, top_k = o.max_length, o.batch_size, o.model, o.device, \
        o.one_level, o.top_k
    options = o.record()
    from probekit.core.examples import Example

    if text is not None:
        example, source = Example(words=None, text=str(text)), str(text)
    else:
        example = read_sentence(corpus, 1 if sentence is None else sentence)
        source = " ".join(example.words)
    run_stats, stats_path = load_stats(stats) if stats is not None else (None, None)

    from probekit.core.encoder import load_encoder

    encoder = load_encoder(None if model is None else str(model), attention=True, device=device)
    L, H = encoder.num_layers, encoder.num_heads
    if layer is not None and not 1 <= layer <= L:
        raise UserError(f"--layer {layer} is out of range: {encoder.name} has layers 1..{L}")
    if head is not None and not 1 <= head <= H:
        raise UserError(f"--head {head} is out of range: {encoder.name} has heads 1..{H}")
    levels = [level] if one_level else [level, LEVELS[1 - LEVELS.index(level)]]
    acts = {lvl: _attention(encoder, example, lvl, max_length, batch_size, warn=i == 0)
            for i, lvl in enumerate(levels)}
    shown = acts[level]
    if len(shown.units) <= 2 and bool(np.asarray(shown.special).all()):
        raise UserError("the input has no tokens once tokenised")
    frame = input_frame(shown, encoder, level)

    from probekit.viz.head_view import HeadMap, notable_head, render_head_view

    t0 = time.perf_counter()
    short = source if len(source) <= 90 else source[:87] + "…"
    title = f"{short} — {encoder.name}" + (" (truncated)" if shown.truncated else "")
    other = None
    if len(levels) > 1:
        o = acts[levels[1]]
        other = HeadMap(o.units, o.attention.array, o.special)
    array = shown.attention.array
    if head is None:
        l0, h0, why = notable_head(array, shown.special, None if layer is None else layer - 1)
        first = {"layer": l0 + 1, "head": h0 + 1, "why": why}
    else:
        first = {"layer": layer or 1, "head": head, "why": "as asked"}
    gallery = run_stats if run_stats is not None else frame
    try:
        page = render_head_view(shown.units, array, title=title, level=level, stats=gallery,
                                special=shown.special, other=other, top_k=top_k or None,
                                stats_source=stats_path or "this input (its own statistics)",
                                sort_by=None if run_stats is not None else "max_weight",
                                initial_layer=first["layer"], initial_head=first["head"],
                                first_note=f"Shown first: layer {first['layer']}, head {first['head']}, "
                                           f"{first['why']}.")
    except ValueError as exc:  # statistics of another model
        raise UserError(f"--stats {stats_path}: {exc}") from None
    from probekit.core.rundir import run_record

    record = run_record("browse", options, encoder=encoder,
                        inputs={"text": text, "corpus": options["corpus"], "sentence": sentence,
                                "source": example.meta.get("source", "text"), "stats": stats_path},
                        counts={"units": len(shown.units), "truncated": bool(shown.truncated),
                                "page_bytes": len(page.encode("utf-8")),
                                "render_seconds": round(time.perf_counter() - t0, 3)},
                        first_view=first, levels=levels)
    return BrowseResult(frame, record, page=page, units=shown.units, attention=array, level=level, first=first,
                        layer=layer, head=head, title=title)


def _attention(encoder, example, level: str, max_length, batch_size: int, warn: bool = True):
    from probekit.core.extraction import extract

    acts = list(extract(encoder, [example], hidden=False, attention=True, level=level, max_length=max_length,
                        batch_size=batch_size, desc=f"{level} attention", warn=warn))
    return acts[0]


def _need_bertviz() -> None:
    """bertviz is an optional extra: asked for without it, one line says how to install it (before any work)."""
    import importlib.util

    if importlib.util.find_spec("bertviz") is None:
        raise UserError('--bertviz needs the optional bertviz package: pip install "probekit[bertviz]"')


def _bertviz_pages(out: Path, units, attention) -> list[Path]:
    import torch

    _need_bertviz()
    from bertviz import head_view, model_view
    from probekit.viz.head_view import write_page

    layers = tuple(torch.from_numpy(np.ascontiguousarray(a)[None]) for a in attention)
    written = []
    for name, fn in (("head_view", head_view), ("model_view", model_view)):
        body = fn(layers, list(units), html_action="return").data
        page = f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>bertviz {name}</title></head>' \
               f"<body>\n{body}\n</body></html>\n"
        written.append(write_page(out.with_name(f"{out.stem}.bertviz_{name}.html"), page))
    return written
