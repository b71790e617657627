"""Every use nasplay makes of private third-party APIs (Keras, TensorFlow, PyTorch, Ray), one
module each; the rest of the project calls these modules' functions and never a private name
(tests/test_internals.py scans the source for one).

Private names (``Optimizer._backend_update_step``, ``Layer._flatten_layers``, ``tf.raw_ops``,
``torch._foreach_*``, ``ray._private``) can change in any release without notice. So each use
lives in one module here, is switched on only for the versions the test suite covers
(:data:`TESTED_KERAS`, :data:`TESTED_RAY`: the ranges pinned in pyproject.toml) or where the
private name is there to call, and has a public-API fallback for anything else:

- :mod:`.fused_sgd`: SGD with one fused TensorFlow op per variable; else ``keras.optimizers.SGD``
  (same arithmetic, a slower first step).
- :mod:`.fused_batch_norm`: TensorFlow's fused batch norm in training mode, for the proxy (and
  ``nasplay train``) and the one-shot engine's supernet, and in inference mode for the one-shot
  scorer's prediction; else Keras's own norms (same arithmetic, a slower step and trace).
- :mod:`.max_pool_grad`: max pools whose gradient oneDNN runs inside the supernet's switch
  branches (the one-shot engine on TensorFlow); else Keras's pools (a slower step).
- :mod:`.graph_options`: the supernet's training step without Grappler's memory scheduling
  (TensorFlow's private per-call function options); else TensorFlow's defaults (a slower step).
- :mod:`.layer_calls`: a hook on the ``call`` of a composite layer's sublayers, used by the
  multiply-add counter; else the counter reports no figure (``None``).
- :mod:`.sublayers`: every layer inside a Keras layer (``Layer._flatten_layers``); else a walk of
  the layer's attributes (the same layers, in the same order, a little slower).
- :mod:`.tf_internals`: the one-shot engine's Nesterov update as one TensorFlow op on the
  variable's handle; else the same arithmetic in public ops (a few more ops a variable).
- :mod:`.torch_internals`: the PyTorch engine's Nesterov update as PyTorch's multi-tensor
  (``_foreach``) kernels; else a loop over the tensors (one small kernel per tensor and op).
- :mod:`.ray_internals`: Ray's resolution of ``--address`` and its test for search
  distributions in a config; else public-API equivalents.

A new Keras or Ray release: run ``tests/test_internals.py``, ``tests/test_flops.py`` and
``tests/test_proxy.py`` against it, then add its (major, minor) here and widen the pin.
"""

from __future__ import annotations

# (major, minor) versions the test suite has run the internals against
TESTED_KERAS = ((3, 15),)
TESTED_RAY = ((2, 60),)


def installed_version(distribution: str) -> tuple[int, int]:
    """(major, minor) of an installed distribution, read from its metadata (nothing imported)."""
    from importlib.metadata import version

    major, minor = version(distribution).split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


def tested(distribution: str, versions) -> bool:
    """Whether the installed ``distribution`` is one of ``versions`` (read at each call, so a
    test can change the tuple)."""
    try:
        return installed_version(distribution) in versions
    except Exception:  # noqa: BLE001 - no metadata (a source checkout): take the public path
        return False


def tested_keras() -> bool:
    """Whether the installed Keras is one the internals were tested against."""
    return tested("keras", TESTED_KERAS)


def tested_ray() -> bool:
    """Whether the installed Ray is one the internals were tested against."""
    return tested("ray", TESTED_RAY)
