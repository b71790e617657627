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

import json
import os
import sys

from supernet_affine_ab import paired_times, parse, setup, traced_step


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
    args = parse(argv, __doc__, pairs=30)
    import numpy as np

    from nasplay.oneshot_tf import MaskedSGD

    config, x, y, space, classes = setup(args)
    steps, facts = {}, {}
    for name, sgd in (("lowered", MaskedSGD), ("functional", _functional_update_sgd())):
        net, step, first = traced_step(space, classes, config, x, y, sgd=sgd)
        facts[name] = {"first_step_s": first}
        steps[name] = (net, step)
        print(f"{name} update: first step {first:.0f} s", flush=True)
    times = paired_times(steps, space, x, y, args.pairs)
    lowered, functional = times["lowered"], times["functional"]
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
