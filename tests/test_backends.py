"""nasplay.runtime.backends, and the proxy on the JAX backend.

Keras picks its backend when first imported, and this pytest process has imported it with
TensorFlow, so the JAX training runs in a child process (tests/backend_child.py).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import keras  # noqa: F401  (as in the rest of the suite: this process runs on TensorFlow)

from nasplay.errors import UserError
from nasplay.runtime import backends

REPO = Path(__file__).resolve().parents[1]


def test_unknown_backend_is_refused_naming_the_known_ones():
    with pytest.raises(UserError, match="unknown backend 'mxnet'.*tensorflow, jax, torch") as info:
        backends.check_backend("mxnet")
    assert "\n" not in str(info.value)


def test_missing_package_names_the_pip_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(UserError, match=r"torch package is not installed; pip install torch"):
        backends.check_backend("torch")
    assert backends.check_backend("tensorflow") == "tensorflow"


def test_keras_cannot_switch_backends_in_a_process(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")  # select_backend sets it; restored after
    assert backends.active_backend() == "tensorflow"  # what this pytest process imported
    assert backends.select_backend("tensorflow") == "tensorflow"
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax not installed")
    with pytest.raises(UserError, match="already running on the tensorflow backend.*"
                                        "KERAS_BACKEND=jax"):
        backends.select_backend("jax")


def test_active_backend_before_keras_is_imported_reads_the_environment(monkeypatch, tmp_path):
    monkeypatch.delitem(sys.modules, "keras")  # restored after the test
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert backends.active_backend() == "torch"
    monkeypatch.delenv("KERAS_BACKEND")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert backends.active_backend() == "tensorflow"
    (tmp_path / "keras.json").write_text('{"backend": "jax"}')
    assert backends.active_backend() == "jax"


def test_worker_env_selects_the_backend_and_shares_or_hides_gpus():
    cpu = backends.worker_env("tensorflow", cpus=3, gpus=False)
    assert cpu["KERAS_BACKEND"] == "tensorflow" and cpu["CUDA_VISIBLE_DEVICES"] == ""
    assert cpu["JAX_PLATFORMS"] == "cpu" and cpu["TF_NUM_INTRAOP_THREADS"] == "3"
    assert cpu["TF_NUM_INTEROP_THREADS"] == "2" and cpu["OMP_NUM_THREADS"] == "3"
    gpu = backends.worker_env("tensorflow", gpus=True)
    assert "CUDA_VISIBLE_DEVICES" not in gpu and gpu["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert gpu["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    with pytest.raises(UserError, match="unknown backend"):
        backends.worker_env("numpy")


def _run_child(script_args, tmp_path, backend="jax", timeout=900):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
           # the second training of the same network finds its compiled step on disk
           "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jax-cache"),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
           "NASPLAY_CACHE": os.environ.get("NASPLAY_CACHE", str(tmp_path / "cache"))}
    done = subprocess.run([sys.executable, *script_args], env=env, cwd=REPO, timeout=timeout,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.slow  # ~65 s here, twice that on CI's slower machines; the default run keeps JAX's
# supernet test and its backend selection, and `-m slow` trains on JAX (this and `nasplay train`)
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax not installed")
def test_jax_trains_above_chance_repeatably_and_reloads(shared_cifar, tmp_path):
    # measured: 0.30 on these 500 validation images after 2 epochs of 1,000 (chance: 0.10)
    _run_child([str(REPO / "tests" / "backend_child.py"), str(shared_cifar), str(tmp_path)],
               tmp_path)
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["backend"] == "jax" and result["first"]["backend"] == "jax"
    assert result["first"]["val_accuracy"] > 0.2
    assert result["same_metrics"] and result["same_weights"]
    assert result["reload_max_abs_diff"] < 1e-5
    assert result["first"]["flops"] > 0 and result["first"]["dtype_policy"] == "float32"


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax not installed")
def test_train_selects_the_runs_backend_before_keras_is_imported(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"backend": "jax", "scorer": "proxy"}))
    code = ("import sys; from nasplay.cli.dispatch import build_parser; "
            "from nasplay.cli import train as train_cli; "
            "args = build_parser().parse_args(sys.argv[1:]); train_cli.prepare(args); "
            "import keras; print(keras.backend.backend())")
    for extra, expected in (([], "jax"), (["--backend", "tensorflow"], "tensorflow")):
        argv = ["train", "--like", str(run), "--genotype", "darts-v2", "--out", "x", *extra]
        done = _run_child(["-c", code, *argv], tmp_path, backend="torch")
        assert done.stdout.split()[-1] == expected


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax not installed")
def test_nasplay_train_on_jax_writes_a_model_tensorflow_loads(shared_cifar, tmp_path):
    out = tmp_path / "out"
    _run_child(["-m", "nasplay", "train", "--backend", "jax", "--genotype", "darts-v2",
                "--data", str(shared_cifar), "--subset", "256", "--val-size", "64",
                "--epochs", "1", "--filters", "4", "--cells-per-stage", "0", "--quiet",
                "--out", str(out)], tmp_path)
    record = json.loads((out / "metrics.json").read_text())
    assert record["metrics"]["backend"] == "jax" and record["devices"]["backend"] == "jax"
    import keras

    import cells  # noqa: F401

    model = keras.saving.load_model(out / "model.keras")  # saved on JAX, loaded on TensorFlow
    assert model.count_params() == record["metrics"]["params"]


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed")
def test_every_op_computes_the_same_function_on_torch(tmp_path):
    # Keras's PyTorch backend pads an uneven 'same' average pool by replicating the edge; the
    # op averages the pixels inside the image, as TensorFlow does (cells.ops.PoolOp)
    import keras

    from cells.ops import OPS, make_op

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 8, 8, 8)).astype("float32")  # even: stride 2 pads unevenly
    cases, ours = {"x": x}, {}
    for name in sorted(OPS):
        for strides in (1, 2):
            layer = make_op(name, 8, strides)
            layer.build(x.shape)
            weights = [0.3 * rng.normal(size=v.shape).astype("float32") for v in layer.weights]
            weights = [np.abs(w) + 0.5 if v.path.endswith("moving_variance") else w
                       for w, v in zip(weights, layer.weights)]  # a variance is positive
            layer.set_weights(weights)
            cases.update({f"{name}_{strides}_w{i}": w for i, w in enumerate(weights)})
            for training in (False, True):
                ours[f"{name}_{strides}_{training}"] = keras.ops.convert_to_numpy(
                    layer(x, training=training))
    np.savez(tmp_path / "cases.npz", **cases)
    _run_child([str(REPO / "tests" / "ops_child.py"), str(tmp_path / "cases.npz"),
                str(tmp_path / "out.npz")], tmp_path, backend="torch")
    with np.load(tmp_path / "out.npz") as theirs:
        assert sorted(theirs.files) == sorted(ours)
        for key, value in ours.items():
            np.testing.assert_allclose(theirs[key], value, atol=1e-4, rtol=1e-4, err_msg=key)
