"""The sublayers of a Keras layer and a hook on their ``call``: what the multiply-add counter
(:mod:`nasplay.scorers.proxy.flops`) needs and stock Keras does not offer.

Cells are composite layers wiring sublayers in Python, so there is no functional graph to read
shapes from; the counter instead runs the model once with each countable layer's ``call``
wrapped. Private parts used (hence this module): ``Layer._flatten_layers`` to list sublayers
(:mod:`.sublayers`), and an instance attribute ``call`` set with ``object.__setattr__`` (past
Keras's attribute tracking), which ``Layer.__call__`` picks up; the wrappers are removed
afterwards.

:func:`available` says whether the installed Keras is one these were tested with; where it is
not, the counter reports no figure rather than a wrong one.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from nasplay.runtime._internals.sublayers import flatten_layers


def available() -> bool:
    from nasplay.runtime._internals import tested_keras

    return tested_keras()


def walk(layer, path: str) -> Iterator[tuple[str, object]]:
    """Every layer under ``layer`` (itself included), each once, with a '/'-joined name path."""
    seen = set()
    stack = [(layer, path)]
    while stack:
        current, current_path = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current_path, current
        children = flatten_layers(current, include_self=False, recursive=False)
        for child in reversed(children):
            stack.append((child, f"{current_path}/{child.name}"))


@contextmanager
def hooked_calls(layers: list[tuple[str, object]], hook: Callable) -> Iterator[None]:
    """Inside the block, every call of each ``(path, layer)`` runs ``hook(path, layer, args,
    output)`` after the layer's own ``call``; the layers are left as they were afterwards."""
    patched = []

    def wrap(path, layer):
        original = layer.call

        def call(*args, **kwargs):
            out = original(*args, **kwargs)
            hook(path, layer, args, out)
            return out

        object.__setattr__(layer, "call", call)
        patched.append(layer)

    try:
        for path, layer in layers:
            wrap(path, layer)
        yield
    finally:
        for layer in patched:
            object.__delattr__(layer, "call")
