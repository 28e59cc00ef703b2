"""The error-function activation ``φ(x) = a·erf(b·x) + c``.

Williams (1997, "Computing with infinite networks"): for zero-mean Gaussian
``(u, v)`` with covariance ``[[v1, k], [k, v2]]``,

    E[erf(b u) erf(b v)] = (2/π) arcsin( 2b²k / sqrt((1 + 2b²v1)(1 + 2b²v2)) ),
    E[φ'(u) φ'(v)]      = (4 a² b² / π) / sqrt((1 + 2b²v1)(1 + 2b²v2) - 4b⁴k²),

and ``E[erf] = 0`` so the offset ``c`` adds ``c²`` to the NNGP.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.special import erf

from ._base import Array, layer, static
from ._elementwise_base import Activation, correlation, is_zero
from ._inverse_trig import arcsin


@layer
class Erf(Activation):
    """``φ(x) = a·erf(b·x) + c`` with Williams' (1997) arcsine kernel.

    ``a`` and ``b`` are pytree leaves (differentiable, vmappable); the offset ``c`` is
    static, because whether ``φ`` is odd (``c = 0``) decides whether ``FanInSum`` can add
    the kernels of branches ending in it (see ``Kernel.odd_in_branch``).

    Example: one-hot inputs through ``Dense(1)`` have ``v = k = 1/2`` on the diagonal, where
    the arcsine kernel is ``(2/π) arcsin(1/2) = 1/3``; ``φ`` is odd, ``φ(0) = 0``.

      >>> import jax.numpy as jnp, nnlab
      >>> from nnlab import layers as nl
      >>> k = nnlab.kernel(nl.serial(nl.Dense(1), nl.Erf()), jnp.eye(2), get="nngp")
      >>> round(float(k[0, 0]), 6), float(nl.Erf().apply((), jnp.array(0.0)))
      (0.333333, 0.0)
    """

    a: float = 1.0
    b: float = 1.0
    c: float = static(default=0.0)

    @property
    def is_odd(self) -> bool:
        return is_zero(self.c)

    def fn(self, x: Array) -> Array:
        return self.a * erf(self.b * x) + self.c

    def kernel_fns(self, k, v1, v2, need_dot):
        # With q_i² = 1/(1 + 2b²v_i) and w_i = 2b²v_i q_i² (both in [0, 1]) the arcsine argument
        # is ρ' = ρ sqrt(w1 w2), ρ the (clipped) correlation, and
        #   (1+2b²v1)(1+2b²v2) - 4b⁴k² = (1 - ρ'²) / (q1² q2²),
        #   1 - ρ'² = (q1² + q2² - q1² q2²) + w1 w2 (1 - ρ²),
        # a sum of terms in [0, 1]: no overflow for huge variances in float32, and no
        # cancellation on the diagonal (ρ = 1), where 1 - ρ'² computed directly would round to 0.
        # Reading k through ρ enforces |k| <= sqrt(v1 v2): in the chaotic phase rounding
        # differences between a diagonal entry and its variance otherwise grow with depth.
        b2 = self.b**2
        corr, _ = correlation(k, v1, v2)
        t1, t2 = 2.0 * b2 * jnp.maximum(v1, 0.0), 2.0 * b2 * jnp.maximum(v2, 0.0)
        q1, q2 = 1.0 / (1.0 + t1), 1.0 / (1.0 + t2)
        # w = t q, whose limit is 1 when t overflows (variances at the top of float32's range).
        w1 = jnp.where(jnp.isfinite(t1), t1 * q1, 1.0)
        w2 = jnp.where(jnp.isfinite(t2), t2 * q2, 1.0)
        rho = corr * jnp.sqrt(w1) * jnp.sqrt(w2)  # w1 w2 can underflow for tiny variances
        nngp = self.a**2 * (2.0 / jnp.pi) * arcsin(rho) + self.c**2
        dot = None
        if need_dot:
            one_minus = (q1 + q2 - q1 * q2) + w1 * w2 * (1.0 - corr * corr)
            one_minus = jnp.maximum(one_minus, jnp.finfo(one_minus.dtype).tiny)
            # Square roots taken separately: q1 q2 underflows float32 for variances near 1e30.
            dot = (
                (4.0 * self.a**2 * b2 / jnp.pi) * jnp.sqrt(q1) * jnp.sqrt(q2) / jnp.sqrt(one_minus)
            )
        return nngp, dot
