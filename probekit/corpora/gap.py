"""GAP coreference TSV reader (Webster et al. 2018): pronoun, two candidate names, character offsets.

The file is read as plain tab-separated lines, *without* CSV quoting (GAP texts contain quote characters
that a CSV reader would swallow). Texts are segmented into words by a fixed rule — runs of letters/digits,
and every other non-space character on its own — which is close to BERT's own pre-tokenisation, so a word
never straddles a mention boundary the tokenizer would respect. Character spans map mentions to words: a
mention covers every word that overlaps its span.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from probekit.core.errors import UserError, where
from probekit.core.examples import Example
from probekit.corpora.text import read_utf8_lines

COLUMNS = ["ID", "Text", "Pronoun", "Pronoun-offset", "A", "A-offset", "A-coref", "B", "B-offset", "B-coref",
           "URL"]
WORD = re.compile(r"\w+|[^\w\s]")
MASCULINE = {"he", "him", "his", "himself"}
FEMININE = {"she", "her", "hers", "herself"}


def segment(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Words and their character spans (letters/digits runs; any other non-space character alone)."""
    words, spans = [], []
    for m in WORD.finditer(text):
        words.append(m.group())
        spans.append(m.span())
    return words, spans


def covering_words(spans: list[tuple[int, int]], start: int, end: int) -> list[int]:
    """Indices of the words overlapping characters ``start:end``."""
    return [i for i, (s, e) in enumerate(spans) if s < end and e > start]


def _bool(value: str, lineno: int, column: str) -> bool:
    v = value.strip().upper()
    if v not in ("TRUE", "FALSE"):
        raise _Bad(lineno, f"{column} must be TRUE or FALSE, got {value!r}")
    return v == "TRUE"


class _Bad(Exception):
    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line, self.message = line, message


@dataclass
class GapStats:
    """What reading left out, for the report."""

    rows: int = 0
    not_exactly_one_true: int = 0
    skipped_bad: int = 0


def _mention(text: str, spans, name: str, offset: str, lineno: int, column: str) -> list[int]:
    try:
        start = int(offset)
    except ValueError:
        raise _Bad(lineno, f"{column}-offset {offset!r} is not an integer") from None
    if text[start:start + len(name)] != name:
        raise _Bad(lineno, f"{column} {name!r} not found at character {start} "
                           f"(text there: {text[start:start + len(name)]!r})")
    words = covering_words(spans, start, start + len(name))
    if not words:
        raise _Bad(lineno, f"{column} {name!r} covers no word")
    return words


def _parse_row(cols: list[str], text_path: Path, lineno: int) -> Example:
    if len(cols) not in (10, 11):
        raise _Bad(lineno, f"expected 11 tab-separated columns, found {len(cols)}")
    rid, text, pron, pron_off, a, a_off, a_coref, b, b_off, b_coref = cols[:10]
    words, spans = segment(text)
    p_words = _mention(text, spans, pron, pron_off, lineno, "Pronoun")
    a_words = _mention(text, spans, a, a_off, lineno, "A")
    b_words = _mention(text, spans, b, b_off, lineno, "B")
    a_true = _bool(a_coref, lineno, "A-coref")
    b_true = _bool(b_coref, lineno, "B-coref")
    low = pron.lower()
    gender = "masculine" if low in MASCULINE else "feminine" if low in FEMININE else "other"
    meta = {"id": rid, "pronoun": p_words[0], "a": a_words, "b": b_words, "a_coref": a_true, "b_coref": b_true,
            "gender": gender, "pronoun_form": low, "source": where(text_path, lineno),
            "a_start": int(a_off), "b_start": int(b_off), "pronoun_start": int(pron_off)}
    return Example(words=words, text=text, meta=meta)


def read_gap(path: str | Path, *, skip_bad: bool = False, problems: list[str] | None = None,
             stats: GapStats | None = None, exactly_one_true: bool = True,
             limit: int | None = None, offer_skip: bool = False) -> list[Example]:
    """GAP rows as Examples over words; ``meta`` has the pronoun's word index and the candidates' word lists.

    With ``exactly_one_true`` (the default) rows where neither or both candidates corefer are left out and
    counted in ``stats``. A malformed row raises :class:`UserError` with ``file:line`` unless ``skip_bad``
    (``offer_skip``, for commands that have ``--skip-bad``, adds that hint).
    """
    path = Path(path)
    lines = read_utf8_lines(path, what="GAP file")
    stats = stats if stats is not None else GapStats()
    out: list[Example] = []
    start = 0
    if lines and lines[0].split("\t")[:2] == COLUMNS[:2]:
        start = 1
    for lineno, line in enumerate(lines[start:], start + 1):
        if not line.strip():
            continue
        if limit is not None and len(out) >= limit:
            break
        stats.rows += 1
        try:
            ex = _parse_row(line.split("\t"), path, lineno)
        except _Bad as bad:
            msg = f"{where(path, bad.line)}: {bad.message}"
            if not skip_bad:
                hint = " (use --skip-bad to skip such rows)" if offer_skip else ""
                raise UserError(msg + hint) from None
            stats.skipped_bad += 1
            if problems is not None:
                problems.append(msg)
            continue
        if exactly_one_true and ex.meta["a_coref"] == ex.meta["b_coref"]:
            stats.not_exactly_one_true += 1
            continue
        out.append(ex)
    if stats.rows == 0:
        raise UserError(f"GAP file {path} has no rows")
    return out
