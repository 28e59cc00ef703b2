"""Combinators: compose layers' ``init``, ``apply`` and ``kernel`` at once.

``serial`` chains layers; ``FanOut`` copies one input into a list of branches,
``parallel`` applies one layer per branch, and ``FanInSum``/``FanInConcat``
merge branches (residual blocks are ``serial(FanOut(2), parallel(block,
Identity()), FanInSum())``). Branches travel as Python lists of arrays,
shapes or kernels.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from nnlab import _checks
from nnlab.kernels._kernel import Kernel, mix_branches

from ._base import Array, Layer, Shape, check_kernel, layer, static


def _check_layers(name: str, layers) -> None:
    for i, lyr in enumerate(layers):
        if not isinstance(lyr, Layer):
            raise TypeError(
                f"{name}: argument {i} must be a layer with init/apply/kernel, got "
                f"{type(lyr).__name__}."
            )


@layer
class Serial:
    """Layers applied one after another; build with :func:`serial`."""

    layers: tuple

    def init(self, key: Array, input_shape: Shape):
        keys = jax.random.split(key, max(len(self.layers), 1))
        params = []
        shape = input_shape
        for lyr, k in zip(self.layers, keys):
            shape, p = lyr.init(k, shape)
            params.append(p)
        return shape, tuple(params)

    def apply(self, params, x):
        if len(params) != len(self.layers):
            raise ValueError(
                f"serial: params has {len(params)} entries for {len(self.layers)} layers."
            )
        for lyr, p in zip(self.layers, params):
            x = lyr.apply(p, x)
        return x

    def kernel(self, k):
        for lyr in self.layers:
            k = lyr.kernel(k)
        return k


def serial(*layers) -> Serial:
    """Compose ``layers`` in sequence: ``serial(Dense(512), Relu(), Dense(1))``."""
    _check_layers("serial", layers)
    return Serial(tuple(layers))


def repeat(block, n: int) -> Serial:
    """``block`` applied ``n`` times in sequence (independent parameters each time)."""
    n = _checks.integer(n, "repeat: n")
    return serial(*([block] * n))


@layer
class Parallel:
    """One layer per branch of a list input; build with :func:`parallel`."""

    layers: tuple

    def _check(self, items, what: str):
        if not isinstance(items, list) or len(items) != len(self.layers):
            got = f"a list of {len(items)}" if isinstance(items, list) else "a single input"
            raise ValueError(
                f"parallel: expects a list of {len(self.layers)} {what} (one per "
                f"branch, e.g. from FanOut({len(self.layers)})), got {got}."
            )

    def init(self, key: Array, input_shape):
        self._check(input_shape, "input shapes")
        keys = jax.random.split(key, len(self.layers))
        outs = [lyr.init(k, s) for lyr, k, s in zip(self.layers, keys, input_shape)]
        return [o[0] for o in outs], tuple(o[1] for o in outs)

    def apply(self, params, x):
        self._check(x, "inputs")
        return [lyr.apply(p, xi) for lyr, p, xi in zip(self.layers, params, x)]

    def kernel(self, k):
        self._check(k, "kernels")
        return [lyr.kernel(ki) for lyr, ki in zip(self.layers, k)]


def parallel(*layers) -> Parallel:
    """Apply ``layers[i]`` to branch ``i`` of a list input."""
    _check_layers("parallel", layers)
    return Parallel(tuple(layers))


@layer
class FanOut:
    """Copy the input into a list of ``num`` identical branches."""

    num: int = static()

    def __post_init__(self):
        object.__setattr__(self, "num", _checks.integer(self.num, "FanOut: num"))

    def init(self, key, input_shape):
        return [tuple(input_shape)] * self.num, ()

    def apply(self, params, x):
        return [x] * self.num

    def kernel(self, k):
        # The copies share every parameter drawn so far: none is odd in parameters of its own.
        return [check_kernel("FanOut", k).replace(odd_in_branch=False)] * self.num


def _check_branches(name: str, items, what: str):
    if not isinstance(items, list) or len(items) < 1:
        raise TypeError(
            f"{name}: expects a list of branch {what} (from FanOut/parallel), got "
            f"{type(items).__name__}."
        )


def _add_kernels(ks, channels: int) -> Kernel:
    """Kernel of the sum of independent layers with kernels ``ks`` (all of one channel kind)."""
    first = ks[0]
    ntk = None if any(k.ntk is None for k in ks) else sum(k.ntk for k in ks[1:]) + first.ntk
    cov1 = sum(k.cov1 for k in ks[1:]) + first.cov1
    same_cov = all(k.cov2 is k.cov1 for k in ks)
    return first.replace(
        nngp=sum(k.nngp for k in ks[1:]) + first.nngp,
        ntk=ntk,
        cov1=cov1,
        cov2=cov1 if same_cov else sum(k.cov2 for k in ks[1:]) + first.cov2,
        channels=channels,
        is_gaussian=all(k.is_gaussian for k in ks),
        odd_in_branch=all(k.odd_in_branch for k in ks),
        flattened=any(k.flattened for k in ks),
        branches=None,
    )


def _channel_blocks(k: Kernel) -> list[tuple[int, int, Kernel]]:
    """``(start, stop, kernel)`` for each block of consecutive channels of one kind."""
    parts = k.branches if k.branches is not None else (k,)
    blocks, start = [], 0
    for p in parts:
        blocks.append((start, start + p.channels, p))
        start += p.channels
    return blocks


@layer
class FanInSum:
    """Sum of the branches (all of the same shape).

    Branches driven by independent parameters are independent Gaussians in the
    limit, so their NNGPs, NTKs and covariances add, provided the cross terms
    vanish. They do when all but one branch are odd in parameters of their own
    (``Kernel.odd_in_branch``: the branch ends in its own Dense or Conv, possibly
    followed by odd activations, pooling or LayerNorm): flipping those parameters'
    sign flips the branch and leaves the others, so every cross moment (NNGP and
    NTK) averages to zero. Otherwise (``parallel(Identity(), Identity())``, two
    ReLU branches, ``parallel(AvgPool(...), Identity())``) the branches are
    correlated and the kernel is an error, never a wrong number. Branches whose channels are
    of several kinds (after ``FanInConcat``) add block by block: channel ``c`` of
    the sum has the summed kernel of the kinds channel ``c`` has in each branch.
    """

    def init(self, key, input_shape):
        _check_branches("FanInSum", input_shape, "shapes")
        if any(tuple(s) != tuple(input_shape[0]) for s in input_shape):
            raise ValueError(f"FanInSum: branch shapes differ: {input_shape}.")
        return tuple(input_shape[0]), ()

    def apply(self, params, x):
        _check_branches("FanInSum", x, "arrays")
        return sum(x[1:], start=x[0])

    def kernel(self, ks):
        _check_branches("FanInSum", ks, "kernels")
        ks = [check_kernel("FanInSum", k) for k in ks]
        shared = [i for i, k in enumerate(ks) if not k.odd_in_branch]
        if len(shared) > 1:
            raise ValueError(
                f"FanInSum: branches {shared} are correlated (none of them ends in a Dense or "
                "Conv of its own, possibly followed by odd activations such as Erf/Tanh/Sign or "
                "by pooling), so the kernel of their sum needs cross-covariances that nnlab "
                "does not compute. End all but one branch in its own Dense or Conv layer, as "
                "in a residual block serial(FanOut(2), parallel(block, Identity()), FanInSum())."
            )
        if all(k.branches is None for k in ks):
            return _add_kernels(ks, ks[0].channels)
        if any(k.channels != ks[0].channels for k in ks):
            raise ValueError(
                "FanInSum: branches whose channels are of several kinds (after FanInConcat) "
                "can only be added to branches with as many channels, got "
                f"{[k.channels for k in ks]}; make the branch widths equal."
            )
        blocks = [_channel_blocks(k) for k in ks]
        cuts = sorted({stop for bl in blocks for _, stop, _ in bl})
        parts, start = [], 0
        for stop in cuts:
            covering = [next(p for lo, hi, p in bl if lo <= start < hi) for bl in blocks]
            parts.append(_add_kernels(covering, stop - start))
            start = stop
        return mix_branches(parts)


@layer
class FanInConcat:
    """Concatenation of the branches along the channel (last) axis.

    The channels of the result are of several kinds: channel block ``i``
    (``C_i`` channels) has branch ``i``'s kernel ``K_i``. An affine layer sees
    the channel-weighted mean ``Σ_i C_i K_i / Σ_i C_i`` (NNGP and NTK alike),
    which the returned kernel's fields hold; it also keeps the ``K_i`` as
    ``branches``, because an elementwise nonlinearity acts per channel and must
    map each ``K_i`` before the mixing (``Σ_i (C_i/C) T(K_i)``, not
    ``T(Σ_i (C_i/C) K_i)``), see :mod:`nnlab.kernels._kernel`.
    Only the channel axis is supported (``apply`` concatenates the last axis).
    """

    def init(self, key, input_shape):
        _check_branches("FanInConcat", input_shape, "shapes")
        if any(tuple(s[:-1]) != tuple(input_shape[0][:-1]) for s in input_shape):
            raise ValueError(
                f"FanInConcat: branches must agree on all but the last axis, got {input_shape}."
            )
        return (*input_shape[0][:-1], sum(s[-1] for s in input_shape)), ()

    def apply(self, params, x):
        _check_branches("FanInConcat", x, "arrays")
        return jnp.concatenate(x, axis=-1)

    def kernel(self, ks):
        _check_branches("FanInConcat", ks, "kernels")
        ks = [check_kernel("FanInConcat", k) for k in ks]
        return mix_branches(ks)


@layer
class Identity:
    """``y = x``; the kernel passes through unchanged."""

    def init(self, key, input_shape):
        return input_shape, ()

    def apply(self, params, x):
        return x

    def kernel(self, k: Kernel):
        return k
