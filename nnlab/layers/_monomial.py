"""Monomial activations ``φ(x) = x^q`` for integer ``q ≥ 0``.

Expand ``x^q`` in probabilists' Hermite polynomials,
``x^q = Σ_{m=0}^{⌊q/2⌋} C_{q,m} He_{q-2m}(x)`` with
``C_{q,m} = q! / (m! 2^m (q-2m)!)``. For standard normals with correlation ``ρ``,
``E[He_j(z1) He_l(z2)] = δ_{jl} j! ρ^j`` (Mehler's formula; O'Donnell 2014,
"Analysis of Boolean functions", ch. 11), so with ``u = sqrt(v1) z1``,
``v = sqrt(v2) z2`` and ``c = ρ sqrt(v1 v2)``:

    T_q(c, v1, v2) = E[u^q v^q] = Σ_m C_{q,m}² (q-2m)! c^{q-2m} (v1 v2)^m,
    Ṫ = q² T_{q-1}(c, v1, v2).

This is a polynomial in ``(c, v1, v2)``, exact (Isserlis' theorem gives the
same counts of pairings) and smooth everywhere. E.g. ``T_1 = c``,
``T_2 = 2c² + v1 v2``, ``T_3 = 6c³ + 9c v1 v2``.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from ._base import Array, layer, static
from ._elementwise_base import Activation


def monomial_coefficients(q: int) -> list[tuple[int, int, int]]:
    """``[(weight, j, m)]`` with ``E[u^q v^q] = Σ weight c^j (v1 v2)^m``, ``j = q - 2m``."""
    out = []
    for m in range(q // 2 + 1):
        j = q - 2 * m
        hermite = math.factorial(q) // (math.factorial(m) * 2**m * math.factorial(j))
        out.append((hermite * hermite * math.factorial(j), j, m))
    return out


def monomial_moment(q: int, c: Array, v1: Array, v2: Array) -> Array:
    """``E[u^q v^q]`` for a zero-mean Gaussian pair (polynomial in c, v1, v2)."""
    vv = v1 * v2
    total = jnp.zeros(jnp.broadcast_shapes(jnp.shape(c), jnp.shape(vv)), jnp.result_type(c, vv))
    for weight, j, m in monomial_coefficients(q):
        total = total + float(weight) * c**j * vv**m
    return total


@layer
class Monomial(Activation):
    """``φ(x) = x^degree``: ``T = E[u^q v^q]`` in closed form, ``Ṫ = q² E[u^{q-1} v^{q-1}]``.

    Args:
      degree: the integer power ``q ≥ 0`` (static).

    Example:
      >>> import jax.numpy as jnp
      >>> from nnlab import layers as nl
      >>> nl.Monomial(2).apply((), jnp.array([-2.0, 3.0]))
      Array([4., 9.], dtype=float32)
    """

    degree: int = static()

    def __post_init__(self):
        if not isinstance(self.degree, int) or isinstance(self.degree, bool):
            raise TypeError(f"Monomial: degree must be an int, got {self.degree!r}.")
        if self.degree < 0:
            raise ValueError(f"Monomial: degree must be >= 0, got {self.degree}.")

    @property
    def is_odd(self) -> bool:
        return self.degree % 2 == 1

    def fn(self, x: Array) -> Array:
        return x**self.degree

    def kernel_fns(self, c, v1, v2, need_dot):
        q = self.degree
        nngp = monomial_moment(q, c, v1, v2)
        dot = None
        if need_dot:
            dot = float(q * q) * monomial_moment(q - 1, c, v1, v2) if q > 0 else 0.0 * nngp
        return nngp, dot
