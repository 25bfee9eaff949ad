"""The one UTF-8 text reader every corpus reader goes through, and plain-text corpora.

Lines end at ``\\n`` or ``\\r\\n`` only: ``str.splitlines()`` also splits at U+2028, U+2029, U+0085 and form
feeds, which occur inside real sentences (the sentiment-labelled ``imdb_labelled.txt`` has U+0085), so it would
invent sentences and shift every later line number. A ``.txt`` corpus has one sentence per line
(whitespace-separated words); ``.conllu`` is read by :func:`probekit.corpora.conllu.read_conllu`.
"""
from __future__ import annotations

from pathlib import Path

from ..core import checks
from ..core.errors import UserError
from ..core.examples import Example


def split_lines(text: str) -> list[str]:
    """``text`` cut at ``\\n`` and ``\\r\\n`` only (a final line ending adds no empty line)."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def read_utf8(path: str | Path, what: str = "corpus") -> str:
    """The text of a UTF-8 file (a leading BOM dropped). A missing file, a folder or non-UTF-8 bytes are one
    :class:`UserError` naming the file (and ``file:line`` for bad bytes)."""
    p = checks.input_file("corpus", path, what)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise UserError(f"{what} {p}: cannot read it ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise UserError(f"{p}:{line}: not UTF-8 text (byte {raw[exc.start]:#04x})") from None
    return text[1:] if text.startswith("\ufeff") else text


def read_utf8_lines(path: str | Path, what: str = "corpus") -> list[str]:
    """The lines of a UTF-8 file (see :func:`read_utf8` and :func:`split_lines`); line i is ``lines[i - 1]``."""
    return split_lines(read_utf8(path, what))


def read_text_lines(path: str | Path, what: str = "corpus") -> list[tuple[int, str]]:
    """(line number, stripped text) of every line; a file without any text is an error too."""
    p = Path(path)
    lines = [(i, line.strip()) for i, line in enumerate(read_utf8_lines(p, what), 1)]
    if not any(t for _, t in lines):
        raise UserError(f"{what} {p} is empty")
    return lines


def read_text(path: str | Path) -> list[Example]:
    """A ``.txt`` corpus: one sentence per non-blank line, words split at whitespace; ``meta["source"]`` is
    ``file:line``."""
    p = Path(path)
    return [Example(words=t.split(), meta={"source": f"{p}:{i}"}) for i, t in read_text_lines(p) if t]
