"""The best (or a chosen) trial's cells as a Keras network in a ``.keras`` file (``nasplay
export``).

The network is built from the trial's genotype with ``cells.build_network`` and saved untrained:
a run records genotypes and scores, not the proxy's weights (they belong to a few epochs on a
subset and are not worth keeping). Its genotype goes beside it as ``FILE.genotype.json``
(``model.keras`` -> ``model.genotype.json``), which ``search_space.load_genotype`` and
``nasplay train --genotype`` read. Without ``--out`` both go to ``RUN_DIR/export/``, named after
the trial (``export/evolution-00012.keras``): beside the search's ``best_genotype.json`` an
export's ``best.genotype.json`` read as the same file under two spellings. Loading needs the
custom layers registered::

    import cells, keras
    model = keras.saving.load_model("model.keras")

Network settings default to the run's (``config.json``), then to ``build_network``'s defaults
(for an ``nb201`` genotype, NAS-Bench-201's network: 5 cells per stage, not 2).
Both files are written atomically (``search_space.files``), so a failed export leaves no
half-written file, and an existing file is only replaced with ``--overwrite``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from nasplay.errors import UserError, check_int
from nasplay.runs import rundir
from nasplay.runs.records import run_best
from search_space.files import atomic_write

GENOTYPE_SUFFIX = ".genotype.json"
EXPORT_DIR = "export"          # in the run directory: where an export goes without --out
# build_network's defaults, used when neither the command line nor the run's config says;
# cells_per_stage None: the genotype's kind decides (cells.network.default_cells_per_stage)
DEFAULTS = {"filters": 16, "cells_per_stage": None, "num_classes": 10}


def genotype_path(model_path) -> Path:
    """``model.keras`` -> ``model.genotype.json``, the genotype written beside an export."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + GENOTYPE_SUFFIX)


def check_out_path(out, overwrite: bool = False) -> Path:
    """The output path, or a UserError: bad suffix, missing or unwritable folder, existing file."""
    out = Path(out)
    if out.suffix != ".keras":
        raise UserError(f"--out must end in .keras (Keras's native format), got {out}")
    folder = out.parent
    if not folder.is_dir():
        raise UserError(f"cannot write {out}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {out}: folder {folder} is not writable")
    if not overwrite:
        for path in (out, genotype_path(out)):
            if path.exists():
                raise UserError(f"{path} exists; pass --overwrite to replace it")
    if out.is_dir():
        raise UserError(f"{out} is a directory; --out must name a file")
    return out


def pick_trial(run_dir, trials: list[dict], trial_id: str | None, metric: str,
               rescored: bool = False, best_by=()) -> dict:
    """The chosen trial, or the best scored one; UserErrors as ``nasplay.runs.rundir`` says.
    ``rescored``: the run's best as the search picked it (``records.run_best``, as
    ``best_genotype.json``): by ``best_by``'s rank average where the run was given one, else
    the best re-scored one by the re-scoring metric where it re-scored its best."""
    if trial_id is not None:
        if not trials:
            rundir.require_scored(run_dir, trials, metric)   # the "no trials yet" message
        return rundir.find_trial(run_dir, trials, trial_id)
    best = run_best(trials, metric, best_by)[0] if rescored else None
    if best is not None:
        return best
    return rundir.require_scored(run_dir, trials, metric)[0]


def network_settings(config: dict, overrides: dict) -> dict:
    """``overrides`` (the command line; None: not given) over the run's config over
    ``DEFAULTS``, each checked against its minimum."""
    settings = {**DEFAULTS, **rundir.network_settings(config)}
    for key, minimum in rundir.NETWORK_KEYS.items():
        value = overrides.get(key)
        if value is not None:
            settings[key] = check_int(f"--{key.replace('_', '-')}", value, minimum)
    return settings


def _write(path: Path, write) -> None:
    """``write(tmp)`` into ``path`` atomically; an OS error is the user's (a full disk, a
    read-only folder) and leaves ``path`` as it was."""
    try:
        atomic_write(path, write)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror or e}") from None


def default_out(run_dir, trial: dict) -> Path:
    """``RUN_DIR/export/<trial_id>.keras``: an export of its own folder, so its genotype file
    (``<trial_id>.genotype.json``) is not confused with the search's ``best_genotype.json``."""
    return Path(run_dir) / EXPORT_DIR / f"{_safe(trial.get('trial_id'))}.keras"


def export(run_dir, out=None, trial_id: str | None = None, overwrite: bool = False,
           metric: str | None = None, **overrides) -> tuple[Path, Path, dict]:
    """Build and save the network of a run's best (or chosen) trial, to ``out`` (default:
    ``default_out``).

    ``overrides`` may set ``filters``, ``cells_per_stage`` and ``num_classes``. Returns the model
    path, the genotype path and the trial record with ``network`` (the settings) and ``params``.
    """
    if out is not None:
        out = check_out_path(out, overwrite)
    run_dir = rundir.check_run_dir(run_dir)
    config = rundir.read_config(run_dir)
    trials = rundir.read_trials(run_dir)
    # without --metric, the run's best as the search chose it (a re-scored one, if any)
    trial = pick_trial(run_dir, trials, trial_id, rundir.run_metric(config, metric),
                       rescored=metric is None, best_by=rundir.best_by(config))
    if out is None:
        out = default_out(run_dir, trial)
        try:
            out.parent.mkdir(exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot write {out}: {e.strerror or e}") from None
        out = check_out_path(out, overwrite)
    if trial.get("status") != "completed":
        print(f"warning: trial {trial.get('trial_id')!r} did not complete "
              f"({trial.get('status')}); exporting its genotype anyway", file=sys.stderr)
    from search_space import Genotype

    try:
        genotype = Genotype.from_dict(trial.get("genotype"))
    except ValueError as e:
        raise UserError(f"trial {trial.get('trial_id')!r} has an invalid genotype: {e}") from None
    settings = network_settings(config, overrides)

    import cells
    from cells.network import default_cells_per_stage

    if settings["cells_per_stage"] is None:
        settings["cells_per_stage"] = default_cells_per_stage(genotype)
    model = cells.build_network(genotype, name=f"{genotype.space}_{_safe(trial.get('trial_id'))}",
                                **settings)
    genotype_out = genotype_path(out)
    _write(out, model.save)
    _write(genotype_out, lambda tmp: tmp.write_text(genotype.to_json() + "\n", encoding="utf-8"))
    return out, genotype_out, {**trial, "network": settings, "params": model.count_params()}


def _safe(name) -> str:
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in str(name))
