"""Which Keras backend trains the candidates: TensorFlow (the default), JAX or PyTorch.

Keras picks its backend once, when it is first imported, from ``KERAS_BACKEND``; a process that
has imported Keras cannot switch. So a backend is chosen before anything imports Keras:

- a command: ``nasplay train --backend jax`` (or ``KERAS_BACKEND=jax nasplay ...``);
- Python: ``nasplay.runtime.backends.select_backend("jax")`` first thing, before ``import keras``;
- a worker process (a Ray worker): start it with :func:`worker_env`'s variables
  (Ray: ``runtime_env={"env_vars": worker_env(...)}``), so they are set before its first import.

What each costs and measured: docs/ray.md, "Backends"; benchmarks/backend_benchmark.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

from nasplay.errors import UserError

BACKENDS = ("tensorflow", "jax", "torch")
DEFAULT_BACKEND = "tensorflow"
# the module each backend needs, and how to install it
_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
_INSTALL = {
    "tensorflow": "pip install 'tensorflow>=2.16,<2.22' (or 'tensorflow[and-cuda]' for NVIDIA GPUs)",
    "jax": "pip install 'jax[cpu]' (or 'jax[cuda12]' for NVIDIA GPUs)",
    "torch": "pip install torch",
}


def check_backend(name: str) -> str:
    """``name`` if it is a known backend whose package is installed, else a one-line UserError
    (an unknown name lists the known ones; a missing package names the pip command)."""
    if name not in BACKENDS:
        raise UserError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if importlib.util.find_spec(_MODULES[name]) is None:
        raise UserError(f"backend {name}: the {_MODULES[name]} package is not installed; "
                        f"{_INSTALL[name]}")
    return name


def active_backend() -> str:
    """The backend Keras uses (or will use when imported) in this process.

    Keras's own answer once it is imported; before that what Keras will read: ``KERAS_BACKEND``,
    else the ``backend`` of ``$KERAS_HOME/keras.json`` (default ``~/.keras``), else TensorFlow.
    """
    if "keras" in sys.modules:
        import keras

        return keras.backend.backend()
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    try:
        return json.loads((home / "keras.json").read_text()).get("backend", DEFAULT_BACKEND)
    except (OSError, ValueError, AttributeError):
        return DEFAULT_BACKEND


def select_backend(name: str) -> str:
    """Make ``name`` the backend of this process; call before anything imports Keras.

    Raises UserError for an unknown or uninstalled backend, and when Keras is already imported
    with another backend (it cannot switch: run in a fresh process with ``KERAS_BACKEND``).
    """
    check_backend(name)
    if "keras" in sys.modules:
        current = active_backend()
        if current != name:
            raise UserError(f"Keras is already running on the {current} backend in this "
                            f"process and cannot switch to {name}; start a new process with "
                            f"KERAS_BACKEND={name}")
    os.environ["KERAS_BACKEND"] = name
    return name


def worker_env(name: str, cpus: int | None = None, gpus: bool = False) -> dict[str, str]:
    """Environment variables for a process that will train on backend ``name`` with ``cpus``
    threads and, if ``gpus``, the GPUs it is given; set them before the process imports Keras.

    - ``KERAS_BACKEND``;
    - GPU memory on demand, so that several candidates can share one GPU: TensorFlow's
      ``TF_FORCE_GPU_ALLOW_GROWTH``, JAX's ``XLA_PYTHON_CLIENT_PREALLOCATE=false`` (JAX takes
      75% of a GPU's memory at start otherwise);
    - without ``gpus`` the GPUs are hidden (``CUDA_VISIBLE_DEVICES=""``, JAX's
      ``JAX_PLATFORMS=cpu``, ``KERAS_TORCH_DEVICE=cpu``): Ray no longer hides them from CPU-only
      trials;
    - thread pools of ``cpus`` threads (TensorFlow's and OpenMP's: PyTorch's CPU kernels; JAX's
      CPU runtime has no such setting and uses every core).
    """
    check_backend(name)
    env = {"KERAS_BACKEND": name, "TF_FORCE_GPU_ALLOW_GROWTH": "true",
           "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    if not gpus:
        env.update(CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu", KERAS_TORCH_DEVICE="cpu")
    if cpus is not None:
        threads = str(max(1, int(cpus)))
        env.update(TF_NUM_INTRAOP_THREADS=threads, TF_NUM_INTEROP_THREADS=str(min(int(threads), 2)),
                   OMP_NUM_THREADS=threads)
    return env
