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

from probekit.core.distributed.session import WORKERS


def file_key(key: str) -> str:
    """A file name for a cell key (any text)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def groups(n: int) -> list[list[int]]:
    """``range(n)`` in contiguous groups, one per worker of the session (one group without a session): how a
    stack of n models is split into tasks."""
    k = max(min(WORKERS.get() or 1, n), 1)
    size = -(-n // k)
    return [list(range(i, min(i + size, n))) for i in range(0, n, size)]


def _stored(store, key):
    path = Path(store) / f"{file_key(key)}.pkl"
    if path.is_file():
        with open(path, "rb") as f:
            return True, pickle.load(f)
    return False, None


def _cell(fn, key: str, kwargs: dict, store, names=(), *shared):
    """One cell: its stored result, else computed and stored once (``shared``: the values of ``names``, the
    arguments every cell gets)."""
    kwargs = {**kwargs, **dict(zip(names, shared))}
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


def run(fn, cells: dict, *, shared: dict | None = None, store=None, num_cpus: float = 1, num_gpus: float = 0,
        on_done=None) -> dict:
    """``{key: fn(**kwargs, **shared)}`` for ``cells = {key: kwargs}``; on Ray in a session (see the module's
    text), where ``shared`` (large arguments every cell reads: features, data) goes to the object store once.
    ``on_done(key)`` is called as each cell finishes (a progress bar)."""
    workers, shared = WORKERS.get(), shared or {}
    names = tuple(shared)
    if workers is None:
        out = {}
        for key, kw in cells.items():
            out[key] = _cell(fn, key, kw, store, names, *shared.values())
            if on_done:
                on_done(key)
        return out
    import ray

    task = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=3)(_cell)
    values = [ray.put(v) for v in shared.values()]
    refs, pending, out = {}, list(cells.items()), {}
    while pending or refs:
        while pending and len(refs) < workers:
            key, kw = pending.pop(0)
            refs[task.remote(fn, key, kw, None if store is None else str(store), names, *values)] = key
        done, _ = ray.wait(list(refs), num_returns=1)
        for ref in done:
            key = refs.pop(ref)
            out[key] = ray.get(ref)
            if on_done:
                on_done(key)
    return {key: out[key] for key in cells}
