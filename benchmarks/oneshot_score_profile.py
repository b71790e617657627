"""Where a one-shot score's time goes on TensorFlow: the median score over a few candidates, then
TensorFlow's profiler over the scorer's two traced calls (the recalibration's 4 batches, the
prediction on the 1,000 validation images), by op type.

    python -m benchmarks.oneshot_score_profile runs/oneshot-1000-20261203/supernet
    python -m benchmarks.oneshot_score_profile DIR --keras-inference-norms   # as before 2026-12-03

``--keras-inference-norms`` scores with Keras's own inference batch norm (a multiply and an add
over every activation) instead of TensorFlow's fused kernel, which TensorFlow folds into the
convolution before it. Appends a JSON line to benchmarks/results/oneshot_score_profile.jsonl.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from benchmarks.common import REPO, SHARED_CIFAR


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("supernet", help="a trained supernet's directory (RUN_DIR/supernet)")
    parser.add_argument("--data", default=SHARED_CIFAR)
    parser.add_argument("--space", default="amoebanet")
    parser.add_argument("--candidates", type=int, default=10)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--keras-inference-norms", action="store_true")
    parser.add_argument("--out", type=Path,
                        default=REPO / "benchmarks" / "results" / "oneshot_score_profile.jsonl")
    args = parser.parse_args(argv)
    import numpy as np

    from nasplay.scorers.oneshot import engine_tf as oneshot_tf
    from nasplay.scorers.oneshot.supernet import OneShotConfig
    from nasplay.scorers.oneshot.score import cached_scorer
    from benchmarks.proxy_benchmark import _append
    from search_space import get_space
    from benchmarks.supernet_step_profile import _profile

    if args.keras_inference_norms:
        fuse = oneshot_tf.fuse_batch_norms
        oneshot_tf.fuse_batch_norms = lambda model, inference=False: fuse(model)
    scorer = cached_scorer(args.supernet, OneShotConfig(data=args.data))
    space = get_space(args.space)
    arch = scorer.supernet.encode(space.sample(np.random.default_rng(3)))
    start = time.perf_counter()
    scorer.score(space.sample(np.random.default_rng(3)))
    first = time.perf_counter() - start
    seconds = []
    for i in range(args.candidates):
        start = time.perf_counter()
        scorer.score(space.sample(np.random.default_rng(100 + i)))
        seconds.append(time.perf_counter() - start)

    def recalibrate():
        for k, images in enumerate(scorer.calibration):
            scorer._recalibrate(images, arch, np.float32(k / (k + 1)))

    def predict():
        for i in range(0, len(scorer.y_val), 500):
            np.asarray(scorer._predict(scorer.x_val[i:i + 500], arch))

    label = "Keras's inference norms" if args.keras_inference_norms else "fused inference norms"
    print(f"{label}: first score (loads, traces) {first:.1f} s, median score over "
          f"{args.candidates} candidates {np.median(seconds):.3f} s")
    record = {"summary": "score_profile", "supernet": str(args.supernet),
              "keras_inference_norms": args.keras_inference_norms, "first_score": first,
              "median_score": float(np.median(seconds)), "loadavg": os.getloadavg()[0],
              "calls": {}}
    for name, call in (("recalibrate (4 batches)", recalibrate),
                       ("predict (validation images)", predict)):
        wall, ops = _profile(call, 5)
        print(f"\n{name}: {1e3 * wall:.0f} ms\n| op type | events | ms |\n|---|---|---|")
        top = sorted(ops.items(), key=lambda kv: -kv[1][1])[:args.top]
        for op_type, (events, ms) in top:
            print(f"| {op_type} | {events:.0f} | {ms:.2f} |")
        record["calls"][name] = {"wall": wall, "ops": dict(top)}
    _append(args.out, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
