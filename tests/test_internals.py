"""Private third-party APIs live only in ``nasplay/runtime/_internals/``, and each one's public
fallback gives what the private path gives.

The scan reads the source with ``ast`` (comments and docstrings are not code, so they may name
anything): it flags imports of a private module or name of a third-party library, attributes
starting with one underscore taken on a third-party module (``torch._foreach_add_``), the
private modules reached as attributes (``tf.raw_ops``, ``keras.src``), and the private names of
third-party objects in :data:`PRIVATE_NAMES` taken on any object, defined as methods (an
override) or passed to ``getattr``. The fallback tests force the public path (a version that is
not the tested one, or the private attribute removed) and compare it with the private one on a
tiny input.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("nasplay", "cells", "search_space", "searchers")
INTERNALS = REPO / "nasplay" / "runtime" / "_internals"
THIRD_PARTY = {"keras", "tensorflow", "torch", "ray", "jax", "keras_tuner", "numpy", "tensorboard",
               "matplotlib", "PIL"}
# private modules of those libraries that do not start with an underscore
PRIVATE_MODULES = {"keras.src", "tensorflow.python", "tensorflow.raw_ops", "tensorflow.core",
                   "jax.interpreters", "keras_tuner.src"}
# private names of third-party objects (maintained: add one when a private use moves into
# _internals, so it cannot come back elsewhere). Ray's Searcher's ``_metric``/``_mode`` are not
# here: they are the attributes Ray's searcher subclasses are documented to set.
PRIVATE_NAMES = {
    "_flatten_layers", "_layers", "_tracker", "_trainable_variables", "_backend_update_step",
    "_apply_weight_decay", "_use_weight_decay", "_get_variable_index", "_has_unresolved_values",
    "_unresolved_values", "_try_resolve", "_private", "_foreach_mul_", "_foreach_add_", "_C",
    "_process_trial_result", "_global_node",
}


def _private_part(dotted: str) -> bool:
    parts = dotted.split(".")
    if parts[0] not in THIRD_PARTY:
        return False
    return any(p.startswith("_") and not p.startswith("__") for p in parts[1:]) or any(
        dotted == m or dotted.startswith(m + ".") for m in PRIVATE_MODULES)


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local names bound to third-party modules: ``tf`` -> ``tensorflow``, ``ops`` ->
    ``keras.ops``."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    names[alias.name.split(".")[0]] = alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return {k: v for k, v in names.items() if v.split(".")[0] in THIRD_PARTY}


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """``tf.raw_ops.X`` as ``tensorflow.raw_ops.X`` when its root is a third-party module."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id in aliases:
        return ".".join([aliases[node.id], *reversed(parts)])
    return None


def private_accesses(source: str) -> list[str]:
    """``"line: what"`` for each private third-party access in ``source``."""
    tree = ast.parse(source)
    aliases = _aliases(tree)
    found = []
    for node in ast.walk(tree):
        what = None
        if isinstance(node, ast.Import):
            what = next((a.name for a in node.names if _private_part(a.name)), None)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            what = next((f"{node.module}.{a.name}" for a in node.names
                         if _private_part(f"{node.module}.{a.name}")), None)
        elif isinstance(node, ast.Attribute):
            dotted = _dotted(node, aliases)
            if node.attr in PRIVATE_NAMES or (dotted and _private_part(dotted)):
                what = dotted or f".{node.attr}"
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                and node.name in PRIVATE_NAMES:
            what = f"def {node.name}"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("getattr", "hasattr", "setattr", "delattr"):
            what = next((f"{node.func.id}(..., {a.value!r})" for a in node.args
                         if isinstance(a, ast.Constant) and a.value in PRIVATE_NAMES), None)
        if what:
            found.append(f"{node.lineno}: {what}")
    return found


def scanned_files() -> list[Path]:
    return [path for package in SCANNED for path in sorted((REPO / package).rglob("*.py"))
            if INTERNALS not in path.parents]


def test_private_third_party_apis_only_in_internals():
    found = [f"{path.relative_to(REPO)}:{hit}" for path in scanned_files()
             for hit in private_accesses(path.read_text())]
    assert found == [], "private third-party APIs outside nasplay/runtime/_internals: " \
                        + "; ".join(found)


@pytest.mark.parametrize("source", [
    "import tensorflow as tf\ntf.raw_ops.MaxPoolGrad(x)",
    "import torch\ntorch._foreach_add_(a, b)",
    "from torch import _C",
    "from ray._private.services import canonicalize_bootstrap_address",
    "import keras.src.layers",
    "from keras.src import backend",
    "from ray.tune.search.variant_generator import _has_unresolved_values",
    "from tensorflow.python.eager import context",
    "layers = model._flatten_layers()",
    "class S(Optimizer):\n    def _backend_update_step(self, g, v, lr):\n        pass",
    "getattr(layer, '_flatten_layers')()",
])
def test_the_scan_finds_private_accesses(source):
    assert private_accesses(source)


def test_the_scan_leaves_comments_docstrings_and_our_own_privates_alone():
    source = ('"""Uses ``tf.raw_ops`` and ``layer._flatten_layers``."""\n'
              "import tensorflow as tf\n"
              "# torch._foreach_add_ is private\n"
              "self._params = tf.nn.relu(x)\n"
              "from nasplay.runtime._internals.sublayers import flatten_layers\n")
    assert private_accesses(source) == []


# ----------------------------------------------------------------- the version gates


def test_the_installed_versions_are_the_tested_ones():
    from nasplay.runtime import _internals

    assert _internals.tested_keras() and _internals.tested_ray()
    assert not _internals.tested("no-such-distribution-nasplay", ((1, 0),))


def _untested_keras(monkeypatch):
    from nasplay.runtime import _internals

    monkeypatch.setattr(_internals, "TESTED_KERAS", ((2, 0),))
    assert not _internals.tested_keras()


def _untested_ray(monkeypatch):
    from nasplay.runtime import _internals

    monkeypatch.setattr(_internals, "TESTED_RAY", ((0, 1),))
    assert not _internals.tested_ray()


# ----------------------------------------------------------------- Keras: sublayers


def _composite():
    import keras
    from keras import layers

    class Inner(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.norm = layers.BatchNormalization()
            self.convs = [layers.Conv2D(2, 1), layers.Conv2D(2, 3)]

    class Outer(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.branches = {"a": Inner(), "b": (Inner(), layers.MaxPooling2D())}
            self.shared = layers.Dense(2)
            self.again = self.shared  # the same layer twice: listed once

    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.outer = Outer()
            self.head = layers.Dense(3)

    return Net()


@pytest.mark.parametrize("include_self, recursive", [(True, True), (False, True), (True, False),
                                                     (False, False)])
def test_sublayers_fallback_finds_the_same_layers(monkeypatch, include_self, recursive):
    from nasplay.runtime._internals.sublayers import flatten_layers

    net = _composite()
    private = flatten_layers(net, include_self, recursive)
    assert [id(x) for x in private] == [id(x) for x in net._flatten_layers(
        include_self=include_self, recursive=recursive)]
    _untested_keras(monkeypatch)
    public = flatten_layers(net, include_self, recursive)
    assert len(public) == len(private) and {id(x) for x in public} == {id(x) for x in private}
    for layer in net.outer.branches["a"], net.outer:
        assert {id(x) for x in flatten_layers(layer, include_self, recursive)} \
            == {id(x) for x in layer._flatten_layers(include_self=include_self,
                                                     recursive=recursive)}


# ----------------------------------------------------------------- TensorFlow: Nesterov update


def _nesterov_inputs():
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(0)
    variable = keras.Variable(rng.normal(size=(3, 4)).astype("float32"))
    slot = tf.Variable(rng.normal(size=(3, 4)).astype("float32"))
    grad = tf.constant(rng.normal(size=(3, 4)).astype("float32"))
    return variable, slot, grad


def test_tf_nesterov_fallback_equals_the_fused_op(monkeypatch):
    import tensorflow as tf

    from nasplay.runtime._internals import tf_internals

    def run():
        variable, slot, grad = _nesterov_inputs()
        for _ in range(3):
            tf_internals.nesterov_update(variable, slot, tf.constant(0.1), grad, tf.constant(0.9))
        return variable.numpy(), slot.numpy()

    assert tf_internals._fused_available(_nesterov_inputs()[0].value)
    fused = run()
    monkeypatch.delattr(tf.raw_ops, "ResourceApplyKerasMomentum")  # the op gone: public ops run
    assert not tf_internals._fused_available(_nesterov_inputs()[0].value)
    public = run()
    for a, b in zip(fused, public):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------- PyTorch: Nesterov update


@pytest.mark.parametrize("decay", [0.0, 0.01])
def test_torch_nesterov_fallback_equals_the_foreach_kernels(monkeypatch, decay):
    torch = pytest.importorskip("torch")
    from nasplay.runtime._internals import torch_internals

    def run():
        gen = torch.Generator().manual_seed(0)
        params = [torch.randn(3, 4, generator=gen), torch.randn(5, generator=gen)]
        slots = [torch.randn(p.shape, generator=gen) for p in params]
        grads = [torch.randn(p.shape, generator=gen) for p in params]
        for _ in range(3):
            torch_internals.nesterov_sgd_(params, slots, grads, 0.1, 0.9, decay)
        return params + slots

    foreach = run()
    monkeypatch.delattr(torch, "_foreach_mul_")  # the private kernel gone: the loop runs
    loop = run()
    for a, b in zip(foreach, loop):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


# ----------------------------------------------------------------- Ray


def _configs():
    from ray import tune

    return [{}, {"a": 1, "b": [1, 2], "c": {"d": "x"}}, {"a": tune.choice([1, 2])},
            {"a": {"b": [1, (2, tune.uniform(0, 1))]}}, {"a": {"grid_search": [1, 2]}},
            {"a": {"eval": "1 + 1"}}, {"a": {"grid_search": [1], "other": 2}},
            {"a": tune.grid_search([1, 2])}]


def test_ray_unresolved_values_fallback_gives_rays_answers(monkeypatch):
    from nasplay.runtime._internals import ray_internals

    private = [ray_internals.has_unresolved_values(c) for c in _configs()]
    _untested_ray(monkeypatch)
    public = [ray_internals.has_unresolved_values(c) for c in _configs()]
    assert public == private == [False, False, True, True, True, True, False, True]


ADDRESSES = ["localhost:6379", "127.0.0.1:1", "10.0.0.5:6379", "[::1]:6379", "example.com:80",
             "local", "nope", "::1:6379", ":80"]


def _canonical(address):
    from nasplay.runtime._internals import ray_internals

    try:
        return ray_internals.canonicalize_bootstrap_address(address)
    except ValueError:
        return ValueError


def test_ray_bootstrap_address_fallback_gives_rays_answers(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.7:6379")  # "auto" reads it; nothing is scanned
    private = [_canonical(a) for a in [*ADDRESSES, "auto"]]
    _untested_ray(monkeypatch)
    public = [_canonical(a) for a in [*ADDRESSES, "auto"]]
    assert public == private and private[-1] == "10.0.0.7:6379"


def test_ray_bootstrap_address_fallback_refuses_auto_without_ray_address(monkeypatch):
    from nasplay.runtime._internals import ray_internals

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    _untested_ray(monkeypatch)
    with pytest.raises(ConnectionError, match="HOST:PORT"):
        ray_internals.canonicalize_bootstrap_address("auto")
