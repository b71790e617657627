"""Run directories written by tests: sampled genotypes with fake metrics, no search, no training.

The layout follows the run-directory contract (``config.json`` + ``trials.jsonl``, one JSON object
per finished trial) so that ``inspect`` and ``export`` are tested without Ray or a network.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from search_space.spaces import get_space


def fake_trials(n: int, seed: int = 0, failed_every: int = 4, searcher: str = "random",
                space: str = "nasnet") -> list[dict]:
    """``n`` trial records: sampled genotypes, made-up metrics, every ``failed_every``-th failed."""
    rng = np.random.default_rng(seed)
    sampler = get_space(space)
    records = []
    for step in range(n):
        genotype = sampler.sample(rng)
        record = {"trial_id": f"{searcher}-{step:05d}", "genotype": genotype.to_dict(),
                  "step": step, "finished_at": 1.7e9 + 60.0 * step}
        if failed_every and step % failed_every == failed_every - 1:
            record.update(status="failed", metrics={},
                          error="ResourceExhaustedError: OOM when allocating tensor\n(details)")
        else:
            record.update(status="completed", metrics={
                "val_accuracy": float(rng.uniform(0.2, 0.6)),
                "params": int(rng.integers(50_000, 400_000)),
                "flops": int(rng.integers(5_000_000, 60_000_000)),
                "train_seconds": float(rng.uniform(20, 90))})
        records.append(record)
    return records


def write_run(run_dir, trials: list[dict], config: dict | None = None,
              partial_line: str | None = None) -> Path:
    """A run directory holding ``trials``; ``partial_line`` is appended without its newline,
    as a writer that is half-way through a record leaves it."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config = {"searcher": "random", "space": "nasnet", "seed": 0,
              "filters": 4, "cells_per_stage": 1} if config is None else config
    (run_dir / "config.json").write_text(json.dumps(config, indent=2))
    text = "".join(json.dumps(t) + "\n" for t in trials)
    (run_dir / "trials.jsonl").write_text(text + (partial_line or ""))
    return run_dir
