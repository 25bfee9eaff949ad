"""How a result shows itself in Jupyter: its tables as HTML, its pages in isolated frames, its figures inline.

:meth:`Result._repr_html_ <probekit.core.result.Result._repr_html_>` writes the run into a temporary folder
(exactly what ``write(out)`` writes) and shows what is in it, so a notebook shows the same numbers and figures as
the command. A page (the head browser, the attribution page) goes into ``<iframe sandbox srcdoc="…">``: the page's
CSS and scripts cannot reach the notebook (the sandbox gives the frame its own origin) and the notebook's CSS
does not reach the page; ``srcdoc`` is the whole page, attribute-escaped.
"""
from __future__ import annotations

import base64
import html
import tempfile
from pathlib import Path
from typing import Iterable

import pandas as pd

#: Rows shown per table (the rest are summarised as "… N rows"); the full tables are the result's attributes.
MAX_ROWS = 20
#: Height of a page's frame in pixels.
FRAME_HEIGHT = 640


def table_html(name: str, frame: pd.DataFrame, max_rows: int = MAX_ROWS) -> str:
    """One table, its name as a caption; pandas escapes every cell."""
    shown = frame.to_html(max_rows=max_rows, show_dimensions=len(frame) > max_rows, escape=True, border=0,
                          na_rep="", float_format=_fmt)
    return f"<details open><summary><b>{html.escape(name)}</b> ({len(frame)} rows)</summary>{shown}</details>"


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def page_frame(page: str, *, title: str = "page", height: int = FRAME_HEIGHT) -> str:
    """A whole HTML page inside an isolated ``<iframe srcdoc>`` (scripts run in the frame's own origin)."""
    return (f'<iframe title="{html.escape(title, quote=True)}" sandbox="allow-scripts" '
            f'srcdoc="{html.escape(page, quote=True)}" '
            f'style="width:100%;height:{int(height)}px;border:1px solid #ccc"></iframe>')


def figure_html(png: bytes, caption: str) -> str:
    """A PNG inline (base64 data URI) with its file name under it."""
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure style="margin:0.5em 0"><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}"'
            f' style="max-width:100%"/><figcaption><code>{html.escape(caption)}</code></figcaption></figure>')


def tables_of(result) -> list[tuple[str, pd.DataFrame]]:
    """``frame`` first, then every other DataFrame attribute (the extra tables)."""
    out = [("frame", result.frame)]
    out += [(k, v) for k, v in vars(result).items() if isinstance(v, pd.DataFrame) and k != "frame"]
    return out


def written_parts(result) -> tuple[list[tuple[str, bytes]], list[tuple[str, str]]]:
    """The figures (PNG) and pages (HTML) the result's ``write`` puts into its run folder, in file order."""
    with tempfile.TemporaryDirectory(prefix="probekit-nb-") as tmp:
        out = Path(tmp) / "run"
        result.write(out, figures=("png",))
        files = sorted(p for p in out.rglob("*") if p.is_file())
        figures = [(str(p.relative_to(out)), p.read_bytes()) for p in files if p.suffix == ".png"]
        pages = [(str(p.relative_to(out)), p.read_text(encoding="utf-8")) for p in files
                 if p.suffix == ".html"]
    return figures, pages


def result_html(result, *, tables: Iterable[tuple[str, pd.DataFrame]] | None = None,
                figures: list[tuple[str, bytes]] | None = None, pages: list[tuple[str, str]] | None = None) -> str:
    """The notebook view of a result: a heading, its pages, its figures, then its tables."""
    note = ""
    if figures is None or pages is None:
        try:
            got_figures, got_pages = written_parts(result)
        except Exception as exc:    # the tables still show; say why the rest does not
            got_figures, got_pages = [], []
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            note = f"<p><i>figures and pages not shown: {html.escape(why)}</i></p>"
        figures = got_figures if figures is None else figures
        pages = got_pages if pages is None else pages
    tables = tables_of(result) if tables is None else list(tables)
    on = f" on <code>{html.escape(result.model)}</code>" if result.record.get("model") else ""
    head = (f"<p><b>{html.escape(type(result).__name__)}</b> — <code>{html.escape(result.command)}</code>{on}; "
            f"<code>.write(out)</code> writes what the command writes</p>")
    parts = [head, note]
    parts += [page_frame(text, title=name) for name, text in pages]
    parts += [figure_html(png, name) for name, png in figures]
    parts += [table_html(name, frame) for name, frame in tables]
    return '<div class="probekit-result">' + "\n".join(parts) + "</div>"
