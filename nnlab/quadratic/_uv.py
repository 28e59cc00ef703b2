r"""The uv model of Lewkowycz, Bahri, Dyer, Sohl-Dickstein & Gur-Ari (2020, arXiv:2003.02218).

A two-layer linear network of width ``n`` on one scalar input ``x``,

.. math::
    f = \frac{x}{\sqrt n}\, v \cdot u, \qquad L = \tfrac12 (f - y)^2,
    \qquad \lambda = \frac{x^2}{n}\left(|u|^2 + |v|^2\right),

where :math:`\lambda` is its neural tangent kernel (one sample, one output). It is the
smallest model with the catapult phase. As an nnlab network it is
``serial(Dense(n, b_std=None), Dense(1, b_std=None))`` in the NTK parameterisation (the first
layer has fan-in 1, so its weights are ``u``; the second divides by ``√n``, its weights are
``v``), trained by :func:`nnlab.train.train` like any other network.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnlab import _checks
from nnlab import layers as nl
from nnlab import train as nt
from nnlab.record import TIME, Record

from ._models import ntk_max_eigenvalue


class UVState(NamedTuple):
    """Function-space state of the uv model: output ``f`` and NTK ``lam`` (scalars)."""

    f: jax.Array
    lam: jax.Array


class UVTrajectory(Record):
    """A gradient-descent trajectory of the uv model (``meta['time_unit'] == 'step'``).

    Variables ``f`` (output), ``lam`` (NTK) and ``loss`` (``½ (f - y)²``), each with dims
    ``('time',)`` (after ``jax.vmap``, name the new leading axis with
    :meth:`~nnlab.Record.with_leading_axis`); ``time`` holds the steps ``0..steps``.
    """

    @classmethod
    def build(cls, f, lam, loss, time) -> UVTrajectory:
        return cls(
            {"f": (TIME, f), "lam": (TIME, lam), "loss": (TIME, loss)},
            coords={TIME: time},
            meta={"time_unit": "step"},
        )


def _check_lr(lr):
    if not isinstance(lr, jax.core.Tracer):
        a = np.asarray(lr)
        if a.dtype.kind not in "iuf" or not np.all(np.isfinite(a)) or np.any(a <= 0):
            raise ValueError(f"lr must be a positive finite number, got {lr!r}.")


def _check_steps(steps):
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}.")


def _network(n: int):
    return nl.serial(nl.Dense(n, b_std=None), nl.Dense(1, b_std=None))


@functools.partial(jax.jit, static_argnums=0)
def _init(n: int, key: jax.Array):
    """One compiled init per width (eager, the layers' init is ~20 small dispatches)."""
    return _network(n).init(key, (1, 1))[1]


def _output(apply_fn, params, params0, data):
    return apply_fn(params, data.x_train)[0, 0]


def _sharpness(apply_fn, params, params0, data):
    return ntk_max_eigenvalue(apply_fn, params, data.x_train)


@dataclasses.dataclass(frozen=True)
class UVModel:
    r"""The uv model ``f = v·u x/√n`` with MSE loss ``½(f - y)²`` (Lewkowycz et al. 2020).

    Gradient descent at rate :math:`\eta` on the parameters,
    :math:`u' = u - \eta r \frac{x}{\sqrt n} v`, :math:`v' = v - \eta r \frac{x}{\sqrt n} u`
    with :math:`r = f - y`, closes on the pair :math:`(f, \lambda)` (expand :math:`v'\cdot u'`
    and :math:`|u'|^2 + |v'|^2`; the cross terms are :math:`\frac{x}{\sqrt n} u\cdot v = f`):

    .. math::
        f' &= f - \eta\lambda\, r + \eta^2 r^2 \tfrac{x^2}{n} f, \\
        \lambda' &= \lambda + \eta\, r\, \tfrac{x^2}{n}\left(\eta\lambda\, r - 4 f\right).

    With ``y = 0`` these are Lewkowycz et al.'s eqs. (3)-(4):
    ``f' = (1 - ηλ + η²f²/n) f`` and ``λ' = λ + η f²/n (ηλ - 4)`` (for ``x = 1``). Hence, for
    large ``n``, ``η < 2/λ0`` is lazy (λ stays at λ0), ``2/λ0 < η < 4/λ0`` catapults (|f|
    grows until ``f² ~ n``, which drives λ down until ``ηλ < 2``, then converges) and
    ``η > 4/λ0`` diverges. :meth:`theory` iterates this map; :meth:`simulate` trains the
    network with :func:`nnlab.train.train` and ``optax.sgd(lr)``. With one example train's
    mean loss ``1/(2N) Σ (f - y)²`` is the model's ``½ (f - y)²``, so ``lr`` is the same.

    Attributes:
      n: width (positive int).
      x: the scalar input (non-zero).
      y: the scalar target.

    Example:
      >>> import jax
      >>> m = UVModel(1000)
      >>> p = m.init(jax.random.key(0))
      >>> sim = m.simulate(p, 0.5, 3)
      >>> th = m.theory(m.state(p), 0.5, 3)
      >>> bool(abs(sim.f[-1] - th.f[-1]) < 1e-4), bool(abs(sim.lam[-1] - th.lam[-1]) < 1e-4)
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

    @property
    def network(self):
        """``serial(Dense(n, b_std=None), Dense(1, b_std=None))`` (NTK parameterisation)."""
        return _network(self.n)

    @property
    def data(self) -> nt.Data:
        """The one training example ``x_train = [[x]]``, ``y_train = [[y]]``."""
        return nt.Data(jnp.full((1, 1), self.x), jnp.full((1, 1), self.y))

    def apply_fn(self, params: Any, x: jax.Array) -> jax.Array:
        """The network, ``apply_fn(params, x) -> (N, 1)``."""
        return self.network.apply(params, x)

    def init(self, key: jax.Array, dtype=None) -> Any:
        """Network parameters with ``u, v ~ N(0, 1)`` i.i.d., so ``λ0 → 2x²`` as ``n → ∞``."""
        params = _init(self.n, _checks.prng_key(key, "key"))
        if dtype is None:
            return params
        return jax.tree_util.tree_map(lambda a: a.astype(dtype), params)

    def apply(self, params: Any) -> jax.Array:
        """``f = x v·u / √n`` at the model's input."""
        return self.apply_fn(params, self.data.x_train)[0, 0]

    def loss(self, params: Any) -> jax.Array:
        """``½ (f - y)²``."""
        return 0.5 * jnp.square(self.apply(params) - self.y)

    def ntk(self, params: Any) -> jax.Array:
        """``λ = x² (|u|² + |v|²) / n``."""
        sq = sum(jnp.sum(jnp.square(layer["W"])) for layer in params)
        return self.x**2 * sq / self.n

    def state(self, params: Any) -> UVState:
        """``(f, λ)`` of ``params``."""
        return UVState(self.apply(params), self.ntk(params))

    def function_step(self, state: UVState, lr) -> UVState:
        r"""One GD step in closed form on ``(f, λ)`` (see the class docstring)."""
        _check_lr(lr)
        f, lam = state
        r = f - self.y
        a = self.x**2 / self.n
        f_new = f - lr * lam * r + lr**2 * r**2 * a * f
        lam_new = lam + lr * r * a * (lr * lam * r - 4.0 * f)
        return UVState(f_new, lam_new)

    def theory(self, state0: UVState, lr, steps: int) -> UVTrajectory:
        """The closed-form ``(f, λ)`` recursion for ``steps`` steps (the prediction of
        :meth:`simulate`); ``jit``/``vmap``-able (``steps`` static)."""
        _check_steps(steps)
        _check_lr(lr)
        s0 = UVState(*map(jnp.asarray, state0))

        def body(s, _):
            s2 = self.function_step(s, lr)
            return s2, s2

        _, states = jax.lax.scan(body, s0, length=steps)
        f = jnp.concatenate([s0.f[None], states.f])
        lam = jnp.concatenate([s0.lam[None], states.lam])
        return UVTrajectory.build(f, lam, 0.5 * jnp.square(f - self.y), np.arange(steps + 1))

    def simulate(self, params0: Any, lr, steps: int) -> UVTrajectory:
        """GD on the network parameters: :func:`nnlab.train.train` with ``optax.sgd(lr)``,
        logging ``f`` and ``λ`` (:func:`ntk_max_eigenvalue`, from the Jacobian) every step.

        Works under ``jit`` (``steps`` static) and ``vmap`` (over ``params0`` and ``lr``).
        Divergence is a result: only a non-finite loss or update stops a run
        (``divergence_factor=None``), and its logs are NaN from then on.
        """
        _check_steps(steps)
        _check_lr(lr)
        rec = nt.train(
            self.apply_fn,
            params0,
            self.data,
            optimizer=optax.sgd(lr),
            steps=int(steps),
            observables={"f": _output, "lam": _sharpness},
            divergence_factor=None,
        )
        obs = rec.observables
        return UVTrajectory.build(obs["f"], obs["lam"], rec.train_loss, rec.step)
