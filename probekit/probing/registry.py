"""Probing tasks: a registry by name, filled from :mod:`probekit.probing.tasks` and from the user.

A task turns keyword options into :class:`ProbingData`: Examples over words, each with its split and, for every
task key (``n=1…9`` for the n-th-token task, a single empty key otherwise), the index of the target word.
:func:`build_data` is the one way to call it (defaults filled, unknown options refused, values checked)::

    data = build_data("auxiliary", split_sizes="200,50,50", seed=1)

A new task is a module that defines ``TASK``: in ``probekit/probing/tasks/``, a file given as
``--task my_task.py``, or an object passed to :func:`register_task`. Its ``build(seed=…, size=…, **options)``
receives every option filled in; ``options`` names its own keyword options with their defaults.
"""
from __future__ import annotations

import argparse
import functools
import importlib
import importlib.util
import inspect
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from probekit.core.errors import UserError
from probekit.core.examples import Example

NO_TARGET = -1


@dataclass
class ProbingData:
    """Examples with ``meta["split"]`` and ``meta["targets"]`` (one word index per key, ``NO_TARGET`` if none)."""

    examples: list[Example]
    keys: list[dict]                      # e.g. [{"n": 1}, {"n": 2}] or [{}]
    splits: list[str]                     # report order; the first is the training split
    notes: dict = field(default_factory=dict)   # counts of skipped sentences etc., recorded in config.json
    options: dict = field(default_factory=dict)  # every option it was built with (defaults filled in)

    def split_indices(self, split: str) -> list[int]:
        return [i for i, ex in enumerate(self.examples) if ex.meta["split"] == split]


#: Options every task takes (``size`` picks the built-in tasks' quick or paper-sized data).
COMMON_OPTIONS: dict[str, Any] = {"seed": 0, "size": "quick"}
SIZE_NAMES = ("quick", "paper")


@dataclass
class Task:
    """A probing task.

    ``build(seed=…, size=…, **options)`` gets every option filled in (``options`` holds the task's own with
    their defaults); ``check(options) → options`` validates and converts them (``"1-3"`` → ``[1, 2, 3]``),
    raising :class:`UserError`; ``add_arguments(parser)`` spells them on the command line (defaults read from
    ``options``).
    """

    name: str
    help: str
    build: Callable[..., ProbingData]
    add_arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None
    key_names: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    check: Callable[[dict], dict] | None = None


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


def tasks() -> list[str]:
    """The names of every available probing task, sorted (``pk.tasks()``)."""
    return sorted(available_tasks())


def task_options(task: str | Task) -> dict[str, Any]:
    """Every option of ``task`` with its default: the common ones (seed, size) and the task's own."""
    task = get_task(task) if isinstance(task, str) else task
    return {**COMMON_OPTIONS, **task.options}


def build_data(task: str | Task, **options) -> ProbingData:
    """The task's data for these options: defaults filled in, unknown options refused, values checked.

    ``build_data("nth_token", n=[1, 2], corpus="s.txt")``, ``build_data("subject", split_sizes=(200, 50, 50))``.
    Returns :class:`ProbingData` whose ``options`` holds every option used.
    """
    from probekit.core import checks

    task = get_task(task) if isinstance(task, str) else task
    allowed = task_options(task)
    unknown = [k for k in options if k not in allowed]
    if unknown:
        raise UserError(f"task {task.name} has no option {', '.join(checks.flag(k) for k in unknown)}; "
                        f"its options: {', '.join(checks.flag(k) for k in allowed)}")
    resolved = {**allowed, **options}
    resolved["seed"] = checks.integer("seed", resolved["seed"])
    checks.choice("size", resolved["size"], SIZE_NAMES)
    own = {k: resolved[k] for k in task.options}
    if task.check is not None:
        own = dict(task.check(own))
    resolved.update(own)
    data = _call_build(task, resolved)
    if not isinstance(data, ProbingData):
        raise UserError(f"task {task.name}: build() returned {type(data).__name__}, not ProbingData")
    data.options = dict(resolved)
    return data


def _call_build(task: Task, options: dict) -> ProbingData:
    """Keyword options; a user's older task whose ``build(options)`` takes one namespace gets one."""
    params = list(inspect.signature(task.build).parameters.values())
    if len(params) == 1 and params[0].kind in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD) \
            and params[0].name not in options:
        return task.build(argparse.Namespace(**options))
    return task.build(**options)
