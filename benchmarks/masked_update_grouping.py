"""Would fewer, larger conditionals make the supernet's masked update cheaper?

The supernet's training step (nasplay.scorers.oneshot.engine_tf.MaskedSGD) updates each op's
variables behind one ``tf.cond`` per op instance (~400 for ``amoebanet`` at N=1), which cost ~37 ms
of a ~272 ms step (BENCHMARKS.md, "A supernet step"). This micro-benchmark updates the same kind of
variables (50 branches x 8 ops x 6 variables, the shapes of a separable convolution at F=8) five
ways, one op per branch chosen at random, and prints the median time of a call:

- ``conds``: one ``tf.cond`` per op (what MaskedSGD does);
- ``cases``: one ``tf.switch_case`` per branch over its 8 ops, plus a do-nothing branch;
- ``functional_conds``, ``functional_cases``: the same two kept as functional If/Case ops
  (not lowered to Switch/Merge), so an untaken branch's function is not run at all;
- ``update_all``: every variable updated, no conditionals (the floor: what the conditionals skip
  is not free either).

The 2,400 gradients are the traced function's arguments, which alone cost ~25 ms a call here:
compare the ways by their differences. The real step, both ways: benchmarks/supernet_update_ab.py.

    python -m benchmarks.masked_update_grouping
"""

import argparse
import contextlib
import os
import time

from benchmarks.common import add_smoke

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

BRANCHES, OPS = 50, 8
SHAPES = [(3, 3, 8, 1), (1, 1, 8, 8), (8,), (8,), (3, 3, 8, 1), (1, 1, 8, 8)]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--branches", type=int, default=BRANCHES)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of 10 calls each")
    add_smoke(parser, branches=3, rounds=1)
    args = parser.parse_args(argv)
    branches = args.branches
    import numpy as np
    import tensorflow as tf  # imported here: importing the module runs nothing heavy

    tf.config.threading.set_intra_op_parallelism_threads(os.cpu_count())
    variables = [[[tf.Variable(tf.random.normal(s)) for s in SHAPES] for _ in range(OPS)]
                 for _ in range(branches)]
    slots = [[[tf.Variable(tf.zeros(s)) for s in SHAPES] for _ in range(OPS)]
             for _ in range(branches)]
    lr = tf.Variable(0.01)

    def update(vs, ss, gs):
        for v, s, g in zip(vs, ss, gs):
            v.assign_sub(v * (lr * 3e-4))
            tf.raw_ops.ResourceApplyKerasMomentum(var=v.handle, accum=s.handle, lr=lr, grad=g,
                                                  momentum=0.9, use_nesterov=True)
        return tf.constant(0)

    def per_op(grads):
        k = 0
        for b in range(branches):
            for j in range(OPS):
                yield b, j, grads[k:k + len(SHAPES)]
                k += len(SHAPES)

    @tf.function
    def conds(grads, choice):
        for b, j, gs in per_op(grads):
            tf.cond(tf.equal(choice[b], j),
                    lambda b=b, j=j, gs=gs: update(variables[b][j], slots[b][j], gs),
                    lambda: tf.constant(0))
        return tf.constant(0)

    @tf.function
    def cases(grads, choice):
        fns = {b: [] for b in range(branches)}
        for b, j, gs in per_op(grads):
            fns[b].append(lambda b=b, j=j, gs=gs: update(variables[b][j], slots[b][j], gs))
        for b in range(branches):
            tf.switch_case(choice[b], fns[b] + [lambda: tf.constant(0)])
        return tf.constant(0)

    @contextlib.contextmanager
    def functional():
        """Conditionals built here stay functional If/Case ops: only the taken branch's
        function runs (TensorFlow lowers them to Switch/Merge by default)."""
        from tensorflow.python.ops import control_flow_util_v2

        control_flow_util_v2._DISABLE_LOWER_USING_SWITCH_MERGE = True
        try:
            yield
        finally:
            control_flow_util_v2._DISABLE_LOWER_USING_SWITCH_MERGE = False

    @tf.function
    def functional_conds(grads, choice):
        with functional():
            return conds.python_function(grads, choice)

    @tf.function
    def functional_cases(grads, choice):
        with functional():
            return cases.python_function(grads, choice)

    @tf.function
    def update_all(grads, choice):
        for b, j, gs in per_op(grads):
            update(variables[b][j], slots[b][j], gs)
        return tf.constant(0)

    grads = [tf.random.normal(s) for _ in range(branches * OPS) for s in SHAPES]
    choice = tf.constant(np.random.default_rng(0).integers(0, OPS, branches), tf.int32)
    ways = [conds, cases, functional_conds, functional_cases, update_all]
    for way in ways:
        way(grads, choice)  # trace
    times = {way.__name__: [] for way in ways}
    for _ in range(args.rounds):  # interleaved rounds, so load changes hit every way alike
        for way in ways:
            calls = []
            for _ in range(10):
                start = time.perf_counter()
                way(grads, choice).numpy()
                calls.append(time.perf_counter() - start)
            times[way.__name__].append(np.median(calls))
    print(f"| way | median call (ms), {branches * OPS * len(SHAPES)} variables |")
    print("|---|---|")
    for name, values in times.items():
        print(f"| {name} | {np.median(values) * 1e3:.1f} |")


if __name__ == "__main__":
    main()
