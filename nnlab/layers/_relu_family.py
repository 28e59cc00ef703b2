"""Piecewise-linear activations: ReLU, leaky ReLU, |x| and the general ABReLU.

All are ``φ(x) = a·min(x, 0) + b·max(x, 0)``. With ``θ = arccos ρ`` the angle
between the two inputs and ``s = sqrt(v1 v2)``, the arc-cosine kernels of
Cho & Saul (2009, "Kernel methods for deep learning") give

    T = s/(2π) [ (a² + b²)(sin θ + (π - θ) cos θ) - 2ab (sin θ - θ cos θ) ]
    Ṫ = [ (a² + b²)(π - θ) + 2ab θ ] / (2π)

(ReLU: a=0, b=1; leaky ReLU: a=α, b=1; abs: a=-1, b=1).
"""

from __future__ import annotations

import jax.numpy as jnp

from ._base import Array, layer
from ._elementwise_base import Activation, correlation
from ._inverse_trig import arccos


def ab_relu_kernel(c, v1, v2, a, b, need_dot: bool):
    rho, s = correlation(c, v1, v2)
    theta = arccos(rho)
    sin = jnp.sqrt(1.0 - rho * rho)
    same = (a * a + b * b) * (sin + (jnp.pi - theta) * rho)
    cross = 2.0 * a * b * (sin - theta * rho)
    nngp = s * (same - cross) / (2.0 * jnp.pi)
    dot = None
    if need_dot:
        dot = ((a * a + b * b) * (jnp.pi - theta) + 2.0 * a * b * theta) / (2.0 * jnp.pi)
    return nngp, dot


@layer
class ABRelu(Activation):
    """``φ(x) = a·min(x, 0) + b·max(x, 0)``; arc-cosine kernel (Cho & Saul 2009).

    Example:
      >>> import jax.numpy as jnp
      >>> from nnlab import layers as nl
      >>> nl.ABRelu(-1.0, 1.0).apply((), jnp.array([-2.0, 3.0]))
      Array([2., 3.], dtype=float32)
    """

    a: float = 0.0
    b: float = 1.0

    def fn(self, x: Array) -> Array:
        return self.a * jnp.minimum(x, 0) + self.b * jnp.maximum(x, 0)

    def kernel_fns(self, c, v1, v2, need_dot):
        return ab_relu_kernel(c, v1, v2, self.a, self.b, need_dot)


@layer
class Relu(Activation):
    """``φ(x) = max(x, 0)``: ``T = s (sin θ + (π - θ) cos θ)/(2π)``, ``Ṫ = (π - θ)/(2π)``
    (Cho & Saul 2009)."""

    def fn(self, x: Array) -> Array:
        return jnp.maximum(x, 0)

    def kernel_fns(self, c, v1, v2, need_dot):
        return ab_relu_kernel(c, v1, v2, 0.0, 1.0, need_dot)


@layer
class LeakyRelu(Activation):
    """``φ(x) = x`` for x > 0 and ``alpha·x`` otherwise (ABRelu with a=alpha, b=1)."""

    alpha: float = 0.01

    def fn(self, x: Array) -> Array:
        return jnp.where(x > 0, x, self.alpha * x)

    def kernel_fns(self, c, v1, v2, need_dot):
        return ab_relu_kernel(c, v1, v2, self.alpha, 1.0, need_dot)


@layer
class Abs(Activation):
    """``φ(x) = |x|`` (ABRelu with a=-1, b=1)."""

    def fn(self, x: Array) -> Array:
        return jnp.abs(x)

    def kernel_fns(self, c, v1, v2, need_dot):
        return ab_relu_kernel(c, v1, v2, -1.0, 1.0, need_dot)
