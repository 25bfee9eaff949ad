"""One sentence per example from either corpus format a command takes: ``.conllu`` or a ``.txt`` file."""
from __future__ import annotations

from pathlib import Path

from probekit.core.errors import UserError
from probekit.core.examples import Example
from probekit.corpora.conllu import read_conllu
from probekit.corpora.text import read_text


def read_sentences(path: str | Path) -> list[Example]:
    """Sentences as word Examples from a ``.conllu`` file (by suffix) or a ``.txt`` corpus (anything else);
    ``meta`` records ``source`` (``file:line``) and, for CoNLL-U, the tree."""
    p = Path(path)
    if p.suffix.lower() == ".conllu":
        examples = read_conllu(p)
        if not examples:
            raise UserError(f"corpus {p} is empty")
        return examples
    return read_text(p)
