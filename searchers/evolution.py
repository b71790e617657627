"""Regularized (aging) evolution, asynchronous: AmoebaNet (Real et al. 2019, Algorithm 1).

A population of the ``population_size`` most recently evaluated genotypes. Each ask either
samples a random genotype (while the initial population is being filled) or runs a tournament:
pick ``sample_size`` members at random, mutate the best. Each score told joins the population and
pushes out the *oldest* member, not the worst, so a lucky noisy score cannot stay forever: that
aging is the regularization.

Asynchronous as in the paper's distributed form: an ask does not wait for outstanding trials; it
uses the population as it stands. Differences from the paper's pseudocode, each for a reason:

- a failed trial (score ``None``) is not added to the population; if it was one of the initial
  random samples, another random sample takes its place, so the population still fills up;
- when the population is empty (everything asked is still running) an ask samples at random;
- the tournament draws without replacement (``min(sample_size, len(population))`` members);
- a mutation that gives an already-proposed genotype is redrawn (see ``BaseSearcher._unique``).
"""

from __future__ import annotations

from collections import deque

from search_space import Genotype, SearchSpace

from .base import BaseSearcher, Pending


class RegularizedEvolution(BaseSearcher):
    """Aging evolution; see the module docstring.

    Defaults are the paper's (100 / 25, for 20,000 evaluations); for a budget of a few hundred
    evaluations a smaller population does better, e.g. ``population_size=30, sample_size=10``
    (BENCHMARKS.md, "Searchers on a synthetic objective").
    """

    name = "evolution"

    def __init__(
        self,
        space: SearchSpace,
        population_size: int = 100,
        sample_size: int = 25,
        seed: int = 0,
        max_trials: int | None = None,
    ):
        if population_size < 1:
            raise ValueError(f"population_size must be >= 1, got {population_size}")
        if not 1 <= sample_size <= population_size:
            raise ValueError(
                f"sample_size must be in [1, population_size={population_size}], got {sample_size}"
            )
        super().__init__(space, seed=seed, max_trials=max_trials)
        self.population_size = int(population_size)
        self.sample_size = int(sample_size)
        # (trial_id, genotype, score), oldest first.
        self._population: deque[tuple[str, Genotype, float]] = deque()
        self._initial_issued = 0  # random samples proposed to fill the initial population
        self._initial_failed = 0  # ... of which failed (each is replaced by another sample)

    def config(self) -> dict:
        return {"population_size": self.population_size, "sample_size": self.sample_size}

    @property
    def population(self) -> list[tuple[str, Genotype, float]]:
        """The current population, oldest first: (trial_id, genotype, score)."""
        return list(self._population)

    def _propose(self) -> tuple[Genotype, dict] | None:
        filling = self._initial_issued - self._initial_failed < self.population_size
        if filling or not self._population:
            found = self._unique(lambda: self.space.sample(self._rng))
            if found is None:
                return None
            if not filling:  # everything asked so far is still running
                return found[0], {"origin": "random"}
            self._initial_issued += 1
            return found[0], {"origin": "initial"}
        parent_id, parent = self._tournament()
        found = self._unique(lambda: self.space.mutate(parent, self._rng))
        if found is None:
            return None
        genotype, origin = found
        if origin != "draw":  # no new mutant of this parent: a random (or enumerated) fallback
            return genotype, {"origin": origin}
        return genotype, {"origin": "mutation", "parent": parent_id}

    def _tournament(self) -> tuple[str, Genotype]:
        size = min(self.sample_size, len(self._population))
        picks = self._rng.choice(len(self._population), size=size, replace=False)
        best = max(picks, key=lambda i: self._population[i][2])  # first of equals wins
        trial_id, genotype, _ = self._population[best]
        return trial_id, genotype

    def _on_result(self, trial_id: str, pending: Pending, score: float, metrics: dict | None) -> None:
        self._population.append((trial_id, pending.genotype, score))
        if len(self._population) > self.population_size:
            self._population.popleft()

    def _on_failure(self, trial_id: str, pending: Pending, metrics: dict | None) -> None:
        if pending.extra.get("origin") == "initial":
            self._initial_failed += 1

    def _extra_state(self) -> dict:
        return {
            "population": [
                {"trial_id": tid, "genotype": g.to_dict(), "score": s}
                for tid, g, s in self._population
            ],
            "initial_issued": self._initial_issued,
            "initial_failed": self._initial_failed,
        }

    def _load_extra_state(self, state: dict) -> None:
        self._population = deque(
            (item["trial_id"], Genotype.from_dict(item["genotype"]), float(item["score"]))
            for item in state["population"]
        )
        self._initial_issued = int(state["initial_issued"])
        self._initial_failed = int(state["initial_failed"])
