"""Kernel (ridge) regression and the Gaussian-process posterior, via Cholesky."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

from . import _linalg


class GPPosterior(NamedTuple):
    """Posterior mean ``(m,)``/``(m, k)`` and covariance ``(m, m)`` (or variance ``(m,)``)."""

    mean: jax.Array
    covariance: jax.Array


def kernel_regression(k_train, y, k_test_train, *, ridge=0.0):
    r"""Kernel ridge regression: the predictor at the test points.

    .. math:: \hat f(x_*) = K(x_*, X)\,\big(K(X, X) + \delta I\big)^{-1} Y

    This is the t → ∞ limit of gradient flow on the MSE loss with kernel ``K`` (Jacot et al.
    2018, arXiv:1806.07572) and the GP posterior mean (Rasmussen & Williams 2006, eq. 2.23).
    Solved with one Cholesky factorisation; works in float32 or float64 (the dtype of the
    inputs).

    Args:
      k_train: ``(n, n)`` train-train kernel.
      y: ``(n,)`` or ``(n, k)`` targets.
      k_test_train: ``(m, n)`` test-train kernel.
      ridge: ``δ >= 0`` added to the diagonal (jitter / ridge / noise variance).

    Returns:
      ``(m,)`` or ``(m, k)`` predictions, matching the shape of ``y``.

    Raises:
      TypeError: for non-arrays or complex/non-numeric dtypes.
      ValueError: on shape mismatch, an empty kernel, NaN/inf in the inputs, a negative or NaN
        ridge, or (outside ``jit``) when
        ``k_train + ridge·I`` is not positive definite. Inside ``jit`` a failed Cholesky gives
        NaN predictions instead.

    Example:
      >>> import jax.numpy as jnp
      >>> k = jnp.array([[2.0, 1.0], [1.0, 2.0]])
      >>> pred = kernel_regression(k, jnp.array([1.0, 0.0]), jnp.array([[1.0, 1.0]]))
      >>> [round(v, 3) for v in pred.tolist()]
      [0.333]
    """
    k_train = _linalg.check_square(k_train, "k_train")
    n = k_train.shape[0]
    y2, squeeze = _linalg.check_targets(y, n)
    k_test_train = _linalg.check_cross(k_test_train, None, n, "k_test_train")
    _linalg.check_nonnegative(ridge, "ridge")
    chol = _linalg.cholesky(_linalg.add_ridge(k_train, ridge), "k_train + ridge * I")
    mean = k_test_train @ _linalg.solve_pd(chol, y2)
    return mean[:, 0] if squeeze else mean


def gp_posterior(k_train, y, k_test_train, k_test_test, *, noise=0.0):
    r"""Gaussian-process posterior at test points (Rasmussen & Williams 2006, eqs. 2.23-2.24).

    .. math::
       \mu = K_{*X}(K_{XX} + \sigma^2 I)^{-1} Y, \qquad
       \Sigma = K_{**} - K_{*X}(K_{XX} + \sigma^2 I)^{-1} K_{X*}

    For the NNGP kernel this is exact Bayesian inference in the infinitely wide network
    (Lee et al. 2018, arXiv:1711.00165). Outputs (columns of ``Y``) are independent and share
    the covariance. ``σ²`` is the observation-noise variance (a ridge / jitter).

    Args:
      k_train: ``(n, n)`` train-train kernel.
      y: ``(n,)`` or ``(n, k)`` targets.
      k_test_train: ``(m, n)`` test-train kernel.
      k_test_test: ``(m, m)`` test-test kernel, or its diagonal ``(m,)`` to get only the
        marginal variances (memory ``O(m n)`` instead of ``O(m²)`` for large test sets).
      noise: observation-noise variance ``σ² >= 0``.

    Returns:
      ``GPPosterior(mean, covariance)``; ``covariance`` is ``(m, m)``, or ``(m,)`` variances
      when ``k_test_test`` is a diagonal. Noise is not added to the test covariance.

    Raises:
      ValueError: as :func:`kernel_regression` (NaN inside ``jit`` when not PD).

    Example:
      >>> import jax.numpy as jnp
      >>> k = jnp.array([[1.0, 0.5], [0.5, 1.0]])
      >>> post = gp_posterior(k, jnp.array([1.0, -1.0]), k, k, noise=1e-6)
      >>> post.mean.round(3).tolist(), (jnp.diag(post.covariance).round(3) + 0.0).tolist()
      ([1.0, -1.0], [0.0, 0.0])
    """
    k_train = _linalg.check_square(k_train, "k_train")
    n = k_train.shape[0]
    y2, squeeze = _linalg.check_targets(y, n)
    k_test_train = _linalg.check_cross(k_test_train, None, n, "k_test_train")
    m = k_test_train.shape[0]
    k_test_test = _linalg.as_float_array(k_test_test, "k_test_test")
    if k_test_test.shape not in ((m, m), (m,)):
        raise ValueError(
            f"k_test_test must have shape ({m}, {m}) or its diagonal ({m},), "
            f"got shape {k_test_test.shape}."
        )
    _linalg.check_nonnegative(noise, "noise")
    chol = _linalg.cholesky(_linalg.add_ridge(k_train, noise), "k_train + noise * I")
    mean = k_test_train @ _linalg.solve_pd(chol, y2)
    half = solve_triangular(chol, k_test_train.T, lower=True)  # L^{-1} K_{X*}: (n, m)
    if k_test_test.ndim == 1:
        cov = k_test_test - jnp.sum(half * half, axis=0)
    else:
        cov = k_test_test - half.T @ half
    return GPPosterior(mean[:, 0] if squeeze else mean, cov)
