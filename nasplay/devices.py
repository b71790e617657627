"""TensorFlow device setup for one evaluation: GPUs, mixed precision, XLA, CPU threads.

Call :func:`configure` first thing in a process (or a Ray Tune trial) that evaluates candidates,
before anything creates a tensor: TensorFlow fixes its thread pools and claims GPU memory the
first time it initializes its runtime, and neither can be changed afterwards. In a trial this
means ``configure(...)`` is the first statement of the trainable, ahead of data loading and
model building. Calling it again with the same settings is harmless (a reused Ray actor does);
asking for different thread counts once TensorFlow is running only warns.

Between candidates in one process call :func:`reset`: ``keras.backend.clear_session()`` frees the
previous graph and layer names, but it also resets the global dtype policy, so mixed precision
must be set again after it.

Measured on the 2-core development machine (DESIGN.md): XLA (``jit_compile=True``) trains a small
cell network 4x slower than plain TensorFlow on the CPU, so XLA is only turned on for GPUs.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceSettings:
    """What :func:`configure` decided; training code reads ``jit_compile`` from here."""

    cpus: int | None        # TF intra-op threads (None: TensorFlow's default, all cores)
    inter_op_threads: int | None  # TF inter-op threads (None: TensorFlow's default)
    gpus: int               # GPUs TensorFlow will use (0: CPU only; others are hidden)
    mixed_precision: bool   # 'mixed_float16' policy (float16 compute, float32 variables)
    jit_compile: bool       # XLA for model.compile(jit_compile=...): GPUs only

    @property
    def dtype_policy(self) -> str:
        return "mixed_float16" if self.mixed_precision else "float32"

    def to_dict(self) -> dict:
        return {**asdict(self), "dtype_policy": self.dtype_policy}


# The last settings configure() applied; reset() re-applies the dtype policy from it.
_current: DeviceSettings | None = None


def configure(cpus: int | float | None = None, gpus: bool = False,
              mixed_precision: bool | None = None) -> DeviceSettings:
    """Set up TensorFlow for one evaluation and return what was decided.

    ``cpus``: the CPUs this evaluation was given (a Ray trial's ``num_cpus``); TensorFlow's
    intra-op pool gets that many threads and the inter-op pool ``min(cpus, 2)``, so parallel
    trials on one machine do not each spawn a thread per core. ``None`` keeps TF's defaults.
    ``gpus``: use the visible GPUs (each gets memory growth, so several trials can share one);
    with ``False`` GPUs are hidden from TensorFlow, since Ray no longer hides them from
    CPU-only trials. ``mixed_precision``: ``None`` means "on if a GPU is used"; it is never used
    on the CPU, where float16 is emulated and slow.
    """
    global _current
    import tensorflow as tf

    if cpus is not None:
        if isinstance(cpus, bool) or not isinstance(cpus, (int, float)) or not cpus > 0:
            raise ValueError(f"cpus must be a positive number or None, got {cpus!r}")
        cpus = max(1, int(cpus))  # a fractional Ray CPU share still needs one thread
    inter_op = None if cpus is None else min(cpus, 2)
    if cpus is not None:
        _set_threads(tf, cpus, inter_op)

    gpu_devices = tf.config.list_physical_devices("GPU")
    if gpus and gpu_devices:
        for gpu in gpu_devices:
            _set_memory_growth(tf, gpu)
    elif gpu_devices:
        _hide_gpus(tf)
    used_gpus = len(gpu_devices) if gpus else 0
    if gpus and not gpu_devices:
        log.warning("gpus=True but TensorFlow sees no GPU; training on the CPU")

    if mixed_precision is None:
        mixed_precision = used_gpus > 0
    elif mixed_precision and used_gpus == 0:
        log.warning("mixed precision asked for without a GPU; keeping float32 on the CPU")
        mixed_precision = False

    _current = DeviceSettings(cpus=cpus, inter_op_threads=inter_op, gpus=used_gpus,
                              mixed_precision=bool(mixed_precision), jit_compile=used_gpus > 0)
    _apply_dtype_policy(_current)
    return _current


def current() -> DeviceSettings | None:
    """The settings of the last :func:`configure` call in this process, if any."""
    return _current


def reset() -> None:
    """Free the previous candidate's graph (``clear_session``) and set the dtype policy again."""
    import keras

    keras.backend.clear_session()
    if _current is not None:
        _apply_dtype_policy(_current)


def _apply_dtype_policy(settings: DeviceSettings) -> None:
    import keras

    keras.mixed_precision.set_dtype_policy(settings.dtype_policy)


def _set_threads(tf, intra: int, inter: int) -> None:
    threading = tf.config.threading
    if (threading.get_intra_op_parallelism_threads() == intra
            and threading.get_inter_op_parallelism_threads() == inter):
        return
    try:
        threading.set_intra_op_parallelism_threads(intra)
        threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError:
        # TensorFlow is already running: its pools keep their size for this process.
        log.warning("TensorFlow was initialized before nasplay.devices.configure(cpus=%d); "
                    "thread counts stay as they were. Call configure() first in the process.",
                    intra)


def _set_memory_growth(tf, gpu) -> None:
    try:
        if not tf.config.experimental.get_memory_growth(gpu):
            tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:
        log.warning("TensorFlow touched %s before nasplay.devices.configure(); it may already "
                    "hold most of that GPU's memory", gpu.name)


def _hide_gpus(tf) -> None:
    try:
        tf.config.set_visible_devices([], "GPU")
    except RuntimeError:
        log.warning("TensorFlow was initialized before nasplay.devices.configure(gpus=False); "
                    "GPUs stay visible to this process")
