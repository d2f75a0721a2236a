"""The package's shape, read from its import graph: no cycles, layers import downwards only.

Every ``import`` and ``from ... import`` in ``provisioner/qwen3vl_aws`` counts, also those inside
functions and under ``TYPE_CHECKING``: a lazy import still ties two modules together.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "provisioner" / "qwen3vl_aws"
ROOT = "qwen3vl_aws"

#: Lowest first. A module may import its own layer and the ones below, never one above.
LAYERS = (
    ("errors", "paths", "contract"),
    ("deployment",),
    ("aws",),
    ("serving",),
    ("keys",),
    ("instance",),
    ("fleet",),
    ("bench",),
    ("provision", "session"),
    ("cli",),
)


def module_name(path: Path) -> str:
    parts = [ROOT, *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports (``from . import x`` counts module ``x``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            targets = [stem] + [f"{stem}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            # the longest known module the target names (a name imported from a module is
            # the module itself)
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target.startswith(ROOT + ".") and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(name, path, known) for name, path in found.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in edges.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
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
    return found


def layer(name: str) -> int:
    top = name.split(".")[1] if "." in name else ""
    for number, members in enumerate(LAYERS):
        if top in members:
            return number
    raise AssertionError(f"{name} belongs to no layer: add its top-level name to LAYERS")


def test_the_graph_sees_lazy_and_relative_imports() -> None:
    edges = graph()
    # cli/key.py imports nothing at module level but what it needs inside the command
    assert "qwen3vl_aws.errors" in edges["qwen3vl_aws.deployment"]
    assert "qwen3vl_aws.instance.readiness" in edges["qwen3vl_aws.cli.wait"]
    assert "qwen3vl_aws.instance.channel.base" in edges["qwen3vl_aws.instance.status"]


def test_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    assert cycles(graph()) == []


def test_every_module_imports_only_its_own_layer_or_lower() -> None:
    upward = [
        f"{name} -> {target}"
        for name, targets in graph().items()
        if name != ROOT
        for target in targets
        if layer(target) > layer(name)
    ]
    assert upward == []


@pytest.mark.parametrize(
    "constructor",
    ["ClientFactory", "make_clients", "Session", "channel_for", "SsmChannel", "SshChannel"],
)
def test_no_command_module_builds_clients_or_channels(constructor: str) -> None:
    """Commands get clients and channels from ``App`` (``clients()`` / ``deployment()``) only."""
    offenders = []
    for path in (PACKAGE / "cli").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called == constructor:
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []
