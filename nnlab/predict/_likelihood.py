"""GP log marginal likelihood and gradient-ascent fits of kernel hyperparameters with optax."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from nnlab import _checks

from ._linalg import (
    add_ridge,
    as_float_array,
    check_nonnegative,
    check_square,
    check_targets,
    cholesky,
    solve_pd,
)


def log_marginal_likelihood(k_train, y, *, noise=0.0) -> jax.Array:
    r"""Log evidence of targets under a zero-mean GP (Rasmussen & Williams 2006, eq. 2.30).

    .. math::
       \log p(Y) = \sum_{c=1}^{k}\Big[-\tfrac12 y_c^\top C^{-1} y_c - \tfrac12 \log\det C
                   - \tfrac n2 \log 2\pi\Big], \qquad C = K(X, X) + \sigma^2 I,

    summed over the ``k`` independent output columns. With the NNGP kernel this is the evidence
    of the infinitely wide Bayesian network (Lee et al. 2018, arXiv:1711.00165). Differentiable
    in ``k_train`` and ``noise``; computed with one Cholesky factorisation.

    Args:
      k_train: ``(n, n)`` kernel.
      y: ``(n,)`` or ``(n, k)`` targets.
      noise: observation-noise variance ``σ² >= 0``.

    Returns:
      Scalar log likelihood. Raises ``ValueError`` outside ``jit`` when ``C`` is not positive
      definite; inside ``jit`` (and under ``grad``) that case gives NaN.

    Example:
      >>> import jax.numpy as jnp
      >>> round(float(log_marginal_likelihood(jnp.eye(2), jnp.zeros(2))), 4)  # -log(2π)
      -1.8379
    """
    k_train = check_square(k_train, "k_train")
    n = k_train.shape[0]
    y2, _ = check_targets(y, n)
    check_nonnegative(noise, "noise")
    chol = cholesky(add_ridge(k_train, noise), "k_train + noise * I")
    alpha = solve_pd(chol, y2)
    n_out = y2.shape[1]
    log_det = 2 * jnp.sum(jnp.log(jnp.diag(chol)))
    return (
        -0.5 * jnp.sum(y2 * alpha) - 0.5 * n_out * log_det - 0.5 * n * n_out * jnp.log(2 * jnp.pi)
    )


class HyperparameterFit(NamedTuple):
    """Result of :func:`fit_hyperparameters`: final params and the log likelihood per step
    (``(steps,)``, evaluated before each update; NaN entries flag a non-PD covariance)."""

    params: Any
    log_likelihood: jax.Array


def fit_hyperparameters(
    kernel_fn: Callable[[Any], jax.Array],
    params,
    y,
    *,
    steps: int = 300,
    optimizer: optax.GradientTransformation | None = None,
) -> HyperparameterFit:
    r"""Maximise the GP log marginal likelihood over kernel hyperparameters by gradient ascent.

    Runs ``steps`` updates of ``optimizer`` (default ``optax.adam(0.05)``) on
    ``-log p(Y | C(params))`` with ``C = kernel_fn(params)`` (see
    :func:`log_marginal_likelihood`) inside one ``jax.lax.scan``. ``kernel_fn`` returns the
    full ``(n, n)`` covariance of the targets, noise included, so any hyperparameters work:
    e.g. ``W_std``, ``b_std`` of an analytic NNGP and the noise variance, parameterised
    unconstrained (``exp``/``softplus``) by the caller. This answers neural-tangents issue #181.

    Args:
      kernel_fn: ``params -> (n, n)`` covariance; must be differentiable in ``params``.
      params: initial pytree of (unconstrained) hyperparameters.
      y: ``(n,)`` or ``(n, k)`` targets.
      steps: number of optimiser steps (static).
      optimizer: an ``optax.GradientTransformation``.

    Returns:
      ``HyperparameterFit(params, log_likelihood)``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> x = jnp.linspace(-1, 1, 20)[:, None]
      >>> y = jnp.sin(3 * x[:, 0])
      >>> def cov(p):
      ...     k = jnp.exp(p["log_amp"]) * jnp.exp(-((x - x.T) ** 2) / 0.5)
      ...     return k + jnp.exp(p["log_noise"]) * jnp.eye(20)
      >>> fit = fit_hyperparameters(cov, {"log_amp": 0.0, "log_noise": -2.0}, y, steps=50)
      >>> bool(fit.log_likelihood[-1] > fit.log_likelihood[0])
      True
    """
    _checks.function(kernel_fn, "kernel_fn", "kernel_fn(params) -> (n, n) covariance")
    y = as_float_array(y, "y")
    steps = _checks.integer(steps, "steps")
    optimizer = optax.adam(0.05) if optimizer is None else optimizer
    if not (
        callable(getattr(optimizer, "init", None)) and callable(getattr(optimizer, "update", None))
    ):
        raise TypeError(
            "optimizer must be an optax.GradientTransformation such as optax.adam(0.05), got "
            f"{type(optimizer).__name__}."
        )
    k0 = jax.eval_shape(kernel_fn, params)
    if len(k0.shape) != 2 or k0.shape[0] != k0.shape[1]:
        raise ValueError(f"kernel_fn(params) must return an (n, n) matrix, got shape {k0.shape}.")
    check_targets(jnp.zeros(y.shape, k0.dtype), k0.shape[0])

    def neg_lml(p):
        cov = kernel_fn(p)
        chol = jnp.linalg.cholesky(cov)
        y2 = y[:, None] if y.ndim == 1 else y
        alpha = solve_pd(chol, y2)
        n, n_out = y2.shape
        log_det = 2 * jnp.sum(jnp.log(jnp.diag(chol)))
        return (
            0.5 * jnp.sum(y2 * alpha)
            + 0.5 * n_out * log_det
            + 0.5 * n * n_out * jnp.log(2 * jnp.pi)
        )

    @jax.jit
    def run(p):
        def step(carry, _):
            p, state = carry
            value, grads = jax.value_and_grad(neg_lml)(p)
            updates, state = optimizer.update(grads, state, p)
            return (optax.apply_updates(p, updates), state), -value

        (p, _), history = jax.lax.scan(step, (p, optimizer.init(p)), None, length=steps)
        return p, history

    final, history = run(params)
    return HyperparameterFit(final, history)
