"""The supernet's training step with the masked update's conditionals lowered (TensorFlow's
default, the product) against kept functional, paired: both traced in one process, then stepped
alternately on the same random paths (the order flipped every round).

Functional If ops run only the taken branch's function, where lowered Switch/Merge ops pass dead
tensors through every node of the untaken side; the forward switches stay lowered in both (all
functional: ``oneshot_benchmark.py step --functional-conditionals``).

    python -m benchmarks.supernet_update_ab --pairs 30

Prints each variant's first-step (trace) seconds, median step and the median of the per-path
ratios; appends a JSON line to benchmarks/results/oneshot_step.jsonl.
"""

from __future__ import annotations

import sys

from benchmarks.supernet_affine_ab import paired_times, parse, record, setup, traced_step


def _functional_update_sgd():
    """MaskedSGD whose update conditionals are traced as functional If ops (a private switch
    of TensorFlow's, read when a conditional is traced, set around ``apply`` only)."""
    from tensorflow.python.ops import control_flow_util_v2

    from nasplay.scorers.oneshot.engine_tf import MaskedSGD

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
    from nasplay.scorers.oneshot.engine_tf import MaskedSGD

    config, x, y, space, classes = setup(args)
    steps, facts = {}, {}
    for name, sgd in (("lowered", MaskedSGD), ("functional", _functional_update_sgd())):
        net, step, first = traced_step(space, classes, config, x, y, sgd=sgd)
        facts[name] = {"first_step_s": first}
        steps[name] = (net, step)
        print(f"{name} update: first step {first:.0f} s", flush=True)
    times = paired_times(steps, space, x, y, args.pairs)
    record(args, "update_ab", facts, times, "lowered", "functional",
           {"lowered": "lowered update", "functional": "functional"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
