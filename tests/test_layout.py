"""The layout's rules, checked on the source: one direction of imports, no cycles, small modules."""
from __future__ import annotations

import ast
from pathlib import Path

import probekit

ROOT = Path(probekit.__file__).resolve().parent
COMMANDS = {"probe", "data", "extract", "confusion", "attention", "deps", "coref", "parse", "browse", "attribute",
            "structural", "clusters", "edges",
            "compare", "attack"}


def _modules() -> dict[str, set[str]]:
    """module → the probekit modules it imports (anywhere in the file, function-level imports too)."""
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = ["probekit", *path.relative_to(ROOT).with_suffix("").parts]
        package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = (package[:len(package) - node.level + 1] if node.level else [])
                target = ".".join(base + ([node.module] if node.module else []))
                deps |= {target} | {f"{target}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
        out[name] = deps
    return {m: {d for d in ds if d in out and d != m} for m, ds in out.items()}


def _is_command(module: str) -> bool:
    parts = module.split(".")
    return (len(parts) == 2 and parts[1] in COMMANDS) or parts[1:2] == ["cli"] or parts[-1] == "__main__"


def test_library_never_imports_the_command_layer():
    bad = {m: sorted(d for d in deps if _is_command(d))
           for m, deps in _modules().items() if not _is_command(m) and m != "probekit"}
    assert {m: d for m, d in bad.items() if d} == {}


def test_no_import_cycles():
    graph = _modules()
    graph.pop("probekit")                       # the facade imports lazily, by name
    state: dict[str, int] = {}
    cycles = []

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if nxt == "probekit":
                continue
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def test_top_level_holds_only_commands_and_the_facade():
    top = {p.stem for p in ROOT.glob("*.py")}
    assert top - COMMANDS == {"__init__", "__main__"}     # __main__: the ``probekit <command>`` entry point


def test_the_entry_point_knows_every_command():
    from probekit.__main__ import COMMANDS as ENTRY

    packages = {p.parent.name for p in ROOT.glob("*/__main__.py")}
    assert set(ENTRY) == COMMANDS | packages


def test_modules_stay_small():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines()) for p in ROOT.rglob("*.py")}
    assert {k: v for k, v in sizes.items() if v > 420} == {}
