"""Tests independent of order: no test module registers anything at import (so what a module's
parametrization reads from a registry at collection is the built-ins, in any file order), and
what a test registers through the ``registries`` fixtures is gone after it."""

import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from registries import registering, restored

TESTS = Path(__file__).resolve().parent
REGISTER_CALLS = {"register_space", "register_op", "register_scorer"}
REGISTRY_NAMES = {"SPACES", "OPS", "SEARCHERS", "SCORERS"}


def import_time_registrations(tree: ast.Module) -> list[int]:
    """Lines of the module-level statements (outside functions and classes) that call a
    ``register_*`` function or store into a registry."""
    lines = []
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for node in ast.walk(statement):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in REGISTER_CALLS:
                    lines.append(node.lineno)
            elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
                value = node.value
                name = value.attr if isinstance(value, ast.Attribute) else getattr(value, "id", "")
                if name in REGISTRY_NAMES:
                    lines.append(node.lineno)
    return lines


def test_the_check_finds_a_registration_at_import():
    tree = ast.parse("import search_space\nTINY = search_space.register_space(S)\n"
                     "OPS['x'] = f\ndef test():\n    register_space(S)\n")
    assert import_time_registrations(tree) == [2, 3]


def test_no_test_module_registers_at_import():
    # *_child.py scripts run in processes of their own: what they register stays there
    modules = [p for p in sorted(TESTS.glob("*.py")) if not p.name.endswith("_child.py")]
    assert len(modules) > 40
    found = {p.name: lines for p in modules
             if (lines := import_time_registrations(ast.parse(p.read_text())))}
    assert not found, f"registered at import (use the registries fixtures): {found}"


def test_between_tests_the_registries_hold_only_the_builtins():
    """In whatever order the tests ran before this one, none left a space, searcher or scorer
    behind (cells.OPS: tests/test_ops.py checks its exact names)."""
    import search_space
    import searchers
    from nasplay.scorers import SCORERS

    fresh = subprocess.run(
        [sys.executable, "-c", "import json, search_space, searchers\n"
         "from nasplay.scorers import SCORERS\n"
         "print(json.dumps([sorted(search_space.SPACES), sorted(searchers.SEARCHERS), "
         "sorted(SCORERS)]))"], capture_output=True, text=True, timeout=120, check=True)
    here = [sorted(search_space.SPACES), sorted(searchers.SEARCHERS), sorted(SCORERS)]
    assert json.loads(fresh.stdout) == here


def test_restored_undoes_registrations_and_removals_in_every_registry():
    import cells
    import search_space
    import searchers
    from nasplay.scorers import SCORERS, register_scorer

    before = [dict(r) for r in (cells.OPS, search_space.SPACES, searchers.SEARCHERS, SCORERS)]
    with restored(ops=True):
        cells.register_op("only_here", lambda f, s: cells.make_op("identity", f, s))
        search_space.register_space(search_space.SearchSpace("only-here", ops=("identity",),
                                                             num_blocks=1))
        searchers.SEARCHERS["only-here"] = "random_search:RandomSearch"
        register_scorer(dataclasses.replace(SCORERS["synflow"], name="only-here"))
        del search_space.SPACES["nasnet"]
        assert "only_here" in cells.OPS and "only-here" in SCORERS
    after = [dict(r) for r in (cells.OPS, search_space.SPACES, searchers.SEARCHERS, SCORERS)]
    assert after == before


def test_registering_restores_ops_registered_after_cells_is_first_imported():
    """``register(**ops)`` saves ``cells.OPS`` when it is first needed, so an op registered by
    a test that began before ``cells`` was imported is gone after it too."""
    import search_space

    with registering() as register:
        space = register(search_space.SearchSpace("only-here", ops=("identity",), num_blocks=1))
        register(only_here=lambda f, s: None)
        import cells

        assert search_space.get_space("only-here") is space and "only_here" in cells.OPS
    assert "only-here" not in search_space.SPACES and "only_here" not in cells.OPS


def test_the_fixture_registers_for_one_test(registries):
    import search_space

    space = registries(search_space.SearchSpace("only-here", ops=("identity",), num_blocks=1))
    assert search_space.get_space("only-here") is space
    with pytest.raises(ValueError, match="already registered"):
        registries(search_space.SearchSpace("only-here", ops=("conv_3x3",), num_blocks=1))
