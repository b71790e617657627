"""Shared test setup: quiet TensorFlow, no Ray token auth in tests, the shared data path."""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_CIFAR = (REPO / ".." / "shared" / "datasets" / "cifar10-jpeg").resolve()


@pytest.fixture
def shared_cifar():
    """The shared CIFAR-10 JPEG copy; tests that need it skip where it is absent."""
    if not (SHARED_CIFAR / "train").is_dir():
        pytest.skip(f"shared CIFAR-10 copy not found at {SHARED_CIFAR}")
    return SHARED_CIFAR
