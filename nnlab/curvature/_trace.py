r"""Hutchinson's stochastic trace estimator with its standard error."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from nnlab import _checks

from ._operator import CurvatureOperator, check_operator


class TraceEstimate(NamedTuple):
    """``mean`` of the probe values ``zᵀ M z``, its standard ``error`` and the ``samples``."""

    mean: jax.Array
    error: jax.Array
    samples: jax.Array


def rademacher_probes(key: jax.Array, num_probes: int, dim: int, dtype) -> jax.Array:
    """``(num_probes, dim)`` independent ±1 entries with probability ½ each."""
    return jax.random.rademacher(key, (num_probes, dim), dtype=dtype)


def hutchinson_trace(op: CurvatureOperator, key: jax.Array, num_probes: int = 100) -> TraceEstimate:
    r"""Stochastic estimate of ``tr M`` from Rademacher probes (Hutchinson 1989).

    ``tr M ≈ (1/n) Σ_l z_lᵀ M z_l`` with ``z_l`` of independent ±1 entries: each term is
    unbiased with variance ``2 Σ_{i≠j} M_ij²`` (the smallest of any i.i.d. probe
    distribution). The standard error is ``std_{ddof=1}(z_lᵀ M z_l)/√n``. Probes run one
    after the other (``lax.map``), so memory is that of one product. PyHessian (Yao et al.
    2020, arXiv:1912.07145) uses the same estimator for the Hessian trace.

    Args:
      op: the symmetric operator.
      key: PRNG key of the probes.
      num_probes: ``n >= 2``.

    Returns:
      A :class:`TraceEstimate`.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from nnlab.curvature import matrix_operator
      >>> est = hutchinson_trace(matrix_operator(jnp.diag(jnp.arange(5.0))), jax.random.key(0))
      >>> float(est.mean)  # exact for a diagonal matrix
      10.0
    """
    check_operator(op)
    num_probes = _checks.integer(num_probes, "num_probes", minimum=2)
    key = _checks.prng_key(key, "key")
    probes = rademacher_probes(key, num_probes, op.dim, op.dtype)
    samples = jax.lax.map(lambda z: jnp.vdot(z, op.matvec(z)), probes)
    error = jnp.std(samples, ddof=1) / jnp.sqrt(num_probes)
    return TraceEstimate(jnp.mean(samples), error, samples)
