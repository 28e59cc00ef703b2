"""Threshold activations: the Heaviside step ``1[x > 0]`` and ``sign(x)``.

For zero-mean Gaussian ``(u, v)`` with correlation ``ρ = c / sqrt(v1 v2)`` and
angle ``θ = arccos ρ``, Sheppard's formula (Sheppard 1899; the degree-0
arc-cosine kernel of Cho & Saul 2009, "Kernel methods for deep learning") gives

    E[1[u > 0] 1[v > 0]] = (π - θ) / (2π),
    E[sign(u) sign(v)]   = 1 - 2θ/π = (2/π) arcsin ρ.

NTK factor: the derivative of either function is zero almost everywhere (a
Dirac delta at 0). We set ``Ṫ = 0``, the value the empirical NTK of a finite
network computed by automatic differentiation converges to (``jax.grad`` of a
step is 0), and the choice neural-tangents makes for ``Sign``. The "delta"
alternative ``E[δ(u) δ(v)] = 1 / (2π sqrt(v1 v2 - c²))`` is infinite on the
diagonal, so it does not define a usable kernel.
"""

from __future__ import annotations

import jax.numpy as jnp

from ._base import Array, layer
from ._elementwise_base import Activation, correlation
from ._inverse_trig import arccos, arcsin


def _angle(c: Array, v1: Array, v2: Array) -> Array:
    rho, _ = correlation(c, v1, v2)
    return arccos(rho)


@layer
class Step(Activation):
    """Heaviside step ``φ(x) = 1[x > 0]``: ``T = (π - θ)/(2π)``, ``Ṫ = 0``.

    The degree-0 arc-cosine kernel (Cho & Saul 2009), with ``θ = arccos(c /
    sqrt(v1 v2))``. ``Ṫ = 0`` because ``φ' = 0`` almost everywhere (see the
    module docstring for why the delta-function term is dropped).

    Example:
      >>> import jax.numpy as jnp
      >>> from nnlab import layers as nl
      >>> nl.Step().apply((), jnp.array([-1.0, 0.0, 2.0]))
      Array([0., 0., 1.], dtype=float32)
    """

    def fn(self, x: Array) -> Array:
        return jnp.where(x > 0, 1.0, 0.0).astype(x.dtype)

    def kernel_fns(self, c, v1, v2, need_dot):
        theta = _angle(c, v1, v2)
        nngp = (jnp.pi - theta) / (2.0 * jnp.pi)
        return nngp, (jnp.zeros_like(nngp) if need_dot else None)


@layer
class Sign(Activation):
    """``φ(x) = sign(x)``: ``T = (2/π) arcsin ρ``, ``Ṫ = 0``.

    ``sign = 2·Step - 1`` almost surely, so ``T = 4 (π - θ)/(2π) - 1 = (2/π)
    arcsin ρ`` with ``ρ = c / sqrt(v1 v2)`` (Sheppard 1899; Cho & Saul 2009).

    Example:
      >>> import jax.numpy as jnp
      >>> from nnlab import layers as nl
      >>> nl.Sign().apply((), jnp.array([-3.0, 0.5]))
      Array([-1.,  1.], dtype=float32)
    """

    @property
    def is_odd(self) -> bool:
        return True

    def fn(self, x: Array) -> Array:
        return jnp.sign(x)

    def kernel_fns(self, c, v1, v2, need_dot):
        rho, _ = correlation(c, v1, v2)
        nngp = (2.0 / jnp.pi) * arcsin(rho)
        return nngp, (jnp.zeros_like(nngp) if need_dot else None)
