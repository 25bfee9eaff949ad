""".npy files written through a memory map, with their disk space claimed first.

Writing into a memory map of a sparse file on a full disk kills the process with SIGBUS (exit 135) when a page
finds no block; claiming the blocks up front turns that into an ordinary ``OSError`` (ENOSPC) before any work.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np


def reserve(f, nbytes: int, path: Path) -> None:
    """Claim the disk blocks of ``nbytes`` now: a full disk then fails here as ENOSPC, not later as SIGBUS when
    a write into the memory map finds no block."""
    fallocate = getattr(os, "posix_fallocate", None)
    if fallocate is not None:
        try:
            fallocate(f.fileno(), 0, nbytes)
            return
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise OSError(exc.errno, exc.strerror, str(path)) from None
    f.truncate(nbytes)   # no way to reserve here (not Linux, or a file system without it): a sparse file


def new_npy(path: Path, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """A new ``.npy`` file of ``shape``, its space reserved, mapped for writing.

    A plain ndarray view of the mapping: per-sentence writes skip np.memmap's subclass overhead. The pages reach
    the file through the OS page cache, which a killed process does not lose, so there is no msync; the rename
    in :func:`probekit.core.cache.write_store` is what makes the entry visible.
    """
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        offset = f.tell()
        reserve(f, offset + nbytes, path)
    if nbytes == 0:
        return np.zeros(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r+", offset=offset, shape=shape).view(np.ndarray)
