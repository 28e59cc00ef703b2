"""The exact (erf-based) GELU ``φ(x) = x Φ(x)`` with ``Φ`` the standard normal CDF.

Closed forms (Tsuchida, Pearce, van der Heide, Roosta & Gallagher 2021,
"Avoiding kernel fixed points: computing with ELU and GELU infinite networks",
arXiv:2002.08517). Writing ``Φ(u) = P(a < u)`` with an independent ``a ~ N(0,1)``
turns ``E[φ(u) φ(v)]`` into a second moment of a bivariate normal over an
orthant. With ``S² = (1 + v1)(1 + v2)``, ``r = c / S`` and ``Δ = S² - c²``:

    T = c (1/4 + arcsin(r) / (2π))
        + (v1 v2 S² + c² (1 - v1 v2)) / (2π S² sqrt(Δ)),
    Ṫ = ∂T/∂c = 1/4 + arcsin(r) / (2π) + c ((2 + v1 + v2) Δ + S²) / (2π S² Δ^{3/2}).

(``Ṫ = ∂T/∂c`` is Price's theorem.) At ``c = 0`` these reduce to
``E[φ(u)] E[φ(v)] = v1 v2 / (2π S)`` and ``E[φ'(u)] E[φ'(v)] = 1/4``.

For float32 stability in deep networks everything is evaluated through
``b_i = 1/(1 + v_i)``, ``a_i = v_i b_i`` (not ``1 - b_i``, which cancels for small
``v_i``) and the clipped correlation ``ρ = c / sqrt(v1 v2)``: ``r = ρ sqrt(a1 a2)``,
``1 - r² = b1 + a1 b2 + a1 a2 (1 - ρ²)`` (a sum of non-negative terms), so no
intermediate overflows when ``v1 v2`` would.

The arcsine is the ill-conditioned part: near ``|r| = 1`` (large variances and
``ρ ≈ ±1``, the diagonal included) one rounding of ``r`` moves ``arcsin r`` by
``eps / sqrt(1 - r²)``, up to ``sqrt(eps)``, and ``r`` itself rounds to exactly 1
once ``v ≳ 1/eps``; the NTK multiplies such a ``Ṫ`` per layer. Taking the arcsine
of the rounded ``r`` cost deep float32 GELU networks up to 5e-4 relative (W_std = 2,
depth 50; 5e-2 for nearly collinear inputs; now 2e-6 and 2e-4, the latter float32's
resolution of ``1 - ρ``, see tests/test_float32_kernels.py). So the orthant probability
``1/4 + arcsin(r)/(2π) = arccos(-r)/(2π)`` is computed from the accurately known
``sqrt(1 - r²)`` instead: for ``|r| > 1/2``, ``arccos|r| = 2 arcsin(y)`` with
``y = sqrt((1 - |r|)/2) = sqrt(1 - r²) / sqrt(2 (1 + |r|)) ∈ [0, 1/2]``, where the
arcsine series is well conditioned, and for ``r < -1/2`` the orthant is
``arccos|r| / (2π)`` directly (no ``1/4 - 1/4`` cancellation).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.special import ndtr

from ._base import Array, layer
from ._elementwise_base import Activation, correlation
from ._inverse_trig import _asin_small


def _orthant(r: Array, root: Array) -> Array:
    """``1/4 + arcsin(r)/(2π)`` given ``root = sqrt(1 - r²)`` computed without cancellation.

    Well conditioned in ``(r, root)`` everywhere, including ``|r| → 1`` (module docstring).
    """
    ar = jnp.abs(r)
    small = ar <= 0.5
    # arccos|r| / 2 = arcsin(y), y <= 1/2; evaluated at a harmless 0 where |r| <= 1/2.
    y = jnp.where(small, 0.0, root / jnp.sqrt(2.0 * (1.0 + ar)))
    half_angle = _asin_small(y)
    near = jnp.where(r > 0, 0.5 - half_angle / jnp.pi, half_angle / jnp.pi)
    central = 0.25 + _asin_small(jnp.where(small, r, 0.0)) / (2.0 * jnp.pi)
    return jnp.where(small, central, near)


def gelu_kernel(c: Array, v1: Array, v2: Array, need_dot: bool):
    """``(T, Ṫ)`` of the exact GELU for covariance ``c`` and variances ``v1, v2``."""
    rho, sv = correlation(c, v1, v2)
    v1, v2 = jnp.maximum(v1, 0.0), jnp.maximum(v2, 0.0)
    b1, b2 = 1.0 / (1.0 + v1), 1.0 / (1.0 + v2)
    # a = v/(1+v); its limit 1 where v overflows float32 (b = 0, v b = inf · 0).
    a1 = jnp.where(jnp.isfinite(v1), v1 * b1, 1.0)
    a2 = jnp.where(jnp.isfinite(v2), v2 * b2, 1.0)
    sa = jnp.sqrt(a1) * jnp.sqrt(a2)  # a1 a2 can underflow for tiny variances
    r = rho * sa
    one_minus_r2 = b1 + a1 * b2 + sa * sa * (1.0 - rho) * (1.0 + rho)
    root = jnp.sqrt(one_minus_r2)
    orthant = _orthant(r, root)
    # (v1 v2 S² + c²(1 - v1 v2)) / (S² sqrt Δ)
    #   = sv sqrt(a1 a2) sqrt(1 - r²) + r² sqrt(b1) sqrt(b2) / sqrt(1 - r²)
    # (each factor kept O(1) or divided early, so nothing under- or overflows when
    # v1, v2 ~ 1e30 and ρ = ±1, where 1 - r² ~ b1 + b2 ~ 1e-30).
    sb1, sb2 = jnp.sqrt(b1), jnp.sqrt(b2)
    tail = sv * sa * root + r * r * (sb1 / root) * sb2
    nngp = c * orthant + tail / (2.0 * jnp.pi)
    dot = None
    if need_dot:
        # c((2+v1+v2)Δ + S²)/(S² Δ^{3/2}) = r((b1+b2)/sqrt(1-r²) + b1 b2/(1-r²)^{3/2})
        extra = r * ((b1 + b2) / root + (b1 / root) * (b2 / root) / root)
        dot = orthant + extra / (2.0 * jnp.pi)
    return nngp, dot


@layer
class Gelu(Activation):
    """Exact GELU ``φ(x) = x Φ(x)`` (Hendrycks & Gimpel 2016, arXiv:1606.08415).

    Kernel: the closed form of Tsuchida et al. (2021, arXiv:2002.08517), see
    the module docstring. Matches neural-tangents' ``Gelu(approximate=False)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from nnlab import layers as nl
      >>> round(float(nl.Gelu().apply((), jnp.array(1.0))), 4)
      0.8413
    """

    def fn(self, x: Array) -> Array:
        return x * ndtr(x)

    def kernel_fns(self, c, v1, v2, need_dot):
        return gelu_kernel(c, v1, v2, need_dot)
