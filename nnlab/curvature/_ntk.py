r"""The empirical neural tangent kernel ``Θ = J Jᵀ`` as a matrix-free operator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from ._operator import CurvatureOperator, check_examples, restrict


def ntk_operator(
    apply_fn: Callable[[Any, jax.Array], jax.Array],
    params: Any,
    x: jax.Array,
    *,
    wrt=None,
) -> CurvatureOperator:
    r"""The empirical NTK ``Θ = J Jᵀ`` on inputs ``x`` as an operator on output space.

    ``J = ∂ vec f(θ, X)/∂θ`` is the Jacobian of all ``N · out`` outputs (flattened in
    row-major order, example first) and ``Θ`` their ``(N·out) x (N·out)`` Gram matrix, the
    empirical NTK of Jacot et al. (2018, arXiv:1806.07572) with the logits kept apart. ``Θ u
    = J (Jᵀ u)`` is a transposed jvp (a vjp) and a jvp of the network linearised once at
    ``θ`` (``jax.linearize``), so neither ``J`` nor ``Θ`` is formed: memory is one forward
    pass's residuals plus the vectors. ``Θ`` and ``JᵀJ`` share their nonzero eigenvalues, so
    for MSE with the mean loss ``λ_max(Θ)/N`` is the top of the Gauss-Newton matrix
    (:func:`gauss_newton_operator`), the curvature that sets GD's stability threshold in the
    linearised regime (``η < 2N/λ_max(Θ)``; Lee et al. 2019, arXiv:1902.06720). Use it with
    :func:`top_eigenvalue`, :func:`top_eigenpairs`, :func:`hutchinson_trace` (``tr Θ``) or
    :func:`spectral_density`.

    Args:
      apply_fn: ``apply_fn(params, x) -> (N, *out)``.
      params: parameter pytree at which the kernel is taken.
      x: inputs ``(N, ...)``.
      wrt: subset of the parameters (see :func:`restrict`): the kernel of those parameters'
        Jacobian only, ``Θ_S = J_S J_Sᵀ`` (e.g. one layer's contribution).

    Returns:
      A :class:`CurvatureOperator` of dimension ``N · out``; its ``unravel`` reshapes a
      vector to the outputs' shape ``(N, *out)``.

    Example:
      >>> import jax.numpy as jnp
      >>> op = ntk_operator(lambda p, x: x @ p, jnp.zeros((2, 1)), 2.0 * jnp.eye(2))
      >>> op.dim, op.matvec(jnp.array([1.0, 0.0])).tolist()  # Θ = X Xᵀ = 4 I
      (2, [4.0, 0.0])
    """
    if not callable(apply_fn):
        raise TypeError(f"apply_fn must be callable, got {type(apply_fn).__name__}.")
    check_examples("x", x)
    flat, merge, _ = restrict(params, wrt)
    out, f_jvp = jax.linearize(lambda q: apply_fn(merge(q), x), flat)
    f_vjp = jax.linear_transpose(f_jvp, flat)

    def unravel(u):
        return u.reshape(out.shape)

    def matvec(u):
        return f_jvp(f_vjp(unravel(u))[0]).reshape(-1)

    return CurvatureOperator(matvec, int(out.size), out.dtype, unravel)
