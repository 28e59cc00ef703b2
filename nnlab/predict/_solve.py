r"""Solving ``(K + δI) c = Y`` for kernel predictors: Cholesky or preconditioned CG.

``solver`` (in :func:`solve_kernel_system`, :func:`nnlab.predict.kernel_regression` and
:func:`nnlab.predict.gp_posterior`) picks the method:

* ``'cholesky'``: factorise the dense kernel (materialised first when it is an operator).
  Exact to rounding; ``O(n²)`` memory and ``O(n³)`` time.
* ``'cg'`` or a :class:`CG` with options: preconditioned conjugate gradients on
  ``K + δI`` through products ``K @ V`` only (a dense array or a matrix-free
  :class:`nnlab.kernels.KernelOperator`), stopped when every column's relative residual
  ``||Y - (K + δI) C|| / ||Y||`` is at most ``rtol``, with the residual history recorded.
  The default preconditioner is randomized Nyström of rank ``rank``
  (Frangella, Tropp & Udell 2023, arXiv:2110.02820), which costs one extra product.
* ``'auto'`` (the default): Cholesky for a stored kernel of at most :data:`AUTO_CHOLESKY_MAX`
  points whose factor fits in a quarter of free memory, CG otherwise (always for an
  operator). The choice is logged (logger ``nnlab.predict``, level INFO) and recorded in
  :attr:`KernelSolve.solver`.

A CG solve that does not reach ``rtol`` is not returned as an answer: outside ``jax.jit``
it raises a ``ValueError`` with the residual reached; inside ``jit`` the predictions are NaN.
"""

from __future__ import annotations

import dataclasses
import functools
import logging

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import _checks
from nnlab._checks import is_traced
from nnlab._pytree import register_dataclass
from nnlab.kernels._compute import _available_bytes
from nnlab.kernels._operator import KernelOperator, MatrixKernelOperator

from . import _linalg
from ._nystrom import nystrom_preconditioner

logger = logging.getLogger("nnlab.predict")

#: Largest stored kernel that ``solver='auto'`` factorises with Cholesky.
AUTO_CHOLESKY_MAX = 20_000

PRECONDITIONERS = ("nystrom", None)


@dataclasses.dataclass(frozen=True)
class CG:
    """Options of the preconditioned conjugate-gradient solver (``solver=CG(...)``).

    Attributes:
      rtol: stop when every column's relative residual is at most this; None means
        ``1e-10`` in float64 and ``1e-5`` in float32.
      max_iter: most iterations (each is one product ``K @ V``).
      preconditioner: ``'nystrom'`` (randomized Nyström of rank ``rank``) or None.
      rank: rank of the Nyström preconditioner (capped at ``n``).
      seed: seed of its Gaussian sketch.
    """

    rtol: float | None = None
    max_iter: int = 1000
    preconditioner: str | None = "nystrom"
    rank: int = 256
    seed: int = 0

    def __post_init__(self):
        if self.rtol is not None:
            _checks.real(self.rtol, "CG.rtol", minimum=0)
            if not self.rtol > 0:
                raise ValueError(f"CG.rtol must be > 0, got {self.rtol}.")
        _checks.integer(self.max_iter, "CG.max_iter")
        _checks.integer(self.rank, "CG.rank")
        _checks.integer(self.seed, "CG.seed", minimum=0)
        _checks.choice(self.preconditioner, "CG.preconditioner", PRECONDITIONERS)

    def tolerance(self, dtype) -> float:
        if self.rtol is not None:
            return float(self.rtol)
        return 1e-10 if jnp.dtype(dtype) == jnp.float64 else 1e-5


@dataclasses.dataclass(frozen=True)
class KernelSolve:
    """The solution ``C`` of ``(K + δI) C = Y`` and how it was found.

    Attributes:
      coef: ``C``, shaped like ``Y``.
      iterations: CG iterations (products with ``K``); 0 for Cholesky.
      residuals: relative residual after each iteration (the largest over columns),
        ``(max_iter + 1,)``, NaN past ``iterations``; for Cholesky one entry, the residual
        of the computed solution.
      converged: whether the relative residual reached the tolerance.
      indefinite: whether CG met a direction ``p`` with ``p^T (K + δI) p <= 0`` (proof that
        the system is not positive definite; the solve stops there).
      solver: ``'cholesky'`` or ``'cg'``. Static.
      preconditioner: the CG preconditioner (``'nystrom'`` or None). Static.
    """

    coef: jax.Array
    iterations: jax.Array
    residuals: jax.Array
    converged: jax.Array
    indefinite: jax.Array
    solver: str = dataclasses.field(default="cholesky", metadata={"static": True})
    preconditioner: str | None = dataclasses.field(default=None, metadata={"static": True})

    @property
    def history(self) -> np.ndarray:
        """The residuals up to the last iteration (needs concrete values)."""
        return np.asarray(self.residuals)[: int(self.iterations) + 1]


register_dataclass(KernelSolve)


def resolve_solver(solver, k) -> str | CG:
    """``'cholesky'`` or a :class:`CG` for ``solver`` and the train kernel ``k``."""
    if isinstance(solver, CG):
        return solver
    _checks.choice(solver, "solver", ("auto", "cholesky", "cg"))
    if solver == "cg":
        return CG()
    if solver == "cholesky":
        return "cholesky"
    n = k.shape[0]
    if isinstance(k, KernelOperator):
        choice, why = CG(), "a matrix-free operator"
    elif n > AUTO_CHOLESKY_MAX:
        choice, why = CG(), f"n = {n} > AUTO_CHOLESKY_MAX = {AUTO_CHOLESKY_MAX}"
    elif 2 * n * n * jnp.dtype(k.dtype).itemsize > _available_bytes(jax.local_devices()[0]) // 4:
        choice, why = CG(), f"the factor of n = {n} points does not fit in 1/4 of free memory"
    else:
        choice, why = "cholesky", f"a stored kernel of n = {n} points fits"
    logger.info("solver='auto' uses %s: %s", "cholesky" if choice == "cholesky" else "cg", why)
    return choice


def check_train(k, name: str = "k_train"):
    """A square train-train kernel: a checked array or a square :class:`KernelOperator`."""
    if isinstance(k, KernelOperator):
        if k.shape[0] != k.shape[1] or k.shape[0] == 0:
            raise ValueError(f"{name} must be a square, non-empty kernel operator, got {k!r}.")
        return k
    return _linalg.check_square(k, name)


def check_test_train(k, n: int, name: str = "k_test_train"):
    """A ``(m, n)`` test-train kernel: a checked array or a :class:`KernelOperator`."""
    if isinstance(k, KernelOperator):
        if k.shape[1] != n:
            raise ValueError(f"{name} must have shape (m, {n}) (test, train), got {k!r}.")
        return k
    return _linalg.check_cross(k, None, n, name)


def as_operator(k) -> KernelOperator:
    return k if isinstance(k, KernelOperator) else MatrixKernelOperator(k, True)


def dense(k) -> jax.Array:
    return k.as_matrix() if isinstance(k, KernelOperator) else k


def solve_kernel_system(k, y, *, ridge=0.0, solver="auto") -> KernelSolve:
    r"""Solve ``(K + δ I) C = Y`` by Cholesky or preconditioned CG (see the module docstring).

    Args:
      k: ``(n, n)`` kernel: an array or a :class:`nnlab.kernels.KernelOperator`.
      y: ``(n,)`` or ``(n, k)`` right-hand sides.
      ridge: ``δ >= 0``.
      solver: ``'auto'``, ``'cholesky'``, ``'cg'`` or a :class:`CG`.

    Returns:
      A :class:`KernelSolve`. Unlike the predictors, it is returned even when CG did not
      converge (``converged`` False): inspect ``history``.

    Example:
      >>> import jax.numpy as jnp
      >>> k = jnp.array([[2.0, 1.0], [1.0, 2.0]])
      >>> s = solve_kernel_system(k, jnp.array([1.0, 0.0]), solver="cg")
      >>> s.solver, bool(s.converged), [round(c, 4) for c in s.coef.tolist()]
      ('cg', True, [0.6667, -0.3333])
    """
    k = check_train(k, "k")
    y2, squeeze = _linalg.check_targets(y, k.shape[0])
    _linalg.check_nonnegative(ridge, "ridge")
    out = _solve(k, y2, ridge, resolve_solver(solver, k), "k")
    return dataclasses.replace(out, coef=out.coef[:, 0]) if squeeze else out


def _solve(k, y2, ridge, method, name: str) -> KernelSolve:
    """:func:`solve_kernel_system` on checked arguments (``y2`` is ``(n, k)``)."""
    dtype = jnp.promote_types(k.dtype, y2.dtype)
    y2 = y2.astype(dtype)
    if method == "cholesky":
        kd = dense(k).astype(dtype)
        chol = _linalg.cholesky(_linalg.add_ridge(kd, ridge), f"{name} + ridge * I")
        coef = _linalg.solve_pd(chol, y2)
        res = _relative_residual(kd @ coef + ridge * coef - y2, y2)
        ok = jnp.isfinite(res)
        return KernelSolve(coef, jnp.asarray(0), res[None], ok, ~ok, "cholesky")
    op = as_operator(k)
    rank = min(method.rank, k.shape[0])
    precond = None
    if method.preconditioner == "nystrom":
        precond = nystrom_preconditioner(op, rank, ridge, jax.random.key(method.seed))
    rtol = method.tolerance(dtype)
    coef, it, hist, ok, bad = _pcg(
        op, precond, y2, jnp.asarray(ridge, dtype), rtol, method.max_iter
    )
    return KernelSolve(coef, it, hist, ok, bad, "cg", method.preconditioner)


def _relative_residual(r, b):
    bnorm = jnp.linalg.norm(b, axis=0)  # (k,) against (k,)
    return jnp.max(jnp.linalg.norm(r, axis=0) / jnp.where(bnorm > 0, bnorm, 1.0))


@functools.partial(jax.jit, static_argnums=(5,))
def _pcg(op, precond, b, ridge, rtol, max_iter):
    """Preconditioned CG on ``(K + ridge I) X = B``, one independent recurrence per column of
    ``B`` but a single product ``K @ P`` per iteration for all of them (Hestenes & Stiefel 1952;
    Saad 2003, Alg. 9.1). Columns that have converged are frozen."""

    def apply(p):
        return op.mv(p) + ridge * p

    precondition = (lambda r: r) if precond is None else precond.apply

    def dot(a, b):  # per-column inner products, kept (1, k) to broadcast against (n, k)
        return jnp.sum(a * b, axis=0, keepdims=True)

    bnorm = jnp.linalg.norm(b, axis=0, keepdims=True)
    safe = jnp.where(bnorm > 0, bnorm, 1.0)
    z = precondition(b)
    rel = bnorm / safe
    hist = jnp.full((max_iter + 1,), jnp.nan, b.dtype).at[0].set(jnp.max(rel))
    state = (0, jnp.zeros_like(b), b, z, dot(b, z), rel, hist, jnp.asarray(False))

    def running(state):
        i, *_, rel, _, indefinite = state
        worst = jnp.max(rel)
        return (i < max_iter) & (worst > rtol) & jnp.isfinite(worst) & ~indefinite

    def step(state):
        i, x, r, p, rz, rel, hist, indefinite = state
        active = rel > rtol
        q = apply(p)
        pq = dot(p, q)
        # p^T A p <= 0 proves A is not positive definite: stop, flagged (never an answer)
        indefinite = indefinite | jnp.any(active & (pq <= 0))
        alpha = jnp.where(active, rz / jnp.where(active, pq, 1.0), 0.0)
        x = x + alpha * p
        r = r - alpha * q
        z = precondition(r)
        rz_new = dot(r, z)
        beta = jnp.where(active, rz_new / jnp.where(active, rz, 1.0), 0.0)
        p = z + beta * p
        rel = jnp.where(active, jnp.linalg.norm(r, axis=0, keepdims=True) / safe, rel)
        hist = hist.at[i + 1].set(jnp.max(rel))
        return i + 1, x, r, p, jnp.where(active, rz_new, rz), rel, hist, indefinite

    i, x, _, _, _, rel, hist, indefinite = jax.lax.while_loop(running, step, state)
    return x, i, hist, (jnp.max(rel) <= rtol) & ~indefinite, indefinite


def check_converged(s: KernelSolve, name: str) -> jax.Array:
    """The coefficients; outside jit a ValueError if CG did not converge, inside jit NaN."""
    if s.solver != "cg":
        return s.coef
    if not is_traced(s.converged):
        if bool(s.indefinite):
            raise ValueError(
                f"{name} + ridge * I is not positive definite: CG met a direction p with "
                f"p^T A p <= 0 at iteration {int(s.iterations)}. Add a ridge / jitter to the "
                "diagonal or compute the kernel in float64."
            )
        if not bool(s.converged):
            last = float(np.asarray(s.residuals)[int(s.iterations)])
            raise ValueError(
                f"CG on {name} did not converge: relative residual {last:.3g} after "
                f"{int(s.iterations)} iterations. Raise CG(max_iter=...) or CG(rank=...) "
                "for a stronger Nyström preconditioner, add a ridge, or use float64."
            )
        return s.coef
    return jnp.where(s.converged, s.coef, jnp.nan)
