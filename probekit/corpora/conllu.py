"""Universal Dependencies CoNLL-U reader with validation that points at file:line.

Only what the attention analyses need is kept: FORM, UPOS, HEAD, DEPREL and the ``# text`` / ``# sent_id``
comments. Multiword-token ranges (``3-4``) and empty nodes (``8.1``) are skipped, so the words are exactly
the syntactic words the basic tree is over. Every sentence becomes an :class:`~probekit.examples.Example`
with ``tags`` = UPOS and ``meta`` = {heads (1-based, 0 = root), deprels, text, sent_id, source}.
"""
from __future__ import annotations

import re
from pathlib import Path

from probekit.corpora.text import read_utf8_lines
from probekit.core.errors import UserError, where
from probekit.core.examples import Example

_INT = re.compile(r"^\d+$")
_RANGE = re.compile(r"^\d+-\d+$")
_EMPTY = re.compile(r"^\d+\.\d+$")


class _Bad(Exception):
    """A malformed sentence: ``line`` is where, ``message`` what."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


def _blocks(lines: list[str]):
    """(first line number, [(line number, line)]) for every blank-line-separated block."""
    block: list[tuple[int, str]] = []
    for lineno, line in enumerate(lines, 1):
        if line.strip():
            block.append((lineno, line))
        elif block:
            yield block
            block = []
    if block:
        yield block


def _check_tree(heads: list[int], lines: list[int], first_line: int) -> None:
    """Raise :class:`_Bad` unless ``heads`` (1-based, 0 = root) form a tree hanging from 0."""
    if 0 not in heads:
        raise _Bad(first_line, "sentence has no root (no word with HEAD 0)")
    state = [0] * (len(heads) + 1)  # 0 unseen, 1 on the current path, 2 known to reach the root
    state[0] = 2
    for start in range(1, len(heads) + 1):
        path = []
        node = start
        while state[node] == 0:
            state[node] = 1
            path.append(node)
            node = heads[node - 1]
        if state[node] == 1:
            cycle = path[path.index(node):]
            raise _Bad(lines[cycle[0] - 1], f"cycle in the dependency tree through words "
                                              f"{', '.join(str(c) for c in sorted(cycle))}")
        for p in path:
            state[p] = 2


def _parse_block(block: list[tuple[int, str]], source: Path) -> Example:
    words, upos, heads, deprels, lines = [], [], [], [], []
    text = sent_id = None
    for lineno, line in block:
        if line.startswith("#"):
            body = line[1:].strip()
            if body.startswith("text =") or body.startswith("text="):
                text = body.split("=", 1)[1].strip()
            elif body.startswith("sent_id =") or body.startswith("sent_id="):
                sent_id = body.split("=", 1)[1].strip()
            continue
        cols = line.split("\t")
        if len(cols) != 10:
            raise _Bad(lineno, f"expected 10 tab-separated columns, found {len(cols)}")
        tid = cols[0]
        if _RANGE.match(tid) or _EMPTY.match(tid):
            continue
        if not _INT.match(tid):
            raise _Bad(lineno, f"ID {tid!r} is not an integer, a range (3-4) or an empty node (8.1)")
        if int(tid) != len(words) + 1:
            raise _Bad(lineno, f"ID {tid} out of sequence (expected {len(words) + 1})")
        head = cols[6].strip()
        if not re.match(r"^-?\d+$", head):
            raise _Bad(lineno, f"HEAD {head!r} is not an integer")
        form = "".join(cols[1].split()) or "_"   # a few treebanks allow spaces inside FORM
        words.append(form)
        upos.append(cols[3].strip())
        heads.append(int(head))
        deprels.append(cols[7].strip())
        lines.append(lineno)
    if not words:
        raise _Bad(block[0][0], "sentence has comments but no words")
    n = len(words)
    for h, lineno in zip(heads, lines):
        if not 0 <= h <= n:
            raise _Bad(lineno, f"HEAD {h} out of range (sentence has {n} words)")
    _check_tree(heads, lines, block[0][0])
    meta = {"heads": heads, "deprels": deprels, "text": text if text is not None else " ".join(words),
            "sent_id": sent_id, "source": where(source, block[0][0])}
    return Example(words=words, tags=upos, meta=meta)


def read_conllu(path: str | Path, *, skip_bad: bool = False, problems: list[str] | None = None,
                limit: int | None = None, offer_skip: bool = False) -> list[Example]:
    """Every sentence of a CoNLL-U file as an Example.

    A malformed sentence raises :class:`UserError` naming ``file:line``; with ``skip_bad=True`` it is left
    out instead and its ``file:line: reason`` appended to ``problems`` (so callers can count and report).
    ``limit`` stops after that many good sentences. ``offer_skip`` (for commands that have ``--skip-bad``) adds
    that hint to the error.
    """
    path = Path(path)
    out: list[Example] = []
    for block in _blocks(read_utf8_lines(path, what="CoNLL-U file")):
        if limit is not None and len(out) >= limit:
            break
        if all(line.startswith("#") for _, line in block):
            continue  # comment-only block (e.g. a trailing "# newdoc")
        try:
            out.append(_parse_block(block, path))
        except _Bad as bad:
            msg = f"{where(path, bad.line)}: {bad.message}"
            if not skip_bad:
                hint = " (use --skip-bad to skip such sentences)" if offer_skip else ""
                raise UserError(msg + hint) from None
            if problems is not None:
                problems.append(msg)
    return out


def strip_subtype(rel: str) -> str:
    """``nmod:poss`` → ``nmod`` (UD relation subtypes)."""
    return rel.split(":", 1)[0]
