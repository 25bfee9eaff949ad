"""Reading user corpora: ``.txt`` (one sentence per line, whitespace-separated words) or ``.conllu``."""
from __future__ import annotations

from pathlib import Path

from ..core.errors import UserError
from ..core.examples import Example


def read_utf8_lines(path: str | Path, what: str = "corpus") -> list[str]:
    """The lines of a UTF-8 file; a missing or non-UTF-8 file is one clear error naming file and line."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{what} {p} does not exist")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise UserError(f"{p}:{line}: not UTF-8 text (byte {raw[exc.start]:#04x})") from None
    return text.lstrip("\ufeff").splitlines()


def read_text_lines(path: str | Path) -> list[tuple[int, str]]:
    """(line number, stripped text) of every line; an empty file is an error too."""
    p = Path(path)
    lines = [(i, line.strip()) for i, line in enumerate(read_utf8_lines(p), 1)]
    if not any(t for _, t in lines):
        raise UserError(f"corpus {p} is empty")
    return lines


def read_sentences(path: str | Path) -> list[Example]:
    """Sentences as word Examples; ``meta`` records ``source`` (file:line or sent_id)."""
    p = Path(path)
    if p.suffix.lower() == ".conllu":
        from .conllu import read_conllu

        if not p.is_file():
            raise UserError(f"corpus {p} does not exist")
        examples = list(read_conllu(p))
        if not examples:
            raise UserError(f"corpus {p} is empty")
        return examples
    return [Example(words=t.split(), meta={"source": f"{p}:{i}"}) for i, t in read_text_lines(p) if t]
