"""Sinusoidal activations ``a sin(b x + c)``, ``a cos(b x + c)`` and the RBF features.

For zero-mean Gaussian ``(u, v)`` with covariance ``[[v1, k], [k, v2]]``,
``E[cos(b(u ∓ v))] = exp(-b² (v1 + v2 ∓ 2k) / 2)`` and ``E[sin(b(u ± v))] = 0``
(characteristic function of a Gaussian). Product-to-sum identities then give,
for ``φ(x) = a sin(b x + c)``,

    T = (a²/2) [ exp(-b²(v1 + v2 - 2k)/2) - cos(2c) exp(-b²(v1 + v2 + 2k)/2) ]
      = a² exp(-b²(v1 + v2)/2) [ sin²c cosh(b²k) + cos²c sinh(b²k) ],
    Ṫ = (a²b²/2) [ exp(-b²(v1 + v2 - 2k)/2) + cos(2c) exp(-b²(v1 + v2 + 2k)/2) ],

and ``cos(bx + c) = sin(bx + c + π/2)`` flips the sign of the ``cos(2c)`` terms.
(Random Fourier features: Rahimi & Recht 2007; as an infinite-network
activation: Pearce et al. 2019, arXiv:1905.06076.) The first form is the one
evaluated: both exponents are ``≤ 0`` (``v1 + v2 ∓ 2k`` is the variance of
``u ∓ v``), so nothing overflows, whereas ``exp(-b²(v1+v2)/2) cosh(b²k)`` is
``0 · ∞`` for large variances in float32.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from ._base import Array, layer
from ._elementwise_base import Activation


def sinusoid_kernel(k: Array, v1: Array, v2: Array, a, b, cos2c, need_dot: bool):
    """``(T, Ṫ)`` of ``a sin(b x + c)`` given ``cos2c = cos(2c)``."""
    b2 = b * b
    diff = jnp.exp(-0.5 * b2 * jnp.maximum(v1 + v2 - 2.0 * k, 0.0))
    summ = jnp.exp(-0.5 * b2 * (v1 + v2 + 2.0 * k))
    nngp = 0.5 * a * a * (diff - cos2c * summ)
    dot = 0.5 * a * a * b2 * (diff + cos2c * summ) if need_dot else None
    return nngp, dot


@layer
class Sin(Activation):
    """``φ(x) = a sin(b x + c)`` with the closed-form kernel of the module docstring.

    Example:
      >>> import jax.numpy as jnp
      >>> from nnlab import layers as nl
      >>> float(nl.Sin(c=jnp.pi / 2).apply((), jnp.array(0.0)))
      1.0
    """

    a: float = 1.0
    b: float = 1.0
    c: float = 0.0

    def fn(self, x: Array) -> Array:
        return self.a * jnp.sin(self.b * x + self.c)

    def kernel_fns(self, k, v1, v2, need_dot):
        return sinusoid_kernel(k, v1, v2, self.a, self.b, jnp.cos(2.0 * self.c), need_dot)


@layer
class Cos(Activation):
    """``φ(x) = a cos(b x + c)`` (= ``a sin(b x + c + π/2)``, so ``cos 2c`` changes sign).

    Example:
      >>> import jax.numpy as jnp
      >>> from nnlab import layers as nl
      >>> float(nl.Cos().apply((), jnp.array(0.0)))
      1.0
    """

    a: float = 1.0
    b: float = 1.0
    c: float = 0.0

    def fn(self, x: Array) -> Array:
        return self.a * jnp.cos(self.b * x + self.c)

    def kernel_fns(self, k, v1, v2, need_dot):
        return sinusoid_kernel(k, v1, v2, self.a, self.b, -jnp.cos(2.0 * self.c), need_dot)


@layer
class Rbf(Activation):
    """Random-Fourier-feature activation ``φ(x) = sqrt(2) sin(sqrt(2γ) x + π/4)``.

    Its NNGP is the Gaussian RBF kernel of the pre-activations,
    ``T = exp(-γ (v1 + v2 - 2k)) = exp(-γ E[(u - v)²])`` (Rahimi & Recht 2007),
    and ``Ṫ = 2γ T``: ``Sin(a=√2, b=√(2γ), c=π/4)``, for which ``cos 2c = 0``.
    Same convention as neural-tangents' ``Rbf(gamma)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from nnlab import layers as nl
      >>> round(float(nl.Rbf(gamma=0.5).apply((), jnp.array(0.0))), 6)
      1.0
    """

    gamma: float = 1.0

    def fn(self, x: Array) -> Array:
        return math.sqrt(2.0) * jnp.sin(jnp.sqrt(2.0 * self.gamma) * x + math.pi / 4)

    def kernel_fns(self, k, v1, v2, need_dot):
        nngp = jnp.exp(-self.gamma * jnp.maximum(v1 + v2 - 2.0 * k, 0.0))
        return nngp, (2.0 * self.gamma * nngp if need_dot else None)
