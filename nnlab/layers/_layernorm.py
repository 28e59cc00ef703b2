"""Layer normalisation over channels and its infinite-width kernel.

At infinite width the channel mean of a zero-mean Gaussian layer vanishes and
its channel variance at position ``s`` converges to ``v(s) = K(x, x)[s, s]``,
so normalising divides each output by ``sqrt(v(s) + eps)``:

    K_new[s, s'] = K[s, s'] / sqrt((v1[s] + eps)(v2[s'] + eps)),

and the NTK scales the same way: the rank-one projection that the normalisation
removes from the Jacobian is O(1/width). After ``FanInConcat`` (channels of
several kinds, ``Kernel.branches``) ``v`` is the channel-weighted mean of the
kinds' variances, and each kind's kernel is divided by the same
``sqrt((v1[s] + eps)(v2[s'] + eps))`` (Ba et al. 2016, "Layer normalization",
arXiv:1607.06450; kernel as in Novak et al. 2020, "Neural Tangents",
arXiv:1912.02803).
"""

from __future__ import annotations

import jax.numpy as jnp

from nnlab.kernels._kernel import Kernel, map_branches

from ._base import Array, Shape, check_kernel, check_rank, layer, static


@layer
class LayerNorm:
    """``y = (x - mean_c x) / sqrt(var_c x + eps)`` over the channel (last) axis.

    The kernel requires zero-mean Gaussian inputs (right after Dense, Conv or
    pooling): the centering would otherwise need the mean of the features,
    which the kernel does not carry.

    Args:
      axis: the axis to normalise over; only the channel axis ``-1`` is supported.
      eps: added to the variance (in the finite layer and the kernel alike).

    Example:
      >>> import jax.numpy as jnp
      >>> from nnlab import layers as nl
      >>> y = nl.LayerNorm().apply((), jnp.array([[1.0, 3.0]]))
      >>> [round(float(v), 4) for v in y[0]]
      [-1.0, 1.0]
    """

    axis: int = static(default=-1)
    eps: float = static(default=1e-12)

    def __post_init__(self):
        if self.axis != -1 or isinstance(self.axis, bool):
            raise ValueError(
                f"LayerNorm: axis must be -1 (the channel axis); normalising over other "
                f"axes is not supported, got axis={self.axis!r}."
            )
        if not isinstance(self.eps, (int, float)) or self.eps < 0:
            raise ValueError(f"LayerNorm: eps must be a non-negative number, got {self.eps!r}.")

    def init(self, key: Array, input_shape: Shape):
        check_rank("LayerNorm", input_shape, (2, 3, 4, 5), "(N, ..., channels)")
        return tuple(input_shape), ()

    def apply(self, params, x: Array) -> Array:
        mean = jnp.mean(x, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
        return (x - mean) / jnp.sqrt(var + self.eps)

    def kernel(self, k: Kernel) -> Kernel:
        k = check_kernel("LayerNorm", k)
        if k.flattened:
            raise ValueError(
                "LayerNorm: the features come from several positions (after Flatten), each "
                "with its own variance, and their per-position kernels are gone; nnlab cannot "
                "compute this kernel. Apply the nonlinearity before Flatten, or put a Dense "
                "right after Flatten."
            )
        if not k.is_gaussian:
            raise ValueError(
                "LayerNorm: its kernel needs zero-mean Gaussian inputs (place it right after "
                "Dense, Conv or pooling); after a nonlinearity or on raw inputs the centering "
                "would need the mean of the features, which the kernel does not carry."
            )
        # The channel variance at each position is that of all channels together: with
        # channels of several kinds (after FanInConcat) it is the mixture's, k.cov1/k.cov2,
        # and every kind is divided by it.
        a, b = k.marginals()
        scale = 1.0 / (jnp.sqrt(a + self.eps) * jnp.sqrt(b + self.eps))
        s1, s1p = k.self_marginals(1)
        scale1 = 1.0 / (jnp.sqrt(s1 + self.eps) * jnp.sqrt(s1p + self.eps))
        if k.cov2 is k.cov1:
            scale2 = scale1
        else:
            s2, s2p = k.self_marginals(2)
            scale2 = 1.0 / (jnp.sqrt(s2 + self.eps) * jnp.sqrt(s2p + self.eps))

        def normalise(part: Kernel) -> Kernel:
            cov1 = part.cov1 * scale1
            return part.replace(
                nngp=part.nngp * scale,
                ntk=None if part.ntk is None else part.ntk * scale,
                cov1=cov1,
                cov2=cov1 if part.cov2 is part.cov1 else part.cov2 * scale2,
                is_gaussian=True,
            )

        return map_branches(k, normalise)
