"""The package structure of DESIGN §1, checked on the imports themselves (every import, also those
inside functions): domains depend one way, routing → fulfillment → orders → inventory → catalog →
channels, and no two files of ``app`` import each other, directly or round a longer circle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Highest first: a domain may import those after it, never those before it.
DOMAINS = ["routing", "fulfillment", "orders", "inventory", "catalog", "channels"]


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _graph() -> dict[str, set[str]]:
    """Module → the ``app`` modules it imports (``from app.x import y`` counts as ``app.x.y`` when that
    is a module, else as ``app.x``)."""
    files = {_module(p): p for p in (ROOT / "app").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        edges: set[str] = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the package, one level up per extra dot
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base
                    for alias in node.names
                ]
            else:
                continue
            edges.update(t for t in targets if t in files and t != name)
        graph[name] = edges
    return graph


def _domain(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in DOMAINS else None


def upward(graph: dict[str, set[str]]) -> list[str]:
    rank = {domain: i for i, domain in enumerate(DOMAINS)}
    found = []
    for source, targets in graph.items():
        for target in targets:
            a, b = _domain(source), _domain(target)
            if a and b and rank[b] < rank[a]:
                found.append(f"{source} -> {target}")
    return sorted(found)


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_domains_depend_one_way():
    assert upward(_graph()) == []


def test_no_file_imports_itself_round_a_circle():
    assert circles(_graph()) == []


@pytest.mark.parametrize(
    ("graph", "finds"),
    [
        ({"app.orders.service": {"app.fulfillment.service"}, "app.fulfillment.service": set()}, "upward"),
        (
            {
                "app.orders.a": {"app.orders.b"},
                "app.orders.b": {"app.orders.c"},
                "app.orders.c": {"app.orders.a"},
            },
            "circle",
        ),
    ],
)
def test_the_checks_see_what_they_look_for(graph, finds):
    """The two checks are not vacuous: an upward edge and a three-file circle are both reported."""
    if finds == "upward":
        assert upward(graph) == ["app.orders.service -> app.fulfillment.service"]
    else:
        assert circles(graph) == [["app.orders.a", "app.orders.b", "app.orders.c"]]
