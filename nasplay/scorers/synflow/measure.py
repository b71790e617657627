"""A data-free zero-cost score: synflow (Tanaka et al. 2020), as the zero-cost proxies of
Abdelfattah et al. 2021 ("Zero-Cost Proxies for Lightweight NAS") compute it.

The untrained network is *linearized*: every convolution and dense kernel (and bias) is replaced
by its absolute value, and every batch norm becomes the identity (inference mode with moving mean
0, moving variance ``1 - epsilon``, scale 1 and shift 0: the zero-cost-proxies code builds the
network without batch norm for synflow). On an all-ones image, ``R`` is the sum of the output
logits (before the softmax); the score is ``sum over parameters of |theta * dR/dtheta|`` (kernels
and biases of the convolutions and the classifier: the batch norms are the identity and carry no
parameters that count). With non-negative weights and input, every ReLU passes everything, so
``R`` sums, over every path from the input to the logits, the product of the weights along it:
a network with more, longer and wider paths scores higher. No images are read: the score is the
same whatever data the run names.

``R`` grows like the product of the layers' gains (~1e50 for NAS-Bench-201's N=5, C=16), past
float32's range: the network is built and run in float64 (Keras's dtype policy is set to
float64 while it is built and put back afterwards), and the reported ``synflow`` is the natural
logarithm of the sum (``-inf`` when it is 0: no path reaches the logits).

Weights are drawn from ``numpy.random.default_rng(seed)``: He-normal (standard deviation
``sqrt(2 / fan_in)``; ``init="normal"``: standard normal), so the score is deterministic without
global state. Gradients need the backend: TensorFlow (``tf.GradientTape``) only.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass

import numpy as np

from nasplay.errors import UserError, check_int

SCORE_NAME = "synflow"
INITS = ("he", "normal")
_NORM_WEIGHTS = ("gamma", "beta", "moving_mean", "moving_variance")


@dataclass(frozen=True)
class SynflowConfig:
    """The network synflow is taken on (its width and depth change the score's ranking)."""

    filters: int = 16                          # width of the first stage of the probed network
    cells_per_stage: int = 1                   # normal cells per stage (reductions in addition)
    input_shape: tuple[int, int, int] = (32, 32, 3)   # size of the all-ones image
    num_classes: int = 10                      # classifier width
    seed: int = 0                              # the weights (before their absolute value)
    init: str = "he"                           # "he": N(0, 2 / fan_in); "normal": N(0, 1)

    def __post_init__(self):
        for name in ("filters", "num_classes"):
            check_int(f"SynflowConfig.{name}", getattr(self, name), minimum=2)
        check_int("SynflowConfig.cells_per_stage", self.cells_per_stage, minimum=0)
        if self.init not in INITS:
            raise UserError(f"SynflowConfig.init must be one of {', '.join(INITS)}, "
                            f"got {self.init!r}")


@contextlib.contextmanager
def float64_layers():
    """Layers created inside the block compute in float64; the previous policy afterwards."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _is_norm(weight) -> bool:
    return weight.name in _NORM_WEIGHTS


def linearize(model, rng: np.random.Generator, init: str = "he") -> list:
    """Weights drawn from ``rng`` then made non-negative, batch norms the identity (see the
    module docstring); returns the weights that count (kernels and biases)."""
    counted = []
    for weight in model.weights:
        shape = tuple(weight.shape)
        if _is_norm(weight):
            epsilon = 0.0
            if weight.name == "moving_variance":
                from cells.ops import BN_EPSILON

                epsilon = BN_EPSILON
            fill = {"gamma": 1.0, "beta": 0.0, "moving_mean": 0.0,
                    "moving_variance": 1.0 - epsilon}[weight.name]
            weight.assign(np.full(shape, fill))
            continue
        if len(shape) >= 2:
            fan_in = int(np.prod(shape[:-1]))
            scale = math.sqrt(2.0 / fan_in) if init == "he" else 1.0
            weight.assign(np.abs(rng.standard_normal(shape)) * scale)
        else:
            weight.assign(np.abs(keras_value(weight)))
        counted.append(weight)
    return counted


def keras_value(weight) -> np.ndarray:
    import keras

    return keras.ops.convert_to_numpy(weight)


def logits_model(network):
    """``network``'s logits (the classifier's dense layer, before the float32 softmax)."""
    import keras

    dense = network.get_layer("predictions_logits")
    return keras.Model(network.inputs, dense.output, name=f"{network.name}_logits")


def synflow_sum(model, weights, input_shape) -> float:
    """``sum |theta * dR/dtheta|`` over ``weights``, ``R`` the sum of ``model``'s outputs on an
    all-ones image (TensorFlow's gradient tape; float64 if the model computes in it)."""
    import keras

    if keras.backend.backend() != "tensorflow":
        raise UserError(f"synflow needs the TensorFlow backend (gradients), not "
                        f"{keras.backend.backend()!r}")
    import tensorflow as tf

    ones = tf.ones((1, *input_shape), dtype=model.compute_dtype)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(tf.cast(model(ones, training=False), tf.float64))
    grads = tape.gradient(total, [w.value for w in weights])
    return float(sum(np.abs(keras_value(w).astype(np.float64) * g.numpy()).sum()
                     for w, g in zip(weights, grads) if g is not None))


def evaluate(genotype, config: SynflowConfig = SynflowConfig(), images=None) -> dict:
    """Score ``genotype`` (any space's genotype or its dict). ``images`` is accepted and ignored
    (synflow reads none). Returns ``synflow`` (log of the sum; higher is better), ``params`` of
    the probed network and ``score_seconds``."""
    from cells import build_network

    start = time.perf_counter()
    with float64_layers():
        network = build_network(genotype, num_classes=config.num_classes, filters=config.filters,
                                cells_per_stage=config.cells_per_stage,
                                input_shape=config.input_shape)
    weights = linearize(network, np.random.default_rng([config.seed, 2]), config.init)
    total = synflow_sum(logits_model(network), weights, config.input_shape)
    score = math.log(total) if total > 0 else -math.inf
    return {SCORE_NAME: score, "params": int(network.count_params()),
            "score_seconds": time.perf_counter() - start}


def synflow_score(genotype, config: SynflowConfig = SynflowConfig()) -> float:
    """The synflow score alone (see ``evaluate``)."""
    return evaluate(genotype, config)[SCORE_NAME]
