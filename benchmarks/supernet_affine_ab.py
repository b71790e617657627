"""The supernet's training step with affine candidate-op batch norms against affine-free ones,
paired: both supernets traced in one process, then stepped alternately on the same random paths
(the order flipped every round), so a drift of the machine's speed falls on both alike.

    python -m benchmarks.supernet_affine_ab --pairs 40

Prints each supernet's trainable variables, first-step (trace) seconds and median step, and the
median of the per-path ratios; appends a JSON line to benchmarks/results/oneshot_step.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from benchmarks.common import REPO, SHARED_CIFAR, add_smoke


def parse(argv, doc: str, pairs: int):
    """The arguments both A/B scripts take (the other: supernet_update_ab.py)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=pairs)
    parser.add_argument("--space", default="amoebanet")
    parser.add_argument("--data", default=SHARED_CIFAR)
    parser.add_argument("--out", type=Path,
                        default=REPO / "benchmarks" / "results" / "oneshot_step.jsonl")
    add_smoke(parser, pairs=1)  # and a tiny supernet (setup)
    return parser.parse_args(argv)


def setup(args):
    """(config, x, y, space, classes): the search's sizes, one training batch, the space, the
    data's class count."""
    import numpy as np

    from nasplay.runtime import devices
    from nasplay.scorers.proxy import training as proxy
    from nasplay.scorers.oneshot.supernet import OneShotConfig
    from nasplay.data.pipeline import normalize
    from search_space import get_space

    config = OneShotConfig(data=args.data)  # the search's sizes, momentum and weight decay
    space, sizes = get_space(args.space), dict(train_size=2000, val_size=200)
    if getattr(args, "smoke", False):  # a tiny supernet over three ops
        from benchmarks.oneshot_benchmark import SMOKE_OPS, SMOKE_SIZES, _reduced_space

        config = config.replace(**SMOKE_SIZES)
        space = _reduced_space(args.space, SMOKE_OPS)
        sizes = dict(train_size=config.train_size, val_size=config.val_size)
    devices.configure(os.cpu_count())
    sets = proxy.subsets(proxy.ProxyConfig(data=args.data, **sizes))
    x = normalize(sets.x_train[:config.batch_size])
    y = sets.y_train[:config.batch_size].astype(np.int32)
    return config, x, y, space, len(sets.classes)


def traced_step(space, classes, config, x, y, sgd=None, **supernet_options):
    """(supernet, its traced training step, first-step seconds) for one variant."""
    import keras
    import numpy as np

    from cells.supernet import SuperNet
    from nasplay.scorers.oneshot.engine_tf import MaskedSGD, compile_steps

    keras.utils.set_random_seed(0)
    net = SuperNet(space, num_classes=classes, filters=config.filters,
                   cells_per_stage=config.cells_per_stage, input_shape=x.shape[1:],
                   **supernet_options)
    optimizer = (sgd or MaskedSGD)(net.trainable_variables, config.momentum,
                                   config.weight_decay)
    step, _ = compile_steps(net, optimizer, config.batch_size, config.batch_size)
    start = time.perf_counter()
    step(x, y, net.encode(space.sample(np.random.default_rng(0))))
    return net, step, time.perf_counter() - start


def paired_times(steps: dict, space, x, y, pairs: int) -> dict:
    """Seconds of each variant's step on the same random paths, stepped alternately (the order
    flipped every round), each path once untimed first."""
    import numpy as np

    rng = np.random.default_rng(5)
    times = {name: [] for name in steps}
    names = list(steps)
    for r in range(pairs):
        genotype = space.sample(rng)
        for name in (names if r % 2 == 0 else names[::-1]):
            net, step = steps[name]
            arch = net.encode(genotype)
            step(x, y, arch)  # the path once untimed
            start = time.perf_counter()
            step(x, y, arch)
            times[name].append(time.perf_counter() - start)
    return {name: np.asarray(t) for name, t in times.items()}


def record(args, summary: str, facts: dict, times: dict, base: str, variant: str, labels: dict,
           **extra) -> dict:
    """Each variant's facts and median step, the median of the paired ratios ``variant / base``
    and ``extra``, appended as a JSON line to ``args.out`` and printed; returns the row."""
    import numpy as np

    row = {"summary": summary, "space": args.space, "pairs": args.pairs,
           **{name: {**facts[name], "median_step_ms": 1e3 * float(np.median(times[name]))}
              for name in (base, variant)},
           "median_paired_ratio": float(np.median(times[variant] / times[base])),
           **extra, "loadavg": os.getloadavg()[0]}
    with open(args.out, "a") as f:
        f.write(json.dumps(row) + "\n")
    print(f"median step: {labels[base]} {row[base]['median_step_ms']:.0f} ms, {labels[variant]} "
          f"{row[variant]['median_step_ms']:.0f} ms; median of paired ratios "
          f"{row['median_paired_ratio']:.3f} over {args.pairs} paths")
    return row


def main(argv=None) -> int:
    args = parse(argv, __doc__, pairs=40)
    config, x, y, space, classes = setup(args)
    steps, facts = {}, {}
    for name, affine in (("affine_free", False), ("affine", True)):
        net, step, first = traced_step(space, classes, config, x, y, affine_ops=affine)
        facts[name] = {"variables": len(net.trainable_variables), "first_step_s": first}
        steps[name] = (net, step)
        print(f"affine_ops={affine}: {facts[name]['variables']} trainable variables, first "
              f"step {first:.0f} s", flush=True)
    # the affine one first in even rounds, as before
    times = paired_times({"affine": steps["affine"], "affine_free": steps["affine_free"]},
                         space, x, y, args.pairs)
    record(args, "affine_ab", facts, times, "affine", "affine_free",
           {"affine": "affine", "affine_free": "affine-free"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
