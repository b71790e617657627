"""The scorer registry: every rung of the fidelity ladder, picked by name like ops and spaces.

A scorer answers "how good is this genotype?" at some price (``docs/architecture.md`` has the
ladder). The searchers never know which one answers; ``nasplay search --scorer NAME`` picks it
from ``SCORERS`` the way cells pick ops from ``cells.OPS`` and searches pick spaces from
``search_space.SPACES``. A scorer is one ``Scorer`` object; adding one is one sub-package here
(``scorer.py`` with the ``Scorer``, the computation beside it) plus one ``register_scorer`` line
below. ``--scorer package.module:function`` names a function directly (how tests inject fast
fakes into Ray workers).

Nothing here imports TensorFlow or Ray: the CLI and the plan read the registry before either.
"""

from __future__ import annotations

from nasplay.scorers import nb201, oneshot, proxy, synflow, zero_cost
from nasplay.scorers.registry import (DEFAULT_METRIC, SCORERS, Option, Scorer, Truth,
                                      default_metric, get_scorer, option_flags, register_scorer,
                                      score_metrics, truth_for)

__all__ = ["DEFAULT_METRIC", "SCORERS", "Option", "Scorer", "Truth", "default_metric",
           "get_scorer", "option_flags", "register_scorer", "score_metrics", "truth_for"]

# The built-in scorers, cheapest first; a new one is a package here plus one line.
register_scorer(zero_cost.SCORER)
register_scorer(oneshot.SCORER)
register_scorer(proxy.SCORER)
# A second zero-cost score (data free), as cheap as the first; listed after the ladder's rungs.
register_scorer(synflow.SCORER)
# Off the ladder: NAS-Bench-201's table, the ground truth of its space (no training at all).
register_scorer(nb201.SCORER)
