"""The search as a Python call: ``nasplay.search(config)``; also what experiment scripts run.

A search is three steps that each do one thing: the plan checks and resolves the settings
(``nasplay.engine.plan``: nothing written, no Ray), Ray is started or joined
(``nasplay.engine.tune_backend``), and the driver runs the trials and keeps the run directory
(``nasplay.engine.driver``)::

    from nasplay import SearchConfig, search
    result = search(SearchConfig(searcher="evolution", space="amoebanet", trials=50,
                                 run_dir="runs/evo", scorer="zero-cost"))
    result.best["genotype"]
"""

from __future__ import annotations

import sys

from nasplay.engine.config import SearchConfig
from nasplay.engine.driver import SearchResult
from nasplay.engine.plan import make_plan
from nasplay.errors import UserError, one_line, plural
from nasplay.runs import runlock


def search(config: SearchConfig, resume: bool = False,
           explicit: set[str] | None = None) -> SearchResult:
    """Run (or with ``resume`` continue) the search ``config`` describes.

    ``explicit``: with ``resume``, the settings the caller actually chose (the CLI's flags); the
    others come from the run's ``config.json``. None means all of ``config``'s, so a resumed
    ``search(config, resume=True)`` checks that ``config`` is the run's experiment.
    Uses the Ray session of the caller if one is initialized (and leaves it running), else
    starts or joins one for the search and shuts it down after.
    """
    plan = make_plan(config, resume, explicit)   # bad input fails here, before anything exists
    if plan.done:
        return _target_reached(plan)
    with runlock.holding(plan.run_dir.path):
        # planned again under the lock: another search may have written the run meanwhile
        plan = make_plan(config, resume, explicit)
        if plan.done:
            return _target_reached(plan)
        from nasplay.engine import tune_backend
        from nasplay.engine.driver import Driver

        with tune_backend.ray_session(plan.config) as cluster:
            cpus = plan.config.cpus_per_trial or max(1, int(cluster.cpus // plan.config.workers))
            cluster.check_fits(cpus, plan.config.gpus_per_trial)
            return Driver(plan, cluster).run(tune_backend.run_experiment,
                                             tune_backend.run_rescoring)


def _target_reached(plan) -> SearchResult:
    print(f"nasplay search: {plan.run_dir.path} holds {plural(len(plan.records), 'trial')}, the target "
          f"of {plan.config.trials} is reached; raise --trials to continue")
    return SearchResult(run_dir=plan.run_dir.path, records=plan.records,
                        target=plan.config.trials, metric=plan.metric, stopped="finished")


def main(config: SearchConfig, argv: list[str] | None = None) -> int:
    """Run ``config`` from a script (``experiments/``): ``--resume`` among ``argv`` continues
    the run; errors are one line on stderr as with ``nasplay search``. Returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        return search(config, resume="--resume" in argv).exit_code
    except UserError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; continue with --resume", file=sys.stderr)
        return 130
