"""The import contract: runnable_trio's modules import downward only, as its docstring says.

The layer list and the allowed upward imports are read from ``runnable_trio/__init__.py``'s
docstring, so the documentation and the check cannot drift apart. Every import counts: at
module level and inside functions (``if TYPE_CHECKING:`` blocks aside: they do not run).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import runnable_trio

PACKAGE = Path(runnable_trio.__file__).parent
Edge = tuple[str, str, bool, int]  # importer, imported, inside a function, line


def declared() -> tuple[dict[str, int], set[tuple[str, str]]]:
    """{module: layer rank (0 = lowest)}, and the allowed (importer, imported) pairs."""
    doc = runnable_trio.__doc__ or ""
    block = doc.split("Layers, highest first", 1)[1].split("\n\n", 2)[1]
    rows: list[list[str]] = []
    for line in block.splitlines():
        match = re.match(r"    (\w+) +(.*)$", line)
        if match:
            rows.append([])
            line = match.group(2)
        rows[-1].extend(name.strip() for name in line.split(",") if name.strip())
    ranks = {module: len(rows) - 1 - i for i, row in enumerate(rows) for module in row}
    allowed_text = doc.split("Allowed upward imports", 1)[1].split("\n\n", 2)[1]
    allowed = set()
    for match in re.finditer(r"^    (\w+) -> ([\w, ]+):", allowed_text, re.M):
        allowed |= {(match.group(1), name.strip()) for name in match.group(2).split(",")}
    return ranks, allowed


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return "__init__" if parts == ("__init__",) else ".".join(parts)


def layer_of(module: str) -> str:
    """The name the layer list uses: a subpackage's modules go by the subpackage."""
    return module.split(".")[0]


def imports(path: Path) -> list[Edge]:
    """The package's own modules ``path`` imports, with where."""
    return imports_of(path.read_text(), module_name(path), is_package=path.name == "__init__.py")


def imports_of(text: str, me: str, *, is_package: bool = False) -> list[Edge]:
    """The package's own modules the source ``text`` of module ``me`` imports."""
    tree = ast.parse(text)
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(inner) for inner in ast.walk(node)}
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            inside |= {id(inner) for inner in ast.walk(node)}
    package = [] if me == "__init__" else me.split(".")[: None if is_package else -1]
    edges: list[Edge] = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                prefix = [*base, *(node.module.split(".") if node.module else [])]
                if node.module:
                    targets = [".".join(prefix)]
                else:
                    targets = [".".join([*prefix, a.name]) for a in node.names]
            elif node.module and node.module.split(".")[0] == "runnable_trio":
                rest = node.module.split(".")[1:]
                targets = [".".join(rest)] if rest else [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "runnable_trio" and len(parts) > 1:
                    targets.append(".".join(parts[1:]))
        for target in targets:
            if target and target != me:
                edges.append((me, target, id(node) in inside, node.lineno))
    return edges


def all_edges() -> list[Edge]:
    return [edge for path in sorted(PACKAGE.rglob("*.py")) for edge in imports(path)]


def test_every_module_has_a_layer() -> None:
    ranks, _ = declared()
    modules = {layer_of(module_name(p)) for p in PACKAGE.rglob("*.py")}
    assert sorted(modules - set(ranks)) == []  # a new module: add it to the layer list
    assert sorted(set(ranks) - modules) == []  # a module that is gone: remove it


def test_no_module_imports_a_layer_above_its_own() -> None:
    assert upward(all_edges()) == []


def test_the_allowed_upward_imports_are_still_needed() -> None:
    _, allowed = declared()
    lazy = {(layer_of(a), layer_of(b)) for a, b, inside, _ in all_edges() if inside}
    assert sorted(allowed - lazy) == []


def test_the_imports_have_no_cycle() -> None:
    """Module-level imports form no cycle (``_pipeline -> _stream -> _definition ->
    _pipeline`` was one); the allowed upward imports are the only way back up."""
    graph: dict[str, set[str]] = {}
    for a, b, lazy, _ in all_edges():
        if not lazy:
            graph.setdefault(a, set()).add(b)
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join([*trail, node, nxt]))
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


def test_the_run_layer_imports_without_the_graph() -> None:
    """What a run needs does not import the step graph back (the old cycle's other half)."""
    edges = [(a, b) for a, b, lazy, _ in all_edges() if not lazy]
    reach = {"_prepare"}
    while True:
        more = {b for a, b in edges if a in reach} - reach
        if not more:
            break
        reach |= more
    assert "_pipeline" not in reach


def upward(edges: list[Edge]) -> list[str]:
    ranks, allowed = declared()
    return [
        f"{a} -> {b} (line {line}{', in a function' if lazy else ''})"
        for a, b, lazy, line in edges
        if ranks[layer_of(b)] > ranks[layer_of(a)]
        and not (lazy and (layer_of(a), layer_of(b)) in allowed)
    ]


def test_the_checker_reports_an_upward_import_even_inside_a_function() -> None:
    text = "def f():\n    from ._stream import open_stream\n"
    edges = imports_of(text, "_errors")
    assert edges == [("_errors", "_stream", True, 2)]
    assert upward(edges) == ["_errors -> _stream (line 2, in a function)"]
    guarded = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ._stream import X\n"
    assert imports_of(guarded, "_errors") == []
