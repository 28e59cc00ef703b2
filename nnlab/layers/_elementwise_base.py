"""Shared machinery of elementwise activations: apply, and the Gaussian kernel map.

An activation ``φ`` maps a zero-mean Gaussian layer with covariance
``[[v1, c], [c, v2]]`` to

* ``T(c, v1, v2) = E[φ(u) φ(v)]`` (the new NNGP), and
* ``Ṫ(c, v1, v2) = E[φ'(u) φ'(v)]`` (the factor multiplying the NTK),

so that ``nngp ← T`` and ``ntk ← ntk · Ṫ`` (Jacot et al. 2018; Lee et al. 2019).
Subclasses provide ``fn(x)`` and ``kernel_fns(c, v1, v2, need_dot)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from nnlab.kernels._kernel import Kernel, map_branches

from ._base import Array, Shape, check_kernel, check_rank


def correlation(c: Array, v1: Array, v2: Array) -> tuple[Array, Array]:
    """``(ρ, s)`` with ``s = sqrt(v1) sqrt(v2)`` and ``ρ = c / s`` in [-1, 1].

    Every kernel should read the covariance through ``ρ``: clipping it to
    [-1, 1] enforces Cauchy-Schwarz, without which rounding differences between a
    diagonal entry and its variance grow exponentially with depth in the chaotic
    phase (slope of the correlation map > 1) until the kernel breaks.

    Taking square roots separately keeps ``s`` finite when ``v1 v2`` would
    overflow (deep networks with large ``W_std`` in float32).

    ``arccos`` is ill-conditioned at ±1: one ulp of rounding in ``ρ`` becomes
    an error of order sqrt(eps) in the angle, so the NTK diagonal would depend on
    how ``c`` was rounded. Values within 8 ulps of ±1 are therefore snapped to
    exactly ±1, which makes the diagonal exact and changes nothing else beyond
    that same sqrt(eps) level. Snapped entries pass no gradient through ``ρ``,
    which is right: ``ρ`` is at its extremum there (x1 = ±x2), so its first
    derivative vanishes, and the snapping keeps ``arccos``'s infinite slope at
    ±1 out of the gradient.
    """
    s = jnp.sqrt(jnp.maximum(v1, 0.0)) * jnp.sqrt(jnp.maximum(v2, 0.0))
    eps = jnp.finfo(jnp.result_type(c)).eps
    rho = c / jnp.where(s > 0, s, 1.0)
    near = jnp.abs(rho) >= 1.0 - 8 * eps
    safe = jnp.where(near, 0.0, rho)
    return jnp.where(near, jnp.sign(rho), safe), s


class Activation:
    """Base of elementwise activations (mixed into ``@layer`` dataclasses)."""

    def fn(self, x: Array) -> Array:
        raise NotImplementedError

    def kernel_fns(self, c: Array, v1: Array, v2: Array, need_dot: bool):
        raise NotImplementedError

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def is_odd(self) -> bool:
        """Whether ``φ(-x) = -φ(x)`` (known statically; traced parameters count as not odd).

        An odd ``φ`` keeps a branch odd in its own parameters (``Kernel.odd_in_branch``),
        which ``FanInSum`` needs to add branch kernels exactly.
        """
        return False

    def init(self, key: Array, input_shape: Shape):
        check_rank(self.name, input_shape, tuple(range(1, 6)), "(N, ...)")
        return tuple(input_shape), ()

    def apply(self, params, x: Array) -> Array:
        return self.fn(x)

    def kernel(self, k: Kernel) -> Kernel:
        """``nngp ← T``, ``ntk ← ntk · Ṫ`` per channel.

        After ``FanInConcat`` the channels are of several kinds (``k.branches``),
        each Gaussian with its own covariance; ``φ`` acts per channel, so it maps
        each kind's kernel and the results are re-mixed by channel fraction,
        ``Σ_i (C_i/C) T(K_i)`` (never ``T(Σ_i (C_i/C) K_i)``).
        """
        k = check_kernel(self.name, k)
        if k.flattened:
            raise ValueError(
                f"{self.name}: the features come from several positions (after Flatten), each "
                "with its own variance, and their per-position kernels are gone; nnlab cannot "
                "compute this kernel. Apply the nonlinearity before Flatten, or put a Dense "
                "right after Flatten."
            )
        if not k.is_gaussian:
            raise ValueError(
                f"{self.name}: its kernel needs zero-mean Gaussian inputs, i.e. it must follow "
                "an affine layer (Dense or Conv, possibly through pooling or LayerNorm); "
                "got the kernel of raw inputs or of another nonlinearity. Insert a Dense or "
                "Conv before it."
            )
        return map_branches(k, self._kernel_one_kind)

    def _kernel_one_kind(self, k: Kernel) -> Kernel:
        a, b = k.marginals()
        need_dot = k.ntk is not None
        nngp, dot = self.kernel_fns(k.nngp, a, b, need_dot)
        ntk = k.ntk * dot if need_dot else None
        cov1, _ = self.kernel_fns(k.cov1, *k.self_marginals(1), False)
        if k.cov2 is k.cov1:
            cov2 = cov1
        else:
            cov2, _ = self.kernel_fns(k.cov2, *k.self_marginals(2), False)
        return k.replace(
            nngp=nngp,
            ntk=ntk,
            cov1=cov1,
            cov2=cov2,
            is_gaussian=False,
            odd_in_branch=k.odd_in_branch and self.is_odd,
        )


def is_zero(value) -> bool:
    """Whether a hyperparameter is concretely zero (traced values: unknown, so False)."""
    try:
        return float(value) == 0.0
    except (TypeError, jax.errors.ConcretizationTypeError):
        return False
