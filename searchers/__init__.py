"""Searchers: the ask/tell protocol, random search, regularized evolution and the RL controller.

``Controller`` is imported on first use: it loads Keras (and with it TensorFlow, seconds of
start-up), which random search and evolution do not need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import BaseSearcher, Proposal, Searcher, clean_score, warm_start
from .evolution import BudgetWarning, RegularizedEvolution
from .random_search import RandomSearch

if TYPE_CHECKING:
    from search_space import SearchSpace

    from .controller import Controller

__all__ = [
    "BaseSearcher",
    "BudgetWarning",
    "Controller",
    "Proposal",
    "RandomSearch",
    "RegularizedEvolution",
    "Searcher",
    "SEARCHERS",
    "clean_score",
    "make_searcher",
    "warm_start",
]

# The one list of searchers. Name (as typed after ``nasplay search --searcher``) -> "module:class".
SEARCHERS = {
    "random": "random_search:RandomSearch",
    "evolution": "evolution:RegularizedEvolution",
    "controller": "controller:Controller",
}


def __getattr__(name: str) -> Any:
    if name == "Controller":
        from .controller import Controller

        return Controller
    raise AttributeError(f"module 'searchers' has no attribute {name!r}")


def make_searcher(name: str, space: SearchSpace, seed: int = 0, **kwargs: Any) -> BaseSearcher:
    """The searcher called ``name`` ('random', 'evolution', 'controller') for ``space``;
    ``kwargs`` go to its constructor (e.g. ``max_trials``, ``population_size``)."""
    if name not in SEARCHERS:
        raise ValueError(f"unknown searcher {name!r}; known: {', '.join(sorted(SEARCHERS))}")
    import importlib

    module_name, class_name = SEARCHERS[name].split(":")
    module = importlib.import_module(f".{module_name}", __name__)
    return getattr(module, class_name)(space, seed=seed, **kwargs)
