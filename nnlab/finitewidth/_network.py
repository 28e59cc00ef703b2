"""Reading a finite-width network: ``serial(Dense, σ, Dense, σ, ..., Dense)`` from nnlab.layers.

The single-input theory and the Monte Carlo both take one :mod:`nnlab.layers` network,
e.g. ``nnlab.parameterization.mlp(width, depth - 1, width, 'tanh', W_std, b_std,
'standard')``: ``L`` :class:`~nnlab.layers.Dense` layers (preactivations ``z^{(1..L)}``)
with the same elementwise activation between them. In the 'standard' and 'ntk'
parameterizations a Dense layer acting on one input ``h`` of dimension ``n_in`` gives
independent ``z_i ~ N(0, b_std² + W_std² |h|²/n_in)`` at initialisation, i.e. the book's
``C_W = W_std²``, ``C_b = b_std²`` (Roberts, Yaida & Hanin 2021, arXiv:2106.10165).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import _checks
from nnlab import layers as nl

from ._activation import activation_fn

_FORM = (
    "serial(Dense(n, W_std, b_std), σ, Dense(n, W_std, b_std), σ, ..., Dense(n, W_std, b_std)) "
    "with one elementwise activation σ (e.g. nnlab.parameterization.mlp(n, L - 1, n, 'tanh', "
    "W_std, b_std, 'standard'))"
)


class MLPLayers(NamedTuple):
    """The parts of an MLP network: its Dense layers and the activation layer between them."""

    dense: tuple
    activation: object

    @property
    def depth(self) -> int:
        return len(self.dense)


def read_mlp(network, argname: str = "network") -> MLPLayers:
    """Split ``network`` into its Dense layers and its one activation (module docstring).

    Raises:
      TypeError: if ``network`` is not an ``nnlab.layers`` serial network of that form.
      ValueError: if a Dense layer is in the 'mup' or 'meanfield' parameterization (their
        initial scales depend on the width differently), or the activations differ.
    """
    if not isinstance(network, nl.Serial):
        raise TypeError(f"{argname} must be an nnlab.layers network {_FORM}, got {network!r}.")
    layers = tuple(network.layers)
    dense, acts = layers[0::2], layers[1::2]
    if not layers or len(layers) % 2 == 0 or not all(isinstance(d, nl.Dense) for d in dense):
        raise TypeError(
            f"{argname} must alternate Dense layers and an activation, starting and ending "
            f"with Dense: {_FORM}; got layers {[type(lyr).__name__ for lyr in layers]}."
        )
    for d in dense:
        if d.parameterization not in ("standard", "ntk"):
            raise ValueError(
                f"{argname}: Dense parameterization must be 'standard' or 'ntk' (the theory's "
                f"N(0, W_std²/fan_in) weights), got {d.parameterization!r}."
            )
    for act in acts:
        activation_fn(act, f"{argname}: activation layer")
        if not _same_layer(act, acts[0]):
            raise ValueError(
                f"{argname}: every activation must be the same layer, got {acts[0]!r} and "
                f"{act!r}; the single-input theory has one σ."
            )
    return MLPLayers(dense, acts[0] if acts else None)


def _same_layer(a, b) -> bool:
    if a is b:
        return True
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    if ta != tb:
        return False
    if _checks.is_traced((la, lb)):
        return True  # traced hyperparameters cannot be compared; trust the caller
    return all(np.array_equal(np.asarray(u), np.asarray(v)) for u, v in zip(la, lb))


def variances(dense) -> tuple[jax.Array, jax.Array]:
    """``(C_W, C_b) = (W_std², b_std²)`` of a Dense layer (``b_std=None``: ``C_b = 0``)."""
    b_std = 0.0 if dense.b_std is None else dense.b_std
    return jnp.square(jnp.asarray(dense.W_std)), jnp.square(jnp.asarray(b_std))


def single_input(x, argname: str = "x") -> jax.Array:
    """``x`` as one finite floating input of shape ``(n_0,)``."""
    x = jnp.asarray(x)
    if x.ndim != 1 or x.shape[0] < 1:
        raise ValueError(f"{argname} must be one input of shape (n_0,), got shape {x.shape}.")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    if not _checks.is_traced(x) and not _checks.all_finite(x):
        raise ValueError(f"{argname} contains NaN or inf; pass a finite input.")
    return x
