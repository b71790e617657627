"""A zero-cost score: rank candidates without training (NASWOT, Mellor et al. 2021).

"Neural Architecture Search without Training" scores an untrained network by how differently it
treats the images of one batch: each image gets a binary code, which ReLU units it switches on,
and the score is ``log |det K|`` of the kernel ``K[i, j] = (number of units on which images i and
j agree)``. Networks that already separate the inputs score high, and the score correlates with
trained accuracy well enough to compare searchers in seconds instead of hours.

Which units give the codes (``ZeroCostConfig.codes``): ``"relus"`` is the paper's definition,
every ReLU layer of the network (the outputs of each ``keras.layers.ReLU``, read by a hook on its
call: ``nasplay.runtime._internals.layer_calls``). ``"outputs"`` is a cheaper simplification:
every op in a cell starts with a ReLU (ops are ReLU -> conv -> BN) and the head applies one to
the last cell, so the sign of the stem's output and of every cell's output *is* the activation
pattern of the ReLUs that read it. A functional model whose outputs are the stem and the cells
gives those tensors with one forward pass; ReLUs inside a cell (the second ReLU of a separable
convolution, the cell's input projections) are not included.

Determinism without global state: weights are drawn from ``numpy.random.default_rng(seed)``
rather than from Keras's global seed. The forward pass runs in training mode (batch statistics,
as the paper's PyTorch code in its default train mode), and since every convolution is followed
by batch norm the activation pattern does not depend on the weights' scale, so a standard normal
draw for every kernel is as good as a fan-in-scaled one.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from nasplay.errors import UserError, check_int

SCORE_NAME = "naswot"
CODES = ("outputs", "relus")
PROBES = ("data", "noise")


@dataclass(frozen=True)
class ZeroCostConfig:
    """How candidates are built and probed; small settings keep a score near a second on a CPU."""

    # images per probe batch (the kernel is this square). 128, not 32: on noise (no --data) the
    # stem/cell codes of 32 images ranked NAS-Bench-201's 200-cell sample at Spearman 0.23, of 128
    # at 0.59; amoebanet's 48 fidelity cells 0.268 -> 0.269 (BENCHMARKS.md, NAS-Bench-201)
    batch_size: int = 128
    filters: int = 8                           # width of the first stage of the probed network
    cells_per_stage: int = 1                   # normal cells per stage (2 reductions in addition)
    input_shape: tuple[int, int, int] = (32, 32, 3)   # image size of the probe batch
    num_classes: int = 10                      # classifier width (does not affect the score)
    seed: int = 0                              # weights and (without images) the probe batch
    codes: str = "outputs"                     # "outputs": stem and cells; "relus": every ReLU
    # what the scorer probes with: "data", the run's images where it names a source (else noise);
    # "noise", always noise. On NAS-Bench-201 noise ranks as well alone (0.59-0.62 against
    # 0.55-0.57 on two 200-cell samples) and far better beside the parameter count (a rank average:
    # 0.72-0.75, against 0.52-0.60 on real images), BENCHMARKS.md
    probe: str = "data"

    def __post_init__(self):
        for name in ("batch_size", "filters", "num_classes"):
            check_int(f"ZeroCostConfig.{name}", getattr(self, name), minimum=2)
        check_int("ZeroCostConfig.cells_per_stage", self.cells_per_stage, minimum=0)
        if self.codes not in CODES:
            raise UserError(f"ZeroCostConfig.codes must be one of {', '.join(CODES)}, "
                            f"got {self.codes!r}")
        if self.probe not in PROBES:
            raise UserError(f"ZeroCostConfig.probe must be one of {', '.join(PROBES)}, "
                            f"got {self.probe!r}")


def probe_batch(config: ZeroCostConfig, images=None) -> np.ndarray:
    """The batch the score is taken on: ``images`` standardized per channel (the first
    ``batch_size`` of them), or standard normal noise drawn from ``config.seed`` (without images,
    or with ``config.probe == "noise"``)."""
    if images is None or config.probe == "noise":
        rng = np.random.default_rng([config.seed, 1])
        return rng.standard_normal((config.batch_size, *config.input_shape)).astype("float32")
    images = np.asarray(images)[:config.batch_size].astype("float32")
    if images.ndim != 4 or len(images) < 2:
        raise ValueError(f"images must be a batch (N >= 2, H, W, C), got shape {images.shape}")
    mean = images.mean(axis=(0, 1, 2), keepdims=True)
    std = images.std(axis=(0, 1, 2), keepdims=True) + 1e-6
    return (images - mean) / std


def activation_model(network):
    """A model with ``network``'s input whose outputs are the stem's and every cell's output:
    the pre-activations of the ReLUs that read them (see the module docstring).

    In NAS-Bench-201's network (an ``nb201`` genotype) the residual reduction blocks' outputs
    are read the same way (by the next cells' ops), and the head's ReLU reads its batch norm
    (``head_bn``), not the last cell: those are probed too. A two-cell network has neither.
    """
    import keras
    from cells import Cell, EdgeCell, ResidualReduction

    outputs = [layer.output for layer in network.layers
               if isinstance(layer, (Cell, EdgeCell, ResidualReduction))
               or layer.name in ("stem_bn", "head_bn")]
    if not outputs:
        raise ValueError(f"network {network.name!r} has no stem_bn or Cell layers to probe")
    return keras.Model(network.inputs, outputs, name=f"{network.name}_activations")


def relu_codes(network, batch, training: bool = True) -> list[np.ndarray]:
    """The paper's codes: whether each unit of every ReLU layer of ``network`` is on, one row an
    image of ``batch``, one array a layer (one eager forward pass with a hook on each ReLU's
    call)."""
    import keras
    from nasplay.runtime._internals import layer_calls

    if not layer_calls.available():
        raise UserError(f"codes='relus' reads every ReLU through Keras internals not tested with "
                        f"Keras {keras.__version__}; use codes='outputs'")
    relus = [(path, layer) for path, layer in layer_calls.walk(network, network.name)
             if isinstance(layer, keras.layers.ReLU)]
    codes = []

    def record(path, layer, args, out):
        out = keras.ops.convert_to_numpy(out)
        codes.append(out.reshape(len(out), -1) > 0)

    with layer_calls.hooked_calls(relus, record):
        network(batch, training=training)
    if not codes:
        raise ValueError(f"network {network.name!r} has no ReLU layers to probe")
    return codes


def output_codes(network, batch, training: bool = True) -> list[np.ndarray]:
    """The simplification's codes: the signs of the stem's and every cell's output, one array a
    tensor."""
    import keras

    outputs = activation_model(network)([batch], training=training)
    return [keras.ops.convert_to_numpy(out).reshape(len(out), -1) > 0 for out in outputs]


def _reinitialize(model, rng: np.random.Generator) -> None:
    """Every kernel (weights of 2 or more dimensions) from a standard normal; the rest (batch-norm
    scales and shifts, biases) keep their constant initial values."""
    for weight in model.trainable_weights:
        if len(weight.shape) >= 2:
            weight.assign(rng.standard_normal(tuple(weight.shape)).astype("float32"))


def naswot_kernel(codes: np.ndarray) -> np.ndarray:
    """``K[i, j]`` = units on which rows ``i`` and ``j`` of the 0/1 code matrix agree.

    The paper's ``C C^T + (1 - C)(1 - C)^T``, counted exactly in integers: the codes packed 64
    units to a word, ``K[i, j] = units - popcount(code_i XOR code_j)``, one row at a time. About
    30x faster than a float32 product of +-1 signs (what this was before; the same numbers) on
    a 128 x 16,384 code matrix, which matters for the paper's 128-image batch on a wide network.
    """
    codes = np.asarray(codes) > 0
    rows, units = codes.shape
    if not hasattr(np, "bitwise_count"):  # numpy < 2: the +-1 product (exact below 2**24 units)
        dtype = np.float32 if units < 2 ** 24 else np.float64
        signs = np.where(codes, dtype(1), dtype(-1))
        return (signs @ signs.T + dtype(units)).astype(np.float64) / 2
    packed = np.packbits(codes, axis=1)
    packed = np.pad(packed, ((0, 0), (0, -packed.shape[1] % 8))).view(np.uint64)
    differ = np.empty((rows, rows), dtype=np.float64)
    for i in range(rows):
        differ[i] = np.bitwise_count(packed[i] ^ packed).sum(axis=1)
    return units - differ


def log_det(kernel: np.ndarray) -> float:
    """``log |det kernel|``; ``-inf`` when singular (two inputs with identical codes)."""
    sign, value = np.linalg.slogdet(kernel)
    return float(value) if sign != 0 else -math.inf


def evaluate(genotype, config: ZeroCostConfig = ZeroCostConfig(), images=None) -> dict:
    """Score ``genotype`` (a ``Genotype``, an ``EdgeGenotype`` or either's dict) without
    training; ``config.cells_per_stage`` is the probed network's N for either kind.

    Returns metrics in the run-record style: ``naswot`` (higher is better), ``params`` of the
    probed network, ``units`` (length of an activation code) and ``score_seconds``.
    """
    from cells import build_network

    start = time.perf_counter()
    network = build_network(genotype, num_classes=config.num_classes, filters=config.filters,
                            cells_per_stage=config.cells_per_stage, input_shape=config.input_shape)
    _reinitialize(network, np.random.default_rng([config.seed, 0]))
    read = relu_codes if config.codes == "relus" else output_codes
    chunks = read(network, probe_batch(config, images))
    # the kernel sums over units, so it adds up chunk by chunk (no wide concatenated copy)
    score = log_det(sum(naswot_kernel(codes) for codes in chunks))
    units = sum(codes.shape[1] for codes in chunks)
    return {SCORE_NAME: score, "params": int(network.count_params()), "units": int(units),
            "score_seconds": time.perf_counter() - start}


def naswot_score(genotype, config: ZeroCostConfig = ZeroCostConfig(), images=None) -> float:
    """The NASWOT score alone (see ``evaluate``)."""
    return evaluate(genotype, config, images)[SCORE_NAME]
