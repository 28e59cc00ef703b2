"""Fully connected layers in the standard, NTK, muP and mean-field parameterizations."""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp

from nnlab import _checks
from nnlab.kernels._kernel import Kernel

from ._abc import (
    FEATURE_LEARNING,
    Parameterization,
    Role,
    check_parameterization,
    check_role,
    feature_learning_scales,
    layer_width,
    lr_factors,
    no_kernel_error,
)
from ._base import Array, Shape, check_kernel, check_rank, layer, static


def check_params(name: str, params) -> None:
    """Raise a TypeError unless ``params`` is an affine layer's ``{'W', 'b'}`` dict."""
    if not isinstance(params, Mapping) or "W" not in params or "b" not in params:
        raise TypeError(
            f"{name}: params must be the layer's {{'W': ..., 'b': ...}} dict from init, got "
            f"{type(params).__name__}."
        )


def check_channels(name: str, x: Array, w: Array) -> None:
    """Raise a ValueError unless ``x`` has the ``w.shape[-2]`` input channels of weights ``w``."""
    if x.shape[-1] != w.shape[-2]:
        raise ValueError(
            f"{name}: input has {x.shape[-1]} channels but the weights expect "
            f"{w.shape[-2]} (input shape {x.shape})."
        )


def check_affine(name: str, layer_) -> None:
    """Check the fields every affine layer (Dense, Conv) shares: a positive int ``out`` (stored
    as a Python int), its parameterization and its role."""
    object.__setattr__(layer_, "out", _checks.integer(layer_.out, f"{name}: out"))
    check_parameterization(layer_.parameterization, name)
    check_role(layer_.role, name)


def affine_scales(layer_, c_in: int, taps: int = 1):
    """The abc scales (:func:`feature_learning_scales`) of an affine layer with ``c_in`` input
    channels and ``taps`` filter positions (1 for Dense): the width is ``layer_width`` of its
    role, and the receptive field ``c_in · taps`` for an input layer, ``taps`` otherwise."""
    n = layer_width(layer_.role, c_in, layer_.out)
    receptive = c_in * taps if layer_.role == "input" else taps
    return feature_learning_scales(
        layer_.parameterization, layer_.role, n, layer_.W_std, layer_.b_std, receptive
    )


def check_affine_kernel(name: str, layer_, k: Kernel) -> Kernel:
    """``k`` checked as an affine layer's input; 'mup'/'meanfield' layers have no kernel."""
    if layer_.parameterization in FEATURE_LEARNING:
        raise no_kernel_error(name, layer_.parameterization)
    return check_kernel(name, k)


def affine_init(layer_, key: Array, w_shape: Shape, fan_in: int, c_in: int) -> dict:
    """``{'W', 'b'}`` of an affine layer (Dense or Conv) as its parameterization draws them.

    Standard normals, times ``W_std / sqrt(fan_in)`` and ``b_std`` in 'standard', times the
    abc initial scales of ``layer_._scales(c_in)`` in 'mup'/'meanfield', unscaled in 'ntk'
    (its multipliers act in :func:`affine_output`). ``b`` is None when ``b_std`` is None.
    """
    kw, kb = jax.random.split(key)
    w = jax.random.normal(kw, w_shape)
    b = None if layer_.b_std is None else jax.random.normal(kb, (layer_.out,))
    if layer_.parameterization == "standard":
        w = w * (layer_.W_std / jnp.sqrt(fan_in))
        b = None if b is None else b * layer_.b_std
    elif layer_.parameterization in FEATURE_LEARNING:
        s = layer_._scales(c_in)
        w = s.w_init * w
        b = None if b is None else s.b_init * b
    return {"W": w, "b": b}


def affine_output(layer_, y: Array, b: Array | None, fan_in: int, c_in: int) -> Array:
    """The output of an affine layer from ``y = x W`` (or ``conv(x, W)``) and its bias ``b``.

    ``b`` broadcasts against ``y`` (None: no bias). 'ntk': ``(W_std / sqrt(fan_in)) y + b_std
    b``; 'mup'/'meanfield': the abc multipliers of ``layer_._scales(c_in)``; 'standard':
    ``y + b`` (the scales are in the parameters, see :func:`affine_init`).
    """
    if layer_.parameterization == "ntk":
        y = (layer_.W_std / jnp.sqrt(fan_in)) * y
        b = None if b is None else layer_.b_std * b
    elif layer_.parameterization in FEATURE_LEARNING:
        s = layer_._scales(c_in)
        y = s.w_mult * y
        b = None if b is None else s.b_mult * b
    return y if b is None else y + b


def affine_lr_multipliers(name: str, layer_, params) -> dict:
    """``{'W': n^{-c}, 'b': n^{-c_bias}}`` of an affine layer (``b`` None without a bias)."""
    check_params(f"{name}.lr_multipliers", params)
    n = layer_width(layer_.role, params["W"].shape[-2], layer_.out)
    w, b = lr_factors(layer_.parameterization, layer_.role, n)
    return {"W": w, "b": None if params["b"] is None else b}


def affine_kernel(
    k: Kernel, W_std, b_std, fan_in: int, parameterization: str, linear_map=lambda a, same=None: a
) -> Kernel:
    """Kernel of ``y = W x + b`` where ``linear_map`` is the map the weights induce.

    ``linear_map`` sends a covariance array (nngp, ntk or cov) of the inputs to
    the covariance of ``(1/fan_in) Σ x x'`` seen through the layer (identity for
    Dense, the shifted average for Conv). With ``K`` the mapped input
    covariance and ``Θ`` the mapped input NTK:

    * NNGP, both parameterizations: ``W_std² K + b_std²``.
    * NTK, 'ntk': ``W_std² K + b_std² + W_std² Θ`` (Jacot et al. 2018).
    * NTK, 'standard': ``fan_in · K + 1[bias] + W_std² Θ`` (Park et al. 2019,
      "The effect of network width on SGD", standard-parameterization NTK).

    The weights sum over all input channels, so channels of several kinds
    (``k.branches``, after ``FanInConcat``) enter only through their mixture
    ``k.nngp``/``k.ntk``; the outputs are all alike (no branches).
    """
    b2 = 0.0 if b_std is None else b_std**2
    mapped_nngp = linear_map(k.nngp)
    nngp = W_std**2 * mapped_nngp + b2
    cov1 = W_std**2 * linear_map(k.cov1, same=1) + b2
    cov2 = W_std**2 * linear_map(k.cov2, same=2) + b2
    ntk = None
    if k.ntk is not None:
        back = W_std**2 * linear_map(k.ntk)
        if parameterization == "ntk":
            ntk = nngp + back
        else:
            ntk = fan_in * mapped_nngp + (0.0 if b_std is None else 1.0) + back
    return k.replace(
        nngp=nngp, ntk=ntk, cov1=cov1, cov2=cov2,
        is_gaussian=True, odd_in_branch=True, flattened=False, branches=None,
    )  # fmt: skip


@layer
class Dense:
    """Fully connected layer acting on the last (channel) axis.

    'ntk' parameterization (Jacot et al. 2018, arXiv:1806.07572): ``W_ij, b_j ~ N(0, 1)`` and
    ``y = (W_std / sqrt(fan_in)) x W + b_std b``.
    'standard': ``W_ij ~ N(0, W_std² / fan_in)``, ``b_j ~ N(0, b_std²)`` and
    ``y = x W + b``. Both give the same NNGP ``W_std² K + b_std²``; their NTKs
    differ (see :func:`affine_kernel`). ``b_std=None`` removes the bias.

    'mup' and 'meanfield' (Yang & Hu 2021, arXiv:2011.14522): ``y = m x w + b_std n^{-a'} β``
    with ``w ~ N(0, s²)``, ``β ~ N(0, n^{-2b'})``, where the abc exponents of ``role`` come
    from :data:`~nnlab.parameterization.ABC_TABLE` and ``n`` is the width (``out`` for
    role 'input', ``fan_in`` otherwise). With ``C = W_std / sqrt(fan_in)`` for role 'input'
    and ``C = W_std`` otherwise, ``(m, s) = (n^{-a}, C n^{-b})`` for hidden layers and
    ``(C n^{-a}, n^{-b})`` for input and output layers (muP's placement, kept by
    mean-field so that the two train identically). These learn features and have no
    kernel limit: :meth:`kernel` raises. Train them at the rates :meth:`lr_multipliers`.
    'standard' and 'ntk' do not depend on ``role``.

    Args:
      out: number of output channels (the width).
      W_std: weight standard deviation (times sqrt(fan_in)).
      b_std: bias standard deviation, or None for no bias.
      parameterization: 'ntk', 'standard', 'mup' or 'meanfield'.
      role: 'input' (first layer), 'hidden' or 'output' (last layer).

    Example:
      >>> import jax, nnlab
      >>> from nnlab import layers as nl
      >>> net = nl.serial(nl.Dense(64, W_std=1.5), nl.Relu(), nl.Dense(1))
      >>> nnlab.kernel(net, jax.numpy.ones((3, 5))).ntk.shape
      (3, 3)
      >>> mup = nl.Dense(64, parameterization="mup", role="input")
      >>> _, p = mup.init(jax.random.key(0), (3, 5))
      >>> mup.apply(p, jax.numpy.ones((3, 5))).shape
      (3, 64)
    """

    out: int = static()
    W_std: float = 1.0
    b_std: float | None = 0.0
    parameterization: Parameterization = static(default="ntk")
    role: Role = static(default="hidden")

    def __post_init__(self):
        check_affine("Dense", self)

    def _scales(self, fan_in: int):
        return affine_scales(self, fan_in)

    def init(self, key: Array, input_shape: Shape):
        check_rank("Dense", input_shape, tuple(range(2, 6)), "(N, ..., channels)")
        fan_in = input_shape[-1]
        params = affine_init(self, key, (fan_in, self.out), fan_in, fan_in)
        return (*input_shape[:-1], self.out), params

    def apply(self, params, x: Array) -> Array:
        w, b = params["W"], params["b"]
        check_channels("Dense", x, w)
        y = x @ w
        b = None if b is None else jnp.broadcast_to(b, y.shape)
        return affine_output(self, y, b, w.shape[0], w.shape[0])

    def lr_multipliers(self, params) -> dict:
        """SGD rate factors ``{'W': n^{-c}, 'b': n^{-c_bias}}`` (1.0 in 'standard'/'ntk').

        Example:
          >>> import jax
          >>> from nnlab import layers as nl
          >>> d = nl.Dense(8, parameterization="meanfield", role="output")
          >>> d.lr_multipliers(d.init(jax.random.key(0), (2, 32))[1])
          {'W': 32.0, 'b': 32.0}
        """
        return affine_lr_multipliers("Dense", self, params)

    def kernel(self, k: Kernel) -> Kernel:
        k = check_affine_kernel("Dense", self, k)
        out = affine_kernel(
            k,
            self.W_std,
            self.b_std,
            k.channels,
            self.parameterization,
            linear_map=lambda a, same=None: a,
        )
        return out.replace(channels=self.out)
