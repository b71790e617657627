"""Where a supernet training step's time goes, by TensorFlow op type, against its chosen path's
standalone network stepped the same way: TensorFlow's profiler over a few traced steps of each.

    python -m benchmarks.supernet_step_profile [--steps 10] [--top 30]
    python -m benchmarks.supernet_step_profile --tensorflow-defaults   # as before 2026-12-03

Prints each step's median wall time, the process's peak RSS and, per op type, events and milliseconds a step for both
(op time summed over the threads, so a step's ops can add up to more than its wall time);
appends a JSON line to benchmarks/results/oneshot_step_profile.jsonl. ``--tensorflow-defaults``
traces the supernet without the engine's two TensorFlow fixes (max pool gradients on oneDNN,
no Grappler memory scheduling) and with the factorized reduction's old strided slice, so the
three can be seen in the table.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from benchmarks.common import REPO, add_smoke


def _op_times(logdir: str, steps: int) -> dict:
    """{op type: [events a step, ms a step]} from the profiler's trace in ``logdir``."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    path = sorted(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True))[-1]
    space = xplane_pb2.XSpace()
    space.ParseFromString(Path(path).read_bytes())
    totals = collections.defaultdict(lambda: [0.0, 0.0])
    for plane in space.planes:
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                op_type = name.rsplit(":", 1)[-1]
                if ":" not in name or op_type in ("Process", "Run") \
                        or op_type.strip().startswith("__inference"):
                    continue  # executor, function and Python spans, not ops
                totals[op_type][0] += 1 / steps
                totals[op_type][1] += event.duration_ps / 1e9 / steps
    return dict(totals)


def _profile(step, steps: int) -> tuple[float, dict]:
    """(median wall seconds of a step, op times) for ``step()``, warmed up first."""
    import numpy as np
    import tensorflow as tf

    for _ in range(3):
        step()
    walls = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        walls.append(time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(steps):
            step()
        tf.profiler.experimental.stop()
        return float(np.median(walls)), _op_times(logdir, steps)


def _max_rss_mb() -> float:
    """The process's peak resident memory so far (Linux reports kilobytes)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _tensorflow_defaults():
    """Undo the engine's TensorFlow fixes and the factorized reduction's slice (see module)."""
    from cells import ops as cell_ops
    from nasplay.scorers.oneshot import engine_tf as oneshot_tf

    def old_call(self, x, training=None):
        x = self.relu(x)
        a = self.conv_a(x)
        b = self.conv_b(self.shift(x)[:, 1:, 1:, :])
        return self.bn(cell_ops.ops.concatenate([a, b], axis=-1), training=training)

    cell_ops.FactorizedReduce.call = old_call
    oneshot_tf.recompute_max_pool_grads = lambda model: 0
    oneshot_tf.WithoutMemoryScheduling = lambda function: function


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--seed", type=int, default=3, help="the random path profiled")
    parser.add_argument("--tensorflow-defaults", action="store_true")
    parser.add_argument("--out", type=Path,
                        default=REPO / "benchmarks" / "results" / "oneshot_step_profile.jsonl")
    add_smoke(parser, steps=2, top=5)  # and a tiny supernet (supernet_affine_ab.setup)
    args, rest = parser.parse_known_args(argv)
    if args.tensorflow_defaults:
        _tensorflow_defaults()
    import numpy as np

    import benchmarks.oneshot_benchmark as oneshot_benchmark
    from benchmarks.proxy_benchmark import _append
    from benchmarks.supernet_affine_ab import parse, setup, traced_step

    common = parse(rest, __doc__, 0)
    common.smoke = args.smoke
    config, x, y, space, classes = setup(common)
    supernet, train_step, first = traced_step(space, classes, config, x, y)
    genotype = space.sample(np.random.default_rng(args.seed))
    arch = supernet.encode(genotype)
    standalone = oneshot_benchmark._standalone_step(supernet.extract(genotype),
                                                    config.batch_size)
    standalone(x, y)  # its trace
    own_wall, own = _profile(lambda: standalone(x, y), args.steps)
    super_wall, sup = _profile(lambda: train_step(x, y, arch), args.steps)
    print(f"path {genotype.hash()[:12]}: standalone step {1e3 * own_wall:.0f} ms, supernet step "
          f"{1e3 * super_wall:.0f} ms ({super_wall / own_wall:.2f}x); supernet trace {first:.0f} s"
          f"{' (TensorFlow defaults)' if args.tensorflow_defaults else ''}; peak RSS "
          f"{_max_rss_mb():.0f} MB")
    names = sorted(set(own) | set(sup), key=lambda t: -max(own.get(t, [0, 0])[1],
                                                           sup.get(t, [0, 0])[1]))
    print("| op type | standalone events | standalone ms | supernet events | supernet ms |")
    print("|---|---|---|---|---|")
    for name in names[:args.top]:
        a, b = own.get(name, [0, 0]), sup.get(name, [0, 0])
        print(f"| {name} | {a[0]:.0f} | {a[1]:.2f} | {b[0]:.0f} | {b[1]:.2f} |")
    record = {"summary": "step_profile", "space": common.space, "path": genotype.hash()[:12],
              "tensorflow_defaults": args.tensorflow_defaults, "steps": args.steps,
              "standalone_wall": own_wall, "supernet_wall": super_wall, "first_step": first,
              "loadavg": os.getloadavg()[0], "max_rss_mb": _max_rss_mb(),
              "ops": {name: {"standalone": own.get(name), "supernet": sup.get(name)}
                      for name in names[:args.top]}}
    _append(args.out, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
