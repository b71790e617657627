"""Where a supernet training step's time goes: the step as trained (masked SGD), the same step with
a plain SGD update of every variable (no momentum, no masking), and the forward pass with the
loss alone (the gradients unused, so the traced function drops them).

    python benchmarks/supernet_step_split.py            # amoebanet, F=8, N=1, batch 64

Each variant is traced once (a few minutes each for ``amoebanet``) and stepped 15 times on one
random path; prints the trace time and the median step. Random images: the cost does not depend on
the pixels. Compare with ``python benchmarks/oneshot_benchmark.py step`` (the standalone network).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--space", default="amoebanet")
    parser.add_argument("--filters", type=int, default=8)
    parser.add_argument("--cells-per-stage", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=15)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    import keras

    from cells.supernet import SuperNet
    from nasplay.scorers.oneshot.supernet import OneShotConfig
    from nasplay.scorers.oneshot.engine_tf import MaskedSGD
    from nasplay.scorers.oneshot.engine_tf import compile_steps as _compile
    from search_space import get_space

    keras.utils.set_random_seed(0)
    space = get_space(args.space)
    supernet = SuperNet(space, num_classes=10, filters=args.filters,
                        cells_per_stage=args.cells_per_stage, input_shape=(32, 32, 3))
    n = args.batch_size
    x = np.random.default_rng(0).normal(size=(n, 32, 32, 3)).astype("float32")
    y = (np.arange(n) % 10).astype("int32")
    arch = supernet.encode(space.sample(np.random.default_rng(0)))

    class PlainSGD:  # every variable, one assign each: what the masked update adds is the rest
        def apply(self, grads, groups):
            for grad, variable in zip(grads, supernet.trainable_variables):
                if grad is not None:
                    variable.assign_sub(0.01 * grad)

    class ForwardOnly:  # nothing reads the gradients: the trace keeps the forward pass and loss
        def apply(self, grads, groups):
            pass

    defaults = OneShotConfig()  # the search's momentum and weight decay
    masked = MaskedSGD(supernet.trainable_variables, defaults.momentum, defaults.weight_decay)
    variants = [("step as trained (masked SGD)", masked),
                ("plain SGD update, no masking", PlainSGD()), ("forward + loss only", ForwardOnly())]
    print("| variant | trace (s) | median step (ms) |\n|---|---|---|")
    for name, optimizer in variants:
        start = time.perf_counter()
        step, _ = _compile(supernet, optimizer, n, n)
        step(x, y, arch)
        traced = time.perf_counter() - start
        times = []
        for _ in range(args.steps):
            start = time.perf_counter()
            step(x, y, arch)
            times.append(time.perf_counter() - start)
        print(f"| {name} | {traced:.0f} | {1000 * float(np.median(times)):.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
