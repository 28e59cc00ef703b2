"""Kernel (ridge) regression and the Gaussian-process posterior, by Cholesky or CG."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

from . import _linalg, _solve


class GPPosterior(NamedTuple):
    """Posterior mean ``(m,)``/``(m, k)`` and covariance ``(m, m)`` (or variance ``(m,)``)."""

    mean: jax.Array
    covariance: jax.Array


def kernel_regression(k_train, y, k_test_train, *, ridge=0.0, solver="auto"):
    r"""Kernel ridge regression: the predictor at the test points.

    .. math:: \hat f(x_*) = K(x_*, X)\,\big(K(X, X) + \delta I\big)^{-1} Y

    This is the t → ∞ limit of gradient flow on the MSE loss with kernel ``K`` (Jacot et al.
    2018, arXiv:1806.07572) and the GP posterior mean (Rasmussen & Williams 2006, eq. 2.23).
    Solved by one Cholesky factorisation or by preconditioned conjugate gradients
    (``solver``, see :mod:`nnlab.predict._solve`); works in float32 or float64 (the dtype of
    the inputs). Kernels may be arrays or matrix-free operators
    (:func:`nnlab.kernel_operator`, :func:`nnlab.empirical.ntk_operator`,
    :func:`nnlab.kernels.matrix_operator`), so ``n`` is not limited by ``n²`` memory.

    Args:
      k_train: ``(n, n)`` train-train kernel: an array or a square ``KernelOperator``.
      y: ``(n,)`` or ``(n, k)`` targets.
      k_test_train: ``(m, n)`` test-train kernel: an array or a ``KernelOperator``.
      ridge: ``δ >= 0`` added to the diagonal (jitter / ridge / noise variance).
      solver: ``'auto'`` (Cholesky for a stored kernel that fits, CG otherwise; logged),
        ``'cholesky'``, ``'cg'`` or :class:`nnlab.predict.CG` with options (tolerance,
        iterations, Nyström rank).

    Returns:
      ``(m,)`` or ``(m, k)`` predictions, matching the shape of ``y``.

    Raises:
      TypeError: for non-arrays or complex/non-numeric dtypes.
      ValueError: on shape mismatch, an empty kernel, NaN/inf in the inputs, a negative or NaN
        ridge, or (outside ``jit``) when
        ``k_train + ridge·I`` is not positive definite or CG does not reach its tolerance.
        Inside ``jit`` a failed Cholesky or CG gives NaN predictions instead.

    Example:
      >>> import jax.numpy as jnp
      >>> k = jnp.array([[2.0, 1.0], [1.0, 2.0]])
      >>> pred = kernel_regression(k, jnp.array([1.0, 0.0]), jnp.array([[1.0, 1.0]]))
      >>> [round(v, 3) for v in pred.tolist()]
      [0.333]
    """
    k_train = _solve.check_train(k_train)
    n = k_train.shape[0]
    y2, squeeze = _linalg.check_targets(y, n)
    k_test_train = _solve.check_test_train(k_test_train, n)
    _linalg.check_nonnegative(ridge, "ridge")
    method = _solve.resolve_solver(solver, k_train)
    coef = _solve.check_converged(_solve._solve(k_train, y2, ridge, method, "k_train"), "k_train")
    mean = k_test_train @ coef
    return mean[:, 0] if squeeze else mean


def gp_posterior(k_train, y, k_test_train, k_test_test, *, noise=0.0, solver="auto"):
    r"""Gaussian-process posterior at test points (Rasmussen & Williams 2006, eqs. 2.23-2.24).

    .. math::
       \mu = K_{*X}(K_{XX} + \sigma^2 I)^{-1} Y, \qquad
       \Sigma = K_{**} - K_{*X}(K_{XX} + \sigma^2 I)^{-1} K_{X*}

    For the NNGP kernel this is exact Bayesian inference in the infinitely wide network
    (Lee et al. 2018, arXiv:1711.00165). Outputs (columns of ``Y``) are independent and share
    the covariance. ``σ²`` is the observation-noise variance (a ridge / jitter).

    Args:
      k_train: ``(n, n)`` train-train kernel: an array or a square ``KernelOperator``.
      y: ``(n,)`` or ``(n, k)`` targets.
      k_test_train: ``(m, n)`` test-train kernel: an array or a ``KernelOperator``.
      k_test_test: ``(m, m)`` test-test kernel, or its diagonal ``(m,)`` to get only the
        marginal variances (memory ``O(m n)`` instead of ``O(m²)`` for large test sets).
      noise: observation-noise variance ``σ² >= 0``.
      solver: as in :func:`kernel_regression`. With CG the covariance solves
        ``(K + σ²I) Z = K_{X*}`` for all ``m`` test columns at once (``K_{X*}`` is formed,
        ``O(n m)`` memory; one product per iteration).

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
    k_train = _solve.check_train(k_train)
    n = k_train.shape[0]
    y2, squeeze = _linalg.check_targets(y, n)
    k_test_train = _solve.check_test_train(k_test_train, n)
    m = k_test_train.shape[0]
    k_test_test = _linalg.as_float_array(k_test_test, "k_test_test")
    if k_test_test.shape not in ((m, m), (m,)):
        raise ValueError(
            f"k_test_test must have shape ({m}, {m}) or its diagonal ({m},), "
            f"got shape {k_test_test.shape}."
        )
    _linalg.check_nonnegative(noise, "noise")
    method = _solve.resolve_solver(solver, k_train)
    if method == "cholesky":
        k_star = _solve.dense(k_test_train)
        k_noisy = _linalg.add_ridge(_solve.dense(k_train), noise)
        chol = _linalg.cholesky(k_noisy, "k_train + noise * I")
        mean = k_star @ _linalg.solve_pd(chol, y2)
        half = solve_triangular(chol, k_star.T, lower=True)  # L^{-1} K_{X*}: (n, m)
        shrink = jnp.sum(half * half, axis=0) if k_test_test.ndim == 1 else half.T @ half
    else:
        k_x_test = _solve.dense(k_test_train.T)  # K_{X*}: (n, m)
        solved = _solve._solve(k_train, jnp.concatenate([y2, k_x_test], axis=1), noise, method,
                               "k_train")  # fmt: skip
        both = _solve.check_converged(solved, "k_train")
        mean = k_test_train @ both[:, : y2.shape[1]]
        z = both[:, y2.shape[1] :]  # (K + σ²I)^-1 K_X*
        shrink = jnp.sum(k_x_test * z, axis=0) if k_test_test.ndim == 1 else k_x_test.T @ z
    return GPPosterior(mean[:, 0] if squeeze else mean, k_test_test - shrink)
