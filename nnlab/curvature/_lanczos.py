r"""Lanczos tridiagonalisation with full reorthogonalisation."""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import _checks

from ._operator import CurvatureOperator, check_operator


class LanczosResult(NamedTuple):
    """``m`` steps of Lanczos: ``Vᵀ M V = T`` with ``T`` tridiagonal.

    Attributes:
      alpha: ``(m,)`` diagonal of ``T``.
      beta: ``(m - 1,)`` off-diagonal of ``T`` (an exact zero marks a restart after the
        Krylov space became invariant).
      basis: ``(m, P)`` orthonormal rows ``V``; the first is the normalised start vector.
    """

    alpha: jax.Array
    beta: jax.Array
    basis: jax.Array

    def tridiagonal(self) -> jax.Array:
        """The ``(m, m)`` matrix ``T``."""
        return jnp.diag(self.alpha) + jnp.diag(self.beta, 1) + jnp.diag(self.beta, -1)


def _orthogonalise(w, basis):
    # Classical Gram-Schmidt twice ("twice is enough", Giraud et al. 2005): rows of the basis
    # not yet filled are zero and drop out.
    w = w - basis.T @ (basis @ w)
    return w - basis.T @ (basis @ w)


def _check_v0(v0, dim: int, dtype) -> jax.Array:
    if not hasattr(v0, "shape") or not hasattr(v0, "dtype"):
        raise TypeError(
            f"v0 must be an array of shape ({dim},), got {type(v0).__name__}; convert it with "
            "jnp.asarray first."
        )
    if v0.shape != (dim,):
        raise ValueError(f"v0 must have shape ({dim},), got {v0.shape}.")
    v0 = jnp.asarray(v0, dtype)
    if not _checks.is_traced(v0):
        norm = float(np.linalg.norm(np.asarray(v0, np.float64)))
        if not math.isfinite(norm) or norm == 0:
            raise ValueError(
                f"v0 must be a finite non-zero start vector, got norm {norm}; pass None for a "
                "random start."
            )
    return v0


def symmetry_tolerance(dtype) -> float:
    """Relative tolerance ``√ε`` of the Lanczos symmetry check (see :func:`lanczos`)."""
    return float(np.sqrt(np.finfo(dtype).eps))


def raise_if_not_symmetric(asym, name: str, dtype) -> None:
    """Outside ``jit``, a ValueError when the recorded asymmetry exceeds the tolerance."""
    if _checks.is_traced(asym):
        return
    asym = float(jnp.max(asym))
    tol = symmetry_tolerance(dtype)
    if math.isnan(asym):
        raise ValueError(
            f"{name}.matvec returned NaN or inf during the Lanczos iteration; check the operator "
            "(its parameters and data) for NaN/inf."
        )
    if not asym <= tol:
        raise ValueError(
            f"{name} is not symmetric: for consecutive Lanczos vectors u, v the products differ, "
            f"|u·(Mv) − v·(Mu)| = {asym:.3g}·‖M‖, above the rounding tolerance √ε = {tol:.2g}. "
            "Lanczos, Hutchinson and SLQ need a symmetric operator; symmetrise the matrix "
            "((M + Mᵀ)/2) or check its matvec."
        )


def _lanczos(op: CurvatureOperator, key, num_iters: int, v0):
    """The iteration of :func:`lanczos`; also returns the relative asymmetry it measured."""
    dim, dtype, m = op.dim, op.dtype, num_iters
    start_key, restart_key = jax.random.split(key)
    if v0 is None:
        v0 = jax.random.normal(start_key, (dim,), dtype)
    v0 = v0 / jnp.linalg.norm(v0)
    tiny = jnp.sqrt(jnp.finfo(dtype).eps)

    def body(j, carry):
        basis, alpha, beta, scale, asym = carry
        v = basis[j]
        w = op.matvec(v)
        a = jnp.vdot(v, w)
        # Symmetry probe at no extra cost: β_{j-1} = v_j·(M v_{j-1}) by construction, so for a
        # symmetric M it equals v_{j-1}·(M v_j) to rounding. (Skipped after a restart.)
        prev = basis[jnp.maximum(j - 1, 0)]
        beta_prev = beta[jnp.maximum(j - 1, 0)]
        gap = jnp.abs(jnp.vdot(prev, w) - beta_prev)
        w = _orthogonalise(w, basis)
        b = jnp.linalg.norm(w)
        scale = jnp.maximum(scale, jnp.abs(a) + b)
        probe = (j > 0) & (beta_prev > 0)
        gap = jnp.where(jnp.isfinite(a) & jnp.isfinite(b), gap, jnp.nan)
        rel = jnp.where(probe | jnp.isnan(gap), gap / jnp.maximum(scale, jnp.finfo(dtype).tiny), 0)
        asym = jnp.where(jnp.isnan(rel), jnp.nan, jnp.maximum(asym, rel))
        breakdown = b <= tiny * scale

        def restart(_):
            fresh = jax.random.normal(jax.random.fold_in(restart_key, j), (dim,), dtype)
            fresh = _orthogonalise(fresh, basis)
            return fresh / jnp.linalg.norm(fresh)

        nxt = jax.lax.cond(breakdown, restart, lambda w: w / b, w)
        b = jnp.where(breakdown, jnp.zeros((), dtype), b)
        basis = basis.at[j + 1].set(nxt, mode="drop")
        return basis, alpha.at[j].set(a), beta.at[j].set(b), scale, asym

    basis = jnp.zeros((m, dim), dtype).at[0].set(v0)
    zero = jnp.zeros((), dtype)
    init = (basis, jnp.zeros((m,), dtype), jnp.zeros((m,), dtype), zero, zero)
    basis, alpha, beta, _, asym = jax.lax.fori_loop(0, m, body, init)
    return LanczosResult(alpha, beta[:-1], basis), asym


def check_num_iters(num_iters, dim: int) -> int:
    num_iters = _checks.integer(num_iters, "num_iters")
    if num_iters > dim:
        raise ValueError(
            f"num_iters={num_iters} exceeds the operator dimension {dim}; a Krylov basis "
            f"has at most {dim} vectors."
        )
    return num_iters


def lanczos(
    op: CurvatureOperator,
    key: jax.Array,
    num_iters: int,
    *,
    v0: jax.Array | None = None,
) -> LanczosResult:
    r"""``num_iters`` steps of the Lanczos iteration with full reorthogonalisation.

    From ``v₁ = v0/‖v0‖``: ``w = M v_j − α_j v_j − β_{j−1} v_{j−1}`` with ``α_j = v_jᵀ M v_j``,
    then ``w`` is orthogonalised against all previous ``v`` (twice), ``β_j = ‖w‖`` and
    ``v_{j+1} = w/β_j`` (Lanczos 1950; Golub & Van Loan, Matrix Computations, §10.1). Full
    reorthogonalisation keeps the basis orthonormal to rounding, so no spurious copies of
    converged eigenvalues appear. If ``β_j`` falls below ``√ε·‖T‖`` the Krylov space is
    invariant; the iteration continues from a fresh random vector orthogonal to the basis,
    with ``β_j = 0`` (so ``T`` is block diagonal and its eigenvalues remain Ritz values).
    The loop is a ``lax.fori_loop`` over a fixed number of steps, storing the ``(m, P)``
    basis; it works under ``jit`` and ``vmap``.

    Symmetry check: the iteration assumes ``M = Mᵀ``. At every step it compares, for the
    consecutive basis vectors ``u = v_{j−1}``, ``v = v_j``, ``u·(M v)`` with
    ``β_{j−1} = v·(M u)`` (no extra products). Outside ``jit`` a relative difference above
    ``√ε`` (``ε`` the dtype's machine epsilon: 3.5e-4 in float32, 1.5e-8 in float64; rounding
    of a product of a symmetric matrix is ``O(√P ε)`` relative for random vectors, well
    below it) or a NaN/inf product raises a ``ValueError``. Under ``jit``/``vmap`` the check
    cannot raise and is skipped: a non-symmetric operator then gives meaningless Ritz values.
    With ``num_iters = 1`` there is nothing to compare.

    Args:
      op: the symmetric operator.
      key: PRNG key for the start vector (when ``v0`` is ``None``) and restarts.
      num_iters: ``m``, at most ``op.dim``.
      v0: optional ``(P,)`` finite non-zero start vector (e.g. a previous eigenvector, for a
        warm start).

    Returns:
      A :class:`LanczosResult`.

    Raises:
      TypeError / ValueError: for a bad ``op``, ``key``, ``num_iters`` or ``v0``, and (outside
        ``jit``) for a non-symmetric operator or NaN/inf products.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from nnlab.curvature import matrix_operator
      >>> res = lanczos(matrix_operator(jnp.diag(jnp.arange(4.0))), jax.random.key(0), 4)
      >>> [round(v, 4) + 0.0 for v in jnp.linalg.eigvalsh(res.tridiagonal()).tolist()]
      [0.0, 1.0, 2.0, 3.0]
    """
    check_operator(op)
    num_iters = check_num_iters(num_iters, op.dim)
    key = _checks.prng_key(key, "key")
    if v0 is not None:
        v0 = _check_v0(v0, op.dim, op.dtype)
    res, asym = _lanczos(op, key, num_iters, v0)
    raise_if_not_symmetric(asym, "op", op.dtype)
    return res
