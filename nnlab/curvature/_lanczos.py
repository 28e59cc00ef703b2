r"""Lanczos tridiagonalisation with full reorthogonalisation, and extremal eigenpairs."""

from __future__ import annotations

from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp

from ._operator import CurvatureOperator, check_operator

Which = Literal["largest", "smallest", "magnitude"]


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

    Args:
      op: the symmetric operator.
      key: PRNG key for the start vector (when ``v0`` is ``None``) and restarts.
      num_iters: ``m``, at most ``op.dim``.
      v0: optional ``(P,)`` start vector (e.g. a previous eigenvector, for a warm start).

    Returns:
      A :class:`LanczosResult`.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from nnlab.curvature import matrix_operator
      >>> res = lanczos(matrix_operator(jnp.diag(jnp.arange(4.0))), jax.random.key(0), 4)
      >>> jnp.round(jnp.linalg.eigvalsh(res.tridiagonal()), 4)
      Array([0., 1., 2., 3.], dtype=float32)
    """
    check_operator(op)
    if not isinstance(num_iters, int) or isinstance(num_iters, bool) or num_iters < 1:
        raise ValueError(f"num_iters must be a positive int, got {num_iters!r}.")
    if num_iters > op.dim:
        raise ValueError(
            f"num_iters={num_iters} exceeds the operator dimension {op.dim}; a Krylov basis "
            f"has at most {op.dim} vectors."
        )
    dim, dtype, m = op.dim, op.dtype, num_iters
    start_key, restart_key = jax.random.split(key)
    if v0 is None:
        v0 = jax.random.normal(start_key, (dim,), dtype)
    elif v0.shape != (dim,):
        raise ValueError(f"v0 must have shape ({dim},), got {v0.shape}.")
    v0 = jnp.asarray(v0, dtype)
    v0 = v0 / jnp.linalg.norm(v0)
    tiny = jnp.sqrt(jnp.finfo(dtype).eps)

    def body(j, carry):
        basis, alpha, beta, scale = carry
        v = basis[j]
        w = op.matvec(v)
        a = jnp.vdot(v, w)
        w = _orthogonalise(w, basis)
        b = jnp.linalg.norm(w)
        scale = jnp.maximum(scale, jnp.abs(a) + b)
        breakdown = b <= tiny * scale

        def restart(_):
            fresh = jax.random.normal(jax.random.fold_in(restart_key, j), (dim,), dtype)
            fresh = _orthogonalise(fresh, basis)
            return fresh / jnp.linalg.norm(fresh)

        nxt = jax.lax.cond(breakdown, restart, lambda w: w / b, w)
        b = jnp.where(breakdown, jnp.zeros((), dtype), b)
        basis = basis.at[j + 1].set(nxt, mode="drop")
        return basis, alpha.at[j].set(a), beta.at[j].set(b), scale

    basis = jnp.zeros((m, dim), dtype).at[0].set(v0)
    init = (basis, jnp.zeros((m,), dtype), jnp.zeros((m,), dtype), jnp.zeros((), dtype))
    basis, alpha, beta, _ = jax.lax.fori_loop(0, m, body, init)
    return LanczosResult(alpha, beta[:-1], basis)


class Eigenpairs(NamedTuple):
    """``eigenvalues (k,)`` (ordered as requested) and ``eigenvectors (k, P)`` (unit rows)."""

    eigenvalues: jax.Array
    eigenvectors: jax.Array


def _order(theta, which):
    if which == "largest":
        return jnp.argsort(-theta)
    if which == "smallest":
        return jnp.argsort(theta)
    return jnp.argsort(-jnp.abs(theta))


def top_eigenpairs(
    op: CurvatureOperator,
    key: jax.Array,
    k: int = 1,
    *,
    num_iters: int | None = None,
    which: Which = "largest",
    v0: jax.Array | None = None,
) -> Eigenpairs:
    r"""The ``k`` extremal eigenpairs of ``op`` from the Ritz pairs of a Lanczos run.

    With ``T = S Θ Sᵀ`` the eigendecomposition of the Lanczos tridiagonal matrix, the Ritz
    values ``θ_i`` approximate eigenvalues of ``M`` and the Ritz vectors ``Vᵀ s_i`` its
    eigenvectors; extremal ones converge first, at a rate set by the relative gap to the
    rest of the spectrum (Kaniel-Paige-Saad bounds; Golub & Van Loan §10.1.5). This is how
    PyHessian and Ghorbani et al. (2019, arXiv:1901.10159) compute the top of a network's
    Hessian spectrum.

    Args:
      op: the symmetric operator.
      key: PRNG key of the Lanczos start vector.
      k: number of eigenpairs.
      num_iters: Lanczos steps (``>= k``); default ``min(dim, max(2k + 20, 30))``.
      which: ``'largest'`` (algebraic), ``'smallest'`` or ``'magnitude'``.
      v0: optional start vector (warm start).

    Returns:
      :class:`Eigenpairs`; ``op.unravel(eigenvectors[i])`` is the i-th as a pytree.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from nnlab.curvature import matrix_operator
      >>> a = jnp.diag(jnp.array([3.0, -5.0, 1.0, 2.0]))
      >>> top_eigenpairs(matrix_operator(a), jax.random.key(0), 2, num_iters=4).eigenvalues.round(4)
      Array([3., 2.], dtype=float32)
    """
    check_operator(op)
    if which not in ("largest", "smallest", "magnitude"):
        raise ValueError(f"which must be 'largest', 'smallest' or 'magnitude', got {which!r}.")
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= op.dim:
        raise ValueError(f"k must be an int in [1, {op.dim}], got {k!r}.")
    if num_iters is None:
        num_iters = min(op.dim, max(2 * k + 20, 30))
    if isinstance(num_iters, int) and num_iters < k:
        raise ValueError(f"num_iters must be >= k={k}, got {num_iters}.")
    res = lanczos(op, key, num_iters, v0=v0)
    theta, s = jnp.linalg.eigh(res.tridiagonal())
    idx = _order(theta, which)[:k]
    vectors = s[:, idx].T @ res.basis
    return Eigenpairs(theta[idx], vectors)
