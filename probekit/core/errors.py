"""One exception type for user mistakes; the CLI turns it into one line and exit status 2."""
from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: a missing file, an unknown task, a malformed line.

    The message is shown as is, on one line, so it should say what is wrong and where
    (``file:line`` when there is one). Internal bugs raise ordinary exceptions instead.
    """


def where(path, line: int | None = None) -> str:
    """``path:line`` (or just ``path``) for error messages."""
    return f"{path}:{line}" if line is not None else f"{path}"
