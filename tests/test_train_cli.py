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
