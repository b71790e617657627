"""The benchmark scripts (``python -m benchmarks.NAME``): each imports without running anything,
and each runs its ``--smoke`` mode (a few cells, candidates or steps, written under a temporary
folder)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p.stem for p in (REPO / "benchmarks").glob("*.py") if p.stem != "__init__")


def test_the_scripts_are_found():
    assert "common" in SCRIPTS and "nb201_truth" in SCRIPTS and len(SCRIPTS) > 20


@pytest.mark.parametrize("name", SCRIPTS)
def test_imports_without_running(name, capsys):
    module = importlib.import_module(f"benchmarks.{name}")
    assert capsys.readouterr().out == ""  # importing printed nothing: nothing ran
    if name != "common":
        assert callable(getattr(module, "main", None)), f"benchmarks.{name} has no main()"


def test_no_script_edits_sys_path():
    for name in SCRIPTS:
        text = (REPO / "benchmarks" / f"{name}.py").read_text()
        assert "sys.path.insert" not in text and "sys.path.append" not in text, name


# name -> the arguments of its smoke run; DATA: a small image folder, TMP: the test's temporary
# folder (every result goes there, none to benchmarks/results/)
SMOKE = {
    "backend_benchmark": ["--smoke", "--backends", "tensorflow", "jax", "--cells", "1",
                          "--data", "DATA", "--out", "TMP/backends.json"],
    "cli_start_benchmark": ["--smoke", "--out", "TMP/cli_start.jsonl"],
    "data_benchmark": ["--smoke", "--data", "DATA"],
    "gpu_backend_check": ["--smoke", "--out", "TMP"],
    "inspect_speed": ["--trials", "50", "--repeats", "1", "--no-record"],
    # a 3-trial `nasplay search` child; its row goes to TMP/hour/nb201_hour.jsonl
    "nb201_hour": ["run", "--smoke", "--data", "DATA", "--out", "TMP/hour"],
    "nb201_ladder": ["--replicates", "1", "--models", "calibrated", "--strategies",
                     "evolution:proxy-c16n1-e1-10k-acc>proxy-c16n1-e3-10k-loss@2", "random:truth",
                     "--out", "TMP/ladder.json"],
    "nb201_oneshot": ["--smoke", "--data", "DATA", "--out", "TMP/oneshot"],
    "nb201_proxy": ["measure", "--smoke", "--data", "DATA", "--out", "TMP/proxy"],
    "nb201_search_speed": ["--trials", "20", "--searchers", "random", "--no-record"],
    "nb201_surrogate": ["--runs", "2", "--out", "TMP/surrogate.json"],
    "nb201_searchers": ["--smoke", "--quiet", "--out", "TMP/searchers.json"],
    "nb201_truth": ["--smoke", "--out", "TMP/truth"],
    "nb201_zero_cost": ["measure", "table", "--smoke", "--data", "DATA", "--out", "TMP/zero_cost"],
    "oneshot_benchmark": ["throughput", "--smoke", "--data", "DATA", "--supernet", "TMP/supernet",
                          "--results", "TMP/results"],
    "oneshot_search_benchmark": ["--smoke", "--data", "DATA", "--run-dir", "TMP/run",
                                 "--out", "TMP/oneshot_search.json"],
    "param_counts": ["--smoke"],
    "proxy_benchmark": ["fidelity", "--smoke", "--data", "DATA", "--out", "TMP/fidelity.jsonl"],
    "proxy_norms_ab": ["--smoke", "--data", "DATA", "--out", "TMP/proxy_norms_ab.jsonl"],
    "search_benchmark": ["--smoke", "--data", "DATA", "--out", "TMP/search.json"],
    "searchers_benchmark": ["--smoke"],
    "supernet_affine_ab": ["--smoke", "--data", "DATA", "--out", "TMP/step.jsonl"],
    "supernet_step_profile": ["--smoke", "--data", "DATA", "--out", "TMP/profile.jsonl"],
    "supernet_training_check": ["uniform", "--smoke", "--data", "DATA", "--out", "TMP/check.jsonl"],
    "supernet_update_ab": ["--smoke", "--data", "DATA", "--out", "TMP/step.jsonl"],
}
# scripts without a smoke run yet, and why (tests/test_benchmarks.py keeps this list honest)
NO_SMOKE = {
    "gpu_check": "a GPU check: `prepare` downloads wheels and packs a CIFAR-10 subset that "
                 "`run --smoke` needs; run on the device machine",
}


def test_every_script_has_a_smoke_run_or_a_reason():
    scripts = set(SCRIPTS) - {"common"}
    assert set(SMOKE) | set(NO_SMOKE) == scripts
    assert not set(SMOKE) & set(NO_SMOKE)


@pytest.fixture(scope="module")
def small_images(tmp_path_factory):
    """1,200 32x32 images of 4 classes: enough for a one-shot search's 1,000 scoring images."""
    from proxy_helpers import write_image_folder

    return write_image_folder(tmp_path_factory.mktemp("images"), per_class=300, size=32)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SMOKE))
def test_smoke_run(name, tmp_path, small_images):
    argv = [str(small_images) if a == "DATA" else a.replace("TMP", str(tmp_path))
            for a in SMOKE[name]]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", *argv], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    for a in SMOKE[name]:  # what it was told to write, it wrote
        if a.startswith("TMP/"):
            path = tmp_path / a[len("TMP/"):]
            assert path.exists() and (path.is_dir() or path.stat().st_size > 0), path
    if name == "backend_benchmark":  # it writes its file even where a backend's child failed
        record = json.loads((tmp_path / "backends.json").read_text())
        assert {row["backend"] for row in record["candidates"]} == {"tensorflow", "jax"}
