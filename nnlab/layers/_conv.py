"""Convolutions (channels last, 1-D to 3-D) and their infinite-width kernel.

A convolution with filter ``k = (k_1, ..., k_d)`` and strides ``σ`` averages
``prod(k)`` shifted copies of its input through independent weights, so the
per-channel covariance of its outputs is the shifted average of the input
covariance (Novak et al. 2019, "Bayesian deep convolutional networks with many
channels are Gaussian processes", arXiv:1810.05148; Garriga-Alonso et al.
2019, arXiv:1808.05587; Arora et al. 2019, arXiv:1904.11955). In one spatial
dimension,

    K_new[s, s'] = (1/k) Σ_{d=0}^{k-1} K_pad[s·σ + d, s'·σ + d],

where ``K_pad`` is ``K`` padded with zeros ('SAME', so border positions get a
smaller variance), wrapped around ('CIRCULAR') or not padded ('VALID'). The map
factorises over spatial dimensions, and each factor is a sum of ``k`` strided
slices: cheap, fused by XLA, and never a dense convolution. The diagonal
layout applies it to ``K[s, s]`` alone; the full layout to position pairs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Literal

import jax.numpy as jnp
from jax import lax

from nnlab.kernels._kernel import Kernel

from ._abc import Parameterization, Role
from ._base import Array, Shape, check_rank, layer, static
from ._dense import (
    affine_init,
    affine_kernel,
    affine_lr_multipliers,
    affine_output,
    affine_scales,
    check_affine,
    check_affine_kernel,
    check_channels,
)

Padding = Literal["SAME", "VALID", "CIRCULAR"]
PADDINGS = ("SAME", "VALID", "CIRCULAR")
_SHAPE_NAMES = {1: "(N, W, C)", 2: "(N, H, W, C)", 3: "(N, D, H, W, C)"}


def shape_name(ndim: int) -> str:
    """The channels-last input shape a layer with ``ndim`` spatial dimensions expects."""
    return _SHAPE_NAMES.get(ndim, f"(N, <{ndim} spatial>, C)")


def as_int_tuple(name: str, field: str, value, length: int | None = None) -> tuple[int, ...]:
    """``value`` as a tuple of positive ints, or a ValueError naming ``name`` and ``field``."""
    try:
        out = tuple(value)
    except TypeError:
        out = None
    ok = (
        out is not None
        and len(out) >= 1
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in out)
        and (length is None or len(out) == length)
    )
    if not ok:
        want = f"{length} positive ints" if length else "a tuple of 1 to 3 positive ints"
        raise ValueError(f"{name}: {field} must be {want}, got {value!r}.")
    return out


def check_padding(name: str, padding: str, allowed: tuple[str, ...]) -> None:
    if padding not in allowed:
        raise ValueError(f"{name}: padding must be one of {allowed}, got {padding!r}.")


def spatial_pads(
    name: str,
    spatial_shape: Sequence[int],
    window: Sequence[int],
    strides: Sequence[int],
    padding: str,
) -> list[tuple[int, int]]:
    """Padding ``(low, high)`` per spatial dimension, as ``lax`` uses for 'SAME'/'VALID'.

    'SAME' and 'CIRCULAR' give ``ceil(S/σ)`` outputs, padding ``max((out-1)σ + k - S, 0)``
    split with the smaller half in front; 'VALID' pads nothing and needs ``S >= k``.
    """
    pads = []
    for size, k, st in zip(spatial_shape, window, strides):
        if padding == "VALID":
            if size < k:
                raise ValueError(
                    f"{name}: with padding 'VALID' every spatial size must be at least the "
                    f"window {tuple(window)}, got spatial shape {tuple(spatial_shape)}."
                )
            pads.append((0, 0))
        else:
            out = -(-size // st)
            total = max((out - 1) * st + k - size, 0)
            pads.append((total // 2, total - total // 2))
    return pads


def _strided_slice(a: Array, axes: Sequence[int], start: int, n_out: int, stride: int) -> Array:
    starts, limits, steps = [0] * a.ndim, list(a.shape), [1] * a.ndim
    for ax in axes:
        starts[ax], limits[ax], steps[ax] = start, start + (n_out - 1) * stride + 1, stride
    return lax.slice(a, starts, limits, steps)


def pad_axes(a: Array, axes: Sequence[int], pad: tuple[int, int], circular: bool) -> Array:
    """Pad ``a`` by ``pad`` on each of ``axes``: zeros, or wrapped around if ``circular``."""
    if pad == (0, 0):
        return a
    widths = [(0, 0)] * a.ndim
    for ax in axes:
        widths[ax] = pad
    return jnp.pad(a, widths, mode="wrap" if circular else "constant")


def window_sum(a: Array, axes: Sequence[int], window: int, stride: int) -> Array:
    """``Σ_{d<window} a[..., s·stride + d, ...]``, shifting all ``axes`` together."""
    n_out = (a.shape[axes[0]] - window) // stride + 1
    total = _strided_slice(a, axes, 0, n_out, stride)
    for d in range(1, window):
        total = total + _strided_slice(a, axes, d, n_out, stride)
    return total


def position_axes(k: Kernel, batch_axes: int) -> list[tuple[int, ...]]:
    """For each spatial dimension, the axes of a kernel array that index it."""
    d = k.spatial_ndim
    if k.diagonal_spatial:
        return [(batch_axes + i,) for i in range(d)]
    return [(batch_axes + 2 * i, batch_axes + 2 * i + 1) for i in range(d)]


def _shifted_window(a: Array, axes, low: int, n_out: int, stride: int) -> Array:
    """``b[..., t, ...] = a_pad[..., t·stride, ...]`` on ``axes``, where ``a_pad`` is ``a``
    with ``low`` zeros in front (negative ``low`` crops): a single fusible ``lax.pad``."""
    length = (n_out - 1) * stride + 1
    config = [(0, 0, 0)] * a.ndim
    for ax in axes:
        config[ax] = (low, length - low - a.shape[ax], 0)
    a = lax.pad(a, jnp.zeros((), a.dtype), config)
    if stride > 1:
        starts, limits, steps = [0] * a.ndim, list(a.shape), [1] * a.ndim
        for ax in axes:
            steps[ax] = stride
        a = lax.slice(a, starts, limits, steps)
    return a


def conv_covariance_map(
    k: Kernel, a: Array, same, filter_shape, strides, padding: str, name: str = "Conv"
) -> Array:
    """The shifted average ``(1/k) Σ_d K_pad[sσ + d, s'σ + d]`` applied to one kernel array.

    ``same`` is None for (N1, N2, ...) arrays and 1/2 for the cov1/cov2 layout (N, ...).
    All ``prod(filter_shape)`` shifted copies are summed in one expression, so
    XLA fuses them into a single pass over ``a``.
    """
    batch_axes = 2 if same is None else 1
    axes_list = position_axes(k, batch_axes)
    sizes = [a.shape[axes[0]] for axes in axes_list]
    pads = spatial_pads(name, sizes, filter_shape, strides, padding)
    if padding == "CIRCULAR":
        for axes, pad in zip(axes_list, pads):
            a = pad_axes(a, axes, pad, circular=True)
        pads = [(0, 0)] * len(pads)
        sizes = [a.shape[axes[0]] for axes in axes_list]
    n_outs = [
        (size + lo + hi - f) // st + 1
        for size, (lo, hi), f, st in zip(sizes, pads, filter_shape, strides)
    ]
    total = None
    for offsets in itertools.product(*(range(f) for f in filter_shape)):
        x = a
        for axes, d, (lo, _), n_out, st in zip(axes_list, offsets, pads, n_outs, strides):
            x = _shifted_window(x, axes, lo - d, n_out, st)
        total = x if total is None else total + x
    return total / math.prod(filter_shape)


@layer
class Conv:
    """Convolution over channels-last inputs (NWC in 1-D, NHWC in 2-D).

    'ntk' parameterization: ``W, b ~ N(0, 1)`` and ``y = (W_std / sqrt(fan_in))
    conv(x, W) + b_std b`` with ``fan_in = C_in · prod(filter_shape)``;
    'standard': ``W ~ N(0, W_std²/fan_in)``, ``b ~ N(0, b_std²)``, ``y = conv(x, W) + b``.
    The kernel is ``W_std² A(K) + b_std²`` with ``A`` the shifted average of the
    module docstring (Novak et al. 2019, arXiv:1810.05148), and the NTK follows
    :func:`~nnlab.layers._dense.affine_kernel` with the same ``A``.

    'mup' and 'meanfield' (Yang & Hu 2021, arXiv:2011.14522) scale as
    :class:`~nnlab.layers.Dense` does, with the width ``n`` a channel count (``out`` for
    role 'input', ``C_in`` otherwise, not times the filter size) and the constant
    ``C = W_std / sqrt(C_in · prod(filter_shape))`` for role 'input',
    ``W_std / sqrt(prod(filter_shape))`` otherwise; a 1x1 filter is a Dense layer.
    They have no kernel limit (:meth:`kernel` raises); train them at the rates
    :meth:`lr_multipliers`. 'standard' and 'ntk' do not depend on ``role``.

    Args:
      out: number of output channels.
      filter_shape: filter size per spatial dimension, e.g. ``(3, 3)``.
      strides: stride per spatial dimension; None for all ones.
      padding: 'SAME' (zeros), 'VALID' (none) or 'CIRCULAR' (wrap around, as
        many positions as 'SAME').
      W_std, b_std, parameterization, role: as for :class:`~nnlab.layers.Dense`, with
        ``fan_in = C_in · prod(filter_shape)``.

    Example:
      >>> import jax, nnlab
      >>> from nnlab import layers as nl
      >>> net = nl.serial(nl.Conv(8, (3, 3)), nl.Relu(), nl.Flatten(), nl.Dense(1))
      >>> nnlab.kernel(net, jax.numpy.ones((2, 5, 5, 3)), get="ntk").shape
      (2, 2)
      >>> conv = nl.Conv(8, (3, 3), parameterization="meanfield")
      >>> conv.lr_multipliers(conv.init(jax.random.key(0), (2, 5, 5, 4))[1])
      {'W': 4.0, 'b': 4.0}
    """

    out: int = static()
    filter_shape: tuple[int, ...] = static()
    strides: tuple[int, ...] | None = static(default=None)
    padding: Padding = static(default="SAME")
    W_std: float = 1.0
    b_std: float | None = 0.0
    parameterization: Parameterization = static(default="ntk")
    role: Role = static(default="hidden")

    def __post_init__(self):
        filt = as_int_tuple("Conv", "filter_shape", self.filter_shape)
        if len(filt) > 3:
            raise ValueError(f"Conv: filter_shape must have 1 to 3 entries, got {filt!r}.")
        strides = (1,) * len(filt) if self.strides is None else self.strides
        object.__setattr__(self, "filter_shape", filt)
        object.__setattr__(self, "strides", as_int_tuple("Conv", "strides", strides, len(filt)))
        check_padding("Conv", self.padding, PADDINGS)
        check_affine("Conv", self)

    @property
    def _name(self) -> str:
        return f"Conv with a {len(self.filter_shape)}-D filter"

    def _scales(self, c_in: int):
        return affine_scales(self, c_in, math.prod(self.filter_shape))

    def _check_shape(self, shape) -> None:
        d = len(self.filter_shape)
        check_rank(self._name, shape, (d + 2,), shape_name(d))

    def init(self, key: Array, input_shape: Shape):
        self._check_shape(input_shape)
        c_in = input_shape[-1]
        pads = spatial_pads(
            "Conv", input_shape[1:-1], self.filter_shape, self.strides, self.padding
        )
        spatial = tuple(
            (s + lo + hi - f) // st + 1
            for s, (lo, hi), f, st in zip(input_shape[1:-1], pads, self.filter_shape, self.strides)
        )
        w_shape = (*self.filter_shape, c_in, self.out)
        params = affine_init(self, key, w_shape, c_in * math.prod(self.filter_shape), c_in)
        return (input_shape[0], *spatial, self.out), params

    def apply(self, params, x: Array) -> Array:
        self._check_shape(x.shape)
        w, b = params["W"], params["b"]
        check_channels("Conv", x, w)
        d = len(self.filter_shape)
        pads = spatial_pads("Conv", x.shape[1:-1], self.filter_shape, self.strides, self.padding)
        if self.padding == "CIRCULAR":
            x = jnp.pad(x, [(0, 0), *pads, (0, 0)], mode="wrap")
            pads = [(0, 0)] * d
        numbers = lax.ConvDimensionNumbers(
            lhs_spec=(0, d + 1, *range(1, d + 1)),
            rhs_spec=(d + 1, d, *range(d)),
            out_spec=(0, d + 1, *range(1, d + 1)),
        )
        y = lax.conv_general_dilated(
            x, w, self.strides, pads, dimension_numbers=numbers, precision=lax.Precision.HIGHEST
        )
        b = None if b is None else b.reshape((1,) * (y.ndim - 1) + (-1,))
        return affine_output(self, y, b, math.prod(w.shape[:-1]), w.shape[-2])

    def lr_multipliers(self, params) -> dict:
        """SGD rate factors ``{'W': n^{-c}, 'b': n^{-c_bias}}`` (1.0 in 'standard'/'ntk')."""
        return affine_lr_multipliers("Conv", self, params)

    def kernel(self, k: Kernel) -> Kernel:
        k = check_affine_kernel("Conv", self, k)
        d = len(self.filter_shape)
        if k.spatial_ndim != d:
            raise ValueError(
                f"{self._name} expects inputs of shape {shape_name(d)}, got a kernel with "
                f"{k.spatial_ndim} spatial dimensions."
            )

        def linear_map(a, same=None):
            return conv_covariance_map(k, a, same, self.filter_shape, self.strides, self.padding)

        fan_in = k.channels * math.prod(self.filter_shape)
        out = affine_kernel(k, self.W_std, self.b_std, fan_in, self.parameterization, linear_map)
        return out.replace(channels=self.out)
