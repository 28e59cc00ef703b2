"""Process set-up for the tests and the doctests (``pytest`` collects ``tests/`` and ``nnlab/``).

Fixtures live in ``tests/conftest.py``.
"""

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

jax.config.update("jax_numpy_rank_promotion", "raise")
