"""``probekit <command> …`` and ``python -m probekit <command> …``: every command behind one entry point.

Each command is the same one ``python -m probekit.<command>`` runs (its ``main``, its parser, its ``--help``);
this module only finds it. ``probekit --help`` lists the commands with the first line of each one's docstring,
read without importing them, so the list comes up at once.
"""
from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path
from typing import Sequence

from probekit.cli import main_wrapper
from probekit.core.errors import UserError

#: Command name → its module's file inside the package, in the README's order.
COMMANDS = {
    "probe": "probe.py", "data": "data.py", "confusion": "confusion.py", "extract": "extract.py",
    "attention": "attention.py", "browse": "browse.py", "deps": "deps.py", "coref": "coref.py", "parse": "parse.py",
    "attribute": "attribute.py", "classify": "classify.py", "faithfulness": "faithfulness.py",
    "attack": "attack.py", "compare": "compare.py", "structural": "structural.py", "edges": "edges.py",
    "clusters": "clusters.py",
}
_ROOT = Path(__file__).resolve().parent


def module_name(command: str) -> str:
    """``probe`` → ``probekit.probe``; ``classify`` → ``probekit.classify``."""
    return "probekit." + COMMANDS[command].removesuffix(".py").replace("/", ".")


def description(command: str) -> str:
    """The command's one line: its module docstring's first sentence after the ``python -m …`` usage."""
    doc = ast.get_docstring(ast.parse((_ROOT / COMMANDS[command]).read_text(encoding="utf-8"))) or ""
    first = " ".join(doc.split("\n\n")[0].split())
    if first.startswith("``") and "``:" in first:
        first = first.split("``:", 1)[1].strip()
    return first[:1].upper() + first[1:]


def overview() -> str:
    width = max(map(len, COMMANDS)) + 2
    lines = ["usage: probekit <command> [options]      (the same as python -m probekit <command> [options])", "",
             "Probe BERT-family encoders and analyse their attention.", "", "commands:"]
    lines += [f"  {name:<{width}}{description(name)}" for name in COMMANDS]
    lines += ["", "probekit <command> --help shows a command's options; python -m probekit.<command> runs the same "
                  "command."]
    return "\n".join(lines)


def _main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(overview())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        raise UserError(f"unknown command {command!r}; commands: {', '.join(COMMANDS)} (see probekit --help)")
    return int(importlib.import_module(module_name(command)).main(rest) or 0)


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
