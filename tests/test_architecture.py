"""The package's architecture, enforced: no import cycles, and the flow drawn by the layout.

Every import in ``cxmetrics`` counts, wherever it is written: at module level, inside a function
or a method, and under ``if TYPE_CHECKING:`` (an import moved into a function still ties the two
modules together; a cycle hidden that way is still a cycle). The graph is built from the source
with ``ast``, not by importing anything.

Layers, lowest first: the top-level ``_exceptions``, ``_version`` and ``_binaries``; ``spec`` → ``propagation`` →
``instrument`` → ``exposition`` → (``config``, ``testing``, ``integrations``, and the package's
``__init__``, which wires them into the public API) → ``analysis`` → ``records`` → ``rules`` →
``watch`` → ``dashboards`` → ``report`` → ``local`` → ``cli``. A module may import its own layer
and the ones below it.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers.paths import ROOT

PACKAGE = ROOT / "cxmetrics"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("_exceptions", "_version", "_binaries"),
    ("spec",),
    ("propagation",),
    ("instrument",),
    ("exposition",),
    ("followup",),
    ("config", "testing", "integrations", "__init__"),
    ("analysis",),
    ("records",),
    ("rules",),
    ("watch",),
    ("dashboards",),
    ("report",),
    ("local",),
    ("cli",),
)
LEVEL = {part: level for level, parts in enumerate(LAYERS) for part in parts}


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package's ``__init__`` by the package's)."""
    out: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package modules ``name`` imports anywhere in its source."""
    is_package = path.name == "__init__.py"
    here = name.split(".") if is_package else name.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            # ``from pkg import mod`` imports the module ``pkg.mod``; ``from mod import name``
            # imports ``mod``.
            targets = [
                f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in known:  # ``import cxmetrics.a.b`` as written
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def layer(module: str) -> int:
    parts = module.split(".")
    return LEVEL[parts[1] if len(parts) > 1 else "__init__"]


def test_the_import_graph_is_read_from_every_import() -> None:
    edges = graph()
    # Imports inside functions and under TYPE_CHECKING count (these two are written that way).
    assert "cxmetrics.spec.load" in edges["cxmetrics.config"]
    assert "cxmetrics.spec.model" in edges["cxmetrics.instrument.runtime"]
    assert "cxmetrics.instrument.journeys" in edges["cxmetrics.instrument.decorators"]
    assert "cxmetrics.spec.load" in edges["cxmetrics"]
    # The cycle finder finds a cycle.
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles_in_the_package() -> None:
    found = cycles(graph())
    for component in found:
        print(f"cycle of {len(component)}: {', '.join(component)}")
    print(f"{len(graph())} modules, {len(found)} import cycles")
    assert found == []


def test_no_subpackage_imports_one_drawn_after_it() -> None:
    edges = graph()
    assert set(LEVEL) >= {m.split(".")[1] for m in edges if "." in m}, "a new top-level part"
    violations = sorted(
        f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)})"
        for module, targets in edges.items()
        for target in targets
        if layer(target) > layer(module)
    )
    for violation in violations:
        print(violation)
    print(f"{len(violations)} layer violations")
    assert violations == []
