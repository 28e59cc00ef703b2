"""The Gaussian bump activation ``φ(x) = a exp(-x² / (2 w²))``.

For zero-mean Gaussian ``(u, v)`` with covariance ``K = [[v1, k], [k, v2]]`` and
``β = 1/w²``, the Gaussian integral ``E[exp(-β(u² + v²)/2)] = det(I + βK)^{-1/2}``
and its tilted second moment give

    D = det(I + βK) = (1 + βv1)(1 + βv2) - β²k²,
    T = a² / sqrt(D),
    Ṫ = E[φ'(u) φ'(v)] = a² β² E[u v e^{-β(u²+v²)/2}] = a² β² k / D^{3/2},

since the tilted covariance ``K (I + βK)^{-1}`` has off-diagonal ``k / D``
(see e.g. Williams 1997, "Computing with infinite networks", for the
Gaussian-activation kernels). ``D`` is evaluated as
``1 + β(v1 + v2) + β² v1 v2 (1 - ρ²)`` with the clipped correlation ``ρ``, which
has no cancellation and stays positive.
"""

from __future__ import annotations

import jax.numpy as jnp

from ._base import Array, layer
from ._elementwise_base import Activation, correlation


@layer
class Gaussian(Activation):
    """``φ(x) = a exp(-x² / (2 width²))``: ``T = a² / sqrt(D)``, ``Ṫ = a² k / (width⁴ D^{3/2})``.

    ``D = (1 + v1/width²)(1 + v2/width²) - k²/width⁴`` (module docstring).

    Args:
      a: amplitude.
      width: the bump's standard deviation ``w`` (positive).

    Example: one-hot inputs through ``Dense(1)`` have variances ``1/2`` and covariance
    ``1/2`` (same input) or ``0`` (the other), so ``D = 2`` or ``9/4`` and ``T = 1/sqrt(D)``.

      >>> import jax.numpy as jnp, nnlab
      >>> from nnlab import layers as nl
      >>> k = nnlab.kernel(nl.serial(nl.Dense(1), nl.Gaussian()), jnp.eye(2), get="nngp")
      >>> [round(float(t), 6) for t in k[0]]
      [0.707107, 0.666667]
    """

    a: float = 1.0
    width: float = 1.0

    def fn(self, x: Array) -> Array:
        return self.a * jnp.exp(-0.5 * (x / self.width) ** 2)

    def kernel_fns(self, k, v1, v2, need_dot):
        beta = 1.0 / self.width**2
        rho, sv = correlation(k, v1, v2)
        bsv = beta * sv
        det = 1.0 + beta * (jnp.maximum(v1, 0.0) + jnp.maximum(v2, 0.0))
        # bsv (bsv (1 - ρ²)): 0, not inf·0, when ρ = ±1 and (β sv)² overflows.
        det = det + bsv * (bsv * ((1.0 - rho) * (1.0 + rho)))
        root = jnp.sqrt(det)
        nngp = self.a**2 / root
        dot = None
        if need_dot:
            dot = self.a**2 * beta * beta * (k / det) / root  # det·root can overflow
        return nngp, dot
