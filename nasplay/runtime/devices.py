"""Device setup for one evaluation on the active Keras backend: GPUs, mixed precision, XLA,
CPU threads.

Call :func:`configure` first thing in a process (or a Ray Tune trial) that evaluates candidates,
before anything creates a tensor: TensorFlow fixes its thread pools and claims GPU memory the
first time it initializes its runtime, JAX reads its platform and memory settings when it first
looks for devices, and neither can be changed afterwards. In a trial this means
``configure(...)`` is the first statement of the trainable, ahead of data loading and model
building (the backend itself is chosen even earlier: ``nasplay.runtime.backends``). Calling it again
with the same settings is harmless (a reused Ray actor does); asking for different thread counts
once TensorFlow is running only warns.

Between candidates in one process call :func:`reset`: ``keras.backend.clear_session()`` frees the
previous graph and layer names, but it also resets the global dtype policy, so mixed precision
must be set again after it.

Per backend:

- XLA (``jit_compile``): TensorFlow on GPUs only (on the 2-core development machine XLA trains
  a small cell network 4x slower than plain TensorFlow; docs/architecture.md, "Facts"); JAX
  always (it has no other mode worth training in); PyTorch never (``torch.compile`` costs more
  than a short proxy training saves).
- Mixed precision: only with a GPU; bfloat16 on GPUs of compute capability 8.0 and newer
  (A100, H100: no loss scaling needed), float16 with loss scaling on older ones. Asking for it
  without a GPU is an error: the CPU emulates both, slower than float32.
- Threads: TensorFlow's pools and PyTorch's get ``cpus``; JAX's CPU runtime has no such setting.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass

from nasplay.errors import UserError
from nasplay.runtime.backends import active_backend, check_backend

log = logging.getLogger(__name__)

BFLOAT16_CAPABILITY = (8, 0)  # NVIDIA Ampere and newer compute bfloat16 natively


@dataclass(frozen=True)
class DeviceSettings:
    """What :func:`configure` decided; training code reads ``jit_compile`` from here."""

    cpus: int | None        # intra-op threads (None: the backend's default, all cores)
    inter_op_threads: int | None  # inter-op threads (None: the backend's default)
    gpus: int               # GPUs the backend will use (0: CPU only; others are hidden)
    mixed_precision: bool   # a mixed dtype policy (float16 or bfloat16 compute, float32 weights)
    jit_compile: bool       # for model.compile(jit_compile=...)
    backend: str = "tensorflow"
    dtype_policy: str = "float32"  # float32, mixed_float16 or mixed_bfloat16

    def to_dict(self) -> dict:
        return asdict(self)


# The last settings configure() applied; reset() re-applies the dtype policy from it.
_current: DeviceSettings | None = None


def configure(cpus: int | float | None = None, gpus: bool = False,
              mixed_precision: bool | None = None) -> DeviceSettings:
    """Set up the active Keras backend for one evaluation and return what was decided.

    ``cpus``: the CPUs this evaluation was given (a Ray trial's ``num_cpus``); the intra-op pool
    gets that many threads and the inter-op pool ``min(cpus, 2)``, so parallel trials on one
    machine do not each spawn a thread per core. ``None`` keeps the backend's defaults.
    ``gpus``: use the visible GPUs (memory on demand, so several trials can share one); with
    ``False`` GPUs are hidden, since Ray no longer hides them from CPU-only trials.
    ``mixed_precision``: ``None`` means "on if a GPU is used"; ``True`` without a GPU raises
    ``UserError``.
    """
    global _current
    backend = check_backend(active_backend())
    if cpus is not None:
        if isinstance(cpus, bool) or not isinstance(cpus, (int, float)) or not cpus > 0:
            raise ValueError(f"cpus must be a positive number or None, got {cpus!r}")
        cpus = max(1, int(cpus))  # a fractional Ray CPU share still needs one thread
    inter_op = None if cpus is None else min(cpus, 2)
    setup = {"tensorflow": _setup_tensorflow, "jax": _setup_jax, "torch": _setup_torch}[backend]
    used_gpus, capability = setup(cpus, inter_op, gpus)
    if gpus and not used_gpus:
        log.warning("gpus=True but %s sees no GPU; training on the CPU", backend)
    policy = _dtype_policy(mixed_precision, used_gpus, capability)
    jit = {"tensorflow": used_gpus > 0, "jax": True, "torch": False}[backend]
    _current = DeviceSettings(cpus=cpus, inter_op_threads=inter_op, gpus=used_gpus,
                              mixed_precision=policy != "float32", jit_compile=jit,
                              backend=backend, dtype_policy=policy)
    _apply_dtype_policy(_current)
    return _current


def _dtype_policy(mixed_precision: bool | None, used_gpus: int, capability) -> str:
    if mixed_precision is None:
        mixed_precision = used_gpus > 0
    if not mixed_precision:
        return "float32"
    if used_gpus == 0:
        raise UserError("mixed precision needs a GPU and none is used here (the CPU emulates "
                        "float16 and bfloat16, slower than float32); leave mixed_precision "
                        "unset or set it false")
    new = capability is not None and tuple(capability) >= BFLOAT16_CAPABILITY
    return "mixed_bfloat16" if new else "mixed_float16"


def visible_gpus() -> int:
    """How many GPUs the active backend can see (0 where it has none or none is visible).

    Under TensorFlow this lists its physical devices, which does not start its runtime, so
    :func:`configure` may still follow."""
    backend = check_backend(active_backend())
    if backend == "tensorflow":
        import tensorflow as tf

        return len(tf.config.list_physical_devices("GPU"))
    if backend == "torch":
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # before JAX starts
    import jax

    try:
        return len(jax.devices("gpu"))
    except RuntimeError:  # no GPU platform
        return 0


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


# --------------------------------------------------------------------------------- TensorFlow


def _setup_tensorflow(cpus, inter_op, gpus) -> tuple[int, tuple | None]:
    import tensorflow as tf

    if cpus is not None:
        _set_tf_threads(tf, cpus, inter_op)
    gpu_devices = tf.config.list_physical_devices("GPU")
    if gpus and gpu_devices:
        for gpu in gpu_devices:
            _set_memory_growth(tf, gpu)
    elif gpu_devices:
        _hide_gpus(tf)
    if not (gpus and gpu_devices):
        return 0, None
    details = tf.config.experimental.get_device_details(gpu_devices[0])
    return len(gpu_devices), details.get("compute_capability")


def _set_tf_threads(tf, intra: int, inter: int) -> None:
    threading = tf.config.threading
    if (threading.get_intra_op_parallelism_threads() == intra
            and threading.get_inter_op_parallelism_threads() == inter):
        return
    try:
        threading.set_intra_op_parallelism_threads(intra)
        threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError:
        # TensorFlow is already running: its pools keep their size for this process.
        log.warning("TensorFlow was initialized before nasplay.runtime.devices.configure(cpus=%d); "
                    "thread counts stay as they were. Call configure() first in the process.",
                    intra)


def _set_memory_growth(tf, gpu) -> None:
    try:
        if not tf.config.experimental.get_memory_growth(gpu):
            tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:
        log.warning("TensorFlow touched %s before nasplay.runtime.devices.configure(); it may "
                    "already hold most of that GPU's memory", gpu.name)


def _hide_gpus(tf) -> None:
    try:
        tf.config.set_visible_devices([], "GPU")
    except RuntimeError:
        log.warning("TensorFlow was initialized before "
                    "nasplay.runtime.devices.configure(gpus=False); GPUs stay visible to this process")


# -------------------------------------------------------------------------------- JAX, torch


def _setup_jax(cpus, inter_op, gpus) -> tuple[int, tuple | None]:
    """Platform and memory settings take effect only before JAX first looks for devices
    (``nasplay.runtime.backends.worker_env`` sets them in the environment, which is never too
    late)."""
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    import jax

    if not gpus:
        jax.config.update("jax_platforms", "cpu")
        if jax.default_backend() != "cpu":
            log.warning("JAX was initialized before nasplay.runtime.devices.configure(gpus=False); "
                        "it keeps using its %s", jax.default_backend())
        return 0, None
    devices = [d for d in jax.devices() if d.platform == "gpu"]
    if not devices:
        return 0, None
    capability = getattr(devices[0], "compute_capability", None)
    return len(devices), _version_tuple(capability)


def _setup_torch(cpus, inter_op, gpus) -> tuple[int, tuple | None]:
    import torch

    if cpus is not None:
        torch.set_num_threads(cpus)
        try:
            torch.set_num_interop_threads(inter_op)
        except RuntimeError:  # only allowed once, before any parallel work
            pass
    if not gpus:
        os.environ.setdefault("KERAS_TORCH_DEVICE", "cpu")  # read when Keras is imported
        return 0, None
    if not torch.cuda.is_available():
        return 0, None
    return torch.cuda.device_count(), tuple(torch.cuda.get_device_capability(0))


def _version_tuple(text) -> tuple | None:
    try:
        return tuple(int(part) for part in str(text).split(".")[:2])
    except ValueError:
        return None
