"""A steady heap for long extraction loops (glibc only; elsewhere nothing changes).

glibc raises its mmap threshold each time a large block is freed, so the per-batch arrays of an extraction
(attention maps of ~100 KB–100 MB) move from their own mappings, returned to the system on free, into the heap,
which fragments and keeps growing with the number of batches: about 150 KB per sentence of ``extract --attention``.
Setting the threshold once, to glibc's own default of 128 KiB, switches that adjustment off (``mallopt(3)``), so
memory stays flat however many batches run.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_MMAP_THRESHOLD = -3
_DEFAULT_THRESHOLD = 128 * 1024
_done = False


def steady_heap() -> None:
    """Fix glibc's mmap threshold at its default (once per process); a no-op off glibc."""
    global _done
    if _done or not sys.platform.startswith("linux"):
        return
    _done = True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):   # musl and others have no mallopt: their heaps do not do this
        return
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt(_M_MMAP_THRESHOLD, _DEFAULT_THRESHOLD)
