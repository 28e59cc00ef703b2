"""Test fixtures: float64 for theory checks, keys, GPU skip (process set-up: ../conftest.py)."""

from __future__ import annotations

import jax
import pytest


@pytest.fixture
def x64():
    """Run the test body with 64-bit floats enabled (theory checks use this)."""
    with jax.enable_x64(True):
        yield


@pytest.fixture
def key():
    """A fixed PRNG key, so Monte Carlo tolerances are reproducible."""
    return jax.random.key(0)


def _has_gpu() -> bool:
    try:
        return any(d.platform == "gpu" for d in jax.devices())
    except RuntimeError:
        return False


def pytest_collection_modifyitems(config, items):
    if _has_gpu():
        return
    skip = pytest.mark.skip(reason="needs a GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
