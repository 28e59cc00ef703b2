"""The ``Kernel`` pytree: infinite-width covariances carried through a network.

A ``Kernel`` describes a layer's outputs at infinite width for a batch ``x1`` of
``N1`` inputs against a batch ``x2`` of ``N2`` inputs, averaged over channels
(the per-channel kernel, which is the same for every channel in the limit):

* ``nngp``: the cross covariance E[z(x1) z(x2)] (Neal 1996; Lee et al. 2018;
  Matthews et al. 2018),
* ``ntk``: the neural tangent kernel Σ_θ ∂z(x1)/∂θ · ∂z(x2)/∂θ (Jacot et al. 2018),
* ``cov1``/``cov2``: the covariance of each batch with itself, kept only on the
  batch diagonal (what activations need for the marginal variances).

Shapes, for inputs with ``d`` spatial dimensions ``S = (S_1, ..., S_d)``:

=================  ========================  ======================
layout             ``nngp``/``ntk``          ``cov1``
=================  ========================  ======================
vectors (d = 0)    (N1, N2)                  (N1,)
diagonal spatial   (N1, N2, S_1, ..., S_d)   (N1, S_1, ..., S_d)
full spatial       (N1, N2, S_1, S_1, ...)   (N1, S_1, S_1, ...)
=================  ========================  ======================

The full layout keeps the covariance between every pair of positions (needed by
pooling); the diagonal layout keeps only equal positions (enough for
``Flatten`` readouts and much cheaper).

Channels of several kinds (``branches``). After ``FanInConcat`` a layer's
channels are no longer exchangeable: channel block ``i`` (``C_i`` channels) is
Gaussian with its own covariance ``K_i``. An affine layer sums over channels
with independent weights, so it only sees the channel mean ``Σ_i (C_i/C) K_i``
(what ``nngp``/``ntk``/``cov1``/``cov2`` hold), but an elementwise nonlinearity
``φ`` acts per channel, so the next affine layer sees ``Σ_i (C_i/C) T_φ(K_i)``,
not ``T_φ(Σ_i (C_i/C) K_i)``. Such a kernel therefore also carries
``branches``: one Kernel per channel block, in channel order, whose ``channels``
are the block sizes. Layers that act per channel (activations, pooling,
``Flatten``) map every branch and re-mix (:func:`map_branches`); ``LayerNorm``
divides every branch by the variance of all channels; affine layers use the
mixture and return a kernel without branches.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from nnlab._pytree import register_dataclass

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class Kernel:
    """Infinite-width NNGP/NTK of a batch pair, plus layout metadata.

    Attributes:
      nngp: cross covariance of the layer outputs, see the module docstring.
      ntk: neural tangent kernel, same shape as ``nngp``; ``None`` when not requested.
      cov1: covariance of ``x1`` with itself (batch diagonal only).
      cov2: covariance of ``x2`` with itself (batch diagonal only).
      spatial_ndim: number of spatial dimensions ``d`` (0 for vectors). Static.
      diagonal_spatial: whether only equal-position covariances are kept. Static.
      channels: the layer's width at finite size (fan-in of the next affine
        layer, needed by the 'standard' parameterization). Static.
      is_gaussian: whether the outputs are zero-mean Gaussian in the limit (true
        right after an affine layer). Static.
      odd_in_branch: whether the outputs are odd in the parameters drawn since the last
        ``FanOut`` (flipping their sign flips the outputs): true right after an affine
        layer, kept by odd activations (Erf, Tanh, Sign, ...) and linear or odd maps
        (pooling, Flatten, LayerNorm), false after ``FanOut`` and other activations.
        Such a branch is uncorrelated with every other branch, in the NNGP and in the
        NTK, which is what lets ``FanInSum`` add kernels. Static.
      flattened: whether the features come from several spatial positions (after
        ``Flatten`` of a spatial kernel). Their kernel is the mean over positions of
        per-position kernels, which only an affine layer can consume: an elementwise
        nonlinearity would need each position's kernel. Static.
      branches: None when all channels are alike; otherwise a tuple of Kernels,
        one per block of consecutive channels of one kind (after ``FanInConcat``),
        whose ``channels`` are the block sizes and whose channel-weighted mean is
        this kernel's ``nngp``/``ntk``/``cov1``/``cov2`` (see the module
        docstring). A layer that is not affine must map every branch
        (:func:`map_branches`), never just the mixture.
    """

    nngp: Array
    ntk: Array | None
    cov1: Array
    cov2: Array
    spatial_ndim: int = dataclasses.field(default=0, metadata={"static": True})
    diagonal_spatial: bool = dataclasses.field(default=True, metadata={"static": True})
    channels: int = dataclasses.field(default=1, metadata={"static": True})
    is_gaussian: bool = dataclasses.field(default=False, metadata={"static": True})
    odd_in_branch: bool = dataclasses.field(default=False, metadata={"static": True})
    flattened: bool = dataclasses.field(default=False, metadata={"static": True})
    branches: tuple[Kernel, ...] | None = None

    def replace(self, **changes: Any) -> Kernel:
        """A copy with ``changes`` applied (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """The spatial shape ``(S_1, ..., S_d)``; ``()`` for vectors."""
        if self.diagonal_spatial:
            return tuple(self.cov1.shape[1:])
        return tuple(self.cov1.shape[1::2])

    def variances(self, which: int) -> Array:
        """Per-position variances of batch ``which`` (1 or 2): shape (N, *S)."""
        cov = self.cov1 if which == 1 else self.cov2
        if self.diagonal_spatial or self.spatial_ndim == 0:
            return cov
        for _ in range(self.spatial_ndim):
            cov = jnp.diagonal(cov, axis1=1, axis2=2)
        return cov

    def marginals(self) -> tuple[Array, Array]:
        """Variances of x1 and x2 broadcast against ``nngp`` (for elementwise maps)."""
        v1, v2 = self.variances(1), self.variances(2)
        d = self.spatial_ndim
        if self.diagonal_spatial or d == 0:
            return v1[:, None], v2[None, :]
        return (_interleave(v1, d, first=True)[:, None], _interleave(v2, d, first=False)[None, :])

    def self_marginals(self, which: int) -> tuple[Array, Array]:
        """Variances broadcast against ``cov1`` (which=1) or ``cov2`` (which=2)."""
        v = self.variances(which)
        d = self.spatial_ndim
        if self.diagonal_spatial or d == 0:
            return v, v
        return _interleave(v, d, first=True), _interleave(v, d, first=False)


def _interleave(v: Array, d: int, *, first: bool) -> Array:
    """Reshape (N, S_1..S_d) to (N, S_1, 1, S_2, 1, ...) or (N, 1, S_1, 1, S_2, ...)."""
    shape = [v.shape[0]]
    for s in v.shape[1:]:
        shape += [s, 1] if first else [1, s]
    return v.reshape(shape)


register_dataclass(Kernel)


def mix_branches(branches) -> Kernel:
    """The kernel of the channel-wise concatenation of ``branches`` (Kernels).

    Its ``nngp``/``ntk``/``cov1``/``cov2`` are the channel-weighted means
    ``Σ_i C_i K_i / Σ_i C_i`` (``C_i = branches[i].channels``) and it keeps the
    branches themselves (nested branches are spliced in, in channel order), so
    that per-channel nonlinearities can act on each. A single branch is returned
    as it is. ``ntk`` is None if any branch has none.
    """
    flat = []
    for b in branches:
        flat.extend(b.branches if b.branches is not None else [b])
    if len(flat) == 1:
        return flat[0]
    first = flat[0]
    for b in flat[1:]:
        if (b.spatial_ndim, b.diagonal_spatial) != (first.spatial_ndim, first.diagonal_spatial):
            raise ValueError(
                "branch kernels must share their spatial layout, got spatial_ndim/"
                f"diagonal_spatial {[(k.spatial_ndim, k.diagonal_spatial) for k in flat]}."
            )
    total = sum(b.channels for b in flat)
    weights = [b.channels / total for b in flat]

    def mix(field):
        vals = [getattr(b, field) for b in flat]
        if any(v is None for v in vals):
            return None
        return sum(w * v for w, v in zip(weights[1:], vals[1:])) + weights[0] * vals[0]

    cov1 = mix("cov1")
    same_cov = all(b.cov2 is b.cov1 for b in flat)
    return first.replace(
        nngp=mix("nngp"),
        ntk=mix("ntk"),
        cov1=cov1,
        cov2=cov1 if same_cov else mix("cov2"),
        channels=total,
        is_gaussian=all(b.is_gaussian for b in flat),
        odd_in_branch=all(b.odd_in_branch for b in flat),
        flattened=any(b.flattened for b in flat),
        branches=tuple(b.replace(branches=None) for b in flat),
    )


def map_branches(k: Kernel, fn) -> Kernel:
    """``fn`` (Kernel -> Kernel, a per-channel map) applied to each branch of ``k``, re-mixed.

    Without branches this is ``fn(k)``. Use it for every layer that acts on each
    channel alike but not linearly in the kernel (activations), and for linear
    per-channel maps that change the layout (pooling, ``Flatten``), so that the
    branches stay in step with the mixture.
    """
    if k.branches is None:
        return fn(k)
    return mix_branches([fn(b) for b in k.branches])


def input_kernel(
    x1: Array, x2: Array | None = None, *, compute_ntk: bool = True, diagonal_spatial: bool = True
) -> Kernel:
    """The kernel of raw inputs: channel-averaged inner products, zero NTK.

    For inputs of shape (N, *S, C) (channels last), ``nngp[n, m, s, s'] =
    Σ_c x1[n, s, c] x2[m, s', c] / C``.
    """
    x2_ = x1 if x2 is None else x2
    channels = x1.shape[-1]
    d = x1.ndim - 2
    # Spatial letters must avoid n, m (batch) and c (channels): d goes up to 3.
    letters = "pqr"[:d]
    primed = "PQR"[:d]
    if d == 0 or diagonal_spatial:
        s = letters
        nngp = jnp.einsum(f"n{s}c,m{s}c->nm{s}", x1, x2_) / channels
        cov1 = jnp.einsum(f"n{s}c,n{s}c->n{s}", x1, x1) / channels
        cov2 = jnp.einsum(f"n{s}c,n{s}c->n{s}", x2_, x2_) / channels
    else:
        pairs = "".join(a + b for a, b in zip(letters, primed))
        nngp = jnp.einsum(f"n{letters}c,m{primed}c->nm{pairs}", x1, x2_) / channels
        cov1 = jnp.einsum(f"n{letters}c,n{primed}c->n{pairs}", x1, x1) / channels
        cov2 = jnp.einsum(f"n{letters}c,n{primed}c->n{pairs}", x2_, x2_) / channels
    if x2 is None:
        cov2 = cov1
    ntk = jnp.zeros_like(nngp) if compute_ntk else None
    return Kernel(
        nngp=nngp,
        ntk=ntk,
        cov1=cov1,
        cov2=cov2,
        spatial_ndim=d,
        diagonal_spatial=diagonal_spatial or d == 0,
        channels=channels,
        is_gaussian=False,
    )
