r"""Extremal eigenvalues of a curvature operator: one Lanczos routine for the Hessian, the
Gauss-Newton matrix and the empirical NTK, a dense reference for small operators, and the
count of outliers above a spectrum's bulk."""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import _checks
from nnlab.record import Record

from ._lanczos import check_num_iters, lanczos
from ._operator import CurvatureOperator, check_operator, dense

Which = Literal["largest", "smallest", "magnitude"]
_WHICH = ("largest", "smallest", "magnitude")


class Eigenpairs(Record):
    """Eigenpairs of a symmetric operator, as an :class:`nnlab.Record`.

    Variables:
      eigenvalues: ``("mode",)``, ordered as requested (``mode = 0`` is the first).
      eigenvectors: ``("mode", "component")``, unit rows; ``op.unravel(eigenvectors[i])`` is
        the ``i``-th as a pytree like the parameters (or the outputs, for the eNTK).

    Two spectra of the same operator (Lanczos and dense) line up along ``"mode"`` in
    :meth:`nnlab.evaluate.Comparison.from_records`.
    """

    @classmethod
    def create(cls, eigenvalues, eigenvectors, which: str = "largest") -> Eigenpairs:
        return cls(
            {
                "eigenvalues": (("mode",), eigenvalues),
                "eigenvectors": (("mode", "component"), eigenvectors),
            },
            meta={"which": which},
        )


def _order(theta, which):
    if which == "largest":
        return jnp.argsort(-theta)
    if which == "smallest":
        return jnp.argsort(theta)
    return jnp.argsort(-jnp.abs(theta))


def _check_k(k, dim: int) -> int:
    k = _checks.integer(k, "k", minimum=None)
    if not 1 <= k <= dim:
        raise ValueError(f"k must be an int in [1, {dim}], got {k!r}.")
    return k


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
      :class:`Eigenpairs` (a record over ``"mode"``).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from nnlab.curvature import matrix_operator
      >>> a = jnp.diag(jnp.array([3.0, -5.0, 1.0, 2.0]))
      >>> pairs = top_eigenpairs(matrix_operator(a), jax.random.key(0), 2, num_iters=4)
      >>> pairs.eigenvalues.round(4).tolist()
      [3.0, 2.0]
    """
    check_operator(op)
    _checks.choice(which, "which", _WHICH)
    k = _check_k(k, op.dim)
    if num_iters is None:
        num_iters = min(op.dim, max(2 * k + 20, 30))
    num_iters = check_num_iters(num_iters, op.dim)
    if num_iters < k:
        raise ValueError(f"num_iters must be >= k={k}, got {num_iters}.")
    res = lanczos(op, key, num_iters, v0=v0)
    theta, s = jnp.linalg.eigh(res.tridiagonal())
    idx = _order(theta, which)[:k]
    return Eigenpairs.create(theta[idx], s[:, idx].T @ res.basis, which)


def top_eigenvalue(
    op: CurvatureOperator,
    key: jax.Array,
    *,
    num_iters: int = 20,
    v0: jax.Array | None = None,
) -> jax.Array:
    r"""The largest eigenvalue ``λ_max(M)`` of a symmetric operator by Lanczos.

    The one routine behind every "top eigenvalue" in nnlab: the sharpness ``λ_max(∇²L)``
    (:func:`hessian_operator`), the top of the Gauss-Newton matrix
    (:func:`gauss_newton_operator`) and of the empirical NTK ``Θ = J Jᵀ``
    (:func:`ntk_operator`, the observable :func:`nnlab.train.ntk_top_eigenvalue`). It is the
    largest Ritz value of ``m = min(num_iters, op.dim)`` Lanczos steps with full
    reorthogonalisation (:func:`lanczos`): exact (to rounding) once ``m = op.dim``, and for a
    well separated top eigenvalue the error falls like ``exp(−4m√(gap/spread))`` where power
    iteration's falls like ``(λ₂/λ₁)^{2m}``, for the same number ``m`` of products (Kaniel-Paige
    bound; Golub & Van Loan, Matrix Computations, §10.1.5). Capping ``num_iters`` at
    ``op.dim`` loses nothing: after ``op.dim`` steps the Krylov space is the whole space.
    Works under ``jit`` and ``vmap`` (e.g. inside the training loop).

    Args:
      op: the symmetric operator.
      key: PRNG key of the start vector (and of restarts on an invariant subspace).
      num_iters: Lanczos steps, i.e. products with ``M``.
      v0: optional start vector (warm start).

    Returns:
      ``λ_max`` as a scalar array of ``op.dtype``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from nnlab.curvature import matrix_operator
      >>> a = jnp.diag(jnp.array([3.0, -5.0, 1.0, 2.0]))
      >>> round(float(top_eigenvalue(matrix_operator(a), jax.random.key(0))), 4)
      3.0
    """
    check_operator(op)
    num_iters = _checks.integer(num_iters, "num_iters")
    res = lanczos(op, key, min(num_iters, op.dim), v0=v0)
    return jnp.linalg.eigvalsh(res.tridiagonal())[-1]


def dense_eigenpairs(
    op: CurvatureOperator, k: int | None = None, *, which: Which = "largest"
) -> Eigenpairs:
    r"""Eigenpairs of a small operator from its dense matrix (``jnp.linalg.eigh``).

    The reference that Lanczos estimates are checked against: the ``P x P`` matrix is
    materialised by ``P`` products (:func:`dense`), symmetrised (``(M + Mᵀ)/2``, removing the
    rounding asymmetry) and diagonalised. Memory ``O(P²)``: for operators of at most a few
    thousand dimensions. Use :func:`top_eigenpairs` / :func:`top_eigenvalue` otherwise.

    Args:
      op: the symmetric operator.
      k: number of eigenpairs (default all ``P``).
      which: ``'largest'``, ``'smallest'`` or ``'magnitude'``, as in :func:`top_eigenpairs`.

    Returns:
      :class:`Eigenpairs`.

    Example:
      >>> import jax.numpy as jnp
      >>> from nnlab.curvature import matrix_operator
      >>> op = matrix_operator(jnp.diag(jnp.array([1.0, 3.0, 2.0])))
      >>> dense_eigenpairs(op).eigenvalues.tolist()
      [3.0, 2.0, 1.0]
    """
    check_operator(op)
    _checks.choice(which, "which", _WHICH)
    k = op.dim if k is None else _check_k(k, op.dim)
    m = dense(op)
    theta, u = jnp.linalg.eigh(0.5 * (m + m.T))
    idx = _order(theta, which)[:k]
    return Eigenpairs.create(theta[idx], u[:, idx].T, which)


def count_outliers(eigenvalues) -> int:
    r"""Number of eigenvalues above a spectrum's bulk: those above its largest ratio gap.

    With the positive eigenvalues sorted ``λ_1 >= λ_2 >= ...``, the count is the ``i``
    maximising ``λ_i / λ_{i+1}``: the outliers of a trained classifier's Hessian sit a
    multiplicative gap above a bulk near zero (Sagun et al. 2017, arXiv:1706.04454; Papyan
    2019, arXiv:1901.08244, who trace ``C − 1`` of them for ``C`` classes to the class means).
    Pass enough top eigenvalues (say ``3C + 5``) to reach into the bulk. Host-side (NumPy).

    Raises:
      ValueError: with fewer than two positive eigenvalues (no gap to find).

    Example:
      >>> count_outliers([50.0, 20.0, 1.0, 0.8, 0.5])
      2
    """
    ev = np.sort(np.asarray(eigenvalues, np.float64).ravel())[::-1]
    ev = ev[ev > 0]
    if ev.size < 2:
        raise ValueError(
            f"count_outliers needs at least two positive eigenvalues, got {ev.size} "
            f"(eigenvalues {np.asarray(eigenvalues).tolist()}); pass more of the top spectrum."
        )
    return int(np.argmax(np.log(ev[:-1] / ev[1:])) + 1)
