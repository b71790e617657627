"""``nasplay train``: bad input is one line and exit status 2; --out is never clobbered; a tiny run
writes a loadable model and its metrics."""

from __future__ import annotations

import json

import pytest
from proxy_helpers import write_image_folder

from nasplay.cli import main
from search_space import PUBLISHED


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("images"), per_class=16, size=8)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NASPLAY_CACHE", str(tmp_path / "cache"))


def _tiny(folder, out, *extra):
    return ["train", "--genotype", "darts-v2", "--data", str(folder), "--subset", "32",
            "--val-size", "16", "--epochs", "1", "--filters", "4", "--cells-per-stage", "0",
            "--batch-size", "8", "--seed", "0", "--out", str(out), "--quiet", *extra]


def _fails_in_one_line(capsys, argv, *words):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("nasplay train: error:"), err
    for word in words:
        assert word in err, err
    return err


def test_missing_data_dir(capsys, tmp_path):
    _fails_in_one_line(capsys, _tiny(tmp_path / "nowhere", tmp_path / "out"), "nowhere")
    assert not (tmp_path / "out").exists()


def test_empty_data_dir(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    _fails_in_one_line(capsys, _tiny(tmp_path / "empty", tmp_path / "out"), "empty")
    assert not (tmp_path / "out").exists()


def test_subset_larger_than_the_data(capsys, folder, tmp_path):
    argv = _tiny(folder, tmp_path / "out")
    argv[argv.index("--subset") + 1] = "1000"
    _fails_in_one_line(capsys, argv, "larger than")
    assert not (tmp_path / "out").exists()


def test_zero_epochs(capsys, folder, tmp_path):
    argv = _tiny(folder, tmp_path / "out")
    argv[argv.index("--epochs") + 1] = "0"
    _fails_in_one_line(capsys, argv, "--epochs")


def test_unknown_genotype_name(capsys, folder, tmp_path):
    argv = _tiny(folder, tmp_path / "out")
    argv[argv.index("--genotype") + 1] = "no-such-cell"
    _fails_in_one_line(capsys, argv, "no-such-cell", "darts-v2")


def test_malformed_genotype_file(capsys, folder, tmp_path):
    bad = tmp_path / "cell.json"
    bad.write_text('{"normal": [ oops')
    argv = _tiny(folder, tmp_path / "out")
    argv[argv.index("--genotype") + 1] = str(bad)
    _fails_in_one_line(capsys, argv, "cell.json")


def test_run_directory_without_a_best_genotype(capsys, folder, tmp_path):
    argv = _tiny(folder, tmp_path / "out")
    (tmp_path / "run").mkdir()
    argv[argv.index("--genotype") + 1] = str(tmp_path / "run")
    _fails_in_one_line(capsys, argv, "best_genotype.json")


def test_existing_model_is_refused_and_kept_byte_identical(capsys, folder, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.keras").write_bytes(b"an earlier model \x00\x01")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    _fails_in_one_line(capsys, _tiny(folder, out), "--overwrite")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.slow
def test_tiny_run_writes_a_loadable_model_and_metrics(capsys, folder, tmp_path):
    import keras

    import cells  # noqa: F401  (registers the cell layers for loading)

    run_dir = tmp_path / "run"  # a search run directory: --genotype takes its best cell
    run_dir.mkdir()
    (run_dir / "best_genotype.json").write_text(PUBLISHED["enas"].to_json())
    test = write_image_folder(tmp_path / "test", per_class=4, size=8, seed=1, split=None)
    out = tmp_path / "out"
    argv = _tiny(folder, out, "--augment", "--cutout", "4", "--cosine", "--drop-path", "0.1",
                 "--auxiliary-head", "--test-data", str(test))
    argv[argv.index("--genotype") + 1] = str(run_dir)
    assert main(argv) == 0
    assert "test_accuracy" in capsys.readouterr().out
    record = json.loads((out / "metrics.json").read_text())
    assert record["metrics"]["test_size"] == 16 and record["config"]["augment"]
    assert json.loads((out / "genotype.json").read_text()) == PUBLISHED["enas"].to_dict()
    model = keras.saving.load_model(out / "model.keras")
    assert len(model.outputs) == 2  # predictions and the auxiliary head
    # a second run into the same directory is refused, then allowed with --overwrite
    assert main(argv) == 2
    assert main([*argv, "--overwrite"]) == 0


# -- training like a search run ------------------------------------------------------------------

def _fake_run(tmp_path, folder, genotype, older_layout=False, **proxy_settings):
    """A run directory as ``nasplay search`` leaves it: config.json with the data at the top
    level and every other ProxyConfig field in scorer_options; ``older_layout``: as runs from
    before scorers owned their settings, the proxy's flags at the top level."""
    from nasplay.scorers.proxy.training import ProxyConfig

    proxy = ProxyConfig(data=str(folder), **proxy_settings)
    options = {k: v for k, v in proxy.to_dict().items()
               if k not in ("cpus", "gpus", "mixed_precision")}
    top = {"data": options.pop("data")}
    if older_layout:
        top.update({"subset": options.pop("train_size"), "epochs": options.pop("epochs"),
                    "filters": options.pop("filters"),
                    "cells_per_stage": options.pop("cells_per_stage")})
    config = {"searcher": "random", "space": "darts", "trials": 1, "seed": proxy.seed,
              "scorer": "proxy", "metric": "val_accuracy", **top, "scorer_options": options}
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(config))
    (run / "best_genotype.json").write_text(genotype.to_json())
    return run, proxy


RUN_SETTINGS = dict(train_size=32, val_size=16, epochs=1, batch_size=8, filters=4,
                    cells_per_stage=0, seed=3, subset_seed=3, learning_rate=0.1, cosine=True,
                    weight_decay=1e-3)


def _plan(argv):
    from nasplay.cli.dispatch import build_parser
    from nasplay.cli.train_settings import plan

    return plan(build_parser().parse_args(["train", *argv]))


def test_like_reads_a_run_of_the_older_layout(folder, tmp_path):
    run, proxy = _fake_run(tmp_path, folder, PUBLISHED["enas"], older_layout=True,
                           **RUN_SETTINGS)
    assert _plan(["--like", str(run), "--out", str(tmp_path / "out")]).config == proxy


def test_like_takes_every_setting_from_the_run_and_flags_override(folder, tmp_path):
    run, proxy = _fake_run(tmp_path, folder, PUBLISHED["enas"], **RUN_SETTINGS)
    planned = _plan(["--like", str(run), "--out", str(tmp_path / "out")])
    assert planned.genotype == PUBLISHED["enas"]  # no --genotype: the run's best
    assert planned.config == proxy
    planned = _plan(["--genotype", str(run), "--epochs", "2", "--no-cosine", "--seed", "5",
                     "--out", str(tmp_path / "out")])
    assert planned.config == proxy.replace(epochs=2, cosine=False, seed=5, subset_seed=5)
    planned = _plan(["--like", str(run), "--genotype", "darts-v2", "--out", "x"])
    assert planned.genotype == PUBLISHED["darts-v2"] and planned.config == proxy


def test_like_a_run_from_before_fused_norms_trains_with_kerass_norms(folder, tmp_path):
    """A search saved before ``fused_norms`` trained with Keras's batch norms: ``--like`` keeps
    them, so the cell gets the run's score exactly; a run saved since keeps its own value."""
    run, proxy = _fake_run(tmp_path, folder, PUBLISHED["enas"], **RUN_SETTINGS)
    config = json.loads((run / "config.json").read_text())
    assert config["scorer_options"].pop("fused_norms") is True
    (run / "config.json").write_text(json.dumps(config))
    planned = _plan(["--like", str(run), "--out", str(tmp_path / "out")])
    assert planned.config == proxy.replace(fused_norms=False)
    (tmp_path / "new").mkdir()
    fresh, _ = _fake_run(tmp_path / "new", folder, PUBLISHED["enas"], **RUN_SETTINGS)
    assert _plan(["--like", str(fresh), "--out", "x"]).config.fused_norms is True


def test_without_a_run_train_keeps_its_own_defaults(tmp_path):
    planned = _plan(["--genotype", "darts-v2", "--out", str(tmp_path / "out")])
    assert (planned.config.epochs, planned.config.filters, planned.config.cells_per_stage,
            planned.config.cosine) == (10, 16, 2, False)
    assert planned.all_training_images and planned.like is None


def test_train_like_reproduces_the_search_score_exactly(capsys, folder, tmp_path):
    from nasplay.scorers.proxy import training as proxy

    genotype = PUBLISHED["darts-v2"]
    run, config = _fake_run(tmp_path, folder, genotype, **RUN_SETTINGS)
    searched = proxy.evaluate(genotype, config)  # what the search's trial computed
    (run / "trials.jsonl").write_text(json.dumps(
        {"trial_id": "random-00000", "status": "completed", "genotype": genotype.to_dict(),
         "metrics": {"val_accuracy": searched["val_accuracy"]}}) + "\n")
    out = tmp_path / "out"
    assert main(["train", "--like", str(run), "--out", str(out), "--quiet"]) == 0
    trained = json.loads((out / "metrics.json").read_text())["metrics"]
    for key in ("val_accuracy", "train_accuracy", "params", "flops"):
        assert trained[key] == searched[key], key
    assert f"the search scored it {searched['val_accuracy']:.4f}" in capsys.readouterr().out


def test_mixed_precision_on_a_cpu_is_refused(capsys, folder, tmp_path):
    _fails_in_one_line(capsys, _tiny(folder, tmp_path / "out", "--mixed-precision"),
                       "mixed precision needs a GPU")
    assert not (tmp_path / "out").exists()


def test_another_backend_than_the_running_one_is_refused(capsys, folder, tmp_path):
    # this pytest process runs Keras on TensorFlow; Keras cannot switch
    _fails_in_one_line(capsys, _tiny(folder, tmp_path / "out", "--backend", "jax"),
                       "KERAS_BACKEND=jax")
    assert not (tmp_path / "out").exists()


def test_like_a_missing_run_is_one_line(capsys, tmp_path):
    _fails_in_one_line(capsys, ["train", "--like", str(tmp_path / "nope"), "--out",
                                str(tmp_path / "out")], "--like", "nope")


# -- NAS-Bench-201 cells -------------------------------------------------------------------------

NB201 = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|"


def test_an_nb201_genotype_as_a_string_a_file_or_a_run(tmp_path, folder):
    from search_space import EdgeGenotype, load_genotype

    genotype = load_genotype(NB201)
    assert isinstance(genotype, EdgeGenotype)
    planned = _plan(["--genotype", NB201, "--out", str(tmp_path / "out")])
    assert planned.genotype == genotype
    assert planned.config.cells_per_stage == 5  # NAS-Bench-201's network, at its own size
    (tmp_path / "cell.json").write_text(genotype.to_json())
    assert _plan(["--genotype", str(tmp_path / "cell.json"), "--out", "x"]).genotype == genotype
    run, proxy = _fake_run(tmp_path, folder, genotype, **RUN_SETTINGS)
    planned = _plan(["--genotype", str(run), "--out", "x"])
    assert planned.genotype == genotype and planned.config == proxy  # the run's N, not 5


def test_nb201_default_is_the_networks():
    from cells.nb201 import NB201_CELLS_PER_STAGE
    from nasplay.cli import train_settings

    assert train_settings.NB201_CELLS_PER_STAGE == NB201_CELLS_PER_STAGE


@pytest.mark.parametrize("text, words", [
    (NB201.replace("avg_pool_3x3~0", "max_pool_9x9~0"), ["unknown op 'max_pool_9x9'", "node 3"]),
    (NB201.replace("none~1", "none~7"), ["reads node '7'", "node 2"]),
    (NB201.rpartition("+")[0], ["node group"]),
])
def test_malformed_nb201_strings_are_one_line(capsys, folder, tmp_path, text, words):
    argv = _tiny(folder, tmp_path / "out")
    argv[argv.index("--genotype") + 1] = text
    _fails_in_one_line(capsys, argv, "--genotype", *words)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flag, word", [(["--drop-path", "0.2"], "drop path"),
                                        (["--auxiliary-head"], "auxiliary head")])
def test_nb201_refuses_what_its_network_has_not(capsys, folder, tmp_path, flag, word):
    argv = _tiny(folder, tmp_path / "out", *flag)
    argv[argv.index("--genotype") + 1] = NB201
    _fails_in_one_line(capsys, argv, word, "NAS-Bench-201")


def test_an_nb201_cell_trains_and_saves(capsys, folder, tmp_path):
    import keras

    import cells  # noqa: F401  (registers the cell layers for loading)
    from search_space import load_genotype

    out = tmp_path / "out"
    argv = _tiny(folder, out)
    argv[argv.index("--genotype") + 1] = NB201
    argv[argv.index("--cells-per-stage") + 1] = "1"
    assert main(argv) == 0
    assert "val_accuracy" in capsys.readouterr().out
    record = json.loads((out / "metrics.json").read_text())
    assert record["genotype"] == NB201 and record["config"]["cells_per_stage"] == 1
    assert load_genotype(str(out / "genotype.json")) == load_genotype(NB201)
    model = keras.saving.load_model(out / "model.keras")
    assert model.count_params() == record["metrics"]["params"]
    assert sum(isinstance(layer, cells.EdgeCell) for layer in model.layers) == 3


# -- refusals before TensorFlow ------------------------------------------------------------------

def test_bad_arguments_are_refused_before_keras_is_imported(tmp_path):
    # a refusal needs no framework: a child process refuses each and has not imported one
    import subprocess
    import sys

    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "model.keras").write_bytes(b"an earlier model")
    cases = [["--genotype", "nasnet-a", "--out", str(taken)],
             ["--genotype", "no-such-cell", "--out", str(tmp_path / "a")],
             ["--genotype", "nasnet-a", "--epochs", "0", "--out", str(tmp_path / "b")],
             ["--like", str(tmp_path / "nope"), "--out", str(tmp_path / "c")]]
    script = ("import json, sys\nfrom nasplay.cli import main\n"
              "codes = [main(['train', *argv]) for argv in json.loads(sys.argv[1])]\n"
              "print(json.dumps([codes, sorted(m for m in ('tensorflow', 'keras', 'jax', 'torch')"
              " if m in sys.modules)]))\n")
    child = subprocess.run([sys.executable, "-c", script, json.dumps(cases)],
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr
    codes, imported = json.loads(child.stdout.splitlines()[-1])
    assert codes == [2, 2, 2, 2] and imported == []
    assert child.stderr.count("nasplay train: error:") == 4
    assert (taken / "model.keras").read_bytes() == b"an earlier model"


# -- progress: a bar on a terminal, whole lines in a log -------------------------------------------

class _Terminal:
    def isatty(self):
        return True


def test_progress_is_a_bar_on_a_terminal_and_lines_in_a_log():
    import io

    from nasplay.cli.train import progress

    assert progress(False, _Terminal()) == (1, [])
    assert progress(True, io.StringIO()) == (0, [])
    log = io.StringIO()
    verbose, callbacks = progress(False, log)
    assert verbose == 0 and len(callbacks) == 1
    line = callbacks[0]
    line.set_params({"epochs": 3, "steps": 4, "verbose": 0})
    for epoch in range(3):
        line.on_epoch_begin(epoch)
        line.on_epoch_end(epoch, {"loss": 2.0 - epoch / 10, "accuracy": 0.25})
    text = log.getvalue()
    assert not any(c in text for c in "\r\b\x1b")
    lines = text.splitlines()
    assert len(lines) == 3 and text.endswith("\n")
    assert lines[0].startswith("epoch 1/3: accuracy 0.2500, loss 2.0000 (")


def test_the_search_score_of_a_rescored_trial_is_its_rescoring(tmp_path):
    # trained from a one-shot run that re-scored its best: the summary compares with the
    # re-scoring's val_accuracy (what chose the run's best), not the one-shot proxy's score
    from fake_runs import fake_trials, write_run

    from nasplay.runs.records import rescore_record
    from nasplay.runs.rundir import RunDir
    from nasplay.cli.train_settings import search_score
    from search_space import Genotype

    trials = fake_trials(3, seed=1, failed_every=0)
    for trial in trials:
        trial["metrics"] = {"oneshot_accuracy": 0.3}
    run = write_run(tmp_path / "run", trials, config={"scorer": "oneshot",
                                                      "metric": "oneshot_accuracy"})
    RunDir(run).append_trial(rescore_record(trials[0]["trial_id"], "proxy", "val_accuracy",
                                            "completed", {"val_accuracy": 0.411}))
    first, second = (Genotype.from_dict(t["genotype"]) for t in trials[:2])
    assert search_score(run, first) == ("val_accuracy", 0.411)
    assert search_score(run, second) == ("oneshot_accuracy", 0.3)
