"""The supernet's training step with Keras's batch norms against TensorFlow's fused kernel
(``nasplay.runtime._internals.fused_batch_norm``, what the engine now does), paired: both traced
in one process, then stepped alternately on the same random paths (the order flipped every
round).

    python -m benchmarks.supernet_norms_ab --pairs 20

Prints each variant's first-step (trace) seconds, the nodes of its traced graph, median step
and the median of the per-path ratios, and checks that both give the same outputs from the same
weights; appends a JSON line to benchmarks/results/oneshot_step.jsonl.
"""

from __future__ import annotations

import sys

from benchmarks.supernet_affine_ab import paired_times, parse, record, setup, traced_step


def graph_nodes(step) -> int:
    """Nodes of a traced step's graph and of every function it holds (the branches)."""
    graph = step.get_concrete_function().graph.as_graph_def()
    return len(graph.node) + sum(len(f.node_def) for f in graph.library.function)


def main(argv=None) -> int:
    args = parse(argv, __doc__, pairs=20)
    import numpy as np

    from nasplay.scorers.oneshot import engine_tf as oneshot_tf

    config, x, y, space, classes = setup(args)
    fuse = oneshot_tf.fuse_batch_norms
    steps, facts = {}, {}
    try:
        for name in ("keras", "fused"):
            if name == "keras":  # the engine fuses whatever it compiles: not this one
                oneshot_tf.fuse_batch_norms = lambda model: 0
            else:
                oneshot_tf.fuse_batch_norms = fuse
            net, step, first = traced_step(space, classes, config, x, y)
            facts[name] = {"first_step_s": first, "graph_nodes": graph_nodes(step)}
            steps[name] = (net, step)
            print(f"{name} norms: first step {first:.0f} s, {facts[name]['graph_nodes']} graph "
                  f"nodes", flush=True)
    finally:
        oneshot_tf.fuse_batch_norms = fuse
    genotype = space.sample(np.random.default_rng(11))  # same seed, same first step: same net
    outputs = [np.asarray(net([x[:8], net.encode(genotype)], training=True))
               for net, _ in steps.values()]
    difference = float(np.max(np.abs(outputs[0] - outputs[1])))
    times = paired_times(steps, space, x, y, args.pairs)
    record(args, "norms_ab", facts, times, "keras", "fused",
           {"keras": "Keras norms", "fused": "fused"}, max_output_difference=difference)
    print(f"outputs from the same weights differ by at most {difference:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
