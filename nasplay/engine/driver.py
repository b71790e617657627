"""The driver: the searcher on one side, trial events on the other, the run directory between.

The driver owns the run: it writes ``config.json``, appends a line to ``trials.jsonl`` as each
trial ends, keeps ``best_genotype.json`` and saves the searcher's state after every proposal and
every result (so ``kill -9`` loses at most the trials that were running). It does not know Ray:
``run(execute)`` hands it to an executor (``nasplay.engine.tune_backend.run_experiment`` in a real
search) that calls back ``propose``/``on_proposed``/``on_finished`` as trials start and end,
so the driver is tested with a plain loop as the executor.

A cheap scorer's Ray trial scores a batch of candidates (``Scorer.batch``): each candidate is
asked of the searcher, persisted as pending and told its own score, and gets its own line, so a
batch changes the records of a run in no way; the searcher is told the run's metric and nothing
else (``told``). On resume, completed lines stay as they are, the searcher reloads its saved
state, and the proposals it had pending (trials that were running) are issued again before any
new one.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from nasplay.engine.plan import Plan, make_searcher, searcher_class
from nasplay.engine.progress import Progress
from nasplay.engine.trial import TrialSettings
from nasplay.errors import UserError, first_line, plural
from nasplay.runs.records import (best_lines, merge_rescore, rescore_record, run_best,
                                  score_of, trial_record)
from nasplay.runtime.quiet import quiet


@dataclass
class Cluster:
    """The Ray session a search runs on."""

    cpus: float
    gpus: float
    nodes: int
    owned: bool       # started or joined by this search (and shut down after it)

    def trials_that_fit(self, cpus: float, gpus: float) -> int:
        """How many trials of this size the cluster runs at once (by total resources)."""
        fits = self.cpus // cpus if cpus else float("inf")
        if gpus:
            fits = min(fits, self.gpus // gpus)
        return int(min(fits, 1_000_000))

    def check_fits(self, cpus: float, gpus: float) -> None:
        """A trial larger than the whole cluster would wait forever: refuse it in one line."""
        if cpus > self.cpus:
            raise UserError(f"--cpus-per-trial {cpus:g} is more than the cluster has "
                            f"({self.cpus:g} CPUs); give at most {self.cpus:g}")
        if gpus > self.gpus:
            raise UserError(f"--gpus-per-trial {gpus:g} is more than the cluster has "
                            f"({self.gpus:g} GPUs); give at most {self.gpus:g}, or 0 for CPU only")


@dataclass
class SearchResult:
    """What a search left behind; ``records`` are the run's trial lines, oldest first."""

    run_dir: Path
    records: list[dict]
    target: int                  # the trials the run was asked for
    metric: str
    stopped: str                 # finished | exhausted | time budget | interrupted
    best_by: tuple = ()          # --best-by's metrics: their rank average picks the best

    @property
    def completed(self) -> int:
        return sum(r.get("status") == "completed" for r in self.records)

    @property
    def failed(self) -> int:
        return sum(r.get("status") == "failed" for r in self.records)

    @property
    def best(self) -> dict | None:
        """The run's best (``records.run_best``): by ``best_by``'s rank average where given,
        else by the re-scoring metric among the re-scored trials where the run re-scored its
        best (``--rerank-top``), else by ``metric``."""
        return run_best(self.records, self.metric, self.best_by)[0]

    @property
    def all_failed(self) -> bool:
        """Every trial failed: the search learned nothing (exit status 1)."""
        return bool(self.records) and self.completed == 0

    @property
    def exit_code(self) -> int:
        if self.stopped == "interrupted":
            return 130
        return 1 if self.all_failed else 0

    def most_common_error(self) -> tuple[str, int] | None:
        """The error the most failed trials share, and how many."""
        errors = Counter(first_line(r.get("error", "")) for r in self.records
                         if r.get("status") == "failed")
        return errors.most_common(1)[0] if errors else None


# A budget is spent in at least this many batches: evolution told its results in batches of
# trials/20 finds cells as good as told one at a time (NAS-Bench-201's table, 60 seeds each at
# 50-300 trials); batches of 25 in a 100-trial search (4 rounds) found worse ones.
BATCH_ROUNDS = 20

# execute(driver, settings, cpus_per_trial, num_samples) -> "exhausted" | "done"
Executor = Callable[["Driver", TrialSettings, float, int], str]
# rescore(driver, settings, cpus_per_trial, trials): each trial's second score to on_rescored
Rescorer = Callable[["Driver", TrialSettings, float, list], None]


class Driver:
    """Drives one search and keeps its run directory; see the module docstring."""

    def __init__(self, plan: Plan, cluster: Cluster):
        self.plan = plan
        self.config = plan.config
        self.cluster = cluster
        self.run_dir = plan.run_dir
        self.metric = plan.metric
        self.records = list(plan.records)
        self.recorded = {r["trial_id"] for r in self.records}
        self.best_by = tuple(self.config.best_by or ())           # --best-by's metrics
        # the record best_genotype.json holds (run_best); a resume's new --best-by re-picks it
        self.written = None if plan.best_by_changed else run_best(
            self.records, self.metric, self.best_by)[0]
        self.pending_steps: dict[str, int] = {}
        self.searcher = None
        self.progress: Progress | None = None
        self.rescorer = None              # --rerank-top: the scorer of the second scores
        self.rescored: list[dict] = []    # --rerank-top: the re-scoring results, as they came

    # -------------------------------------------------------------- opening the run

    def open_run(self) -> None:
        """Write the config (new run) or repair the trials file (resume); set up the searcher."""
        if getattr(searcher_class(self.config.searcher), "uses_keras", False):
            # The searcher's model runs in this process: keep its framework off the GPUs,
            # which belong to the trials (Ray's own GPU detection is not affected).
            from nasplay.runtime import devices, quiet

            quiet.start_keras(lambda: devices.configure(cpus=None, gpus=False))
        try:
            self.searcher = make_searcher(self.config)
        except (TypeError, ValueError) as e:
            raise UserError(f"searcher_options for {self.config.searcher}: {first_line(e)}"
                            ) from None
        if self.plan.resume:
            self._reopen()
        else:
            self.run_dir.create(self.config)
            if self.plan.warm_start:
                from searchers import warm_start

                scored = warm_start(self.searcher, self.plan.warm_start)
                print(f"nasplay search: warm start from {self.config.warm_start}: "
                      f"{scored} scored trial(s) of {len(self.plan.warm_start)}")
        self.save_state()

    def _reopen(self) -> None:
        self.records = self.run_dir.read_trials(repair=True)
        if self.plan.rewrite_config:
            self.run_dir.write_config(self.config)
        searcher_state, self.pending_steps = self.plan.state or ({}, {})
        if searcher_state:
            try:
                self.searcher.load_state_dict(searcher_state)
            except (KeyError, ValueError) as e:
                raise UserError(f"{self.run_dir.state_path}: {first_line(e)}") from None
        self._tell_recorded_pending()

    def _tell_recorded_pending(self) -> None:
        """A trial recorded just before a kill may still be pending in the saved state (the
        state is written after the line): tell it from its record instead of running it again."""
        by_id = {r["trial_id"]: r for r in self.records}
        for proposal in self.searcher.pending:
            record = by_id.get(proposal.trial_id)
            if record is not None:
                score = score_of(record, self.metric)
                self.searcher.tell(proposal.trial_id, score, self.told(score))
                self.pending_steps.pop(proposal.trial_id, None)

    def told(self, score: float | None) -> dict | None:
        """What a searcher is told beside a score: the run's metric only, never a scorer's
        report-only metrics (a table's test accuracy and true rank)."""
        return None if score is None else {self.metric: score}

    @property
    def batched(self) -> bool:
        """Whether a Ray trial scores several candidates (the scorer's ``batch``; never under
        ASHA, which judges one candidate's epochs)."""
        return self.plan.scorer.batch > 1 and self.config.scheduler != "asha"

    @property
    def tensorboard(self) -> bool:
        """Whether Ray's TensorBoard logs are written (batch trials report no curves)."""
        return not self.batched

    @property
    def batch_size(self) -> int:
        """Candidates per Ray trial: the scorer's ``batch`` (1 unless ``batched``), at most a
        ``BATCH_ROUNDS``-th of the budget (the searcher learns between batches) and no more
        than keeps every worker busy."""
        if not self.batched:
            return 1
        remaining = max(1, self.config.trials - len(self.records))
        return max(1, min(self.plan.scorer.batch, self.config.trials // BATCH_ROUNDS,
                          -(-remaining // self.config.workers)))

    def pending_proposals(self) -> list[tuple[str, dict, int]]:
        """The saved state's pending proposals, oldest first: they are issued again first."""
        return [(p.trial_id, p.genotype.to_dict(), self.pending_steps.get(p.trial_id, -1))
                for p in self.searcher.pending]

    def save_state(self) -> None:
        pending = {p.trial_id for p in self.searcher.pending}
        self.pending_steps = {k: v for k, v in self.pending_steps.items() if k in pending}
        self.run_dir.save_state(self.searcher.state_dict(), self.pending_steps)

    # -------------------------------------------------------------- events from the executor

    def on_proposed(self, trial_id: str, step: int) -> None:
        """A new proposal left the searcher: persist it as pending before it runs."""
        self.on_proposed_batch([(trial_id, step)])

    def on_proposed_batch(self, proposals: list[tuple[str, int]]) -> None:
        """New proposals (a batch's) left the searcher: persisted as pending, in one write."""
        self.pending_steps.update(proposals)
        self.save_state()

    def on_finished(self, config: dict, metrics: dict, error: str | None,
                    started_at: float | None = None, **extra) -> None:
        """A trial ended (the searcher has been told): append its line, then save the state.

        ``metrics`` is what the trial reported, with ``final`` (0: stopped early by the
        scheduler), and ``failed``/``error``/``traceback`` when the scorer raised; ``error`` is
        set when the trial was lost (its worker or node died)."""
        record = self._trial_record(config, metrics, error, started_at, **extra)
        if record is not None:
            self._record([record])

    def on_finished_batch(self, config: dict, results: list[dict] | None, error: str | None,
                          started_at: float | None = None, **extra) -> None:
        """A batch trial ended: a line per candidate (``results[k]`` is candidate ``k``'s
        metrics; None with ``error`` when the trial was lost), then the state once."""
        from nasplay.engine.trial import BATCH_KEY

        items = config[BATCH_KEY]
        records = [self._trial_record(item, {} if results is None else results[k], error,
                                      started_at, **extra) for k, item in enumerate(items)]
        self._record([r for r in records if r is not None])

    def _trial_record(self, config: dict, metrics: dict, error: str | None,
                      started_at: float | None, **extra) -> dict | None:
        """A finished trial's line (None if it is recorded already)."""
        trial_id = config.get("trial_id")
        if trial_id is None or trial_id in self.recorded:
            return None
        metrics = dict(metrics)
        final = metrics.pop("final", 1)
        scorer_failed = metrics.pop("failed", 0)
        scorer_error = metrics.pop("error", None)
        if error is None and scorer_failed:
            error = scorer_error or "the scorer failed without a message"
            extra["traceback"] = metrics.pop("traceback", "")
        if error is None and not final:
            metrics["stopped_early"] = True
        self.recorded.add(trial_id)
        return trial_record(trial_id, config["genotype"],
                            "failed" if error is not None else "completed",
                            metrics=metrics, error=error, step=config.get("step"),
                            started_at=started_at, **{k: v for k, v in extra.items() if v})

    def _record(self, records: list[dict]) -> None:
        """Append the lines (one write), then the best genotype, then the searcher state."""
        if not records:
            return
        self.run_dir.append_trials(records)
        for record in records:
            self.records.append(record)
            self.recorded.add(record["trial_id"])
        self._write_best()
        self.save_state()
        if self.progress:
            first = len(self.records) - len(records)
            for k, record in enumerate(records, start=1):
                self.progress.trial_done(record, done=first + k)

    # -------------------------------------------------------------- run

    def trial_settings(self, cpus: float) -> TrialSettings:
        c = self.config
        return TrialSettings(scorer=c.scorer, backend=c.backend, options=self.plan.options,
                             cpus=cpus,
                             gpus=c.gpus_per_trial, mixed_precision=c.mixed_precision,
                             metric=self.metric, report_epochs=c.scheduler == "asha",
                             quiet=quiet())

    def run(self, execute: Executor, rescore: Rescorer | None = None) -> SearchResult:
        """Open the run, let ``execute`` run the remaining trials, re-score the best ones
        (``--rerank-top``, with ``rescore``) if the search ended, and say how it ended."""
        config = self.config
        self.open_run()
        if self.plan.scorer.prepare is not None:
            from nasplay.runtime import quiet

            quiet.start_keras(quiet.find_devices)
            self.plan.options = self.plan.scorer.prepare(self.config, self.run_dir,
                                                         dict(self.plan.options))
        remaining = config.trials - len(self.records)  # the repair may have dropped a torn line
        cpus = config.cpus_per_trial or max(1, int(self.cluster.cpus // config.workers))
        self._announce(cpus, remaining)
        self.progress = Progress(target=config.trials, metric=self.metric, records=self.records)
        start = time.time()
        try:
            outcome = (execute(self, self.trial_settings(cpus), cpus, remaining)
                       if remaining > 0 else "done")
            stopped = self._stopped(outcome, start)
            if stopped in ("finished", "exhausted") and rescore is not None:
                self._rescore(rescore, cpus)
        finally:
            self.progress.close()
        self._write_best()   # a resumed run given another --best-by, with nothing to run
        result = SearchResult(run_dir=self.run_dir.path, records=list(self.records),
                              target=config.trials, metric=self.metric, stopped=stopped,
                              best_by=self.best_by)
        self._summarize(result)
        return result

    # -------------------------------------------------------------- --rerank-top

    def _rescore(self, rescore: Rescorer, cpus: float) -> None:
        due = self.plan.rescoring_due(self.records)
        if not due:
            return
        from nasplay.scorers import get_scorer

        self.rescorer = get_scorer(self.config.rerank_scorer)
        if self.progress:
            self.progress.close()   # the search's line ends before the re-scoring's messages
        metric = self.config.rerank_metric or self.rescorer.metric
        print(f"nasplay search: re-scoring the best {len(due)} by {self.metric} with the "
              f"{self.rescorer.name} scorer ({metric})")
        sys.stdout.flush()
        # the re-scoring phase's own line: its count, its best and its ETA
        self.rescored = []
        self.progress = Progress(target=len(due), metric=metric,
                                 records=self.rescored, label="re-scoring")
        settings = replace(self.trial_settings(cpus), scorer=self.rescorer.name,
                           options=self.plan.rescore_options, metric=metric,
                           report_epochs=False)
        rescore(self, settings, cpus, [{"trial_id": r["trial_id"], "genotype": r["genotype"],
                                        "step": r.get("step", -1)} for r in due])

    def on_rescored(self, config: dict, metrics: dict, error: str | None, **extra) -> None:
        """A re-scoring trial ended: append its line (merged into the trial's record)."""
        record = next((r for r in self.records if r["trial_id"] == config.get("trial_id")), None)
        if record is None or "rescore" in record:
            return
        metrics = {k: v for k, v in metrics.items() if k != "final"}
        if error is None and metrics.pop("failed", 0):
            error = metrics.pop("error", None) or "the scorer failed without a message"
        metric = reported = self.config.rerank_metric or self.rescorer.metric
        if metric in (record.get("metrics") or {}):  # the trial has its own (a scorer re-ranking
            metric = f"rescored_{metric}"  # itself): the second gets its own name, both kept
            if reported in metrics:
                metrics[metric] = metrics[reported]
        line = rescore_record(record["trial_id"], self.rescorer.name, metric,
                              "failed" if error else "completed", metrics, error)
        self.run_dir.append_trial(line)
        merge_rescore(record, line)
        # the re-scoring metric decides the run's best among the re-scored: best_genotype.json
        # follows it (nasplay train --genotype RUN_DIR reads that file)
        self._write_best()
        # the re-scoring's own view of it: its status, its metrics (the trial's stay its own)
        view = {"trial_id": record["trial_id"], **line["rescore"]}
        self.rescored.append(view)
        note = f" (re-scored; {self.metric} {score_of(record, self.metric):.4f})"
        if self.progress:
            self.progress.trial_done(view, note=note)
        else:
            print(f"{record['trial_id']} re-scored{note}")

    def _write_best(self) -> None:
        """Keep best_genotype.json on the run's best (``records.run_best``: by --best-by's rank
        average, else the best re-scored, else the best by the metric), written when it
        changes; every record may change it (a rank is relative to the other candidates)."""
        from search_space import Genotype

        best = run_best(self.records, self.metric, self.best_by)[0]
        if best is not None and best is not self.written:
            self.run_dir.write_best(Genotype.from_dict(best["genotype"]).to_json())
            self.written = best

    def _stopped(self, outcome: str, start: float) -> str:
        if len(self.records) >= self.config.trials:
            return "finished"
        if outcome == "exhausted":
            return "exhausted"
        budget = self.config.time_budget_s
        if budget and time.time() - start >= budget:
            return "time budget"
        return "interrupted"

    def _announce(self, cpus: float, remaining: int) -> None:
        c, cluster = self.config, self.cluster
        where = (f"Ray cluster at {c.address}" if c.address not in (None, "local")
                 else "local Ray")
        if not cluster.owned:
            where = "the running Ray session"
        gpus = f" + {c.gpus_per_trial:g} GPU" if c.gpus_per_trial else ""
        verb = "resuming" if self.plan.resume else "starting"
        print(f"nasplay search: {verb} {c.searcher} on {c.space}, {remaining} of {c.trials} "
              f"trials to go; {where} ({cluster.nodes} node(s), {cluster.cpus:g} CPUs, "
              f"{cluster.gpus:g} GPUs), {c.workers} worker(s) x {cpus:g} CPU{gpus}"
              + (f", {plural(self.batch_size, 'candidate')} a trial" if self.batched else ""))
        for note in self.plan.notes:
            print(f"nasplay search: warning: {note}")
        fits = cluster.trials_that_fit(cpus, c.gpus_per_trial)
        if fits < c.workers:
            print(f"nasplay search: note: only {fits} trial(s) fit on the cluster at once, "
                  f"not {c.workers}")
        sys.stdout.flush()

    def _summarize(self, result: SearchResult) -> None:
        path = self.run_dir.path
        lines = [f"{len(result.records)} of {plural(result.target, 'trial')} recorded "
                 f"({result.completed} completed, {result.failed} failed) in {path}"]
        lines += best_lines(result.records, self.metric, self.run_dir.best_path, self.best_by)
        if result.all_failed:
            error, count = result.most_common_error()
            lines.append(f"every trial failed; the most common error ({count} of "
                         f"{len(result.records)}): {error[:300]}")
        if result.stopped == "exhausted":
            lines.append("the searcher has no new genotype left to propose (the space is "
                         "exhausted)")
        elif result.stopped in ("interrupted", "time budget"):
            lines.append(f"stopped ({result.stopped}); continue with: nasplay search --run-dir "
                         f"{path} --resume")
        if self.tensorboard:
            lines.append(f"TensorBoard: tensorboard --logdir {self.run_dir.ray_path}")
        for line in lines:
            print(f"nasplay search: {line}")
        sys.stdout.flush()

