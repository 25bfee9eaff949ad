"""Load a user's plug-ins from a Python file of their own, and the registries they join.

A plug-in file defines a class of one of probekit's families (an attribution method, a faithfulness experiment,
an attack, a probe, a pooling head) and registers it in one line (``@register``); importing it is all it takes.
``load_plugin(path)`` (``pk.load_plugin``; ``--plugin FILE`` on the commands that read a registry) imports the
file by path, once per path, and reports what it registered. A plain ``import`` of a module that registers
classes works the same way. Each family's registry is a dict ``name → class`` made with :func:`registry`, so the
loader can tell what a file added to any of them.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import sys
from pathlib import Path

from probekit.core.errors import UserError

#: family → its registry (name → class); a registry module adds itself when it is imported
REGISTRIES: dict[str, dict] = {}
_LOADED: dict[str, list[str]] = {}


def registry(family: str) -> dict:
    """The (new, empty) registry of ``family``, known to the loader."""
    return REGISTRIES.setdefault(family, {})


def load_plugin(path) -> list[str]:
    """Import the Python file ``path``; returns the names of what it registered (or re-registered), in any
    family. A missing file or one that fails to import is one line naming the file and line."""
    p = Path(path).expanduser().resolve()
    if str(p) in _LOADED:
        return list(_LOADED[str(p)])
    if not p.is_file():
        raise UserError(f"--plugin {path}: no such file")
    name = "probekit_plugin_" + hashlib.sha1(str(p).encode()).hexdigest()[:12]
    before = {family: dict(reg) for family, reg in REGISTRIES.items()}
    spec = importlib.util.spec_from_file_location(name, p)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(name, None)
        raise UserError(f"{p}:{exc.lineno}: {exc.msg}") from None
    except Exception as exc:  # noqa: BLE001 - any failure in the user's file is reported in one line
        sys.modules.pop(name, None)
        tb = exc.__traceback__
        line = None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == str(p):
                line = tb.tb_lineno
            tb = tb.tb_next
        raise UserError(f"{p}{'' if line is None else f':{line}'}: {type(exc).__name__}: {exc}") from None
    added = [n for family, reg in REGISTRIES.items() for n, c in reg.items()
             if before.get(family, {}).get(n) is not c]
    _LOADED[str(p)] = added
    return added


def plugin_files(argv) -> list[str]:
    """The ``--plugin`` files in a command line, read before its parser is built so their classes are choices."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--plugin", action="append", default=[])
    return pre.parse_known_args(list(argv))[0].plugin


def load_plugins(argv) -> list[str]:
    """Load every ``--plugin`` file of ``argv``; the names they registered."""
    return [n for path in plugin_files(argv) for n in load_plugin(path)]
