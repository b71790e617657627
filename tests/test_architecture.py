"""The shape of the code, enforced: small modules and functions in the application layer, imports
that run one way only, workers that never import the command line, no dispatch on scorer names.

Read with ``ast`` (nothing is imported). Imports inside functions count (a lazy import is still a
dependency); imports under ``if TYPE_CHECKING:`` do not, and neither does the implicit import of
a package's ``__init__`` when one of its modules is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("nasplay", "cells")
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: str) -> dict[str, Path]:
    return {module_name(p): p for p in sorted((REPO / package).rglob("*.py"))}


ALL = {name: path for package in PACKAGES for name, path in modules(package).items()}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for n in ast.walk(node))
    return skipped


def import_nodes(path: Path) -> list[ast.Import | ast.ImportFrom]:
    """The import statements of ``path``, those under ``if TYPE_CHECKING:`` left out."""
    tree = ast.parse(path.read_text())
    skipped = _type_checking_nodes(tree)
    return [node for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in skipped]


def imports_of(name: str, path: Path) -> set[str]:
    """The project modules ``name`` imports (absolute and relative imports resolved)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in import_nodes(path):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in ALL else base)
    return {m for m in found if m in ALL and m != name}


GRAPH = {name: imports_of(name, path) for name, path in ALL.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []

    def visit(node):
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
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return result


def reachable(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in GRAPH.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycles(package):
    graph = {k: v for k, v in GRAPH.items() if k.split(".")[0] == package}
    assert cycles(graph) == []


def test_ray_workers_never_import_the_command_line_or_the_driver():
    worker_side = reachable("nasplay.engine.trial") | {"nasplay.engine.trial"}
    assert not worker_side & {"nasplay.cli", "nasplay.cli.search", "nasplay.engine.driver",
                              "nasplay.engine.api", "nasplay.engine.tune_backend"}


def test_the_plan_needs_neither_ray_nor_the_driver():
    assert not (reachable("nasplay.engine.plan")
                & {"nasplay.engine.tune_backend", "nasplay.engine.driver"})


# The application's folders, bottom first: a module imports only from its own folder or those
# below it (nasplay.hypermodel, the keras-tuner adapter, stands beside them and uses none).
LAYERS = ("nasplay.runtime._internals", "nasplay.errors", "nasplay.runtime", "nasplay.data",
          "nasplay.scorers", "nasplay.runs", "nasplay.engine", "nasplay.report", "nasplay.cli")


def layer_of(name: str) -> int | None:
    """The index in ``LAYERS`` of the deepest folder holding ``name``."""
    found = [i for i, layer in enumerate(LAYERS) if name == layer or name.startswith(layer + ".")]
    return max(found) if found else None


def test_every_application_module_sits_in_a_layer():
    loose = [name for name in modules("nasplay") if layer_of(name) is None
             and name not in ("nasplay", "nasplay.__main__", "nasplay.hypermodel")]
    assert loose == []


def test_the_layers_show_in_the_folders():
    """Imports run down the folders only: scorers never reach the engine or the commands, the
    engine never the reports, and nothing below ``cli`` imports the command line."""
    upward = [f"{name} -> {target}" for name in modules("nasplay") for target in GRAPH[name]
              if layer_of(name) is not None and layer_of(target) is not None
              and layer_of(target) > layer_of(name)]
    assert upward == []


def test_no_application_folder_holds_more_than_12_modules():
    folders = {path.parent for path in (REPO / "nasplay").rglob("*.py")}
    crowded = {str(folder.relative_to(REPO)): count for folder in folders
               if (count := len([p for p in folder.glob("*.py") if p.name != "__init__.py"])) > 12}
    assert crowded == {}


INTERNALS = "nasplay.runtime._internals"


def absolute_imports(path: Path) -> set[str]:
    """The dotted names ``path`` imports absolutely (``from a.b import c``: ``a.b.c``)."""
    found = set()
    for node in import_nodes(path):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif node.module and not node.level:
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("package", ["cells", "search_space", "searchers"])
def test_lower_layers_use_nasplay_only_for_its_internals(package):
    """Model code, spaces and searchers sit below the application; of ``nasplay`` they may use
    only ``nasplay.runtime._internals``, the private third-party APIs (tests/test_internals.py)."""
    found = [f"{path.relative_to(REPO)}: {name}"
             for path in sorted((REPO / package).rglob("*.py")) for name in absolute_imports(path)
             if name.split(".")[0] == "nasplay" and not name.startswith(INTERNALS + ".")]
    assert found == []


def test_the_internals_are_the_bottom_layer():
    """``nasplay.runtime._internals`` imports no other project module, so any layer may use it."""
    internals = {name for name in ALL if name == INTERNALS or name.startswith(INTERNALS + ".")}
    assert internals and all(GRAPH[name] <= internals for name in internals)


@pytest.mark.parametrize("name", [n for n in modules("nasplay")])
def test_application_modules_are_small(name):
    lines = len(ALL[name].read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{ALL[name]} has {lines} lines"


def test_application_functions_are_short():
    long = []
    for name in modules("nasplay"):
        tree = ast.parse(ALL[name].read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name}: {length} lines")
    assert long == []


def test_no_dispatch_on_a_scorers_name():
    """Scorers come from the registry; code does not compare a scorer name to a literal."""
    found = []
    for name, path in ALL.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare) and "scorer" in ast.unparse(node.left) and any(
                    isinstance(c, ast.Constant) and isinstance(c.value, str)
                    for c in node.comparators):
                found.append(f"{name}: {ast.unparse(node)}")
    assert found == []
