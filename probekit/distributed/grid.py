"""Experiment grids as Ray tasks: one task per cell, each cell's result written once under its key.

:func:`run` maps a function over named cells (seeds, λ, layers × probes × seeds …). In a session
(:mod:`.session`) every cell is a Ray task, at most ``workers`` in flight; otherwise the cells run here, one
after another. With a ``store`` folder (shared storage on a cluster), a cell's result is pickled to
``store/<key>.pkl`` by a hard link from a temporary file, which fails when the key is already there: a task
retried after its worker died, or run twice, leaves one file, and a rerun reads the stored results instead
of computing them. Results come back in the cells' order, whatever order the tasks finish in.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from pathlib import Path

from .session import WORKERS


def file_key(key: str) -> str:
    """A file name for a cell key (any text)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def _stored(store, key):
    path = Path(store) / f"{file_key(key)}.pkl"
    if path.is_file():
        with open(path, "rb") as f:
            return True, pickle.load(f)
    return False, None


def _cell(fn, key: str, kwargs: dict, store):
    """One cell: its stored result, else computed and stored once."""
    if store is not None:
        found, value = _stored(store, key)
        if found:
            return value
    value = fn(**kwargs)
    if store is not None:
        Path(store).mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".cell-", dir=store)
        try:
            with os.fdopen(fd, "wb") as f:
                pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
            try:
                os.link(tmp, Path(store) / f"{file_key(key)}.pkl")
            except FileExistsError:          # an earlier attempt of this cell finished first: keep its result
                pass
        finally:
            os.unlink(tmp)
    return value


def run(fn, cells: dict, *, store=None, num_cpus: float = 1, num_gpus: float = 0) -> dict:
    """``{key: fn(**kwargs)}`` for ``cells = {key: kwargs}``; on Ray in a session (see the module's text)."""
    workers = WORKERS.get()
    if workers is None:
        return {key: _cell(fn, key, kw, store) for key, kw in cells.items()}
    import ray

    task = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=3)(_cell)
    refs, pending, out = {}, list(cells.items()), {}
    while pending or refs:
        while pending and len(refs) < workers:
            key, kw = pending.pop(0)
            refs[task.remote(fn, key, kw, None if store is None else str(store))] = key
        done, _ = ray.wait(list(refs), num_returns=1)
        for ref in done:
            out[refs.pop(ref)] = ray.get(ref)
    return {key: out[key] for key in cells}
