"""The comparison study script with a fake scorer: run directories, summary table, overlay."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from nasplay.report.inspect import load_run
from nasplay.runs import rundir

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "compare_searchers.py"


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location("compare_searchers", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def convs(genotype) -> dict:
    """A stand-in for the zero-cost score: how many convolutions the two cells hold."""
    cells = (genotype.normal, genotype.reduction)
    ops = [op for cell in cells for block in cell.blocks for op in block.ops]
    return {"naswot": float(sum("conv" in op for op in ops))}


def test_study_writes_one_readable_run_per_searcher_and_seed(study, tmp_path):
    args = study.parse_args(["--out", str(tmp_path), "--trials", "6", "--seeds", "0", "1",
                             "--searchers", "random", "evolution", "--population-size", "3",
                             "--sample-size", "2"])
    run_dirs = study.run_study(args, convs, {})
    assert sorted(d.name for d in run_dirs) == ["evolution-s0", "evolution-s1", "random-s0",
                                                "random-s1"]
    for run_dir in run_dirs:
        trials = rundir.read_trials(run_dir)
        assert len(trials) == 6 and all(t["status"] == "completed" for t in trials)
        config = rundir.read_config(run_dir)
        assert config["scorer"] == "zero-cost" and config["space"] == "nasnet"
        assert rundir.run_metric(config) == "naswot"
    runs = [load_run(d) for d in run_dirs]
    table = study.summary_table(runs, budget=6)
    rows = [line for line in table.splitlines() if line.startswith("| random")
            or line.startswith("| evolution")]
    assert len(rows) == 2 and "±" in rows[0]


def test_study_refuses_to_overwrite_without_the_flag(study, tmp_path):
    (tmp_path / "random-s0").mkdir()
    args = study.parse_args(["--out", str(tmp_path), "--trials", "2", "--seeds", "0",
                             "--searchers", "random"])
    with pytest.raises(SystemExit, match="--overwrite"):
        study.run_study(args, convs, {})


def test_failing_scorer_records_failed_trials(study, tmp_path):
    def broken(genotype):
        raise RuntimeError("out of memory")

    args = study.parse_args(["--out", str(tmp_path), "--trials", "3", "--seeds", "0",
                             "--searchers", "random"])
    (run_dir,) = study.run_study(args, broken, {})
    trials = rundir.read_trials(run_dir)
    assert [t["status"] for t in trials] == ["failed"] * 3
    assert trials[0]["error"] == "RuntimeError: out of memory"
