"""Function-space gradient flow of a linearised network for any loss, by RK4 integration."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import _checks
from nnlab._checks import is_traced

from ._gradient_descent import TrainTestPrediction
from ._linalg import as_float_array, check_cross, check_square


def gradient_flow(
    loss: Callable[[jax.Array, jax.Array], jax.Array],
    ntk_train,
    y,
    t,
    ntk_test_train=None,
    *,
    lr=1.0,
    f0_train=None,
    f0_test=None,
    substeps: int = 100,
) -> TrainTestPrediction:
    r"""Outputs of the linearised network under gradient flow on an arbitrary loss.

    The linearised network moves in function space as (Lee et al. 2019, arXiv:1902.06720,
    eq. 7)

    .. math::
       \frac{d f_t(X)}{dt} = -\eta\,\Theta(X, X)\,\nabla_f L(f_t(X), Y), \qquad
       \frac{d f_t(x)}{dt} = -\eta\,\Theta(x, X)\,\nabla_f L(f_t(X), Y),

    integrated here with classical fourth-order Runge-Kutta, ``substeps`` equal steps between
    consecutive requested times. ``L`` is used exactly as given (no normalisation is added): for
    ``L = ½ Σ (f - y)²`` this reproduces :func:`gradient_flow_mse`; for a mean loss divide by
    ``n`` inside ``loss``. Accuracy needs ``η λ_max h ≲ 0.5`` with ``h = Δt / substeps`` and
    ``λ_max`` the largest eigenvalue of ``Θ`` times the largest curvature of ``L``.

    Args:
      loss: ``loss(f_train, y) -> scalar``, with ``f_train`` shaped like ``y``; e.g.
        ``lambda f, y: optax.softmax_cross_entropy(f, y).sum()``.
      ntk_train: ``(n, n)`` NTK on the training points.
      y: targets (``(n,)`` or ``(n, k)``, e.g. one-hot labels).
      t: sorted non-negative finite times, scalar or ``(T,)``; may be traced.
      ntk_test_train: optional ``(m, n)`` test-train NTK.
      lr: learning rate ``η >= 0``.
      f0_train, f0_test: outputs at initialisation (default zero).
      substeps: RK4 steps per interval between requested times (a positive int, static).

    Raises:
      TypeError / ValueError: for a non-callable ``loss``, bad shapes, NaN/inf in the
        kernels, targets, outputs or times, unsorted or negative times, a negative or NaN
        ``lr`` or a non-positive ``substeps``.

    Returns:
      ``TrainTestPrediction(train, test)`` with a leading axis of ``t.shape``.

    Example:
      >>> import jax.numpy as jnp
      >>> mse = lambda f, y: 0.5 * jnp.sum((f - y) ** 2)
      >>> out = gradient_flow(mse, jnp.eye(1), jnp.array([1.0]), 1.0).train
      >>> [round(v, 4) for v in out.tolist()]  # 1 - 1/e
      [0.6321]
    """
    _checks.function(loss, "loss", "loss(f_train, y) -> scalar")
    ntk_train = check_square(ntk_train, "ntk_train")
    n = ntk_train.shape[0]
    y = as_float_array(y, "y")
    if y.shape[:1] != (n,):
        raise ValueError(f"y must have n = {n} rows (training points), got shape {y.shape}.")
    substeps = _checks.integer(substeps, "substeps")
    _checks.real(lr, "lr", minimum=0)
    if f0_train is None:
        f0_train = jnp.zeros_like(y)
    else:
        f0_train = as_float_array(f0_train, "f0_train").astype(y.dtype)
    if f0_train.shape != y.shape:
        raise ValueError(f"f0_train must have the shape of y, {y.shape}, got {f0_train.shape}.")
    state = {"train": f0_train}
    if ntk_test_train is not None:
        ntk_test_train = check_cross(ntk_test_train, None, n, "ntk_test_train")
        shape = (ntk_test_train.shape[0], *y.shape[1:])
        if f0_test is None:
            f0_test = jnp.zeros(shape, y.dtype)
        else:
            f0_test = as_float_array(f0_test, "f0_test").astype(y.dtype)
        if f0_test.shape != shape:
            raise ValueError(f"f0_test must have shape {shape}, got {f0_test.shape}.")
        state["test"] = f0_test
    elif f0_test is not None:
        raise ValueError("f0_test was given without ntk_test_train; pass both or neither.")
    t = jnp.asarray(t, y.dtype)
    if t.ndim > 1:
        raise ValueError(f"t must be a scalar or a 1-D array of times, got shape {t.shape}.")
    if not is_traced(t):
        t_np = np.asarray(t)
        if not np.all(np.isfinite(t_np)) or np.any(t_np < 0):
            raise ValueError(f"t must be finite and >= 0, got {t}.")
        if t.ndim == 1 and np.any(np.diff(t_np) < 0):
            raise ValueError(f"t must be sorted in increasing order, got {t}.")
    eta = jnp.asarray(lr, y.dtype)
    grad_loss = jax.grad(loss)

    def velocity(s):
        g = grad_loss(s["train"], y)
        out = {"train": -eta * jnp.tensordot(ntk_train, g, axes=1)}
        if "test" in s:
            out["test"] = -eta * jnp.tensordot(ntk_test_train, g, axes=1)
        return out

    def rk4(s, h):
        def axpy(a, u, v):
            return jax.tree.map(lambda ui, vi: ui + a * vi, u, v)

        k1 = velocity(s)
        k2 = velocity(axpy(h / 2, s, k1))
        k3 = velocity(axpy(h / 2, s, k2))
        k4 = velocity(axpy(h, s, k3))
        return jax.tree.map(
            lambda si, a, b, c, d: si + h / 6 * (a + 2 * b + 2 * c + d), s, k1, k2, k3, k4
        )

    def interval(carry, t_next):
        s, t_prev = carry
        h = (t_next - t_prev) / substeps
        s = jax.lax.fori_loop(0, substeps, lambda _, si: rk4(si, h), s)
        return (s, t_next), s

    _, path = jax.lax.scan(interval, (state, jnp.zeros((), y.dtype)), jnp.atleast_1d(t))
    if t.ndim == 0:
        path = jax.tree.map(lambda a: a[0], path)
    return TrainTestPrediction(path["train"], path.get("test"))
