""".npy files written by position, with their disk space claimed first.

Each file is created at its final size (header, then blocks claimed with ``posix_fallocate``) and filled with
positioned writes. Nothing is memory-mapped: written pages go to the OS page cache, never into this process's
resident memory, so writing a 10× larger corpus takes no more memory. Claiming the blocks up front makes a full
disk an ordinary ``OSError`` (ENOSPC) before any work, not a failure half-way.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np


def reserve(f, nbytes: int, path: Path) -> None:
    """Claim the disk blocks of ``nbytes`` now: a full disk then fails here as ENOSPC, not half-way."""
    fallocate = getattr(os, "posix_fallocate", None)
    if fallocate is not None:
        try:
            fallocate(f.fileno(), 0, nbytes)
            return
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise OSError(exc.errno, exc.strerror, str(path)) from None
    f.truncate(nbytes)   # no way to reserve here (not Linux, or a file system without it): a sparse file


class NpyWriter:
    """A new ``.npy`` file of ``shape`` (the header ``np.save`` writes), its space reserved, filled by
    :meth:`write` at any row in any order; :meth:`close` when done.

    No msync or fsync: the pages reach the file through the OS page cache, which a killed process does not lose;
    the rename in :func:`probekit.core.cache.write_store` is what makes the entry visible.
    """

    def __init__(self, path: Path, dtype: np.dtype, shape: tuple[int, ...]):
        self.path, self.dtype, self.shape = Path(path), np.dtype(dtype), tuple(shape)
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": self.shape}
        self._file = open(self.path, "w+b")
        try:
            np.lib.format.write_array_header_1_0(self._file, header)
            self.offset = self._file.tell()
            reserve(self._file, self.offset + self.shape[0] * self.row_bytes, self.path)
        except BaseException:
            self._file.close()
            raise

    def write(self, row: int, values: np.ndarray) -> None:
        """Write ``values`` (rows of this file's shape, or a flat run for a 1-D file) starting at ``row``."""
        values = np.ascontiguousarray(values, dtype=self.dtype)
        self._file.seek(self.offset + row * self.row_bytes)
        self._file.write(memoryview(values).cast("B"))

    def close(self) -> None:
        self._file.close()
