"""The ask/tell protocol every searcher speaks, and the bookkeeping all of them share.

The protocol has the shape of Ray Tune's ``suggest`` / ``on_trial_complete`` so that one adapter
serves every algorithm, and it is asynchronous: any number of proposals may be outstanding, and
scores come back in any order. ``BaseSearcher`` holds what is the same for every algorithm:

- trial ids (``"<searcher>-00012"``: the searcher's name and the order of proposal);
- de-duplication: an ask never returns a genotype already proposed in this search, nor one that
  builds the same network (compared by the hash of the space's ``canonical`` form where it has
  one, else ``Genotype.hash()``); a failed genotype stays "proposed", since it would most likely
  fail again;
- pending trials, told with a score or with ``None`` (failed: it never reaches the algorithm);
- results the searcher did not propose (``observe``: a warm start from another run, a re-run of a
  trial that had failed), which teach the algorithm as a told result does and are never proposed;
- a JSON-able ``state_dict`` holding the random generator's exact state, so a searcher restored
  from it proposes exactly what the uninterrupted one would have.

Subclasses implement ``_propose`` and the hooks ``_on_result`` / ``_on_failure`` / ``_on_observe``,
and add their own fields with ``_extra_state`` / ``_load_extra_state``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Protocol, runtime_checkable

import numpy as np

from search_space import GENOTYPE_TYPES, Genotype, SearchSpace

# How many draws (samples or mutations) an ask tries before it falls back to the next source of
# candidates. A draw is tens of microseconds, so this bounds an ask to a few milliseconds even
# when the search is nearly exhausting the space.
MAX_DRAWS = 100
# Spaces at most this large are enumerated as the last resort of de-duplication, so a tiny space
# is searched to exhaustion (then the searcher reports ``finished``) instead of stalling.
ENUMERATE_LIMIT = 200_000
# Bumped when the layout of ``state_dict`` changes incompatibly.
STATE_VERSION = 1


@dataclass(frozen=True)
class Proposal:
    """One candidate to evaluate; tell its score back under ``trial_id``."""

    trial_id: str
    genotype: Genotype


@runtime_checkable
class Searcher(Protocol):
    """What the runner and the adapters need from a searcher.

    ``ask`` returns ``None`` when there is nothing to propose now (``finished`` says whether there
    ever will be); ``tell`` with ``score=None`` reports a failed trial.
    """

    def ask(self) -> Proposal | None: ...

    def tell(self, trial_id: str, score: float | None, metrics: dict | None = None) -> None: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...

    @property
    def finished(self) -> bool: ...


@dataclass
class Pending:
    """A proposal awaiting its score, plus what the algorithm needs when the score arrives."""

    genotype: Genotype
    extra: dict[str, Any] = field(default_factory=dict)  # JSON-able, algorithm-specific


def clean_score(score: Any) -> float | None:
    """The score as a float, or ``None`` (failed) for ``None``, NaN, infinities and non-numbers.

    The one rule for "is this a score?" shared by the searchers, both adapters and the run
    records. A NaN accuracy (diverged training) must not enter a tournament or a baseline, where
    one NaN would make every comparison or average after it meaningless; an infinite loss is a
    diverged trial too, not the best one. Booleans and strings are not scores.
    """
    if score is None or isinstance(score, (bool, str, bytes)):
        return None
    try:
        value = float(score)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


MODES = ("min", "max")  # a host's direction: Ray Tune's mode, keras-tuner's objective direction


def check_mode(mode, where: str = "mode") -> str:
    """``mode`` if it is "min" or "max"; a ValueError naming it otherwise."""
    if mode not in MODES:
        raise ValueError(f"{where} must be 'min' or 'max', got {mode!r}")
    return mode


def oriented(value, mode: str, what: str) -> float | None:
    """A host's metric value as our score (higher is better): ``None`` for a failed value
    (None, NaN, inf), negated for ``mode="min"``. A value that is no number at all is an error,
    not a failure: the objective is misnamed or misreported, and every trial would "fail"."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
        raise ValueError(f"{what} is {value!r} ({type(value).__name__}), not a number")
    score = clean_score(value)
    if score is None:
        return None
    return -score if mode == "min" else score


class BaseSearcher:
    """Bookkeeping shared by the searchers; see the module docstring."""

    name: ClassVar[str] = "base"

    def __init__(self, space: SearchSpace, seed: int = 0, max_trials: int | None = None):
        if max_trials is not None and max_trials < 0:
            raise ValueError(f"max_trials must be None or >= 0, got {max_trials}")
        self.space = space
        self.seed = int(seed)
        self.max_trials = max_trials
        self._rng = np.random.default_rng(self.seed)
        self._step = 0  # proposals issued so far
        self._seen: set[str] = set()  # network keys (``_key``) of every genotype proposed
        self._by_network = True  # False: a state saved before searchers compared networks
        self._pending: dict[str, Pending] = {}
        self._num_completed = 0
        self._num_failed = 0
        self._num_observed = 0  # results observed (not proposed by this searcher)
        self._best: dict | None = None  # {"trial_id", "score", "genotype": dict}
        self._exhausted = False

    # ----------------------------------------------------------------- protocol

    @property
    def finished(self) -> bool:
        """True once the budget (``max_trials`` proposals) is spent or the space is exhausted."""
        if self._exhausted:
            return True
        return self.max_trials is not None and self._step >= self.max_trials

    def ask(self) -> Proposal | None:
        if self.finished:
            return None
        proposed = self._propose()
        if proposed is None:
            return None
        genotype, extra = proposed
        trial_id = f"{self.name}-{self._step:05d}"
        self._step += 1
        self._seen.add(self._key(genotype))
        self._pending[trial_id] = Pending(genotype, extra)
        return Proposal(trial_id, genotype)

    def tell(self, trial_id: str, score: float | None, metrics: dict | None = None) -> None:
        """Report a pending trial's score (higher is better), or ``None`` if it failed.

        ``metrics`` are accepted for the protocol's sake and passed to the hooks; the algorithms
        here rank by ``score`` alone.
        """
        try:
            pending = self._pending.pop(trial_id)
        except KeyError:
            known = ", ".join(list(self._pending)[:5]) or "none"
            raise ValueError(
                f"tell: trial_id {trial_id!r} is not pending (told twice, or never asked); "
                f"pending: {known}"
            ) from None
        value = clean_score(score)
        if value is None:
            self._num_failed += 1
            self._on_failure(trial_id, pending, metrics)
            return
        self._num_completed += 1
        if self._best is None or value > self._best["score"]:
            self._best = {"trial_id": trial_id, "score": value, "genotype": pending.genotype.to_dict()}
        self._on_result(trial_id, pending, value, metrics)

    def observe(self, genotype: Genotype, score: float | None, metrics: dict | None = None, *,
                trial_id: str | None = None) -> None:
        """Learn from a genotype evaluated outside this searcher's asks (higher is better).

        A warm start from another run's results, or a trial re-run after it had failed: the
        algorithm learns from it as from a told result (evolution: it joins the population;
        controller: it moves the baseline and the policy; random: nothing to learn), it counts
        for ``best``, and it is never proposed afterwards. ``score=None`` (or NaN, inf) is a
        failed evaluation: only remembered, so it is not proposed. ``trial_id`` names it in the
        searcher's records (default ``"observed-00000"``, numbered in order of observation).
        Neither ``num_proposed`` nor ``num_completed`` counts it (``num_observed`` does), so a
        search's budget stays the number of genotypes it proposes.

        Raises ``ValueError`` when the genotype does not fit this searcher's space.
        """
        genotype = self._own(genotype)
        trial_id = trial_id or f"observed-{self._num_observed:05d}"
        self._num_observed += 1
        self._seen.add(self._key(genotype))
        value = clean_score(score)
        if value is None:
            return
        if self._best is None or value > self._best["score"]:
            self._best = {"trial_id": trial_id, "score": value, "genotype": genotype.to_dict()}
        self._on_observe(trial_id, genotype, value, metrics)

    def _own(self, genotype: Genotype) -> Genotype:
        """``genotype`` validated in this space and labelled with its name, so that it hashes
        (and de-duplicates) like this searcher's own proposals."""
        if not isinstance(genotype, GENOTYPE_TYPES):
            raise ValueError(f"genotype: expected a Genotype, got {type(genotype).__name__}")
        self.space.validate(genotype)
        if genotype.space == self.space.name:
            return genotype
        return dataclasses.replace(genotype, space=self.space.name)

    # ----------------------------------------------------------------- introspection

    @property
    def num_proposed(self) -> int:
        return self._step

    @property
    def num_completed(self) -> int:
        return self._num_completed

    @property
    def num_failed(self) -> int:
        return self._num_failed

    @property
    def num_observed(self) -> int:
        """Results learned through ``observe`` (warm start, re-runs), not through ask/tell."""
        return self._num_observed

    @property
    def pending(self) -> tuple[Proposal, ...]:
        """Proposals asked and not yet told, oldest first. After a restore these are the trials
        that were running when the state was saved: run them again, or tell them ``None``."""
        return tuple(Proposal(tid, p.genotype) for tid, p in self._pending.items())

    @property
    def best(self) -> tuple[float, Genotype] | None:
        """The best (score, genotype) told so far, or None before the first success."""
        if self._best is None:
            return None
        return self._best["score"], Genotype.from_dict(self._best["genotype"])

    # ----------------------------------------------------------------- state

    def config(self) -> dict:
        """Settings that change what the searcher proposes; a state only loads into a searcher
        built with the same ones (``seed`` and ``max_trials`` are excluded: the generator's state
        is restored, and a resumed search may be given a larger budget)."""
        return {}

    def state_dict(self) -> dict:
        state = {
            "searcher": self.name,
            "version": STATE_VERSION,
            "space": self.space.name,
            "config": self.config(),
            "seed": self.seed,
            # PCG64's state holds 128-bit ints; Python's json writes and reads them exactly.
            "rng": self._rng.bit_generator.state,
            "step": self._step,
            "seen": sorted(self._seen),
            "seen_by": "network" if self._by_network else "genotype",
            "pending": [
                {"trial_id": tid, "genotype": p.genotype.to_dict(), "extra": p.extra}
                for tid, p in self._pending.items()
            ],
            "num_completed": self._num_completed,
            "num_failed": self._num_failed,
            "num_observed": self._num_observed,
            "best": self._best,
            "exhausted": self._exhausted,
        }
        state.update(self._extra_state())
        return state

    def load_state_dict(self, state: dict) -> None:
        if state.get("searcher") != self.name:
            raise ValueError(
                f"state is for searcher {state.get('searcher')!r}, not {self.name!r}"
            )
        if state.get("version") != STATE_VERSION:
            raise ValueError(
                f"state version {state.get('version')!r} is not supported (expected {STATE_VERSION})"
            )
        if state.get("space") != self.space.name:
            raise ValueError(
                f"state is for space {state.get('space')!r}, this searcher searches {self.space.name!r}"
            )
        mismatched = {
            key: (state["config"].get(key), value)
            for key, value in self.config().items()
            if state["config"].get(key) != value
        }
        if mismatched:
            detail = ", ".join(f"{k}: state {s!r} vs {c!r}" for k, (s, c) in mismatched.items())
            raise ValueError(f"state was saved with other {self.name} settings ({detail})")
        self.seed = int(state["seed"])  # this is now the continuation of that seed's search
        rng = np.random.default_rng()
        rng.bit_generator.state = state["rng"]
        self._rng = rng
        self._step = int(state["step"])
        self._seen = set(state["seen"])
        # a run saved before searchers compared networks goes on comparing genotypes, as it did
        self._by_network = state.get("seen_by") == "network"
        self._pending = {
            item["trial_id"]: Pending(Genotype.from_dict(item["genotype"]), dict(item["extra"]))
            for item in state["pending"]
        }
        self._num_completed = int(state["num_completed"])
        self._num_failed = int(state["num_failed"])
        self._num_observed = int(state.get("num_observed", 0))  # absent in states before observe
        self._best = state["best"]
        self._exhausted = bool(state["exhausted"])
        self._load_extra_state(state)

    # Pickling goes through the constructor and state_dict, so that searchers holding framework
    # objects (the controller's Keras model) travel to Ray's driver and back like the others.
    def __getstate__(self) -> dict:
        return {"init": self._init_kwargs(), "state": self.state_dict()}

    def __setstate__(self, payload: dict) -> None:
        self.__init__(**payload["init"])
        self.load_state_dict(payload["state"])

    def _init_kwargs(self) -> dict:
        return {"space": self.space, "seed": self.seed, "max_trials": self.max_trials, **self.config()}

    # ----------------------------------------------------------------- for subclasses

    def _propose(self) -> tuple[Genotype, dict] | None:
        """A new genotype (never proposed before) and the algorithm's notes about it, or None."""
        raise NotImplementedError

    def _on_result(self, trial_id: str, pending: Pending, score: float, metrics: dict | None) -> None:
        pass

    def _on_failure(self, trial_id: str, pending: Pending, metrics: dict | None) -> None:
        pass

    def _on_observe(self, trial_id: str, genotype: Genotype, score: float, metrics: dict | None) -> None:
        """A result from ``observe`` (finite score, genotype of this space); default: nothing."""

    def _extra_state(self) -> dict:
        return {}

    def _load_extra_state(self, state: dict) -> None:
        pass

    def _key(self, genotype: Genotype) -> str:
        """What makes two proposals the same: the network a genotype builds (the space's
        ``canonical`` form, where it has one: an ``nb201`` cell with a dead edge is the cell
        without it), so no network is scored twice under two names."""
        canonical = getattr(self.space, "canonical", None)
        if self._by_network and canonical is not None:
            genotype = canonical(genotype)
        return genotype.hash()

    def _is_new(self, genotype: Genotype) -> bool:
        return self._key(genotype) not in self._seen

    def _first_new(self, draw: Callable[[], Genotype], draws: int = MAX_DRAWS) -> Genotype | None:
        for _ in range(draws):
            genotype = draw()
            if self._is_new(genotype):
                return genotype
        return None

    def _unique(self, draw: Callable[[], Genotype]) -> tuple[Genotype, str] | None:
        """A genotype not proposed before, and where it came from.

        Tries the algorithm's own ``draw`` (sample from the policy, mutate the parent, ...) up to
        ``MAX_DRAWS`` times, then uniform samples from the space, then (small spaces only) the
        first unproposed genotype in enumeration order. Returns ``("draw" | "random" |
        "enumerate")`` as the origin; None, and the search is marked exhausted, when every
        genotype of a small space has been proposed. For a large space None means that
        ``2 * MAX_DRAWS`` draws all hit proposed genotypes, which is practically impossible.
        """
        genotype = self._first_new(draw)
        if genotype is not None:
            return genotype, "draw"
        genotype = self._first_new(lambda: self.space.sample(self._rng))
        if genotype is not None:
            return genotype, "random"
        if self.space.size() <= ENUMERATE_LIMIT:
            for decisions in itertools.product(*(range(n) for n in self.space.decision_sizes())):
                genotype = self.space.decode(decisions)
                if self._is_new(genotype):
                    return genotype, "enumerate"
            self._exhausted = True
        return None


def warm_start(searcher: BaseSearcher, results) -> int:
    """Seed ``searcher`` with known results: ``[(genotype, score), ...]``, oldest first.

    For starting a search from another run's completed trials (``nasplay search --warm-start``):
    each pair goes to ``searcher.observe`` (evolution: the population; controller: baseline and
    policy; random: not proposed again). A genotype may be a ``Genotype`` or its ``to_dict()``;
    a ``None``/NaN/inf score is a failed trial, remembered but not learned from. Returns how
    many results had a score.

    Everything is checked before anything is observed, so a refused list leaves the searcher as
    it was. Raises a one-line ``ValueError`` for an empty list, a list without a single score,
    or a genotype of another space (labelled with another space's name, or not fitting this one).
    """
    space = searcher.space
    pairs = []
    for k, item in enumerate(results):
        try:
            genotype, score = item
        except (TypeError, ValueError):
            raise ValueError(f"warm start: result {k} is not a (genotype, score) pair: "
                             f"{type(item).__name__}") from None
        if isinstance(genotype, dict):
            try:
                genotype = Genotype.from_dict(genotype)
            except (TypeError, ValueError, KeyError) as e:
                raise ValueError(f"warm start: result {k} is not a genotype: "
                                 f"{_one_line(e)}") from None
        if not isinstance(genotype, GENOTYPE_TYPES):
            raise ValueError(f"warm start: result {k}: expected a Genotype or its dict, got "
                             f"{type(genotype).__name__}")
        if genotype.space != space.name:
            raise ValueError(f"warm start: result {k} is a genotype of space {genotype.space!r}; "
                             f"this search is in space {space.name!r}")
        try:
            space.validate(genotype)
        except ValueError as e:
            raise ValueError(f"warm start: result {k} does not fit space {space.name!r}: "
                             f"{_one_line(e)}") from None
        pairs.append((genotype, score))
    if not pairs:
        raise ValueError("warm start: no results to start from (an empty list)")
    if all(clean_score(score) is None for _, score in pairs):
        raise ValueError(f"warm start: none of the {len(pairs)} results has a score (all failed)")
    for genotype, score in pairs:
        searcher.observe(genotype, score)
    return sum(clean_score(score) is not None for _, score in pairs)


def _one_line(error: BaseException) -> str:
    """An exception's first line (a KeyError's without its quotes); ``searchers`` may not import
    ``nasplay.errors.first_line``, which lives a layer above."""
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    lines = text.strip().splitlines()
    return lines[0] if lines else type(error).__name__
