"""Randomized Nyström approximation of a PSD kernel and the preconditioner built from it."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

from nnlab._pytree import register_dataclass


@dataclasses.dataclass(frozen=True)
class NystromPreconditioner:
    r"""The inverse of the Nyström preconditioner of ``K + μ I`` (Frangella, Tropp & Udell 2023).

    With the rank-``r`` Nyström approximation :math:`K \approx U \Lambda U^T`
    (:func:`nystrom`),

    .. math:: P^{-1} = (\lambda_r + \mu)\, U (\Lambda + \mu I)^{-1} U^T + (I - U U^T),

    which maps the top ``r`` eigenvalues of ``K + μ I`` near ``λ_r + μ`` and leaves the rest,
    so CG on ``P^{-1/2} (K + μ I) P^{-1/2}`` sees the condition number
    ``(λ_{r+1} + μ) / (λ_min + μ)`` instead of ``(λ_1 + μ) / (λ_min + μ)``.

    Attributes:
      basis: ``U`` ``(n, r)``, orthonormal columns.
      eigenvalues: ``Λ`` ``(r,)``, descending and ``>= 0``.
      ridge: ``μ``.
    """

    basis: jax.Array
    eigenvalues: jax.Array
    ridge: jax.Array

    def apply(self, r: jax.Array) -> jax.Array:
        """``P^{-1} r`` for ``r`` of shape ``(n, k)``."""
        u, lam = self.basis, self.eigenvalues
        ur = u.T @ r
        # floor: a rank-deficient K without ridge has λ_r + μ = 0, which would zero P^{-1} on U
        floor = jnp.maximum(lam[-1] + self.ridge, jnp.finfo(lam.dtype).eps * lam[0])
        scale = floor / jnp.maximum(lam + self.ridge, floor)
        return u @ (scale[:, None] * ur) + r - u @ ur


register_dataclass(NystromPreconditioner)


def nystrom(op, rank: int, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    r"""Randomized rank-``rank`` Nyström approximation ``K ≈ U diag(Λ) U^T`` from one product.

    ``Y = K Ω`` for an orthonormalised Gaussian test matrix ``Ω`` ``(n, rank)``, then the
    numerically stable form of Tropp et al. 2017 (arXiv:1706.05736, Alg. 3): shift
    ``ν = √n · eps · ||Y||``, ``C = chol(Ω^T (Y + νΩ))``, ``B = (Y + νΩ) C^{-T}``,
    ``U Σ V^T = svd(B)``, ``Λ = max(Σ² - ν, 0)``. Costs one block product of ``op`` with
    ``rank`` columns (one kernel pass for a matrix-free operator) and ``O(n rank²)``.

    Returns:
      ``(U, Λ)``: ``(n, rank)`` orthonormal columns and ``(rank,)`` eigenvalues, descending.
    """
    n = op.shape[0]
    omega = jax.random.normal(key, (n, rank), op.dtype)
    omega, _ = jnp.linalg.qr(omega)
    y = op.mv(omega)
    nu = jnp.sqrt(n) * jnp.finfo(op.dtype).eps * jnp.linalg.norm(y, 2)
    y_nu = y + nu * omega
    core = omega.T @ y_nu
    chol = jnp.linalg.cholesky(0.5 * (core + core.T))
    b = solve_triangular(chol, y_nu.T, lower=True).T
    u, s, _ = jnp.linalg.svd(b, full_matrices=False)
    return u, jnp.maximum(s * s - nu, 0.0)


def nystrom_preconditioner(op, rank: int, ridge, key: jax.Array) -> NystromPreconditioner:
    """:class:`NystromPreconditioner` of ``op + ridge * I`` from :func:`nystrom`."""
    u, lam = nystrom(op, rank, key)
    return NystromPreconditioner(u, lam, jnp.asarray(ridge, op.dtype))
