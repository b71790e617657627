"""Shared test setup: quiet TensorFlow, no Ray token auth in tests, the shared data path, one
local Ray for the tests that search, ``nasplay search`` through the real CLI, and the
``registries`` fixtures through which a test registers its test-only spaces and ops (no test
module registers anything at import: the registries are restored after each test or module).
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import pytest
from registries import registering

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
SHARED_CIFAR = (REPO / ".." / "shared" / "datasets" / "cifar10-jpeg").resolve()
# The fast stand-in for the proxy that Ray workers import (tests/runner_fakes.py).
FAKE_SCORER = "runner_fakes:score"


@pytest.fixture
def shared_cifar():
    """The shared CIFAR-10 JPEG copy; tests that need it skip where it is absent."""
    if not (SHARED_CIFAR / "train").is_dir():
        pytest.skip(f"shared CIFAR-10 copy not found at {SHARED_CIFAR}")
    return SHARED_CIFAR


@pytest.fixture
def registries():
    """``registries(*spaces, **ops)`` registers test-only spaces and ops (``name=factory``) for
    one test and returns the space (or spaces); after the test every registry (ops, spaces,
    searchers, scorers) is as it was, whatever the test registered or removed."""
    with registering() as register:
        yield register


@pytest.fixture(scope="module")
def module_registries():
    """``registries`` for a module's tests and module-scoped fixtures: restored after the
    module's last test."""
    with registering() as register:
        yield register


def worker_env() -> dict:
    """An environment in which a child process (a Ray worker, a second ``nasplay``) imports the
    fake scorer and this checkout."""
    saved = os.environ.get("PYTHONPATH")
    path = os.pathsep.join(p for p in (str(TESTS), str(REPO), saved) if p)
    return {**os.environ, "PYTHONPATH": path}


@pytest.fixture(scope="session")
def worker_path():
    """Ray workers (and their raylets) inherit this, so they can import the fake scorer."""
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = worker_env()["PYTHONPATH"]
    yield
    if saved is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = saved


@pytest.fixture(scope="session")
def ray_session(worker_path):
    """One local Ray for the session (4 CPUs, 2 declared GPUs on a machine without any): a
    search uses a session it finds initialized and leaves it running. Yields its address, so a
    search in a child process can join it."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=4, num_gpus=2, include_dashboard=False, log_to_driver=False,
             logging_level="WARNING")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture
def nasplay_cli(monkeypatch):
    """``nasplay search ...`` through the real CLI (its parser and its error handling), in this
    process; returns the exit status."""
    from nasplay.cli import dispatch as cli

    def run(*argv) -> int:
        try:
            return cli.main(["search", *map(str, argv)])
        except SystemExit as exit:  # argparse's own usage errors
            return exit.code

    return run


@pytest.fixture
def refused(nasplay_cli, capsys):
    """``refused(message, *argv)``: ``nasplay search *argv`` must exit 2 with one line on
    stderr, no traceback, that contains ``message``; returns that line."""
    def check(message: str, *argv) -> str:
        capsys.readouterr()
        assert nasplay_cli(*argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err and message in err, err
        return err

    return check


def nasplay_command(*argv) -> list[str]:
    """The argv of ``nasplay ...`` in a child process (this checkout, this Python)."""
    return [sys.executable, "-m", "nasplay.cli", *map(str, argv)]
