"""Function-space gradient flow of a linearised network for any loss, integrated by diffrax."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

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

    integrated by ``diffrax.diffeqsolve`` (Kidger 2021, arXiv:2202.02435) with the fifth-order
    explicit Runge-Kutta method ``Tsit5`` (Tsitouras 2011) and ``substeps`` equal steps between
    consecutive requested times (fixed steps: no error control). ``L`` is used exactly as given,
    no normalisation is added: the mean loss ``L = (1/2n) Σ (f - y)²`` (the convention of
    :mod:`nnlab.predict`) reproduces :func:`gradient_flow_mse`, and ``½ Σ (f - y)²`` reproduces
    it with ``loss_normalization='sum'``. Steps are stable for ``η λ_max h < 3.5`` and accurate
    (global error ``O(h⁵)``) for ``η λ_max h ≲ 0.5``, with ``h = Δt / substeps`` and ``λ_max`` the
    largest eigenvalue of ``Θ`` times the largest curvature of ``L``.

    Args:
      loss: ``loss(f_train, y) -> scalar``, with ``f_train`` shaped like ``y``; e.g.
        ``lambda f, y: optax.softmax_cross_entropy(f, y).mean()``. Repeated calls with the same
        (hashable) ``loss``, ``substeps`` and shapes reuse one compiled solver.
      ntk_train: ``(n, n)`` NTK on the training points.
      y: targets (``(n,)`` or ``(n, k)``, e.g. one-hot labels).
      t: sorted non-negative finite times, scalar or ``(T,)``; may be traced.
      ntk_test_train: optional ``(m, n)`` test-train NTK.
      lr: learning rate ``η >= 0`` (may be traced).
      f0_train, f0_test: outputs at initialisation (default zero).
      substeps: Runge-Kutta steps per interval between requested times (a positive int,
        static).

    Raises:
      TypeError / ValueError: for a non-callable ``loss``, bad shapes, NaN/inf in the
        kernels, targets, outputs or times, unsorted or negative times, a negative or NaN
        ``lr`` or a non-positive ``substeps``.

    Returns:
      ``TrainTestPrediction(train, test)`` with a leading axis of ``t.shape``.

    Example:
      >>> import jax.numpy as jnp
      >>> mse = lambda f, y: 0.5 * jnp.mean((f - y) ** 2)
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
    if ntk_test_train is not None:
        ntk_test_train = check_cross(ntk_test_train, None, n, "ntk_test_train")
        shape = (ntk_test_train.shape[0], *y.shape[1:])
        if f0_test is None:
            f0_test = jnp.zeros(shape, y.dtype)
        else:
            f0_test = as_float_array(f0_test, "f0_test").astype(y.dtype)
        if f0_test.shape != shape:
            raise ValueError(f"f0_test must have shape {shape}, got {f0_test.shape}.")
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
    # One state: the training outputs stacked on the test outputs, driven by the stacked kernel.
    kernel = ntk_train if ntk_test_train is None else jnp.concatenate([ntk_train, ntk_test_train])
    state = f0_train if f0_test is None else jnp.concatenate([f0_train, f0_test])
    times = jnp.atleast_1d(t)
    if times.shape[0] == 0:
        path = jnp.zeros((0, *state.shape), y.dtype)
    else:
        solve = _solve_jit if _hashable(loss) else _solve
        path = solve(loss, substeps, kernel, y, state, times, jnp.asarray(lr, y.dtype))
    if t.ndim == 0:
        path = path[0]
    train, test = jnp.split(path, [n], axis=t.ndim)  # (*t.shape, n + m, ...) -> n and m rows
    return TrainTestPrediction(train, None if ntk_test_train is None else test)


def _hashable(fn) -> bool:
    try:
        hash(fn)
    except TypeError:
        return False
    return True


def _solve(loss, substeps, kernel, y, state, times, eta):
    """Outputs at ``times`` (T,): ``df/dt = -η kernel ∇L(f[:n], y)`` from ``state`` at t = 0.

    Each interval ``[t_{k-1}, t_k]`` is one ``diffeqsolve`` in the step counter ``s ∈ [0,
    substeps]`` with ``dt/ds = h = (t_k - t_{k-1}) / substeps``, so its unit steps in ``s``
    (exact in floating point) are ``substeps`` equal time steps, and a repeated time (``h =
    0``) leaves the outputs unchanged. (One solve with ``SaveAt(ts=times)`` compiles about twice
    as slowly and cannot step over repeated times.)
    """
    import diffrax  # here, not at the top: importing it takes seconds and only this needs it

    n = kernel.shape[1]
    grad_loss = jax.grad(loss)

    def velocity(_s, f, h):
        return -(eta * h) * jnp.tensordot(kernel, grad_loss(f[:n], y), axes=1)

    def interval(carry, t_next):
        f, t_prev = carry
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(velocity),
            diffrax.Tsit5(),
            t0=0.0,
            t1=float(substeps),
            dt0=1.0,
            y0=f,
            args=(t_next - t_prev) / substeps,
            saveat=diffrax.SaveAt(t1=True),
            stepsize_controller=diffrax.ConstantStepSize(),
            max_steps=substeps,
        )
        return (sol.ys[0], t_next), sol.ys[0]

    _, path = jax.lax.scan(interval, (state, jnp.zeros((), times.dtype)), times)
    return path


_solve_jit = partial(jax.jit, static_argnames=("loss", "substeps"))(_solve)
