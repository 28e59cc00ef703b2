r"""The uv model of Lewkowycz, Bahri, Dyer, Sohl-Dickstein & Gur-Ari (2020, arXiv:2003.02218).

A two-layer linear network of width ``n`` on one scalar input ``x``,

.. math::
    f = \frac{x}{\sqrt n}\, v \cdot u, \qquad L = \tfrac12 (f - y)^2,
    \qquad \lambda = \frac{x^2}{n}\left(|u|^2 + |v|^2\right),

where :math:`\lambda` is its neural tangent kernel (one sample, one output). It is the
smallest model with the catapult phase.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import _checks


class UVParams(NamedTuple):
    """Parameters of the uv model: ``u`` and ``v`` of shape ``(n,)``."""

    u: jax.Array
    v: jax.Array


class UVState(NamedTuple):
    """Function-space state of the uv model: output ``f`` and NTK ``lam`` (scalars)."""

    f: jax.Array
    lam: jax.Array


class UVTrajectory(NamedTuple):
    """A gradient-descent trajectory: ``f``, ``lam`` and ``loss`` of shape ``(..., steps + 1)``."""

    f: jax.Array
    lam: jax.Array
    loss: jax.Array


def _check_lr(lr):
    if not isinstance(lr, jax.core.Tracer):
        a = np.asarray(lr)
        if a.dtype.kind not in "iuf" or not np.all(np.isfinite(a)) or np.any(a <= 0):
            raise ValueError(f"lr must be a positive finite number, got {lr!r}.")


@dataclasses.dataclass(frozen=True)
class UVModel:
    r"""The uv model ``f = v·u x/√n`` with MSE loss ``½(f - y)²`` (Lewkowycz et al. 2020).

    Gradient descent at rate :math:`\eta` on the parameters,

    .. math::
        u' = u - \eta\, r\, \tfrac{x}{\sqrt n} v, \qquad v' = v - \eta\, r\, \tfrac{x}{\sqrt n} u,
        \qquad r = f - y,

    closes on the pair :math:`(f, \lambda)` (expand :math:`v'\cdot u'` and
    :math:`|u'|^2 + |v'|^2`; the cross terms are :math:`\frac{x}{\sqrt n} u\cdot v = f`):

    .. math::
        f' &= f - \eta\lambda\, r + \eta^2 r^2 \tfrac{x^2}{n} f, \\
        \lambda' &= \lambda + \eta\, r\, \tfrac{x^2}{n}\left(\eta\lambda\, r - 4 f\right).

    With ``y = 0`` these are Lewkowycz et al.'s eqs. (3)-(4):
    ``f' = (1 - ηλ + η²f²/n) f`` and ``λ' = λ + η f²/n (ηλ - 4)`` (for ``x = 1``). Hence, for
    large ``n``, ``η < 2/λ0`` is lazy (λ stays at λ0), ``2/λ0 < η < 4/λ0`` catapults (|f|
    grows until ``f² ~ n``, which drives λ down until ``ηλ < 2``, then converges) and
    ``η > 4/λ0`` diverges.

    Attributes:
      n: width (positive int).
      x: the scalar input (non-zero).
      y: the scalar target.

    Example:
      >>> import jax
      >>> m = UVModel(1000)
      >>> p = m.init(jax.random.key(0))
      >>> s = m.state(p)
      >>> s2 = m.function_step(s, 0.5)
      >>> p2 = m.gd_step(p, 0.5)
      >>> bool(abs(s2.f - m.apply(p2)) < 1e-4), bool(abs(s2.lam - m.ntk(p2)) < 1e-4)
      (True, True)
    """

    n: int
    x: float = 1.0
    y: float = 0.0

    def __post_init__(self):
        if isinstance(self.n, bool) or not isinstance(self.n, int | np.integer) or self.n < 1:
            raise ValueError(f"n must be a positive int (the width), got {self.n!r}.")
        object.__setattr__(self, "n", int(self.n))
        for name in ("x", "y"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
                raise TypeError(f"{name} must be a real number, got {type(v).__name__}.")
            _checks.real(v, name, fix="The uv model's input and target are finite scalars.")
            object.__setattr__(self, name, float(v))
        if self.x == 0:
            raise ValueError("x must be non-zero (with x = 0 the model is constant).")

    def init(self, key: jax.Array, dtype=None) -> UVParams:
        """``u, v ~ N(0, 1)`` i.i.d. (NTK parameterisation), so ``λ0 → 2x²`` as ``n → ∞``."""
        ku, kv = jax.random.split(key)
        dtype = dtype or jnp.zeros(()).dtype
        return UVParams(
            jax.random.normal(ku, (self.n,), dtype), jax.random.normal(kv, (self.n,), dtype)
        )

    def apply(self, params: UVParams) -> jax.Array:
        """``f = x v·u / √n``."""
        return self.x * jnp.vdot(params.v, params.u) / jnp.sqrt(self.n)

    def loss(self, params: UVParams) -> jax.Array:
        """``½ (f - y)²``."""
        return 0.5 * jnp.square(self.apply(params) - self.y)

    def ntk(self, params: UVParams) -> jax.Array:
        """``λ = x² (|u|² + |v|²) / n``."""
        return self.x**2 * (jnp.vdot(params.u, params.u) + jnp.vdot(params.v, params.v)) / self.n

    def state(self, params: UVParams) -> UVState:
        """``(f, λ)`` of ``params``."""
        return UVState(self.apply(params), self.ntk(params))

    def gd_step(self, params: UVParams, lr) -> UVParams:
        """One explicit gradient-descent step on ``(u, v)`` with rate ``lr``."""
        _check_lr(lr)
        r = self.apply(params) - self.y
        c = lr * r * self.x / jnp.sqrt(self.n)
        return UVParams(params.u - c * params.v, params.v - c * params.u)

    def function_step(self, state: UVState, lr) -> UVState:
        r"""The same step in closed form on ``(f, λ)`` (see the class docstring)."""
        _check_lr(lr)
        f, lam = state
        r = f - self.y
        a = self.x**2 / self.n
        f_new = f - lr * lam * r + lr**2 * r**2 * a * f
        lam_new = lam + lr * r * a * (lr * lam * r - 4.0 * f)
        return UVState(f_new, lam_new)

    def simulate(self, params0: UVParams, lr, steps: int) -> UVTrajectory:
        """GD on the full parameters for ``steps`` steps; logs ``f, λ, loss`` at every step.

        Works under ``jit`` (``steps`` static) and ``vmap`` (over ``params0`` and ``lr``).
        Non-finite values are kept (a divergent run ends in inf/NaN).
        """
        _check_steps(steps)
        _check_lr(lr)

        def body(p, _):
            p2 = self.gd_step(p, lr)
            return p2, self.state(p2)

        _, states = jax.lax.scan(body, params0, length=steps)
        return self._trajectory(self.state(params0), states)

    def simulate_function(self, state0: UVState, lr, steps: int) -> UVTrajectory:
        """The closed-form ``(f, λ)`` recursion for ``steps`` steps (same output as
        :meth:`simulate`)."""
        _check_steps(steps)
        _check_lr(lr)

        def body(s, _):
            s2 = self.function_step(s, lr)
            return s2, s2

        _, states = jax.lax.scan(body, UVState(*map(jnp.asarray, state0)), length=steps)
        return self._trajectory(UVState(*map(jnp.asarray, state0)), states)

    def _trajectory(self, s0: UVState, states: UVState) -> UVTrajectory:
        f = jnp.concatenate([s0.f[None], states.f])
        lam = jnp.concatenate([s0.lam[None], states.lam])
        return UVTrajectory(f, lam, 0.5 * jnp.square(f - self.y))


def _check_steps(steps):
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}.")
