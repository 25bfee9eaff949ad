"""Writing one output file so that a failure leaves nothing half-written and a success replaces in one step.

The file is written under a hidden temporary name beside its target and renamed into place
(``os.replace``), so the user's old file, if ``--overwrite`` allowed replacing it, is either still whole or
replaced whole. A full or read-only disk is one :class:`UserError` line with nothing left behind. Check the
path first with :func:`probekit.core.checks.output_file` (existing file, ``--overwrite``, inputs).
"""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Callable

from probekit.core.errors import UserError

#: errors of the disk rather than of the program: one line for the user, not a traceback
DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG, errno.EIO}


def write_atomic(path: str | os.PathLike, content: str | bytes | Callable[[Path], object], *,
                 name: str | None = None) -> Path:
    """Write ``content`` (text as UTF-8, bytes, or a function that writes the file at the path it is given)
    to ``path`` atomically; ``name`` is the option that named the path, for the error message."""
    p = Path(path)
    label = f"--{name.replace('_', '-')} {p}" if name else str(p)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{p.name}.", suffix=f".tmp{p.suffix}", dir=p.parent)
    except OSError as exc:
        raise UserError(f"cannot write {label}: {exc.strerror or exc}") from None
    tmp = Path(tmp_name)
    try:
        if callable(content):
            os.close(fd)
            content(tmp)
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(content.encode("utf-8") if isinstance(content, str) else content)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, p)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno in DISK_ERRORS:
            raise UserError(f"cannot write {label}: {exc.strerror or exc} (nothing was written)") from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return p
