"""One-shot search on PyTorch (``nasplay.scorers.oneshot.engine_torch``): the child process
(tests/oneshot_torch_child.py) trains and scores on torch; this process (TensorFlow) then scores
the supernet the child trained, so a checkpoint crosses backends. The engine's refusal of a
backend without one is checked in-process."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from proxy_helpers import write_image_folder

from nasplay.errors import UserError

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                reason="torch not installed")


@pytest.fixture(scope="module")
def torch_run(tmp_path_factory):
    """The child's result and its directory (the trained supernet is in ``out/supernet``)."""
    out = tmp_path_factory.mktemp("torch")
    folder = write_image_folder(tmp_path_factory.mktemp("images"), per_class=24, size=8)
    cache = tmp_path_factory.mktemp("cache")
    env = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "3",
           "NASPLAY_CACHE": str(cache)}
    done = subprocess.run([sys.executable, str(REPO / "tests" / "oneshot_torch_child.py"),
                           str(folder), str(out)], env=env, cwd=REPO, timeout=600,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "result.json").read_text()), out, folder, cache


def test_torch_masked_sgd_is_keras_sgd_on_used_variables_and_rows_only(torch_run):
    result = torch_run[0]
    assert result["sgd_max_error"] < 1e-5
    assert result["sgd_unused_kept"] and result["sgd_row_kept"] and result["sgd_grads_cleared"]


def test_torch_step_moves_only_the_paths_weights_and_momentum(torch_run):
    result = torch_run[0]
    assert result["moved"] > 0
    assert result["moved_off_path"] == 0 and result["slots_moved_off_path"] == 0


def test_torch_training_resumes_to_the_uninterrupted_weights_and_learns(torch_run):
    result = torch_run[0]
    assert result["resumed_equals_whole"]
    assert [h["epoch"] for h in result["history"]] == [1, 2]
    assert all(np.isfinite(h["loss"]) and h["backend"] == "torch" for h in result["history"])
    assert [h["epoch"] for h in result["controller_history"]] == [1]  # ENAS's sampler too
    assert result["controller_updates"] == 2  # the controller's Keras policy learns on PyTorch


def test_torch_scores_are_the_extracted_networks_and_repeatable(torch_run):
    result = torch_run[0]
    assert result["backend"] == "torch"
    assert result["extract_max_diff"] < 1e-5
    assert result["repeatable"] and result["restored"]
    assert all(0.0 <= s["oneshot_accuracy"] <= 1.0 for s in result["scores"])
    assert np.isfinite(result["finetuned"])


def test_a_supernet_trained_on_torch_scores_the_same_on_tensorflow(torch_run, monkeypatch,
                                                                  registries):
    # the child module registers its space at import: here, for this test only
    from oneshot_torch_child import SCORED, TINY, tiny_config

    registries(TINY)

    from nasplay.scorers.oneshot.supernet import OneShotScorer, load_supernet

    result, out, folder, cache = torch_run
    monkeypatch.setenv("NASPLAY_CACHE", str(cache))
    supernet = load_supernet(out / "supernet")
    scorer = OneShotScorer(supernet, tiny_config(str(folder)))
    for seed, theirs in zip(SCORED, result["scores"]):
        ours = scorer.score(TINY.sample(np.random.default_rng(seed)))
        np.testing.assert_allclose(ours["oneshot_loss"], theirs["oneshot_loss"], rtol=1e-4)
        # an argmax may flip on a near tie between the backends' arithmetic: one image at most
        assert abs(ours["oneshot_accuracy"] - theirs["oneshot_accuracy"]) <= 1 / 32 + 1e-9


def test_a_backend_without_an_engine_is_refused_in_one_line(monkeypatch):
    import keras

    from nasplay.scorers.oneshot.train import engine

    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(UserError, match="run on the tensorflow or torch backend, not 'jax'"):
        engine()


def test_a_search_trains_its_supernet_on_the_runs_backend(tmp_path, monkeypatch):
    # the scorer's prepare step trains in a spawned child, which selects the run's backend
    # before it imports Keras (this process runs TensorFlow)
    from types import SimpleNamespace

    from nasplay.scorers.oneshot import scorer

    folder = write_image_folder(tmp_path / "images", per_class=24, size=8)
    monkeypatch.setenv("NASPLAY_CACHE", str(tmp_path / "cache"))
    options = dict(data=str(folder), train_size=48, val_size=32, epochs=1, batch_size=8,
                   filters=4, cells_per_stage=0, recalibration_batches=2, cpus=2,
                   space="amoebanet", run_dir=str(tmp_path / "run"))
    config = SimpleNamespace(space="amoebanet", gpus_per_trial=0, backend="torch")
    options = scorer._prepare(config, SimpleNamespace(path=tmp_path / "run"), options)
    meta = json.loads((Path(options["supernet_dir"]) / "supernet.json").read_text())
    assert meta["epochs_done"] == 1 and meta["history"][0]["backend"] == "torch"
