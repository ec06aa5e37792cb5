"""The house rules of CONTRIBUTING.md, checked: no import circle, data flows one way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gradcheck"
# Rooms that format or hold what they are given, and the rooms they must never import.
DOWNSTREAM_ONLY = {
    "gradcheck.report": (
        "gradcheck.engine",
        "gradcheck.conventions",
        "gradcheck.analytic",
        "gradcheck.modes",
        "gradcheck.verdict",
        "gradcheck.checker",
        "gradcheck.network",
        "gradcheck.faces",
    ),
    "gradcheck.engine": (
        "gradcheck.conventions",
        "gradcheck.analytic",
        "gradcheck.modes",
        "gradcheck.verdict",
        "gradcheck.report",
        "gradcheck.faces",
        "gradcheck.checker",
    ),
    "gradcheck.vocabulary": ("gradcheck.",),
}
LONGEST = 500


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every gradcheck module ``name`` imports, anywhere in the file (type-only included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    edges = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target not in (name, "gradcheck"):
                edges.add(target)
    return edges


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_its_way_back_to_itself() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert _circles(graph) == []


@pytest.mark.parametrize("room", sorted(DOWNSTREAM_ONLY))
def test_data_flows_one_way(room: str) -> None:
    modules = _modules()
    forbidden = DOWNSTREAM_ONLY[room]
    for name, path in modules.items():
        if name == room or name.startswith(room + "."):
            wrong = sorted(i for i in _imports(name, path, modules) if i.startswith(forbidden))
            assert wrong == [], f"{name} imports {wrong}"


def test_long_modules_say_why_in_their_docstring() -> None:
    for name, path in _modules().items():
        text = path.read_text()
        if text.count("\n") > LONGEST:
            docstring = ast.get_docstring(ast.parse(text)) or ""
            assert "lines" in docstring, f"{name} is over {LONGEST} lines without a reason"
