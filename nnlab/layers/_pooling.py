"""Spatial readouts: average pooling, global average pooling and flattening.

All three are linear maps ``y = P x`` of the positions, so they keep Gaussian
layers Gaussian and send the per-channel covariance to ``P K Pᵀ`` (and the NTK
likewise, having no parameters; channels of several kinds, ``Kernel.branches``,
are mapped kind by kind) (Novak et al. 2019, "Bayesian deep
convolutional networks with many channels are Gaussian processes",
arXiv:1810.05148; Arora et al. 2019, "On exact computation with an infinitely
wide neural net", arXiv:1904.11955):

* ``AvgPool``: ``K_new[s, s'] = (1/w²) Σ_{d, d'} K_pad[sσ + d, s'σ + d']`` per
  spatial dimension (zero padding counts in the average, as in
  neural-tangents with ``normalize_edges=False``); needs the full layout.
* ``GlobalAvgPool``: ``K_new = (1/|S|²) Σ_{s, s'} K[s, s']``; needs the full layout.
* ``Flatten``: the next Dense sees ``C·|S|`` inputs, so the per-channel kernel
  is the mean over positions of the diagonal, ``(1/|S|) Σ_s K[s, s]``; works in
  both layouts (which is why CNN-with-Flatten kernels are cheap).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from jax import lax

from nnlab.kernels._kernel import Kernel, map_branches

from ._base import Array, Shape, check_kernel, check_rank, layer, static
from ._conv import (
    as_int_tuple,
    check_padding,
    pad_axes,
    position_axes,
    shape_name,
    spatial_pads,
    window_sum,
)

POOL_PADDINGS = ("VALID", "SAME")


def _map_fields(k: Kernel, fn) -> dict:
    """``fn(array, same)`` applied to nngp, ntk, cov1 and cov2 (cov2 reused when it is cov1)."""
    cov1 = fn(k.cov1, 1)
    return dict(
        nngp=fn(k.nngp, None),
        ntk=None if k.ntk is None else fn(k.ntk, None),
        cov1=cov1,
        cov2=cov1 if k.cov2 is k.cov1 else fn(k.cov2, 2),
    )


def _require_full(name: str, k: Kernel) -> None:
    if k.spatial_ndim == 0:
        raise ValueError(
            f"{name} needs spatial inputs (N, *spatial, C), got a vector kernel (inputs of "
            "shape (N, features)); it pools over positions, which vectors do not have."
        )
    if k.diagonal_spatial:
        raise ValueError(
            f"{name} needs covariances between different positions (the full spatial "
            "layout), got a diagonal-spatial kernel. Compute with nnlab.kernel, which picks "
            "the full layout for pooling layers, or pass diagonal_spatial=False."
        )


@layer
class AvgPool:
    """Average over windows of positions; the kernel is ``P K Pᵀ`` over pairs of windows.

    With 'SAME' padding the padded zeros count in the average (border outputs
    are smaller), matching neural-tangents' default ``normalize_edges=False``.

    Args:
      window_shape: window size per spatial dimension, e.g. ``(2, 2)``.
      strides: stride per spatial dimension; None for all ones (as in
        ``jax.example_libraries.stax`` and neural-tangents).
      padding: 'VALID' or 'SAME'.

    Example:
      >>> import jax.numpy as jnp
      >>> from nnlab import layers as nl
      >>> nl.AvgPool((2,), strides=(2,)).apply((), jnp.arange(4.0).reshape(1, 4, 1))[0, :, 0]
      Array([0.5, 2.5], dtype=float32)
    """

    window_shape: tuple[int, ...] = static()
    strides: tuple[int, ...] | None = static(default=None)
    padding: str = static(default="VALID")

    needs_full_spatial = True

    def __post_init__(self):
        window = as_int_tuple("AvgPool", "window_shape", self.window_shape)
        if len(window) > 3:
            raise ValueError(f"AvgPool: window_shape must have 1 to 3 entries, got {window!r}.")
        strides = (1,) * len(window) if self.strides is None else self.strides
        strides = as_int_tuple("AvgPool", "strides", strides, len(window))
        object.__setattr__(self, "window_shape", window)
        object.__setattr__(self, "strides", strides)
        check_padding("AvgPool", self.padding, POOL_PADDINGS)

    @property
    def _name(self) -> str:
        return f"AvgPool with a {len(self.window_shape)}-D window"

    def _pads(self, spatial_shape):
        return spatial_pads("AvgPool", spatial_shape, self.window_shape, self.strides, self.padding)

    def init(self, key: Array, input_shape: Shape):
        d = len(self.window_shape)
        check_rank(self._name, input_shape, (d + 2,), shape_name(d))
        spatial = tuple(
            (s + lo + hi - w) // st + 1
            for s, (lo, hi), w, st in zip(
                input_shape[1:-1], self._pads(input_shape[1:-1]), self.window_shape, self.strides
            )
        )
        return (input_shape[0], *spatial, input_shape[-1]), ()

    def apply(self, params, x: Array) -> Array:
        d = len(self.window_shape)
        check_rank(self._name, x.shape, (d + 2,), shape_name(d))
        total = lax.reduce_window(
            x,
            np.zeros((), x.dtype),  # concrete, so JAX sees a differentiable sum window
            lax.add,
            (1, *self.window_shape, 1),
            (1, *self.strides, 1),
            [(0, 0), *self._pads(x.shape[1:-1]), (0, 0)],
        )
        return total / math.prod(self.window_shape)

    def kernel(self, k: Kernel) -> Kernel:
        k = check_kernel("AvgPool", k)
        _require_full("AvgPool", k)
        if k.spatial_ndim != len(self.window_shape):
            raise ValueError(
                f"{self._name} expects inputs of shape {shape_name(len(self.window_shape))}, "
                f"got a kernel with {k.spatial_ndim} spatial dimensions."
            )

        def pool(a, same):  # the same layout in every branch, so k's axes serve all
            axes_list = position_axes(k, 2 if same is None else 1)
            pads = self._pads([a.shape[axes[0]] for axes in axes_list])
            for axes, w, st, pad in zip(axes_list, self.window_shape, self.strides, pads):
                a = pad_axes(a, axes, pad, circular=False)
                for ax in axes:  # P on the first position of the pair, Pᵀ on the second
                    a = window_sum(a, (ax,), w, st) / w
            return a

        return map_branches(k, lambda b: b.replace(**_map_fields(b, pool)))


@layer
class GlobalAvgPool:
    """Mean over all positions: ``y[n, c] = mean_s x[n, s, c]``; kernel ``mean_{s,s'} K[s, s']``.

    Example:
      >>> import jax.numpy as jnp
      >>> from nnlab import layers as nl
      >>> nl.GlobalAvgPool().apply((), jnp.ones((2, 4, 4, 3))).shape
      (2, 3)
    """

    needs_full_spatial = True

    def init(self, key: Array, input_shape: Shape):
        check_rank("GlobalAvgPool", input_shape, (3, 4, 5), "(N, *spatial, C)")
        return (input_shape[0], input_shape[-1]), ()

    def apply(self, params, x: Array) -> Array:
        check_rank("GlobalAvgPool", x.shape, (3, 4, 5), "(N, *spatial, C)")
        return jnp.mean(x, axis=tuple(range(1, x.ndim - 1)))

    def kernel(self, k: Kernel) -> Kernel:
        k = check_kernel("GlobalAvgPool", k)
        _require_full("GlobalAvgPool", k)

        def pool(a, same):
            start = 2 if same is None else 1
            return jnp.mean(a, axis=tuple(range(start, a.ndim)))

        return map_branches(
            k, lambda b: b.replace(**_map_fields(b, pool), spatial_ndim=0, diagonal_spatial=True)
        )


def _position_diagonal(a: Array, k: Kernel, batch_axes: int) -> Array:
    """Equal-position entries of a kernel array: shape (batch..., S_1, ..., S_d)."""
    if k.diagonal_spatial:
        return a
    for _ in range(k.spatial_ndim):
        a = jnp.diagonal(a, axis1=batch_axes, axis2=batch_axes + 1)
    return a


@layer
class Flatten:
    """Reshape (N, *spatial, C) to (N, C·|S|); kernel ``(1/|S|) Σ_s K[s, s]``.

    The next Dense has fan-in ``C·|S|``, so its per-channel input kernel is the
    mean over positions of the same-position covariance; different positions
    never meet, and the diagonal spatial layout suffices (Novak et al. 2019,
    arXiv:1810.05148). Vectors pass through unchanged.

    Only an affine layer (Dense) may follow a Flatten of several positions: each
    flattened feature keeps its own position's variance, so a nonlinearity would act
    on per-position kernels that this mean no longer holds. nnlab raises an error there
    (put the nonlinearity before Flatten) rather than return ``T(mean K)`` in place of
    ``mean T(K)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from nnlab import layers as nl
      >>> nl.Flatten().apply((), jnp.ones((2, 4, 4, 3))).shape
      (2, 48)
    """

    def init(self, key: Array, input_shape: Shape):
        check_rank("Flatten", input_shape, (2, 3, 4, 5), "(N, *spatial, C)")
        return (input_shape[0], math.prod(input_shape[1:])), ()

    def apply(self, params, x: Array) -> Array:
        check_rank("Flatten", x.shape, (2, 3, 4, 5), "(N, *spatial, C)")
        return x.reshape(x.shape[0], -1)

    def kernel(self, k: Kernel) -> Kernel:
        k = check_kernel("Flatten", k)
        if k.spatial_ndim == 0:
            return k

        def flatten(a, same):
            start = 2 if same is None else 1
            a = _position_diagonal(a, k, start)
            return jnp.mean(a, axis=tuple(range(start, a.ndim)))

        size = math.prod(k.spatial_shape)
        return map_branches(
            k,
            lambda b: b.replace(
                **_map_fields(b, flatten),
                spatial_ndim=0,
                diagonal_spatial=True,
                channels=b.channels * size,
                flattened=b.flattened or size > 1,
            ),
        )
