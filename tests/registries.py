"""The registries a test or a docs page may extend, saved and restored: ``cells.OPS``,
``search_space.SPACES``, ``searchers.SEARCHERS`` and ``nasplay.scorers.SCORERS``. What is
registered inside ``restored()`` is gone after it, so no test or page leaves a registration
behind for the next. conftest.py's ``registries`` fixtures and test_readme.py's page runner use
it."""

from __future__ import annotations

import contextlib
import sys


def registries(ops: bool | None = None) -> list[dict]:
    """The registry dicts themselves, each holding its package's built-ins. ``cells.OPS`` is
    among them with ``ops``, or with ``ops=None`` where ``cells`` is already imported (importing
    it imports Keras)."""
    import search_space
    import searchers
    from nasplay.scorers import SCORERS

    found = [search_space.SPACES, searchers.SEARCHERS, SCORERS]
    if ops or (ops is None and "cells" in sys.modules):
        import cells

        found.append(cells.OPS)
    return found


@contextlib.contextmanager
def restored(ops: bool | None = None):
    """Saves the registries (``registries(ops)``) and restores them when the block ends."""
    found = registries(ops)
    saved = [dict(registry) for registry in found]
    try:
        yield
    finally:
        for registry, before in zip(found, saved):
            registry.clear()
            registry.update(before)


@contextlib.contextmanager
def registering():
    """Yields ``register(*spaces, **ops)``, which registers test-only spaces (``SearchSpace``,
    ``EdgeSpace``) and ops (``name=factory``) and returns the space it was given (or the
    spaces); every registry is restored when the block ends."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(restored())

        def register(*spaces, **ops):
            from search_space import register_space

            for space in spaces:
                register_space(space)
            if ops:
                stack.enter_context(restored(ops=True))  # cells.OPS, imported only now
                import cells

                for name, factory in ops.items():
                    cells.register_op(name, factory)
            return spaces[0] if len(spaces) == 1 else spaces

        yield register
