r"""Stochastic spectral estimates of a small operator next to their dense references."""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np

from nnlab import _checks

from ._density import SpectralDensity, eigenvalue_density, spectral_density
from ._eigen import Eigenpairs, dense_eigenpairs
from ._operator import CurvatureOperator, check_operator
from ._trace import TraceEstimate, hutchinson_trace


class SpectrumCheck(NamedTuple):
    """Matrix-free estimates of one operator and their dense references.

    Attributes:
      dense: :class:`Eigenpairs` of the dense matrix (``eigh``), all of them, largest first
        (their sum is the trace; their top entries the reference of :func:`top_eigenpairs`).
      trace: the Hutchinson :class:`TraceEstimate`.
      density: the SLQ :class:`SpectralDensity` (:func:`spectral_density`).
      dense_density: :func:`eigenvalue_density` of the dense eigenvalues on the same grid,
        smoothed by the same Gaussian (the reference of ``density``).
    """

    dense: Eigenpairs
    trace: TraceEstimate
    density: SpectralDensity
    dense_density: SpectralDensity


def spectrum_vs_dense(
    op: CurvatureOperator,
    key,
    *,
    num_probes: int = 100,
    slq_iters: int = 60,
    slq_probes: int = 10,
    sigma_fraction: float = 0.01,
    grid_size: int = 400,
) -> SpectrumCheck:
    r"""Hutchinson trace and SLQ density of ``op`` with the dense references to check them by.

    The dense matrix (``op.dim`` products, then ``eigh``; small operators only) gives the
    eigenvalues ``λ_1 ≥ ... ≥ λ_P``. The SLQ density (Lin, Saad & Yang 2016; Ghorbani,
    Krishnan & Xiao 2019, arXiv:1901.10159) uses a Gaussian of width ``σ = sigma_fraction ·
    (λ_1 − λ_P)`` on ``grid_size`` points over ``[λ_P − 5σ, λ_1 + 5σ]``, and the dense
    eigenvalues are smoothed by the same Gaussian on the same grid. Each part is compiled
    once (``jax.jit``).

    Args:
      op: a symmetric :class:`CurvatureOperator`.
      key: PRNG key, split into the Hutchinson and the SLQ keys.
      num_probes: Rademacher probes of :func:`hutchinson_trace`.
      slq_iters, slq_probes: Lanczos steps and probes of :func:`spectral_density`.
      sigma_fraction: the broadening relative to the spectral width, ``> 0``.
      grid_size: grid points of the densities.

    Returns:
      A :class:`SpectrumCheck`.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from nnlab import curvature as cv
      >>> op = cv.matrix_operator(jnp.diag(jnp.arange(1.0, 41.0)))
      >>> check = cv.spectrum_vs_dense(op, jax.random.key(0), slq_iters=40, grid_size=50)
      >>> float(check.dense.eigenvalues.sum()), check.density.density.shape
      (820.0, (50,))
    """
    check_operator(op)
    _checks.real(sigma_fraction, "sigma_fraction", positive=True)
    grid_size = _checks.integer(grid_size, "grid_size", minimum=2)
    k1, k2 = jax.random.split(key)
    dense = jax.jit(lambda: dense_eigenpairs(op))()
    lam = np.asarray(dense.eigenvalues, np.float64)  # descending
    trace = jax.jit(lambda: hutchinson_trace(op, k1, num_probes))()
    sigma = sigma_fraction * (lam[0] - lam[-1])
    grid = np.linspace(lam[-1] - 5 * sigma, lam[0] + 5 * sigma, grid_size)
    slq = jax.jit(
        lambda: spectral_density(
            op, k2, grid, sigma=sigma, num_iters=slq_iters, num_probes=slq_probes
        )
    )()
    return SpectrumCheck(dense, trace, slq, eigenvalue_density(lam, grid, sigma=sigma))
