"""Where the shipped ``data/`` (grammars, lexicons) and ``probes/`` (task definitions) live.

In a source checkout they are the top-level folders; ``pip install .`` packages them as ``probekit._data`` and
``probekit._probes`` (see pyproject.toml), so both layouts are looked up.
"""
from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    for candidate in (_HERE / f"_{name}", _HERE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"probekit's {name}/ folder is missing from this installation")


def data_dir() -> Path:
    return _find("data")


def probes_dir() -> Path:
    return _find("probes")
