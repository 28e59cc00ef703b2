r"""Exact mode dynamics of deep linear networks (Saxe, McClelland & Ganguli 2013).

Convention used throughout :mod:`nnlab.deeplinear`: with whitened inputs
(:math:`\Sigma_{xx} = I`), the loss :math:`L = \frac{1}{2P}\sum_\mu \lVert y_\mu - W_D\cdots W_1
x_\mu\rVert^2` and a balanced, mode-aligned initialisation, every singular mode :math:`\alpha` of
:math:`\Sigma_{yx} = U S V^\top` evolves on its own. Writing :math:`u_\alpha = a^D` for the mode's
strength in the product of :math:`D` weight matrices (each layer carrying the factor :math:`a`),
gradient flow :math:`\tau\, dW_l/dt = -\partial L/\partial W_l` gives

.. math::
    \tau \frac{da}{dt} = a^{D-1}(s - a^D), \qquad
    \tau \frac{du}{dt} = D\, u^{2 - 2/D}\, (s - u).

Gradient descent with learning rate :math:`\eta` follows this flow with :math:`\tau = 1/\eta` when
:math:`t` counts steps (up to :math:`O(\eta)` discretisation corrections).

Reference: A. M. Saxe, J. L. McClelland, S. Ganguli, "Exact solutions to the nonlinear dynamics of
learning in deep linear neural networks", 2013, arXiv:1312.6120.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import _roots

_BISECTION_STEPS = 96


def _check_depth(depth) -> int:
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)):
        raise TypeError(
            f"depth must be a Python int (the number of weight matrices), got "
            f"{type(depth).__name__} {depth!r}."
        )
    if depth < 1:
        raise ValueError(f"depth must be >= 1 (the number of weight matrices), got {depth}.")
    return int(depth)


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _check_positive(x, name: str) -> None:
    if _is_concrete(x) and not bool(np.all(np.asarray(x) > 0)):
        raise ValueError(
            f"{name} must be positive, got {np.asarray(x)!r}; the balanced solution needs "
            f"{name} > 0 (a mode with s = 0 or u0 = 0 never leaves the saddle at u = 0)."
        )


def _check_finite(x, name: str) -> None:
    if _is_concrete(x):
        arr = np.asarray(x)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold real numbers, got {x!r} (dtype {arr.dtype}).")
        if not bool(np.all(np.isfinite(arr))):
            raise ValueError(f"{name} must be finite, got {arr!r}.")


def _floats(*args):
    """Cast to a common floating dtype (at least the default float) and broadcast."""
    dtype = jnp.result_type(*args)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(float)
    arrays = [jnp.asarray(a, dtype) for a in args]
    shape = jnp.broadcast_shapes(*(a.shape for a in arrays))
    return [jnp.broadcast_to(a, shape) for a in arrays]


def _antiderivative_general(a, s, depth: int):
    r""":math:`F(a) = \int da / (a^{D-1}(s - a^D))` for ``depth`` :math:`D \ge 3` (real form).

    Partial fractions give :math:`F = \frac1s\left[\frac{a^{2-D}}{2-D} + s^{2/D-1} H(a s^{-1/D})
    \right]` with :math:`H(z) = \int z\,dz/(1-z^D) = -\frac1D \sum_{j} \omega_j^2 \log(z-\omega_j)`
    over the :math:`D`-th roots of unity :math:`\omega_j`; conjugate pairs are combined into
    real logarithms and angles, so :math:`F` is real and continuous on :math:`a \ne s^{1/D}`.
    """
    d = depth
    z = a / s ** (1.0 / d)
    h = jnp.log(jnp.abs(z - 1.0))  # j = 0, omega = 1
    if d % 2 == 0:
        h = h + jnp.log(z + 1.0)  # omega = -1
    for j in range(1, (d + 1) // 2):
        theta = 2.0 * math.pi * j / d
        c, sn = math.cos(theta), math.sin(theta)
        log_mod = 0.5 * jnp.log(z * z - 2.0 * c * z + 1.0)
        angle = jnp.arctan2(-sn, z - c)
        h = h + 2.0 * (math.cos(2.0 * theta) * log_mod - math.sin(2.0 * theta) * angle)
    h = -h / d
    return (a ** (2 - d) / (2 - d) + s ** (2.0 / d - 1.0) * h) / s


def _time_between(s, u_start, u_end, depth: int):
    """Time (in units of tau) for the balanced flow to move from u_start to u_end."""
    if depth == 1:
        return jnp.log((s - u_start) / (s - u_end))
    if depth == 2:
        return jnp.log(u_end * (s - u_start) / (u_start * (s - u_end))) / (2.0 * s)
    a0 = u_start ** (1.0 / depth)
    a1 = u_end ** (1.0 / depth)
    return _antiderivative_general(a1, s, depth) - _antiderivative_general(a0, s, depth)


def mode_velocity(u, s, tau=1.0, depth: int = 2):
    r"""Right-hand side of the balanced mode ODE, :math:`du/dt = D u^{2-2/D}(s - u)/\tau`.

    Saxe, McClelland & Ganguli (2013), arXiv:1312.6120, eq. (5) for :math:`D = 2` and the deep
    chain of Sec. 3 (``depth`` :math:`D` weight matrices, balanced :math:`u = a^D`).

    Args:
      u: current mode strengths (``>= 0``).
      s: singular values of :math:`\Sigma_{yx}` (whitened inputs), broadcastable with ``u``.
      tau: time constant ``> 0``, :math:`1/\eta` for gradient descent with learning rate
        :math:`\eta`.
      depth: number of weight matrices :math:`D \ge 1`.

    Returns:
      :math:`du/dt`, the broadcast shape of ``u`` and ``s``.

    Example:
      >>> float(mode_velocity(0.5, 1.0, tau=1.0, depth=2))
      0.5
    """
    depth = _check_depth(depth)
    for value, name in ((u, "u"), (s, "s"), (tau, "tau")):
        _check_finite(value, name)
    _check_positive(tau, "tau")
    if _is_concrete(u) and not bool(np.all(np.asarray(u) >= 0)):
        raise ValueError(
            f"u must be >= 0 (a balanced mode strength u = a^D), got {np.asarray(u)!r}."
        )
    u, s, tau = _floats(u, s, tau)
    return depth * u ** (2.0 - 2.0 / depth) * (s - u) / tau


@functools.partial(jax.jit, static_argnames=("depth",))
def _solve(s, u0, x, *, depth: int):
    """u(t) for t / tau = x (see mode_dynamics)."""
    if depth == 1:
        return s + (u0 - s) * jnp.exp(-x)
    if depth == 2:
        # The stable form of s e^{2sx} / (e^{2sx} - 1 + s/u0).
        return s / (1.0 + (s / u0 - 1.0) * jnp.exp(-2.0 * s * x))
    a0, a_inf = u0 ** (1.0 / depth), s ** (1.0 / depth)
    # At rest (u0 = s, or a0 within an ulp of a_inf) u stays at s; a distinct stand-in for s
    # keeps the solve, and the derivatives through it, finite in those entries.
    a0_, a_inf_ = jax.lax.stop_gradient((a0, a_inf))
    at_rest = (a0_ == a_inf_) | (a0_ == jnp.nextafter(a_inf_, a0_))
    a = jnp.vectorize(functools.partial(_invert_time, depth=depth))(
        jnp.where(at_rest, 2.0 * u0, s), u0, x
    )
    return jnp.where(at_rest, s, a**depth)


def _invert_time(s, u0, x, *, depth: int):
    """The ``a = u^{1/D}`` at which the elapsed time F(a) - F(a0) equals x (scalars).

    The elapsed time is monotone on the bracket between ``a0`` and ``a_inf = s^{1/D}`` (zero at
    ``a0``, infinite at ``a_inf``), rising in ``a`` for growth and falling for decay; ``sign``
    turns it into a function rising from ``lower`` to ``upper`` for :func:`nnlab._roots.bisect`.
    The bracket stops one ulp short of ``a_inf``, where ``F'`` is infinite: a saturated mode then
    has ``u`` within ``2D`` ulps of ``s`` and a finite (tiny) implicit derivative, where the
    implicit function theorem's linear solve would otherwise meet ``inf`` and raise.
    """
    a0 = u0 ** (1.0 / depth)
    a_inf = s ** (1.0 / depth)
    sign = jnp.sign(a_inf - a0)

    def late(a, args):  # sign * (time to reach a - x)
        s, f0, x, sign = args
        return sign * (_antiderivative_general(a, s, depth) - f0 - x)

    a0_, a_inf_ = jax.lax.stop_gradient((a0, a_inf))  # the bracket carries no derivative
    end = jnp.nextafter(a_inf_, a0_)
    lower, upper = jnp.minimum(a0_, end), jnp.maximum(a0_, end)
    f0 = _antiderivative_general(a0, s, depth)
    return _roots.bisect(late, lower, upper, (s, f0, x, sign), steps=_BISECTION_STEPS)


def mode_dynamics(s, u0, t, tau=1.0, depth: int = 2):
    r"""Mode strength :math:`u(t)` of a balanced deep linear network (exact solution).

    Solves :math:`\tau\, du/dt = D\, u^{2-2/D}(s - u)`, :math:`u(0) = u_0` (Saxe et al. 2013,
    arXiv:1312.6120), with ``depth`` :math:`D` = number of weight matrices:

    * :math:`D = 1` (linear regression): :math:`u = s + (u_0 - s)e^{-t/\tau}`.
    * :math:`D = 2` (one hidden layer; Saxe et al. eq. 7):
      :math:`u(t) = \dfrac{s\, e^{2st/\tau}}{e^{2st/\tau} - 1 + s/u_0}`.
    * :math:`D \ge 3`: the exact implicit solution
      :math:`t/\tau = \int_{u_0}^{u} \frac{du'}{D u'^{2-2/D}(s-u')} = F(u^{1/D}) - F(u_0^{1/D})`,
      with :math:`F(a) = \int da/(a^{D-1}(s-a^D))` in closed form (partial fractions over the
      :math:`D`-th roots of unity), inverted for :math:`u` by 96 halvings of the bracket
      between :math:`u_0^{1/D}` and :math:`s^{1/D}` (:class:`optimistix.Bisection`), below
      float64 resolution; ``jax.grad`` through it is exact (implicit function theorem).

    Gradient descent with learning rate :math:`\eta` on
    :math:`L = \frac1{2P}\sum_\mu\lVert y_\mu - W_D\cdots W_1 x_\mu\rVert^2` (whitened inputs,
    balanced aligned init with :math:`u_\alpha(0) = u_0`) follows this with :math:`\tau = 1/\eta`
    and :math:`t` the step count.

    Args:
      s: mode strengths :math:`s_\alpha > 0` (singular values of :math:`\Sigma_{yx}`).
      u0: initial mode strengths, :math:`u_0 > 0`.
      t: times :math:`\ge 0`.
      tau: time constant :math:`\tau > 0`.
      depth: number of weight matrices :math:`D \ge 1` (a Python int).

    ``s``, ``u0``, ``t`` and ``tau`` broadcast together (NumPy rules, e.g. ``t[:, None]`` with
    ``s[None, :]``).

    Returns:
      :math:`u(t)`, with the broadcast shape.

    Example:
      >>> import jax.numpy as jnp
      >>> u = mode_dynamics(jnp.array([2.0, 1.0]), 1e-3, jnp.array([[0.0], [50.0]]), depth=3)
      >>> u.shape, bool(jnp.allclose(u[1], jnp.array([2.0, 1.0]), rtol=1e-3))
      ((2, 2), True)
    """
    depth = _check_depth(depth)
    for value, name in ((s, "s"), (u0, "u0"), (tau, "tau")):
        _check_finite(value, name)
        _check_positive(value, name)
    if _is_concrete(t):
        if np.asarray(t).dtype.kind not in "biuf":
            raise TypeError(f"t must hold real numbers, got {t!r}.")
        if not bool(np.all(np.asarray(t) >= 0)):
            raise ValueError(f"t must be >= 0 (and not NaN), got {np.asarray(t)!r}.")
    s, u0, t, tau = _floats(s, u0, t, tau)
    return _solve(s, u0, t / tau, depth=depth)


def learning_time(s, u0, u_f, tau=1.0, depth: int = 2):
    r"""Time for a balanced mode to grow (or decay) from :math:`u_0` to :math:`u_f`.

    :math:`t = \tau \int_{u_0}^{u_f} \frac{du}{D\,u^{2-2/D}(s-u)}` (Saxe et al. 2013,
    arXiv:1312.6120, eq. 8 for :math:`D = 2`:
    :math:`t = \frac{\tau}{2s}\ln\frac{u_f(s-u_0)}{u_0(s-u_f)}`; closed form by partial fractions
    for every ``depth``). :math:`u_f` must lie strictly between :math:`u_0` and :math:`s`
    (the asymptote :math:`s` is reached only as :math:`t\to\infty`); under ``jit`` other values
    give NaN or a negative time instead of an error.

    Args:
      s: mode strengths :math:`s > 0`.
      u0: initial strengths :math:`u_0 > 0`.
      u_f: target strengths, between ``u0`` and ``s``.
      tau: time constant (:math:`1/\eta` for gradient descent, time in steps).
      depth: number of weight matrices :math:`D \ge 1`.

    Returns:
      the learning time, with the broadcast shape of the inputs.

    Example:
      >>> import math
      >>> t = learning_time(1.0, 1e-3, 0.5, tau=1.0, depth=2)
      >>> math.isclose(float(t), 0.5 * math.log(999.0), rel_tol=1e-5)
      True
    """
    depth = _check_depth(depth)
    for value, name in ((s, "s"), (u0, "u0"), (u_f, "u_f"), (tau, "tau")):
        _check_finite(value, name)
        _check_positive(value, name)
    if all(_is_concrete(v) for v in (s, u0, u_f)):
        s_, u0_, uf_ = np.broadcast_arrays(np.asarray(s), np.asarray(u0), np.asarray(u_f))
        between = (np.minimum(s_, u0_) <= uf_) & (uf_ <= np.maximum(s_, u0_)) & (uf_ != s_)
        if not np.all(between):
            raise ValueError(
                f"u_f must lie between u0 and s (and differ from s, which takes infinite time); "
                f"got u_f={np.asarray(u_f)!r}, u0={np.asarray(u0)!r}, s={np.asarray(s)!r}."
            )
    s, u0, u_f, tau = _floats(s, u0, u_f, tau)
    return tau * _time_between(s, u0, u_f, depth)
