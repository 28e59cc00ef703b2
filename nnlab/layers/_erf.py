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

from ._base import Array, layer
from ._elementwise_base import Activation, correlation
from ._inverse_trig import arcsin


@layer
class Erf(Activation):
    """``φ(x) = a·erf(b·x) + c`` with Williams' (1997) arcsine kernel.

    Example:
      >>> import jax.numpy as jnp
      >>> from nnlab import layers as nl
      >>> float(nl.Erf().apply((), jnp.array(0.0)))
      0.0
    """

    a: float = 1.0
    b: float = 1.0
    c: float = 0.0

    def fn(self, x: Array) -> Array:
        return self.a * erf(self.b * x) + self.c

    def kernel_fns(self, k, v1, v2, need_dot):
        b2 = self.b**2
        r1 = jnp.sqrt(1.0 + 2.0 * b2 * jnp.maximum(v1, 0.0))
        r2 = jnp.sqrt(1.0 + 2.0 * b2 * jnp.maximum(v2, 0.0))
        # Through the clipped correlation, so |k| <= sqrt(v1 v2) holds exactly: in the chaotic
        # phase rounding differences between a diagonal entry and its variance grow with depth.
        corr, s = correlation(k, v1, v2)
        rho = 2.0 * b2 * corr * s / (r1 * r2)
        nngp = self.a**2 * (2.0 / jnp.pi) * arcsin(rho) + self.c**2
        dot = None
        if need_dot:
            # sqrt((1+2b²v1)(1+2b²v2) - 4b⁴k²) = r1 r2 sqrt(1 - ρ²), computed without overflow.
            dot = (4.0 * self.a**2 * b2 / jnp.pi) / (r1 * r2 * jnp.sqrt(1.0 - rho * rho))
        return nngp, dot
