"""The supernet's training step without Grappler's memory scheduling (the one-shot engine,
``nasplay.scorers.oneshot.engine_tf``, on TensorFlow).

Why: Grappler's memory optimizer estimates a traced function's peak memory statically. Counting
every branch of every switch as if it ran, it judges the supernet's step close to the machine's
memory and rewrites each gradient sum of more than two inputs (the ``AddN`` where the ~10
switches reading one hidden state meet) into a temporary variable accumulated one input at a
time (``TemporaryVariable``, ``Assign``, ``AssignAdd``), which saves memory a step that runs one
path does not need and costs time: profiled, ~54 ms of a ~307 ms step against ~23 ms as
``AddN``, and ~20 s of the first step's trace (BENCHMARKS.md, "A supernet step"). Grappler's
other passes are untouched.

The option travels with each call of a ``tf.function`` (a function is optimized once per set of
call options), so the step is wrapped: every call, from any thread, carries the same options.

Private parts used (hence this module): ``tensorflow.python.eager.context`` (the thread's
``function_call_options`` and ``FunctionCallOptions``).
"""

from __future__ import annotations

import contextlib


class WithoutMemoryScheduling:
    """``function`` (a ``tf.function``) called with Grappler's memory optimizer off; with a
    Keras not in :data:`nasplay.runtime._internals.TESTED_KERAS`, called as it is."""

    def __init__(self, function):
        from nasplay.runtime._internals import tested_keras

        self.function = function
        self._enabled = tested_keras()
        self._options = None  # made at the first call, from the context configured by then

    def __call__(self, *args, **kwargs):
        with self._active():
            return self.function(*args, **kwargs)

    def get_concrete_function(self, *args, **kwargs):
        with self._active():
            return self.function.get_concrete_function(*args, **kwargs)

    @contextlib.contextmanager
    def _active(self):
        if not self._enabled:
            yield
            return
        from tensorflow.python.eager import context

        if self._options is None:
            self._options = _call_options()
        ctx = context.context()
        saved = ctx.function_call_options
        ctx.function_call_options = self._options
        try:
            yield
        finally:
            ctx.function_call_options = saved


def _call_options():
    """This thread's function call options with the memory optimizer off."""
    from tensorflow.core.protobuf import config_pb2, rewriter_config_pb2
    from tensorflow.python.eager import context

    current = context.context().function_call_options
    config = config_pb2.ConfigProto()
    config.ParseFromString(current.config_proto_serialized)
    config.graph_options.rewrite_options.memory_optimization = \
        rewriter_config_pb2.RewriterConfig.NO_MEM_OPT
    return context.FunctionCallOptions(executor_type=current.executor_type, config_proto=config)
