"""Load a user's attribution methods from a Python file of their own.

The file defines an :class:`~.base.AttributionMethod` subclass and registers it (``@register``); importing it is
all it takes. ``load_plugin(path)`` (``pk.load_plugin``; ``--plugin FILE`` on the attribute command) imports the
file by path, once per path, and reports which methods it registered. A plain ``import`` of a module that
registers methods works the same way.
"""
from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

from ..core.errors import UserError
from . import registry

_LOADED: dict[str, list[str]] = {}


def load_plugin(path) -> list[str]:
    """Import the Python file ``path``; returns the names of the attribution methods it registered (or
    re-registered). A missing file or one that fails to import is one line naming the file and line."""
    p = Path(path).expanduser().resolve()
    if str(p) in _LOADED:
        return list(_LOADED[str(p)])
    if not p.is_file():
        raise UserError(f"--plugin {path}: no such file")
    name = "probekit_plugin_" + hashlib.sha1(str(p).encode()).hexdigest()[:12]
    before = dict(registry.METHODS)
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
    added = [n for n, c in registry.METHODS.items() if before.get(n) is not c]
    _LOADED[str(p)] = added
    return added
