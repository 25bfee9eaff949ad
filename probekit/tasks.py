"""Probing tasks: one definition per file in ``probes/``, found by name.

A task turns options into :class:`ProbingData`: Examples over words, each with its split and, for every task
key (``n=1…9`` for the n-th-token task, a single empty key otherwise), the index of the target word. Adding a
task means adding one file to ``probes/`` that defines ``TASK``.
"""
from __future__ import annotations

import argparse
import functools
import importlib.util
from dataclasses import dataclass, field
from typing import Callable

from .errors import UserError
from .examples import Example
from .resources import probes_dir

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


@functools.cache
def available_tasks() -> dict[str, Task]:
    """Every ``TASK`` defined in ``probes/*.py``, by name (the files are run once per process)."""
    tasks: dict[str, Task] = {}
    for path in sorted(probes_dir().glob("*.py")):
        if path.name.startswith("_"):
            continue
        spec = importlib.util.spec_from_file_location(f"probekit._probes.{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        task = getattr(module, "TASK", None)
        if isinstance(task, Task):
            tasks[task.name] = task
    return tasks


def get_task(name: str) -> Task:
    tasks = available_tasks()
    if name not in tasks:
        raise UserError(f"unknown task {name!r}; known tasks: {', '.join(sorted(tasks))}")
    return tasks[name]
