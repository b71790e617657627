"""Searchers on a synthetic objective with a known optimum: best-found score and speed.

The objective hides a target genotype (a uniform sample of the space, one per seed) and scores a
candidate by its closeness to it, per decision: for each block, the number of branches whose
input and whose op equal the target's (branches paired in whichever order matches more; a block's
two branches are unordered), plus the combine when the space has several; divided by the number
of decisions, so the optimum scores 1.0. Each evaluation adds Gaussian noise (``--noise``), as a
short proxy training adds noise to validation accuracy.

Reported per searcher and budget: mean +- std over seeds of the *true* (noise-free) closeness of
the incumbent, the evaluated genotype with the best noisy score, as NAS papers report the test
accuracy of the architecture picked on validation. Also: asks+tells per second, median over
seeds, counting time inside the searcher only (construction and the Keras import excluded), over
the whole run (the controller's first update traces its training graph: seconds) and over its
second half. ``--workers W`` keeps W asks outstanding and tells a random one of them next, as
asynchronous workers finishing out of order would.

    python -m benchmarks.searchers_benchmark                   # 10 seeds x 300 evaluations, nasnet
    python -m benchmarks.searchers_benchmark --seeds 3 --evals 100 --searchers random,evolution
    python -m benchmarks.searchers_benchmark --searchers evolution:population_size=60:sample_size=15
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


from benchmarks.common import add_smoke
from search_space import Genotype, SearchSpace, get_space  # noqa: E402
from searchers import RegularizedEvolution, make_searcher  # noqa: E402

# The rows: name -> (searcher, settings); the constructors' defaults unless listed.
VARIANTS: dict[str, tuple[str, dict]] = {
    "random": ("random", {}),
    "evolution": ("evolution", {}),  # the paper's population 100, tournament 25
    "evolution-small": ("evolution", {"population_size": 30, "sample_size": 10}),
    # sized by RegularizedEvolution.for_budget(space, --evals), as `nasplay search` makes it
    "evolution-budget": ("evolution", {"for_budget": True}),
    "controller": ("controller", {}),
    "controller-ppo": ("controller", {"algorithm": "ppo", "learning_rate": 0.003, "batch_size": 5,
                                      "entropy_weight": 0.03}),
}


class Closeness:
    """Noise-free closeness of a genotype to a hidden target, in [0, 1]; see the module docstring."""

    def __init__(self, space: SearchSpace, target: Genotype):
        self.space = space
        self.target = target
        self.num_decisions = len(space.decision_sizes())
        self.with_combine = len(space.combines) > 1

    def __call__(self, genotype: Genotype) -> float:
        matches = 0
        for cell, target_cell in ((genotype.normal, self.target.normal), (genotype.reduction, self.target.reduction)):
            for block, goal in zip(cell.blocks, target_cell.blocks):
                a, b = zip(block.inputs, block.ops)
                ga, gb = zip(goal.inputs, goal.ops)
                straight = _branch_matches(a, ga) + _branch_matches(b, gb)
                crossed = _branch_matches(a, gb) + _branch_matches(b, ga)
                matches += max(straight, crossed)
                if self.with_combine:
                    matches += block.combine == goal.combine
        return matches / self.num_decisions


def _branch_matches(branch: tuple, goal: tuple) -> int:
    return int(branch[0] == goal[0]) + int(branch[1] == goal[1])


def run_one(name: str, space: SearchSpace, seed: int, evals: int, noise: float, workers: int,
            settings: dict) -> tuple[np.ndarray, float, float]:
    """One search: the incumbent's true closeness after each evaluation, and the searcher's
    asks+tells per second over the whole run and over its second half (steady state: after
    the controller's first update, which traces its training step)."""
    settings = dict(settings)
    if settings.pop("for_budget", False):
        searcher = RegularizedEvolution.for_budget(space, evals, seed=seed, **settings)
    else:
        searcher = make_searcher(name, space, seed=seed, max_trials=evals, **settings)
    world = np.random.default_rng(10_000 + seed)  # target, noise and completion order
    objective = Closeness(space, space.sample(world))
    curve = np.zeros(evals)
    best_noisy, best_true = -np.inf, 0.0
    outstanding: list = []
    call_seconds: list[float] = []
    done = 0
    while done < evals:
        while len(outstanding) < workers:
            start = time.perf_counter()
            proposal = searcher.ask()
            call_seconds.append(time.perf_counter() - start)
            if proposal is None:
                break
            outstanding.append(proposal)
        # A random outstanding trial finishes next (asynchronous workers finish out of order).
        proposal = outstanding.pop(int(world.integers(len(outstanding))))
        true = objective(proposal.genotype)
        noisy = true + noise * world.standard_normal()
        start = time.perf_counter()
        searcher.tell(proposal.trial_id, noisy)
        call_seconds.append(time.perf_counter() - start)
        if noisy > best_noisy:
            best_noisy, best_true = noisy, true
        curve[done] = best_true
        done += 1
    late = call_seconds[len(call_seconds) // 2:]
    return curve, len(call_seconds) / sum(call_seconds), len(late) / sum(late)


def _overrides(row: str) -> dict:
    """The ``key=value`` settings after a row's name (``evolution:population_size=60``), values
    as Python literals (a bare word is a string): ``nb201_searchers.parse_spec``'s."""
    from benchmarks.nb201_searchers import parse_spec

    try:
        return parse_spec(row)[2]
    except ValueError as e:
        raise SystemExit(f"searchers_benchmark: {e}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", default="nasnet")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=100,
                        help="seeds first-seed .. first-seed+seeds-1 (the defaults were tuned on 0-3)")
    parser.add_argument("--evals", type=int, default=300)
    parser.add_argument("--budgets", default="50,100,200,300")
    parser.add_argument("--noise", type=float, default=0.02, help="std of the Gaussian noise")
    parser.add_argument("--workers", type=int, default=1, help="asynchronous workers (outstanding asks)")
    parser.add_argument("--searchers", default="random,evolution,evolution-small,controller",
                        help=f"rows, from: {', '.join(VARIANTS)}; a row may override its "
                             f"settings, e.g. evolution:population_size=60:sample_size=15")
    add_smoke(parser, seeds=2, evals=30, budgets="10,30")
    args = parser.parse_args(argv)

    space = get_space(args.space)
    budgets = [b for b in (int(x) for x in args.budgets.split(",")) if b <= args.evals]
    names = args.searchers.split(",")
    unknown = [name for name in names if name.split(":")[0] not in VARIANTS]
    if unknown:
        parser.error(f"unknown rows {unknown}; known: {', '.join(VARIANTS)}")
    rows = []
    for name in names:
        searcher, settings = VARIANTS[name.split(":")[0]]
        settings = {**settings, **_overrides(name)}
        curves, speeds, late_speeds = [], [], []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            curve, speed, late_speed = run_one(searcher, space, seed, args.evals, args.noise, args.workers,
                                               settings)
            curves.append(curve)
            speeds.append(speed)
            late_speeds.append(late_speed)
            print(f"# {name} seed {seed}: best {curve[-1]:.3f}, {speed:.0f} asks+tells/s "
                  f"({late_speed:.0f} in the second half)", file=sys.stderr)
        curves = np.asarray(curves)
        cells = [f"{curves[:, b - 1].mean():.3f} ± {curves[:, b - 1].std():.3f}" for b in budgets]
        if settings.get("for_budget"):
            sizes = RegularizedEvolution.budget_defaults(args.evals)
            label = (f"{searcher} (for_budget({args.evals}): population {sizes['population_size']}, "
                     f"tournament {sizes['sample_size']})")
        else:
            label = searcher + (f" ({', '.join(f'{k}={v}' for k, v in settings.items())})" if settings
                                else " (defaults)")
        rows.append(f"| {label} | " + " | ".join(cells)
                    + f" | {np.median(speeds):.0f} | {np.median(late_speeds):.0f} |")

    print(f"space `{args.space}` ({len(space.decision_sizes())} decisions), {args.seeds} seeds "
          f"({args.first_seed}-{args.first_seed + args.seeds - 1}), "
          f"noise std {args.noise}, {args.workers} worker(s); mean ± std over seeds of the incumbent's "
          f"true closeness (1.0 = the hidden target)\n")
    print("| searcher | " + " | ".join(f"{b} evals" for b in budgets)
          + " | asks+tells/s, whole run | asks+tells/s, second half |")
    print("| --- | " + " | ".join("---" for _ in budgets) + " | --- | --- |")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
