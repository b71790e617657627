"""Experiment: the candidate ops' weights at another learning rate than the shared ones.

Measured (``benchmarks/oneshot_angle.py``, retired; in git history at 4dacd6d): in a supernet
trained at peak rate 0.01 the candidate ops' kernels barely turn (median cosine to their initial
values 0.997) while the shared stem and classifier turn far (0.6-0.8); at 0.05 the ops turn more
(0.94) and the training loss is higher. Each op runs on about one step in eight, the shared layers
on every step. This script runs ``oneshot_benchmark.py fidelity`` with the trainer's masked SGD
patched so that the candidate ops' variables (``SuperCell.candidate_layers``) step at
``--op-lr-scale`` times the learning rate (weight decay, which is scaled by the rate, too) and
everything else at the rate itself. An experiment, not a product option: the patch touches the
TensorFlow engine only.

    python -m benchmarks.oneshot_split_lr --op-lr-scale 5 fidelity --candidates 48 \\
        --learning-rate 0.01 --supernet runs/supernet-oplr5 --tag oplr5
    python -m benchmarks.oneshot_split_lr --op-lr-scale 0.2 fidelity --candidates 48 \\
        --supernet runs/supernet-oplr02 --tag oplr0.2

Use a fresh ``--supernet`` directory and a ``--tag``: the checkpoint does not record the scale.
"""

from __future__ import annotations

import sys


def patch(scale: float) -> None:
    """Candidate-op variables of every SuperNet built from now on step at ``scale`` x the rate."""
    import cells.supernet as supernet_module
    from nasplay.scorers.oneshot import engine_tf as oneshot_tf

    op_variables = set()
    build = supernet_module.SuperNet.__init__

    def __init__(self, *args, **kwargs):
        build(self, *args, **kwargs)
        for cell in self.super_cells:
            for layer in cell.candidate_layers():
                op_variables.update(id(v) for v in layer.trainable_variables)
        print(f"candidate-op variables at {scale:g} x the learning rate: {len(op_variables)} "
              f"of {len(self.trainable_variables)}", flush=True)

    update = oneshot_tf.MaskedSGD._update

    def scaled_update(self, variable, grad, mask):
        if id(variable) not in op_variables:
            return update(self, variable, grad, mask)
        base = self.learning_rate  # read as a tensor inside the traced step
        self.learning_rate = base * scale
        try:
            return update(self, variable, grad, mask)
        finally:
            self.learning_rate = base

    supernet_module.SuperNet.__init__ = __init__
    oneshot_tf.MaskedSGD._update = scaled_update


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 2 or argv[0] != "--op-lr-scale":
        raise SystemExit("usage: oneshot_split_lr.py --op-lr-scale S fidelity [its flags]")
    patch(float(argv[1]))
    import benchmarks.oneshot_benchmark as oneshot_benchmark

    return oneshot_benchmark.main(argv[2:])


if __name__ == "__main__":
    raise SystemExit(main())
