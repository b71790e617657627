"""The supernet's training step with the masked update's conditionals lowered (TensorFlow's
default, the product) against kept functional, paired: both traced in one process, then stepped
alternately on the same random paths (the order flipped every round).

Functional If ops run only the taken branch's function, where lowered Switch/Merge ops pass dead
tensors through every node of the untaken side; the forward switches stay lowered in both (all
functional: ``oneshot_benchmark.py step --functional-conditionals``).

    python benchmarks/supernet_update_ab.py --pairs 30

Prints each variant's first-step (trace) seconds, median step and the median of the per-path
ratios; appends a JSON line to benchmarks/results/oneshot_step.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED_CIFAR = str(REPO.parent / "shared" / "datasets" / "cifar10-jpeg")


def _functional_update_sgd():
    """MaskedSGD whose update conditionals are traced as functional If ops (a private switch
    of TensorFlow's, read when a conditional is traced, set around ``apply`` only)."""
    from tensorflow.python.ops import control_flow_util_v2

    from nasplay.oneshot_tf import MaskedSGD

    class FunctionalUpdateSGD(MaskedSGD):
        def apply(self, grads, groups):
            control_flow_util_v2._DISABLE_LOWER_USING_SWITCH_MERGE = True
            try:
                return super().apply(grads, groups)
            finally:
                control_flow_util_v2._DISABLE_LOWER_USING_SWITCH_MERGE = False

    return FunctionalUpdateSGD


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=30)
    parser.add_argument("--space", default="amoebanet")
    parser.add_argument("--data", default=SHARED_CIFAR)
    parser.add_argument("--out", type=Path,
                        default=REPO / "benchmarks" / "results" / "oneshot_step.jsonl")
    args = parser.parse_args(argv)

    import keras
    import numpy as np

    from cells.supernet import SuperNet
    from nasplay import devices, proxy
    from nasplay.oneshot import OneShotConfig
    from nasplay.oneshot_tf import MaskedSGD, compile_steps
    from nasplay.pipeline import normalize
    from search_space import get_space

    config = OneShotConfig(data=args.data)  # the search's sizes, momentum and weight decay
    devices.configure(os.cpu_count())
    sets = proxy.subsets(proxy.ProxyConfig(data=args.data, train_size=2000, val_size=200))
    x = normalize(sets.x_train[:config.batch_size])
    y = sets.y_train[:config.batch_size].astype(np.int32)
    space = get_space(args.space)
    steps, facts = {}, {}
    for name, sgd in (("lowered", MaskedSGD), ("functional", _functional_update_sgd())):
        keras.utils.set_random_seed(0)
        net = SuperNet(space, num_classes=len(sets.classes), filters=config.filters,
                       cells_per_stage=config.cells_per_stage, input_shape=x.shape[1:])
        optimizer = sgd(net.trainable_variables, config.momentum, config.weight_decay)
        step, _ = compile_steps(net, optimizer, config.batch_size, config.batch_size)
        start = time.perf_counter()
        step(x, y, net.encode(space.sample(np.random.default_rng(0))))
        facts[name] = {"first_step_s": time.perf_counter() - start}
        steps[name] = (net, step)
        print(f"{name} update: first step {facts[name]['first_step_s']:.0f} s", flush=True)
    rng = np.random.default_rng(5)
    times = {name: [] for name in steps}
    for r in range(args.pairs):
        genotype = space.sample(rng)
        for name in (("lowered", "functional") if r % 2 == 0 else ("functional", "lowered")):
            net, step = steps[name]
            arch = net.encode(genotype)
            step(x, y, arch)  # the path once untimed
            start = time.perf_counter()
            step(x, y, arch)
            times[name].append(time.perf_counter() - start)
    lowered, functional = np.asarray(times["lowered"]), np.asarray(times["functional"])
    row = {"summary": "update_ab", "space": args.space, "pairs": args.pairs,
           "lowered": {**facts["lowered"], "median_step_ms": 1e3 * float(np.median(lowered))},
           "functional": {**facts["functional"],
                          "median_step_ms": 1e3 * float(np.median(functional))},
           "median_paired_ratio": float(np.median(functional / lowered)),
           "loadavg": os.getloadavg()[0]}
    with open(args.out, "a") as f:
        f.write(json.dumps(row) + "\n")
    print(f"median step: lowered update {row['lowered']['median_step_ms']:.0f} ms, functional "
          f"{row['functional']['median_step_ms']:.0f} ms; median of paired ratios "
          f"{row['median_paired_ratio']:.3f} over {args.pairs} paths")
    return 0


if __name__ == "__main__":
    sys.exit(main())
