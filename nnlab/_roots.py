r"""Bracketed scalar root finding for nnlab's theory functions (one shared shape of problem).

:func:`bisect` finds the root of a scalar function that changes sign once on a known bracket,
with :class:`optimistix.Bisection` run through :func:`optimistix.root_find`. It is what
:func:`nnlab.spectral.solve_kappa`, :func:`nnlab.deeplinear.mode_dynamics` (depth ``>= 3``)
and :func:`nnlab.finitewidth.criticality` use.

Two choices are made here once for all of them:

* **A fixed number of halvings.** ``optimistix.Bisection`` stops when the bracket is shorter
  than ``atol + rtol |y|`` *and* ``|f(y)| < atol``. The second test compares ``f`` with a
  tolerance in the units of ``y``, which has no setting that is right for functions of every
  magnitude (``f`` is a count of degrees of freedom in one caller and a time in another), and
  when it fails the solve runs to ``max_steps`` anyway. So both tolerances are zero and the
  bracket is halved exactly ``steps`` times: after ``k`` halvings the root is known to
  ``(upper - lower) / 2^(k+1)``, and a ``steps`` past the dtype's resolution costs only time.
* **Derivatives by the implicit function theorem.** ``optimistix.root_find`` differentiates the
  root ``y*(θ)`` of ``f(y*, θ) = 0`` as ``dy*/dθ = -(∂f/∂y)^{-1} ∂f/∂θ``, so ``jax.grad`` and
  ``jax.jvp`` of a root are exact (a hand-written loop of ``jnp.where`` selections has zero or
  wrong derivatives).

Works under ``jax.jit`` and ``jax.vmap`` (vmap it, or ``jnp.vectorize`` it, for arrays of
problems) in float32 and float64. The helper is private: arguments are checked by the callers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optimistix as optx

__all__ = ["bisect"]


def bisect(
    fn: Callable[[jax.Array, Any], jax.Array],
    lower,
    upper,
    args: Any = None,
    *,
    steps: int,
) -> jax.Array:
    r"""Root of ``fn(y, args)`` in ``[lower, upper]`` by ``steps`` halvings of the bracket.

    ``fn`` must be non-positive at ``lower`` and non-negative at ``upper`` (rising through its
    root; negate a falling function). A point where ``fn`` is exactly zero counts as the upper
    side, so on a plateau of zeros the result is its lower end; if ``fn < 0`` on the whole
    bracket the result tends to ``upper``, if ``fn >= 0`` to ``lower`` (no error is raised:
    callers that need a sign change check for it).

    Args:
      fn: scalar function ``fn(y, args) -> ()``, differentiable in ``y`` and ``args``.
      lower, upper: scalar bracket ends, ``lower <= upper``; they set the dtype.
      args: pytree passed to ``fn``; the root is differentiated with respect to it (and to
        arrays ``fn`` closes over) by the implicit function theorem.
      steps: number of halvings (a Python int ``>= 1``); the result is the midpoint of the final
        bracket, within ``(upper - lower) / 2^(steps+1)`` of the root.

    Returns:
      the root, a scalar of the dtype of ``lower`` and ``upper``.

    Example:
      >>> import jax.numpy as jnp
      >>> root = bisect(lambda y, c: y**3 - c, 0.0, 2.0, jnp.asarray(2.0), steps=40)
      >>> round(float(root), 6)  # 2 ** (1/3), to the bracket's 2 / 2**41 ~ 1e-12
      1.259921
    """
    dtype = jnp.result_type(lower, upper, float)
    lower = jnp.asarray(lower, dtype)
    upper = jnp.asarray(upper, dtype)
    solver = optx.Bisection(rtol=0.0, atol=0.0, flip=False)
    solution = optx.root_find(
        lambda y, a: jnp.asarray(fn(y, a), dtype),
        solver,
        lower + 0.5 * (upper - lower),
        args,
        options={"lower": lower, "upper": upper},
        max_steps=steps,
        throw=False,  # zero tolerances: the step limit is the stopping rule, not a failure
    )
    return solution.value
