"""The one UTF-8 text reader every corpus reader goes through, and plain-text corpora.

Lines end at ``\\n`` or ``\\r\\n`` only: ``str.splitlines()`` also splits at U+2028, U+2029, U+0085 and form
feeds, which occur inside real sentences (the sentiment-labelled ``imdb_labelled.txt`` has U+0085), so it would
invent sentences and shift every later line number. A ``.txt`` corpus has one sentence per line
(whitespace-separated words); ``.conllu`` is read by :func:`probekit.corpora.conllu.read_conllu`.

Words made only of invisible characters (format and control characters, lone combining marks: U+200B
zero-width space, U+00AD soft hyphen, U+FEFF …) become no token under most tokenizers, so they have no vector of
their own and, read as the unknown token, would take attribution scores nobody can see. :func:`drop_invisible`
leaves them out of the inputs of every command when they are read, with one warning per file.
"""
from __future__ import annotations

import sys
import unicodedata
from pathlib import Path
from typing import Sequence

from probekit.core import checks
from probekit.core.errors import UserError
from probekit.core.examples import Example


def split_lines(text: str) -> list[str]:
    """``text`` cut at ``\\n`` and ``\\r\\n`` only (a final line ending adds no empty line)."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


#: Unicode categories that show nothing: format (Cf), control (Cc), and combining marks (Mn, Me) with no base
INVISIBLE_CATEGORIES = ("Cf", "Cc", "Mn", "Me")


def is_invisible(word: str) -> bool:
    """True for a non-empty word made only of characters that show nothing (see the module docstring)."""
    return bool(word) and all(unicodedata.category(c) in INVISIBLE_CATEGORIES for c in word)


def _visible(words: list[str] | None, extra: list | None = None):
    """(words kept, the matching items of ``extra``, number dropped); ``words`` None passes through."""
    if words is None:
        return None, extra, 0
    keep = [i for i, w in enumerate(words) if not is_invisible(w)]
    aligned = extra if extra is None or len(extra) != len(words) else [extra[i] for i in keep]
    return [words[i] for i in keep], aligned, len(words) - len(keep)


def drop_invisible(examples: Sequence[Example], where: str, *, skip_empty: bool = False) -> list[Example]:
    """``examples`` without their invisible words (:func:`is_invisible`): from ``words`` (with the matching
    ``meta["rationale"]`` values), ``words_b`` and the whitespace-separated words of ``text``. One warning names
    ``where`` (the file), how many words were left out and the first input; examples carrying per-word
    annotations (tags, heads) are kept whole, since dropping a word would shift them. An input left with no
    word at all is an error naming it, or, with ``skip_empty`` (a corpus, where blank lines are skipped),
    left out and counted."""
    out, dropped, inputs, first = [], 0, 0, None
    for ex in examples:
        if ex.tags is not None or any(k in ex.meta for k in ("heads", "deprels", "targets")):
            out.append(ex)
            continue
        words, rationale, n_a = _visible(ex.words, ex.meta.get("rationale"))
        words_b, _, n_b = _visible(ex.words_b)
        text, _, n_t = _visible(None if ex.text is None else ex.text.split())
        n = n_a + n_b + n_t
        if not n:
            out.append(ex)
            continue
        source = ex.meta.get("source", f"input {len(out) + 1}")
        if (ex.words is not None and not words) or (ex.text is not None and not text) or (
                ex.words_b is not None and not words_b):
            if skip_empty:
                dropped, inputs, first = dropped + n, inputs + 1, first or source
                continue
            raise UserError(f"{source}: only invisible characters (such as U+200B or U+00AD), no word to read")
        meta = dict(ex.meta)
        if rationale is not None and "rationale" in meta:
            meta["rationale"] = list(rationale)
        out.append(Example(words=words, text=None if text is None else " ".join(text), words_b=words_b,
                           tags=ex.tags, meta=meta))
        dropped, inputs, first = dropped + n, inputs + 1, first or source
    if dropped:
        _warn(where, f"probekit: warning: {where}: {dropped} word(s) made only of invisible characters (such as "
                   f"U+200B zero-width space or U+00AD soft hyphen) were left out of {inputs} input(s) "
                   f"(first: {first})")
    return out


_WARNED: set[str] = set()


def _warn(where: str, line: str) -> None:
    """Print ``line`` to stderr, once per process for a file: a named data set read for its train, dev and test
    splits parses the same file three times and would say the same thing three times. Inputs that are not files
    (``--text``, Python lists) warn every time."""
    if Path(where).is_file():
        if line in _WARNED:
            return
        _WARNED.add(line)
    print(line, file=sys.stderr)


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
        raise UserError(f"{p}:{line}: not UTF-8 text (byte {raw[exc.start]:#04x}{_HINT})") from None
    return text[1:] if text.startswith("\ufeff") else text


_HINT = "; convert the file to UTF-8, e.g. iconv -f latin1 -t utf-8"


def iter_utf8_lines(path: str | Path, what: str = "file"):
    """(line number, line without its ending) of a UTF-8 file, read a line at a time (for files too large to
    hold, such as word vectors); strict as :func:`read_utf8`."""
    p = checks.input_file("corpus", path, what)
    with open(p, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UserError(f"{p}:{lineno}: not UTF-8 text (byte {raw[exc.start]:#04x}{_HINT})") from None
            if lineno == 1 and line.startswith("\ufeff"):
                line = line[1:]
            yield lineno, line.rstrip("\n").removesuffix("\r")


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
    return drop_invisible([Example(words=t.split(), meta={"source": f"{p}:{i}"}) for i, t in read_text_lines(p)
                           if t], str(p), skip_empty=True)
