"""The layout's rules, checked on the source: subpackages in layers (lower never imports higher), no cycles, the
naming rule (``pk.<command>`` in ``<area>/<command>.py``), no package named like a facade function, small modules."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "probekit"

#: the command modules (``python -m probekit.X``), thin, at the top of the package
COMMANDS = {"probe", "data", "extract", "confusion", "attention", "deps", "coref", "parse", "browse", "classify",
            "attribute", "structural", "clusters", "edges", "faithfulness", "compare", "attack"}

#: subpackages from the bottom up; a module may import its own subpackage and any lower layer, never a peer or a
#: higher one. The command layer (top-level modules, ``cli/``) sits above all of them.
LAYERS = [
    {"core"},                                    # options, encoder, examples, extraction, cache, Result, run folder
    {"corpora"},                                 # readers and generators of data
    {"report"},                                  # figures and Markdown, drawn from tables (no analysis imported)
    {"probing"},                                 # probes, probing tasks, pk.probe / data / extract / structural / …
    {"heads", "syntax"},                         # what attention heads do; syntax from attention
    {"classifiers"},                             # models that decide
    {"attribution"},                             # word scores of a classifier's decision
    {"evaluation", "attacks", "finetuned"},      # faithfulness experiments, attacks, fine-tuned vs base
    {"viz"},                                     # the head browser
]
COMMAND_LAYER = {"cli"}


def _modules() -> dict[str, set[str]]:
    """module → the probekit modules it imports (anywhere in the file, function-level imports too)."""
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = ["probekit", *path.relative_to(ROOT).with_suffix("").parts]
        package = parts[:-1]
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


def _area(module: str) -> str | None:
    """``probekit.heads.statistics`` → ``heads``; top-level modules and the facade → None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (ROOT / parts[1]).is_dir()) else None


def _rank() -> dict[str, int]:
    return {name: i for i, layer in enumerate(LAYERS) for name in layer}


def violations(root: Path | None = None) -> list[str]:
    """Every import that goes sideways or up the layers (``a.b imports c.d: heads → classifiers``)."""
    global ROOT
    if root is not None:
        ROOT = root
    rank, found = _rank(), []
    for module, deps in sorted(_modules().items()):
        area = _area(module)
        if area is None or area in COMMAND_LAYER:
            continue
        for dep in sorted(deps):
            other = _area(dep)
            if other is None or other == area or _is_command(dep):
                continue                     # the facade, its own area, the command layer (tested below)
            if other not in rank or area not in rank or rank[other] >= rank[area]:
                found.append(f"{module} imports {dep}: {area} → {other}")
    return found


def test_every_subpackage_has_a_layer():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages - set(_rank()) - COMMAND_LAYER == set()


def test_lower_layers_never_import_higher_ones_or_peers():
    assert violations() == []


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
    assert COMMANDS <= top


def test_the_entry_point_knows_every_command():
    from probekit.__main__ import COMMANDS as ENTRY

    assert set(ENTRY) == COMMANDS
    assert {name: path for name, path in ENTRY.items() if path != f"{name}.py"} == {}


def test_every_command_lives_in_its_area_under_its_own_name():
    """``pk.X`` is defined in ``probekit/<area>/X.py``; no other module is named like a command."""
    from probekit import _NAMES

    homes = {name: _NAMES[name] for name in COMMANDS}
    assert {n: m for n, m in homes.items() if m.split(".")[-1] != n or len(m.split(".")) != 3} == {}
    named_like = {str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py")
                  if p.stem in COMMANDS and p.parent != ROOT and module_name(p) != homes[p.stem]}
    assert named_like == set()


def module_name(path: Path) -> str:
    return ".".join(["probekit", *path.relative_to(ROOT).with_suffix("").parts])


def test_no_package_is_named_like_a_facade_function():
    from probekit import _NAMES

    packages = {p.parent.relative_to(ROOT).parts[0] for p in ROOT.rglob("__init__.py") if p.parent != ROOT}
    assert packages & set(_NAMES) == set()


def test_modules_stay_small():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines()) for p in ROOT.rglob("*.py")}
    assert {k: v for k, v in sizes.items() if v > 420} == {}
