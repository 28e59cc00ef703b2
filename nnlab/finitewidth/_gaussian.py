"""One-dimensional Gaussian expectations by a split (half-line) Gauss rule.

Single-input finite-width theory needs only expectations over one zero-mean
Gaussian, ``⟨f(z)⟩_K = E[f(z)]`` with ``z ~ N(0, K)``. Writing

    ⟨f(z)⟩_K = ∫_0^∞ [f(√K x) + f(-√K x)] φ(x) dx,   φ the standard normal density,

and integrating with the Gauss rule of the half-normal weight ``φ(x)`` on
``[0, ∞)`` makes the rule exact for functions that are polynomials of degree
``< 2·degree`` on each half-line separately (ReLU, leaky ReLU, ``|z|`` and their
powers), where the usual Gauss-Hermite rule converges only algebraically; for
analytic ``f`` it converges exponentially like Gauss-Hermite. The nodes come from
the Jacobi matrix of the half-normal weight, built by Lanczos iteration with full
re-orthogonalisation on a fine discretisation (Gautschi 2004, "Orthogonal
Polynomials: Computation and Approximation", §2.2), then Golub & Welsch (1969).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import _checks

from ._activation import as_float

DEFAULT_DEGREE = 48
# Composite Gauss-Legendre discretisation of [0, 45] (φ(45) ~ 1e-440: nothing beyond matters,
# even times a polynomial of degree 400).
_BREAKS = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 11.0, 15.0, 20.0, 27.0, 35.0, 45.0)
_POINTS_PER_PIECE = 200


def check_degree(degree) -> int:
    """``degree`` as an int in ``[2, 200]`` (NumPy integers accepted)."""
    degree = _checks.integer(degree, "degree", minimum=2)
    if degree > 200:
        raise ValueError(f"degree must be an int in [2, 200], got {degree!r}.")
    return degree


@functools.lru_cache(maxsize=16)
def half_normal_rule(degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``x_i > 0`` and weights ``w_i`` (summing to 1/2) with ``Σ w_i g(x_i) ≈ ∫_0^∞ g φ``.

    Exact (to rounding) for polynomials ``g`` of degree ``< 2·degree``.
    """
    check_degree(degree)
    t, s = np.polynomial.legendre.leggauss(_POINTS_PER_PIECE)
    lo, hi = np.array(_BREAKS[:-1])[:, None], np.array(_BREAKS[1:])[:, None]
    x = (lo + 0.5 * (hi - lo) * (t + 1.0)).ravel()
    w = (0.5 * (hi - lo) * s).ravel() * np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)
    # Lanczos on diag(x) with start vector sqrt(w): the Jacobi matrix of the weight.
    basis = np.zeros((degree, x.size))
    v = np.sqrt(w) / np.sqrt(w.sum())
    alpha, beta = np.zeros(degree), np.zeros(degree - 1)
    for k in range(degree):
        basis[k] = v
        u = x * v
        alpha[k] = v @ u
        u = u - basis[: k + 1].T @ (basis[: k + 1] @ u)
        u = u - basis[: k + 1].T @ (basis[: k + 1] @ u)  # twice is enough
        if k < degree - 1:
            beta[k] = np.linalg.norm(u)
            v = u / beta[k]
    jacobi = np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1)
    nodes, vecs = np.linalg.eigh(jacobi)
    weights = 0.5 * vecs[0] ** 2
    return nodes, weights


def gaussian_expectation(
    f: Callable[[jax.Array], jax.Array], variance, degree: int = DEFAULT_DEGREE
) -> jax.Array:
    """``⟨f(z)⟩_K = E[f(z)]`` for ``z ~ N(0, K)``, ``K = variance`` (broadcast over its shape).

    ``f`` acts elementwise on arrays. Works under ``jit``, ``vmap`` and ``grad``
    with respect to ``variance``.

    Raises:
      TypeError: if ``f`` is not callable or ``variance`` is not real.
      ValueError: if a concrete ``variance`` is negative, NaN or inf, or ``degree`` is not an
        int in ``[2, 200]``.

    Example:
      >>> import jax.numpy as jnp
      >>> round(float(gaussian_expectation(lambda z: jnp.maximum(z, 0.0) ** 4, 2.0)), 6)
      6.0
    """
    _checks.function(f, "f", "f(z) acting elementwise")
    nodes, weights = half_normal_rule(check_degree(degree))
    k = as_float(variance, "variance")
    x = jnp.asarray(nodes, k.dtype).reshape((1,) * k.ndim + (-1,))
    w = jnp.asarray(weights, k.dtype)
    r = jnp.sqrt(jnp.maximum(k, 0.0))[..., None]
    return (f(r * x) + f(-r * x)) @ w


def derivative(fn: Callable[[jax.Array], jax.Array], order: int = 1):
    """The ``order``-th elementwise derivative of an elementwise ``fn`` (forward mode)."""
    for _ in range(order):
        fn = _jvp_ones(fn)
    return fn


def _jvp_ones(fn):
    def fn_prime(x):
        return jax.jvp(fn, (x,), (jnp.ones_like(x),))[1]

    return fn_prime


def he4(x):
    """The probabilists' Hermite polynomial ``He_4(x) = x⁴ - 6x² + 3``."""
    x2 = x * x
    return x2 * x2 - 6.0 * x2 + 3.0
