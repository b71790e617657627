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

Observed results (``observe``: a warm start from another run) join the population as if this
search had evaluated them, oldest first, and fill the initial population's slots: a warm start
with at least ``population_size`` results starts with tournaments, not random samples.

``RegularizedEvolution.for_budget(space, trials)`` sizes the population to a budget of a few
hundred or thousand evaluations instead of the paper's 20,000.
"""

from __future__ import annotations

import warnings
from collections import deque

from search_space import Genotype, SearchSpace

from .base import BaseSearcher, Pending


class BudgetWarning(UserWarning):
    """The budget leaves evolution few or no mutations: it would be a random search."""


class RegularizedEvolution(BaseSearcher):
    """Aging evolution; see the module docstring.

    Defaults are the paper's (100 / 25, for 20,000 evaluations); for a budget of a few hundred
    or thousand evaluations a smaller population with a larger tournament does better:
    ``for_budget`` sizes both (BENCHMARKS.md, "Searchers on NAS-Bench-201's table").
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
        # Slots of the initial population taken: random samples proposed, or results observed.
        self._initial_issued = 0
        self._initial_failed = 0  # ... of which failed (each is replaced by another sample)

    # ----------------------------------------------------------------- sizing to a budget

    @staticmethod
    def budget_defaults(trials: int, population_size: int | None = None,
                        sample_size: int | None = None) -> dict:
        """Population and tournament sizes for a budget of ``trials`` evaluations.

        AmoebaNet's 100/25 suit 20,000 candidates; with a few hundred, a population of 100
        spends a fifth or more of the budget on random initial samples, and a run is no better
        than random search until they are done. Measured (BENCHMARKS.md, "Searchers on
        NAS-Bench-201's table": 100 seeds on the NAS-Bench-201 table at 100 to 1,000 trials,
        and on the synthetic objective over ``amoebanet`` at 100 to 3,000): a population of a
        tenth of the budget, between 10 and 50, with a tournament of half of it, was the best
        or level with the best setting of a grid of populations 10-100 and tournaments 2-100
        at every budget. So: population ``trials // 10`` between 10 and 50, tournament half of
        it (at least 2, at most the population). A size given explicitly is kept.
        """
        if population_size is None:
            population_size = max(10, min(50, int(trials) // 10))
        if sample_size is None and isinstance(population_size, int) and population_size >= 1:
            sample_size = min(population_size, max(2, population_size // 2))
        return {"population_size": population_size, "sample_size": sample_size}

    @classmethod
    def for_budget(cls, space: SearchSpace, trials: int, seed: int = 0,
                   population_size: int | None = None, sample_size: int | None = None,
                   **kwargs) -> RegularizedEvolution:
        """Evolution sized for ``trials`` evaluations (``budget_defaults``); ``max_trials``
        defaults to ``trials``, other ``kwargs`` go to the constructor.

        Warns (``BudgetWarning``, text from ``budget_note``) when ``trials`` does not exceed the
        population, so that every evaluation would be a random initial sample.
        """
        if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
            raise ValueError(f"trials must be an int >= 1, got {trials!r}")
        sizes = cls.budget_defaults(trials, population_size, sample_size)
        kwargs.setdefault("max_trials", trials)
        searcher = cls(space, seed=seed, **sizes, **kwargs)
        note = searcher.budget_note(trials)
        if note is not None:
            warnings.warn(note, BudgetWarning, stacklevel=2)
        return searcher

    def budget_note(self, trials: int) -> str | None:
        """One line for a budget that does not exceed the population (None when it does): how
        many mutations ``trials`` evaluations leave after the initial random population."""
        if trials > self.population_size:
            return None
        return (f"evolution: {trials} trials do not exceed the population of "
                f"{self.population_size}, which leaves 0 mutations (every trial is a random "
                f"initial sample); raise the trials above {self.population_size} or lower the "
                f"population size")

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

    def _on_observe(self, trial_id: str, genotype: Genotype, score: float, metrics: dict | None) -> None:
        if self._initial_issued - self._initial_failed < self.population_size:
            self._initial_issued += 1  # one random initial sample fewer to draw
        self._population.append((trial_id, genotype, score))
        if len(self._population) > self.population_size:
            self._population.popleft()

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
