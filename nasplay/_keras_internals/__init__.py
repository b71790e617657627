"""Every use nasplay makes of private Keras or TensorFlow internals, one module each.

Private names (``Optimizer._backend_update_step``, ``Layer._flatten_layers``, ``tf.raw_ops``) can
change in any Keras release without notice. So each use lives in one module here, is switched on
only for the Keras versions the test suite covers (:data:`TESTED_KERAS`, the range pinned in
pyproject.toml), and has a stock-Keras fallback for any other version:

- :mod:`.fused_sgd`: SGD with one fused TensorFlow op per variable; else ``keras.optimizers.SGD``
  (same arithmetic, a slower first step).
- :mod:`.fused_batch_norm`: TensorFlow's fused batch norm in training mode, for the proxy (and
  ``nasplay train``) and the one-shot engine's supernet, and in inference mode for the one-shot
  scorer's prediction; else Keras's own norms (same arithmetic, a slower step and trace).
- :mod:`.max_pool_grad`: max pools whose gradient oneDNN runs inside the supernet's switch
  branches (the one-shot engine on TensorFlow); else Keras's pools (a slower step).
- :mod:`.graph_options`: the supernet's training step without Grappler's memory scheduling
  (TensorFlow's private per-call function options); else TensorFlow's defaults (a slower step).
- :mod:`.layer_calls`: the sublayers of a composite layer and a hook on their ``call``, used by
  the multiply-add counter; else the counter reports no figure (``None``).

A new Keras release: run ``tests/test_flops.py`` and ``tests/test_proxy.py`` against it, then add
its (major, minor) here and widen the pin.
"""

from __future__ import annotations

# (major, minor) versions of Keras the test suite has run the internals against
TESTED_KERAS = ((3, 15),)


def keras_version() -> tuple[int, int]:
    """(major, minor) of the installed Keras, read from its metadata (Keras is not imported)."""
    from importlib.metadata import version

    major, minor = version("keras").split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


def tested_keras() -> bool:
    """Whether the installed Keras is one the internals were tested against."""
    try:
        return keras_version() in TESTED_KERAS
    except Exception:  # noqa: BLE001 - no metadata (a source checkout): take the stock path
        return False
