"""A quiet start: the frameworks' start-up chatter kept off the terminal unless ``--verbose``.

TensorFlow 2.21 prints its C++ start-up lines (``oneDNN custom operations are on``, ``Could not
find cuda drivers``, ``failed call to cuInit``) before absl logging is initialized, so
``TF_CPP_MIN_LOG_LEVEL`` cannot silence them (tensorflow/tensorflow#100442): they are written
straight to file descriptor 2. ``quiet_native_stderr`` points that descriptor at a temporary
file while Keras and the devices start, and replays what it caught if starting fails, so a real
error is never hidden. Ray's start-up warnings go through its Python logger (``ray.init``'s
``logging_level``), and the colour reset that Ray's bundled colorama writes at exit is dropped.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import tempfile

# Set by the CLI unless --verbose; inherited by the Ray workers a local search starts.
QUIET_ENV = "NASPLAY_QUIET"


def quiet() -> bool:
    """Whether this process (a CLI command or one of its Ray workers) starts quietly."""
    return os.environ.get(QUIET_ENV) == "1"


@contextlib.contextmanager
def quiet_native_stderr():
    """Hold what native code writes to stderr (fd 2) inside the block; replay it if the block
    fails with a bug (a user error is one line of its own, without the frameworks' noise)."""
    from nasplay.errors import is_user_error

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        except BaseException as error:
            os.dup2(saved, 2)
            if not is_user_error(error):
                caught.seek(0)
                sys.stderr.write(caught.read().decode("utf-8", "replace"))
                sys.stderr.flush()
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


@contextlib.contextmanager
def quieted():
    """``quiet_native_stderr`` when this process starts quietly, else nothing."""
    if not quiet():
        yield
        return
    with quiet_native_stderr():
        yield


# The packages whose import prints native start-up lines (TensorFlow, and Keras, which imports it).
NOISY_IMPORTS = ("tensorflow", "keras")


class _QuietLoader:
    """A module loader that runs the wrapped loader's ``exec_module`` under a quiet stderr."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        with quiet_native_stderr():
            self._loader.exec_module(module)

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _QuietImports:
    """A ``sys.meta_path`` finder: the first import of a noisy package, wherever it happens (a
    data decoder, a scorer's preflight, a searcher's model), runs under a quiet stderr."""

    def find_spec(self, name, path=None, target=None):
        if name not in NOISY_IMPORTS:
            return None
        import importlib.machinery

        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_imports() -> None:
    """Import TensorFlow and Keras quietly from now on in this process (once)."""
    if not any(isinstance(finder, _QuietImports) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietImports())


def find_devices() -> None:
    """Let the Keras backend look for its devices now (TensorFlow's ``cuInit`` message comes
    from here); listing devices does not initialize them, so GPU settings can still follow."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
    elif backend == "jax":
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # or JAX takes 75%
        import jax

        jax.devices()


def start_keras(configure=None) -> None:
    """Import Keras (and its backend) and run ``configure()`` (device setup, which is when
    TensorFlow looks for CUDA), quietly when ``quiet()``; a no-op once Keras is imported and
    nothing is left to configure."""
    if not quiet():
        import keras  # noqa: F401

        if configure is not None:
            configure()
        return
    with quiet_native_stderr():
        import keras  # noqa: F401,F811

        if configure is not None:
            configure()


def no_colour_reset_at_exit() -> None:
    """Ray's command-line logger initializes colorama, which registers an exit hook writing
    ``ESC[0m`` to the terminal after our last line; unregister it (colours stay as they are)."""
    module = sys.modules.get("colorama.initialise")
    if module is not None and hasattr(module, "reset_all"):
        atexit.unregister(module.reset_all)
