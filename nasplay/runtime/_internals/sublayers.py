"""Every layer inside a Keras layer: what the supernets (their batch norms, for ``bn_momentum``),
weight inheritance (``cells.supernet_paths``), the fused norms and pools and the multiply-add
counter list, and stock Keras offers only for a ``Model`` built from layers (``model.layers``),
not for a composite layer wiring sublayers in Python (a cell).

Private part used (hence this module): ``Layer._flatten_layers``, checked against Keras 3.15
(:data:`nasplay.runtime._internals.TESTED_KERAS`). Any other Keras: a model's ``layers`` and,
below them, a walk of each layer's own attributes, which finds what Keras's attribute tracking
finds (layers set as attributes, directly or in lists, tuples and dicts). The same layers (a
``Sequential``'s input layer aside), though not always in the same order, which no caller here
depends on (each filters them into a set or a list it only zips with itself; the counter's walk
runs on a tested Keras only). It costs a Python walk of every attribute: measured 76 ms against
Keras's 5 ms for a supernet of 4,435 layers (darts, 16 filters, 5 cells a stage), once a build.
"""

from __future__ import annotations

import collections


def flatten_layers(layer, include_self: bool = True, recursive: bool = True) -> list:
    """``layer`` (with ``include_self``) and the layers inside it, each once; with
    ``recursive=False`` its direct sublayers only."""
    from nasplay.runtime._internals import tested_keras

    if tested_keras():
        return list(layer._flatten_layers(include_self=include_self, recursive=recursive))
    return public_flatten_layers(layer, include_self, recursive)


def public_flatten_layers(layer, include_self: bool = True, recursive: bool = True) -> list:
    """:func:`flatten_layers` through public attributes only (the fallback)."""
    found = [layer] if include_self else []
    seen = set()
    queue = collections.deque(_children(layer))
    while queue:
        current = queue.popleft()
        if id(current) in seen:
            continue
        seen.add(id(current))
        found.append(current)
        if recursive:
            queue.extendleft(_children(current))
    return found


def _children(layer) -> list:
    """A model's ``layers``; else the layers ``layer`` holds in its attributes, in the order they
    were set, leaving out the attributes every Keras layer has (Keras's own bookkeeping)."""
    import keras

    if isinstance(layer, keras.Model):
        return list(layer.layers)
    children, seen = [], {id(layer)}
    for name, value in vars(layer).items():
        if name not in _bookkeeping(keras.layers.Layer):
            _collect(value, children, seen)
    return children


def _collect(value, children: list, seen: set) -> None:
    import keras

    if isinstance(value, keras.layers.Layer):
        if id(value) not in seen:
            seen.add(id(value))
            children.append(value)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect(item, children, seen)
    elif isinstance(value, dict):
        for item in value.values():
            _collect(item, children, seen)


_BOOKKEEPING: dict[type, frozenset] = {}


def _bookkeeping(base) -> frozenset:
    """The attribute names of a bare ``base()`` instance (once per process)."""
    if base not in _BOOKKEEPING:
        _BOOKKEEPING[base] = frozenset(vars(base()))
    return _BOOKKEEPING[base]
