"""Matmul precision for training runs: float32 'highest' versus the backend default.

On NVIDIA GPUs from Ampere on, XLA's default float32 matmul uses TF32 tensor cores: inputs
are rounded to a 10-bit mantissa (relative error about ``2^-11 ≈ 5e-4`` per product).
That is fine for training but not for theory comparisons at large width, where the
quantities of interest (``f - f_lin ∝ 1/width``, eNTK changes ``∝ 1/sqrt(width)``) fall
below the TF32 rounding floor. ``precision='highest'`` forces true float32 (or float64
when x64 is on) matmuls, at roughly 1/7 of the TF32 throughput on an H100 (49.8 versus 343
dense TFLOP/s). CPUs always compute in full precision; the setting changes nothing there.
"""

from __future__ import annotations

import contextlib
from typing import Literal

import jax

Precision = Literal["default", "high", "highest"]
PRECISIONS = ("default", "high", "highest")


def check_precision(precision) -> None:
    if precision is not None and precision not in PRECISIONS:
        raise ValueError(
            f"precision must be one of {PRECISIONS} or None, got {precision!r}; use "
            "'highest' for theory comparisons (full float32 matmuls on GPU)."
        )


def matmul_precision(precision: Precision | None):
    """A context in which jitted code traces its matmuls at ``precision``.

    ``None`` leaves JAX's current setting alone. The setting is part of the compilation
    cache key, so changing it recompiles rather than silently reusing a program.

    Example:
      >>> import jax.numpy as jnp
      >>> with matmul_precision("highest"):
      ...     y = jnp.ones((2, 3)) @ jnp.ones((3, 2))
    """
    check_precision(precision)
    if precision is None:
        return contextlib.nullcontext()
    return jax.default_matmul_precision(precision)
