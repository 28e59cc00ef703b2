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
activation: Pearce et al. 2019, arXiv:1905.06076.)

Evaluation (float32-accurate). Write ``D = exp(-b²(v1 + v2 - 2k)/2)`` and
``S = exp(-b²(v1 + v2 + 2k)/2)`` and use ``cos 2c = 1 - 2 sin²c = 2 cos²c - 1``:

    T = (a²/2) (D - S) + a² sin²c · S,     Ṫ = (a²b²/2) (D - S) + a²b² cos²c · S.

With ``k = ρ s`` read through the clipped correlation ``ρ`` (``s = sqrt(v1 v2)``,
:func:`~nnlab.layers._elementwise_base.correlation`) the exponents are sums of
non-negative terms, ``(v1 + v2 ∓ 2k)/2 = g + s (1 ∓ ρ)`` with
``g = (sqrt v1 - sqrt v2)²/2``, and the difference of exponentials is

    D - S = -D expm1(-2b² s ρ)   (ρ ≥ 0),      D - S = S expm1(2b² s ρ)   (ρ < 0),

both ``|·| ≤ 1`` with no cancellation. The textbook forms cancel: ``D - S``
computed as a difference loses ``eps / (b² v)`` relative for small variances,
``exp(-b²(v1+v2)/2) sinh(b²k)`` is ``0 · ∞`` for large ones in float32, and
``v1 + v2 - 2k`` on the diagonal is the rounding mismatch between ``k`` and the
variances, which the chaotic phase (slope ``W_std² a² b² (1 + cos(2c) e^{-2b²v})/2``
of the correlation map at ρ = 1, e.g. 4.5 for ``Sin``, ``W_std = 3``) amplified
layer after layer: at depth 10 an NNGP diagonal of 4.12 instead of 4.51 in
float32. With ``ρ`` snapped to 1 there, ``D = 1`` exactly.

Example: the phase turns ``Sin`` into ``Cos``, and ``Rbf``'s NNGP is ``exp(-γ E[(u - v)²])``;
one-hot inputs through ``Dense(1)`` have ``v1 = v2 = 1/2`` and ``k = 0``, so
``E[(u - v)²] = 1`` and ``T = e^{-γ}``.

    >>> import math, jax.numpy as jnp, nnlab
    >>> from nnlab import layers as nl
    >>> x = jnp.array(0.0)
    >>> float(nl.Sin(c=jnp.pi / 2).apply((), x)), float(nl.Cos().apply((), x))
    (1.0, 1.0)
    >>> k = nnlab.kernel(nl.serial(nl.Dense(1), nl.Rbf(gamma=0.5)), jnp.eye(2), get="nngp")
    >>> round(float(k[0, 1]), 6), round(math.exp(-0.5), 6)
    (0.606531, 0.606531)
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from ._base import Array, layer, static
from ._elementwise_base import Activation, correlation


def sinusoid_kernel(k: Array, v1: Array, v2: Array, a, b, sin2c, cos2c, need_dot: bool):
    """``(T, Ṫ)`` of ``a sin(b x + c)`` given ``sin2c = sin²c`` and ``cos2c = cos²c``.

    Cancellation-free form of the module docstring; ``k`` is read through ``correlation``.
    """
    b2 = b * b
    rho, s = correlation(k, v1, v2)
    gap = 0.5 * (jnp.sqrt(jnp.maximum(v1, 0.0)) - jnp.sqrt(jnp.maximum(v2, 0.0))) ** 2
    diff = jnp.exp(-b2 * (gap + s * (1.0 - rho)))  # D = E[cos b(u - v)]
    summ = jnp.exp(-b2 * (gap + s * (1.0 + rho)))  # S = E[cos b(u + v)]
    # D - S with expm1 of the exponent gap -2b²k; each branch's expm1 argument is <= 0 (no
    # overflow), and the other branch sees a harmless 0 (finite values and gradients).
    positive = rho >= 0.0
    t = 2.0 * b2 * s * jnp.where(positive, rho, 0.0)
    t_neg = 2.0 * b2 * s * jnp.where(positive, 0.0, rho)
    d_minus_s = jnp.where(positive, -diff * jnp.expm1(-t), summ * jnp.expm1(t_neg))
    nngp = a * a * (0.5 * d_minus_s + sin2c * summ)
    dot = a * a * b2 * (0.5 * d_minus_s + cos2c * summ) if need_dot else None
    return nngp, dot


@layer
class Sin(Activation):
    """``φ(x) = a sin(b x + c)`` with the closed-form kernel of the module docstring.

    ``a`` and ``b`` are pytree leaves; the phase ``c`` is static, because whether ``φ`` is
    odd (``c = 0``) decides whether ``FanInSum`` can add the kernels of branches ending in
    it (see ``Kernel.odd_in_branch``).
    """

    a: float = 1.0
    b: float = 1.0
    c: float = static(default=0.0)

    @property
    def is_odd(self) -> bool:
        return self.c == 0.0

    def fn(self, x: Array) -> Array:
        return self.a * jnp.sin(self.b * x + self.c)

    def kernel_fns(self, k, v1, v2, need_dot):
        sin2c, cos2c = jnp.sin(self.c) ** 2, jnp.cos(self.c) ** 2
        return sinusoid_kernel(k, v1, v2, self.a, self.b, sin2c, cos2c, need_dot)


@layer
class Cos(Activation):
    """``φ(x) = a cos(b x + c)`` (= ``a sin(b x + c + π/2)``, so ``cos 2c`` changes sign)."""

    a: float = 1.0
    b: float = 1.0
    c: float = 0.0

    def fn(self, x: Array) -> Array:
        return self.a * jnp.cos(self.b * x + self.c)

    def kernel_fns(self, k, v1, v2, need_dot):
        # cos(x + c) = sin(x + c + π/2): sin² and cos² of the phase swap.
        sin2c, cos2c = jnp.cos(self.c) ** 2, jnp.sin(self.c) ** 2
        return sinusoid_kernel(k, v1, v2, self.a, self.b, sin2c, cos2c, need_dot)


@layer
class Rbf(Activation):
    """Random-Fourier-feature activation ``φ(x) = sqrt(2) sin(sqrt(2γ) x + π/4)``.

    Its NNGP is the Gaussian RBF kernel of the pre-activations,
    ``T = exp(-γ (v1 + v2 - 2k)) = exp(-γ E[(u - v)²])`` (Rahimi & Recht 2007),
    and ``Ṫ = 2γ T``: ``Sin(a=√2, b=√(2γ), c=π/4)``, for which ``cos 2c = 0``.
    Same convention as neural-tangents' ``Rbf(gamma)``.
    """

    gamma: float = 1.0

    def fn(self, x: Array) -> Array:
        return math.sqrt(2.0) * jnp.sin(jnp.sqrt(2.0 * self.gamma) * x + math.pi / 4)

    def kernel_fns(self, k, v1, v2, need_dot):
        # v1 + v2 - 2k = (sqrt v1 - sqrt v2)² + 2 s (1 - ρ): a sum of non-negative terms, exactly
        # 0 on the diagonal (ρ snapped to 1), so rounding of k cannot grow with depth.
        rho, s = correlation(k, v1, v2)
        gap = (jnp.sqrt(jnp.maximum(v1, 0.0)) - jnp.sqrt(jnp.maximum(v2, 0.0))) ** 2
        nngp = jnp.exp(-self.gamma * (gap + 2.0 * s * (1.0 - rho)))
        return nngp, (2.0 * self.gamma * nngp if need_dot else None)
