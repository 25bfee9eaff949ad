"""Probing tasks: a registry by name, filled from :mod:`probekit.probing.tasks` and from the user.

A task turns options into :class:`ProbingData`: Examples over words, each with its split and, for every task
key (``n=1…9`` for the n-th-token task, a single empty key otherwise), the index of the target word. A new
task is a module that defines ``TASK``: in ``probekit/probing/tasks/``, a file given as ``--task my_task.py``,
or an object passed to :func:`register_task`.
"""
from __future__ import annotations

import argparse
import functools
import importlib
import importlib.util
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..core.errors import UserError
from ..core.examples import Example

NO_TARGET = -1


@dataclass
class ProbingData:
    """Examples with ``meta["split"]`` and ``meta["targets"]`` (one word index per key, ``NO_TARGET`` if none)."""

    examples: list[Example]
    keys: list[dict]                      # e.g. [{"n": 1}, {"n": 2}] or [{}]
    splits: list[str]                     # report order; the first is the training split
    notes: dict = field(default_factory=dict)   # counts of skipped sentences etc., recorded in config.json

    def split_indices(self, split: str) -> list[int]:
        return [i for i, ex in enumerate(self.examples) if ex.meta["split"] == split]


@dataclass
class Task:
    """A probing task. ``build`` receives the parsed command-line options (including the task's own)."""

    name: str
    help: str
    build: Callable[[argparse.Namespace], ProbingData]
    add_arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None
    key_names: tuple[str, ...] = ()


_BUILTIN = "probekit.probing.tasks"
_registered: dict[str, Task] = {}


@functools.cache
def _builtin_tasks() -> dict[str, Task]:
    """The ``TASK`` of every module in :mod:`probekit.probing.tasks`, imported once per process."""
    tasks: dict[str, Task] = {}
    package = importlib.import_module(_BUILTIN)
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            task = getattr(importlib.import_module(f"{_BUILTIN}.{info.name}"), "TASK", None)
            if isinstance(task, Task):
                tasks[task.name] = task
    return tasks


def available_tasks() -> dict[str, Task]:
    """Every task by name: the built-in ones and those added with :func:`register_task` or a task file."""
    return {**_builtin_tasks(), **_registered}


def register_task(task: Task) -> Task:
    """Make ``task`` available by its name (a user's own task, defined in their code)."""
    if not isinstance(task, Task):
        raise UserError(f"register_task expects a probekit Task, got {type(task).__name__}")
    _registered[task.name] = task
    return task


def load_task_file(path: str | Path) -> Task:
    """Import a user's task file (a ``.py`` that defines ``TASK``) and register its task."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"task file {p} does not exist" if not p.exists() else f"task file {p} is not a file")
    spec = importlib.util.spec_from_file_location(f"probekit_user_task_{p.stem}", p)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except UserError:
        raise
    except Exception as exc:  # a user's file: say where it failed, in one line
        raise UserError(f"task file {p} failed to import: {type(exc).__name__}: {exc}") from None
    task = getattr(module, "TASK", None)
    if not isinstance(task, Task):
        raise UserError(f"task file {p} defines no TASK (a probekit.probing.Task)")
    return register_task(task)


def get_task(name: str) -> Task:
    """A task by name, or by the path of a task file (``my_task.py``)."""
    if name.endswith(".py"):
        return load_task_file(name)
    tasks = available_tasks()
    if name not in tasks:
        raise UserError(f"unknown task {name!r}; known tasks: {', '.join(sorted(tasks))}")
    return tasks[name]
