"""The architecture, checked: one-way dependencies between packages and no import cycle.

Reads every module's imports with ``ast`` (no import side effects). Cycles are searched
over module-level imports, the ones executed at import time; the layering rules also
count imports inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("config", "features", "models", "stream", "offline")

#: package prefix → prefixes it must never import (anywhere in its code)
FORBIDDEN = {
    "features": ("stream", "offline", "models", "faust", "confluent_kafka", "aiokafka"),
    "models": ("stream", "offline", "faust", "confluent_kafka", "aiokafka"),
    "config": ("stream", "offline", "features", "models", "faust"),
    "stream.pipeline": ("offline", "faust", "confluent_kafka", "aiokafka", "stream.app", "stream.agents"),
}
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def imports(path: Path, name: str, top_level_only: bool) -> set[str]:
    """Modules ``path`` imports; with ``top_level_only``, not those inside functions."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    todo: list[ast.AST] = [ast.parse(path.read_text())]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            target = (f"{base}.{node.module}" if node.module else base) if node.level else node.module or ""
            out.add(target)
            out.update(f"{target}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            if not (top_level_only and isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)):
                todo.append(child)
    return out


def test_layers_only_import_downwards():
    bad = []
    for name, path in modules().items():
        for prefix, forbidden in FORBIDDEN.items():
            if name == prefix or name.startswith(prefix + "."):
                for target in imports(path, name, top_level_only=False):
                    if any(target == f or target.startswith(f + ".") for f in forbidden):
                        bad.append(f"{name} imports {target}")
    assert not bad, "\n".join(sorted(bad))


def test_no_import_cycle_between_modules():
    mods = modules()
    graph = {
        name: {t for t in imports(path, name, top_level_only=True) if t in mods and t != name}
        for name, path in mods.items()
    }
    # a module's parent package __init__ runs first; an edge to it is not a cycle of ours
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_no_source_file_is_over_the_size_budget():
    big = {
        str(p.relative_to(ROOT)): n
        for p in modules().values()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not big, big
