"""A Keras callback that times a training run and watches its loss (used by
nasplay.scorers.proxy.training).

Kept apart from the proxy so that importing :mod:`nasplay.scorers.proxy.training` does not import
Keras (the CLI stays light, and the backend is chosen before Keras is imported).
"""

from __future__ import annotations

import math
import statistics
import time


def make_clock(steps_per_epoch: int, steps_per_execution: int):
    """A Keras callback that times the first graph call and each epoch and watches the loss.

    ``first_step_seconds``: ``fit``'s start to the end of its first graph call (tracing or
    compiling, and the first ``steps_per_execution`` steps); ``steady_epoch_seconds()``: an epoch
    once compiled; ``diverged``: (epoch, loss) once the loss is NaN or infinite (training stops).
    """
    import keras

    class Clock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.first_step_seconds = float("nan")
            self.epoch_seconds: list[float] = []
            self.first_epoch_tail = None  # (seconds, steps) of epoch 1 after its first call
            self.train_accuracy = float("nan")
            self.diverged = None          # (epoch, loss) once the loss is NaN or infinite

        def on_train_begin(self, logs=None):
            self._fit_start = time.perf_counter()

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch_start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            # called once per graph call (every steps_per_execution steps)
            now = time.perf_counter()
            if math.isnan(self.first_step_seconds):
                self.first_step_seconds = now - self._fit_start
                self._first_call_end = now
            self._check((logs or {}).get("loss"), len(self.epoch_seconds))

        def on_epoch_end(self, epoch, logs=None):
            now = time.perf_counter()
            self.epoch_seconds.append(now - self._epoch_start)
            if epoch == 0:
                self.first_epoch_tail = (now - self._first_call_end,
                                         steps_per_epoch - steps_per_execution)
            logs = logs or {}
            acc = logs.get("accuracy", logs.get("predictions_accuracy"))
            if acc is not None:
                self.train_accuracy = float(acc)
            self._check(logs.get("loss"), epoch)

        def _check(self, loss, epoch):
            if loss is not None and self.diverged is None and not math.isfinite(float(loss)):
                self.diverged = (epoch, float(loss))
                self.model.stop_training = True

        def steady_epoch_seconds(self) -> float:
            """Median of the epochs after the first; with one epoch, extrapolated from its tail."""
            if len(self.epoch_seconds) > 1:
                return statistics.median(self.epoch_seconds[1:])
            if self.first_epoch_tail and self.first_epoch_tail[1] > 0:
                seconds, steps = self.first_epoch_tail
                return seconds / steps * steps_per_epoch
            return float("nan")

    return Clock()
