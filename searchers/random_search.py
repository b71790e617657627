"""Random search: uniform samples from the space, never the same genotype twice.

The baseline every other searcher must beat (Li & Talwalkar 2019 found it hard to beat on
NAS benchmarks); it also takes the first ``population_size`` steps of evolution.
"""

from __future__ import annotations

from search_space import Genotype, SearchSpace

from .base import BaseSearcher


class RandomSearch(BaseSearcher):
    """Propose uniform samples of ``space``; scores are recorded (``best``) but change nothing."""

    name = "random"

    def __init__(self, space: SearchSpace, seed: int = 0, max_trials: int | None = None):
        super().__init__(space, seed=seed, max_trials=max_trials)

    def _propose(self) -> tuple[Genotype, dict] | None:
        found = self._unique(lambda: self.space.sample(self._rng))
        if found is None:
            return None
        return found[0], {}
