"""Does the supernet learn? Its training loss under different path samplers, with the product's
training step (``nasplay.scorers.oneshot.train``: the traced step, the masked SGD).

    python -m benchmarks.supernet_training_check uniform --steps 400
    python -m benchmarks.supernet_training_check fixed --steps 160        # one path: a plain network
    python -m benchmarks.supernet_training_check uniform-ops --steps 400  # the wiring of one genotype
    python -m benchmarks.supernet_training_check uniform-inputs --steps 400  # the ops of one genotype
    python -m benchmarks.supernet_training_check uniform-ops --ops sep_conv_3x3 sep_conv_5x5
    python -m benchmarks.supernet_training_check uniform --ops sep_conv_3x3 --no-head-norm
    python -m benchmarks.supernet_training_check uniform --ops sep_conv_3x3 --paths-per-step 4

Samplers: ``fixed`` (one genotype every step), ``two`` (two genotypes alternating), ``uniform``
(a random genotype per step, as ``nasplay search --scorer oneshot`` trains), ``uniform-ops``
(random ops, the inputs of one genotype), ``uniform-inputs`` (random inputs, the ops of one
genotype). Prints the training loss averaged over 20-step windows and, every 100 steps, the
accuracy of 4 fixed random paths on 256 held-out images (batch statistics), and appends a JSON
line to ``benchmarks/results/supernet_training_check.jsonl``. A supernet that learns shows the
loss well under ln(10) = 2.30 after a few hundred steps, as the ``fixed`` sampler does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from benchmarks.common import REPO, SHARED_CIFAR, add_smoke
from benchmarks.oneshot_benchmark import SMOKE_OPS

SAMPLERS = ("fixed", "two", "uniform", "uniform-ops", "uniform-inputs")


def _arch_sampler(mode, supernet, space, rng):
    """A function giving step ``i``'s architecture vector under sampler ``mode``."""
    first = supernet.encode(space.sample(np.random.default_rng(0)))
    second = supernet.encode(space.sample(np.random.default_rng(1)))
    from cells.supernet import DECISIONS_PER_BLOCK  # per block: input_a, input_b, op_a, op_b

    table_shape = (-1, DECISIONS_PER_BLOCK)

    def arch(i):
        if mode == "fixed":
            return first
        if mode == "two":
            return second if i % 2 else first
        sampled = supernet.encode(space.sample(rng)).reshape(table_shape).copy()
        fixed = first.reshape(table_shape)
        if mode == "uniform-ops":
            sampled[:, :2] = fixed[:, :2]
        elif mode == "uniform-inputs":
            sampled[:, 2:] = fixed[:, 2:]
        return sampled.reshape(-1)
    return arch


def _multi_path_step(supernet, optimizer, batch_size, k):
    """A step over ``k`` paths (TensorFlow): one traced gradient per path, their mean applied by
    the masked SGD to every variable some path used (the union of the paths' update groups)."""
    import keras
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        raise SystemExit("--paths-per-step > 1 runs on the TensorFlow backend only")
    variables = supernet.trainable_variables
    arch = tf.TensorSpec((supernet.arch_length,), tf.int32)

    @tf.function(input_signature=[tf.TensorSpec((batch_size, *supernet.image_shape), tf.float32),
                                  tf.TensorSpec((batch_size,), tf.int32), arch])
    def gradients(x, y, a):
        with tf.GradientTape() as tape:
            probs = supernet([x, a], training=True)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, probs))
        grads = tape.gradient(loss, variables)
        return loss, [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]

    @tf.function(input_signature=[[tf.TensorSpec(v.shape, v.dtype) for v in variables],
                                  tf.TensorSpec((k, supernet.arch_length), tf.int32)])
    def apply(grads, archs):
        per_path = [supernet.update_groups(archs[j]) for j in range(k)]
        union = []
        for groups in zip(*per_path):
            used = None if groups[0][0] is None else tf.reduce_any(
                tf.stack([used for used, _ in groups]))
            members = []
            for entries in zip(*(m for _, m in groups)):
                masks = [mask for _, mask in entries]
                members.append((entries[0][0], None if masks[0] is None else
                                tf.reduce_max(tf.stack([tf.cast(m, tf.float32) for m in masks]), 0)))
            union.append((used, members))
        optimizer.apply(grads, union)
        return tf.constant(0)

    def step(x, y, archs):
        losses, total = [], None
        for a in archs:
            loss, grads = gradients(x, y, a)
            losses.append(float(loss))
            total = grads if total is None else [t + g for t, g in zip(total, grads)]
        apply([t / len(archs) for t in total], archs)
        return float(np.mean(losses)), None

    return step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sampler", choices=SAMPLERS)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--space", default="amoebanet")
    parser.add_argument("--ops", nargs="+", help="a space of these ops instead (5 blocks, add)")
    parser.add_argument("--data", default=SHARED_CIFAR)
    parser.add_argument("--train-size", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--filters", type=int, default=8)
    parser.add_argument("--cells-per-stage", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--affine-ops", action="store_true",
                        help="candidate ops' batch norms with scale and shift (the rows of "
                             "BENCHMARKS.md measured before 2026-12-02)")
    parser.add_argument("--loose-mean", action="store_true",
                        help="the classifier reads the mean of the last cell's loose ends")
    parser.add_argument("--paths-per-step", type=int, default=1,
                        help="K > 1: each update averages the gradients of K paths on the same "
                             "batch and moves the union of their variables (FairNAS's "
                             "accumulation, with a mean instead of a sum; TensorFlow only)")
    parser.add_argument("--no-head-norm", action="store_true",
                        help="no batch norm before the classifier (the rows of BENCHMARKS.md "
                             "measured before it was added; an experiment, not a product option)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" /
                                             "supernet_training_check.jsonl"))
    # and 128 validation images
    add_smoke(parser, steps=5, train_size=128, filters=4, cells_per_stage=0, ops=SMOKE_OPS)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import keras

    from cells.supernet import SuperNet
    from nasplay.scorers.proxy import training as proxy
    from nasplay.scorers.oneshot.supernet import OneShotConfig
    from nasplay.scorers.oneshot.train import engine
    from nasplay.data.pipeline import normalize
    from search_space import SearchSpace, get_space, register_space

    keras.utils.set_random_seed(args.seed)
    sets = proxy.subsets(proxy.ProxyConfig(data=args.data, train_size=args.train_size,
                                           val_size=128 if args.smoke else 500))
    x, y = normalize(sets.x_train), sets.y_train.astype(np.int32)
    held_out = np.random.default_rng(7).permutation(len(sets.x_val))[:256]  # sorted by class
    probe_x, probe_y = normalize(sets.x_val[held_out]), sets.y_val[held_out].astype(np.int32)
    space = get_space(args.space) if not args.ops else register_space(
        SearchSpace("check-" + "-".join(args.ops), ops=tuple(args.ops)))
    supernet = SuperNet(space, num_classes=10, filters=args.filters,
                        cells_per_stage=args.cells_per_stage, input_shape=(32, 32, 3),
                        affine_ops=args.affine_ops, loose_mean=args.loose_mean)
    if args.no_head_norm:  # its moving statistics stay, unused; it has no trainable weights
        supernet.head_bn = keras.layers.Identity(name="no_head_bn")
    defaults = OneShotConfig()  # the search's momentum and weight decay
    optimizer = engine().MaskedSGD(supernet.trainable_variables, defaults.momentum,
                                   defaults.weight_decay)
    optimizer.learning_rate.assign(args.learning_rate)
    train_step, reward_step = engine().compile_steps(supernet, optimizer, args.batch_size,
                                                     len(probe_x))
    if args.paths_per_step > 1:
        train_step = _multi_path_step(supernet, optimizer, args.batch_size, args.paths_per_step)
    rng = np.random.default_rng(args.seed)
    arch = _arch_sampler(args.sampler, supernet, space, rng)
    k = args.paths_per_step
    step_arch = arch if k == 1 else (lambda i: np.stack([arch(i * k + j) for j in range(k)]))
    probes = [supernet.encode(space.sample(np.random.default_rng(100 + p))) for p in range(4)]

    losses, probe_log, started = [], [], time.perf_counter()
    for i in range(args.steps):
        batch = rng.choice(len(x), args.batch_size, replace=False)
        loss, _ = train_step(x[batch], y[batch], step_arch(i))
        losses.append(float(loss))
        if (i + 1) % 100 == 0 or i + 1 == args.steps:
            accuracies = [round(float(reward_step(probe_x, probe_y, p)), 3) for p in probes]
            probe_log.append({"step": i + 1, "probe_accuracy": accuracies})
            print(f"step {i + 1}: loss (last 20) {np.mean(losses[-20:]):.3f}, "
                  f"accuracy of 4 random paths {accuracies}", flush=True)
    windows = [round(float(np.mean(losses[k:k + 20])), 3) for k in range(0, len(losses), 20)]
    print(f"{args.sampler}: loss per 20 steps {windows}")
    record = {**vars(args), "loss_windows": windows, "probes": probe_log,
              "seconds": round(time.perf_counter() - started, 1)}
    with open(args.out, "a") as f:
        f.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
