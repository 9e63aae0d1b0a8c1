"""The layers as docs/architecture.md draws them, checked on the source: ui → session/core →
backend interface → engines, one direction, and no import cycles.

Reads explorer/*.py as text (ast), so it needs no model and takes well under a second."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "explorer"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imported(path: Path, *, top_level_only: bool) -> set[str]:
    """Every module name `path` imports (`from a import b` gives a and a.b), resolving
    relative imports; `if TYPE_CHECKING:` blocks never run, so they do not count."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and top_level_only:
                continue  # imported when called: cannot make an import-time cycle
            if isinstance(child, ast.If) and getattr(child.test, "id", None) == "TYPE_CHECKING":
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = package[: len(package) - child.level + 1] if child.level else []
                module = ".".join(base + ([child.module] if child.module else []))
                found.add(module)
                found.update(f"{module}.{alias.name}" for alias in child.names)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def owning_module(name: str) -> str | None:
    """The explorer module a dotted import name lands in (`a.b.C` → `a.b`)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for name, path in MODULES.items():
        ancestors = {name.rsplit(".", k)[0] for k in range(1, name.count(".") + 1)}
        targets = {owning_module(i) for i in imported(path, top_level_only=True)
                   if i.startswith("explorer")}
        # A package's own __init__ runs before any of its modules anyway: not an edge.
        graph[name] = targets - {None, name} - ancestors
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return found


def test_the_source_tree_is_found():
    assert {"explorer.ui.app", "explorer.session.explorer", "explorer.engine.engine",
            "explorer.backend.protocol"} <= set(MODULES)


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_cycle_finder_sees_a_cycle():
    """The check above could pass by finding nothing at all: a made-up graph shows it can fail."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_only_the_ui_and_the_entry_point_import_textual():
    offenders = {}
    for name, path in MODULES.items():
        if name.startswith("explorer.ui") or name == "explorer.cli":  # cli starts the app
            continue
        bad = sorted(i for i in imported(path, top_level_only=False)
                     if i.split(".")[0] == "textual" or i.startswith("explorer.ui"))
        if bad:
            offenders[name] = bad
    assert offenders == {}


def test_the_ui_never_imports_a_concrete_engine():
    """The UI talks to explorer.backend (the interface); engines and servers stay behind it."""
    offenders = {}
    for name, path in MODULES.items():
        if not name.startswith("explorer.ui"):
            continue
        bad = sorted(i for i in imported(path, top_level_only=False)
                     if i.startswith(("explorer.engine", "explorer.remote")))
        if bad:
            offenders[name] = bad
    assert offenders == {}
