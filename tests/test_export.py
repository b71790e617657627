"""``nasplay export`` on a run directory the tests write: save, reload, predict; bad input."""

from __future__ import annotations

import numpy as np
import pytest

from fake_runs import fake_trials, write_run
from nasplay.cli import dispatch as cli
from nasplay.report.export import genotype_path
from nasplay.runs import rundir
from search_space import Genotype, load_genotype

TINY = ["--filters", "4", "--cells-per-stage", "1"]


@pytest.fixture
def run_dir(tmp_path):
    return write_run(tmp_path / "run", fake_trials(8, seed=5))


def export(capsys, *argv):
    code = cli.main(["export", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_export_best_reloads_and_predicts(run_dir, tmp_path, capsys):
    import keras

    import cells  # noqa: F401  registers the custom layers for loading

    out = tmp_path / "best.keras"
    code, stdout, err = export(capsys, run_dir, "--out", out, "--num-classes", "3", *TINY)
    assert code == 0, err
    model = keras.saving.load_model(out)
    probabilities = np.asarray(model(np.zeros((2, 32, 32, 3), "float32"), training=False))
    assert probabilities.shape == (2, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    best = rundir.ranked(rundir.read_trials(run_dir))[0]
    assert load_genotype(genotype_path(out)) == Genotype.from_dict(best["genotype"])
    assert best["trial_id"] in stdout and str(genotype_path(out)) in stdout


class FakeModel:
    """Stands in for a built network where choosing the trial is the behaviour under test."""

    def __init__(self, genotype, **settings):
        self.genotype, self.settings = genotype, settings

    def save(self, path):
        open(path, "wb").close()

    def count_params(self):
        return 1


def test_export_chosen_trial_writes_its_genotype(run_dir, tmp_path, capsys, monkeypatch):
    import cells

    built = []

    def build_network(genotype, **settings):
        built.append(FakeModel(genotype, **settings))
        return built[-1]

    monkeypatch.setattr(cells, "build_network", build_network)
    chosen = rundir.read_trials(run_dir)[-1]
    code, _, err = export(capsys, run_dir, "--out", tmp_path / "m.keras", "--trial",
                          chosen["trial_id"], *TINY)
    assert code == 0, err
    assert (tmp_path / "m.keras").is_file()
    assert built[0].genotype == Genotype.from_dict(chosen["genotype"])
    assert built[0].settings["filters"] == 4 and built[0].settings["cells_per_stage"] == 1
    assert Genotype.from_json((tmp_path / "m.genotype.json").read_text()) == \
        Genotype.from_dict(chosen["genotype"])


def test_network_settings_default_to_the_runs():
    from nasplay.report.export import network_settings

    not_given = {"filters": None, "cells_per_stage": None, "num_classes": None}
    searched = {"filters": 8, "cells_per_stage": 0, "scorer": "zero-cost"}   # config.json keys
    assert network_settings(searched, not_given) == {"filters": 8, "cells_per_stage": 0,
                                                     "num_classes": 10}
    # today's config.json: the scorer's settings in scorer_options (above: the older layout)
    today = {"scorer": "zero-cost", "scorer_options": {"filters": 6, "cells_per_stage": 2}}
    assert network_settings(today, not_given) == {"filters": 6, "cells_per_stage": 2,
                                                  "num_classes": 10}
    assert network_settings({"filters": None}, {"filters": 12})["filters"] == 12
    assert network_settings({"filters": None}, {})["filters"] == 16      # build_network's
    assert network_settings({}, {})["cells_per_stage"] is None  # the genotype's kind decides


@pytest.fixture
def nb201_run(tmp_path):
    """A run over NAS-Bench-201's space whose config does not say how many cells it used."""
    config = {"searcher": "random", "space": "nb201", "seed": 0, "filters": 2}
    return write_run(tmp_path / "nb201", fake_trials(4, seed=1, space="nb201"), config)


def test_export_of_an_nb201_run_reloads_and_predicts(nb201_run, tmp_path, capsys):
    import keras

    import cells

    out = tmp_path / "nb201.keras"
    code, stdout, err = export(capsys, nb201_run, "--out", out, "--cells-per-stage", "1")
    assert code == 0, err
    model = keras.saving.load_model(out)
    assert sum(isinstance(layer, cells.EdgeCell) for layer in model.layers) == 3
    assert model(np.zeros((2, 32, 32, 3), "float32"), training=False).shape == (2, 10)
    best = rundir.ranked(rundir.read_trials(nb201_run))[0]
    assert load_genotype(genotype_path(out)) == Genotype.from_dict(best["genotype"])
    assert "cells_per_stage=1" in stdout


def test_an_nb201_export_defaults_to_nas_bench_201s_five_cells(nb201_run, tmp_path, capsys,
                                                               monkeypatch):
    import cells

    built = []
    monkeypatch.setattr(cells, "build_network",
                        lambda genotype, **settings: built.append(settings) or FakeModel(genotype))
    code, stdout, err = export(capsys, nb201_run, "--out", tmp_path / "m.keras")
    assert code == 0, err
    assert built[0]["cells_per_stage"] == 5 and "cells_per_stage=5" in stdout


@pytest.mark.parametrize("case", ["not_a_run", "empty", "all_failed", "no_such_trial",
                                  "exists", "no_folder", "folder_is_a_file", "wrong_suffix"])
def test_bad_input_exits_2_with_one_line(run_dir, tmp_path, capsys, case):
    out = tmp_path / "m.keras"
    source = run_dir
    extra = []
    if case == "not_a_run":
        source = tmp_path
    elif case == "empty":
        source = write_run(tmp_path / "empty", [])
    elif case == "all_failed":
        source = write_run(tmp_path / "failed", fake_trials(3, failed_every=1))
    elif case == "no_such_trial":
        extra = ["--trial", "random-99999"]
    elif case == "exists":
        out.write_bytes(b"precious")
    elif case == "no_folder":
        out = tmp_path / "missing" / "m.keras"
    elif case == "folder_is_a_file":
        (tmp_path / "a-file").write_text("")
        out = tmp_path / "a-file" / "m.keras"
    elif case == "wrong_suffix":
        out = tmp_path / "m.h5"
    code, _, err = export(capsys, source, "--out", out, *extra, *TINY)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("nasplay export: error:")
    if case == "exists":
        assert out.read_bytes() == b"precious" and "--overwrite" in err


def test_export_takes_the_best_rescored_trial_of_a_rescored_run(tmp_path, capsys, monkeypatch):
    # a one-shot run that re-scored its best 2: the second by oneshot_accuracy scored higher by
    # the proxy, so it is the run's best (as its best_genotype.json); --metric still ranks by one
    import cells
    from nasplay.runs.records import rescore_record

    trials = [t for t in fake_trials(8, seed=5, failed_every=0)]
    for k, trial in enumerate(trials):
        trial["metrics"] = {"oneshot_accuracy": 0.1 + 0.01 * k}
    run = write_run(tmp_path / "run", trials, config={"scorer": "oneshot",
                                                      "metric": "oneshot_accuracy",
                                                      "filters": 4, "cells_per_stage": 1})
    writer = rundir.RunDir(run)
    writer.append_trial(rescore_record(trials[-1]["trial_id"], "proxy", "val_accuracy",
                                       "completed", {"val_accuracy": 0.378}))
    writer.append_trial(rescore_record(trials[-2]["trial_id"], "proxy", "val_accuracy",
                                       "completed", {"val_accuracy": 0.411}))
    built = []

    def build_network(genotype, **settings):
        built.append(FakeModel(genotype, **settings))
        return built[-1]

    monkeypatch.setattr(cells, "build_network", build_network)
    code, stdout, err = export(capsys, run, "--out", tmp_path / "a.keras")
    assert code == 0, err
    assert built[-1].genotype == Genotype.from_dict(trials[-2]["genotype"])
    assert trials[-2]["trial_id"] in stdout
    code, _, err = export(capsys, run, "--out", tmp_path / "b.keras", "--metric",
                          "oneshot_accuracy")
    assert code == 0, err
    assert built[-1].genotype == Genotype.from_dict(trials[-1]["genotype"])


def test_export_without_out_goes_to_the_runs_export_folder(run_dir, tmp_path, capsys, monkeypatch):
    # not RUN/best.genotype.json beside the search's RUN/best_genotype.json: an export folder,
    # files named after the trial; load_genotype and train --genotype read new and old names
    import cells
    from nasplay.cli.train_settings import resolve_genotype

    monkeypatch.setattr(cells, "build_network", lambda genotype, **settings: FakeModel(genotype))
    code, stdout, err = export(capsys, run_dir, *TINY)
    assert code == 0, err
    best = rundir.ranked(rundir.read_trials(run_dir))[0]
    model = run_dir / "export" / f"{best['trial_id']}.keras"
    sidecar = run_dir / "export" / f"{best['trial_id']}.genotype.json"
    assert model.is_file() and sidecar.is_file() and str(model) in stdout
    assert not list(run_dir.glob("*.genotype.json"))
    expected = Genotype.from_dict(best["genotype"])
    old = run_dir / "best.genotype.json"            # what `--out RUN/best.keras` wrote before
    old.write_text(sidecar.read_text())
    for path in (sidecar, old):
        assert load_genotype(path) == expected and resolve_genotype(str(path)) == expected
    # a second export without --out refuses to replace the first
    code, _, err = export(capsys, run_dir, *TINY)
    assert code == 2 and "--overwrite" in err
