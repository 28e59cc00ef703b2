"""Shared test set-up: float64 for theory checks, strict rank promotion, keys, GPU skip."""

from __future__ import annotations

import os

# The suite is dominated by XLA compile time (thousands of small programs, each run a few
# times), not by run time. LLVM's level-0 backend compiles CPU programs ~3x faster and runs them
# slower, which cuts the suite's CPU time by ~40%; it changes no float semantics. Set before JAX
# creates its backend; a user's own XLA_FLAGS win.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"
    ).strip()

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")


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
