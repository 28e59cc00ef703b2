"""Monte Carlo over ensembles of finite networks: preactivation moments and their errors.

Many independent networks ``z^{(1)} = b + W x``, ``z^{(ℓ+1)} = b + W σ(z^{(ℓ)})``
(``W_ij ~ N(0, C_W/fan_in)``, ``b_i ~ N(0, C_b)``, all hidden widths ``n``) are
drawn at one input ``x``, ``vmap``-ed within chunks and ``lax.map``-ped over
chunks so memory stays bounded. Two samplers draw the same joint law of the
preactivations:

* ``'dense'`` draws every weight matrix (``O(L n²)`` per network);
* ``'projected'`` uses that, for one input, ``W v ~ N(0, (C_W/fan_in)|v|² I)``
  for a Gaussian ``W`` independent of ``v``, so ``z^{(ℓ+1)} = b + √(C_W/n)|σ(z^{(ℓ)})| g``
  with ``g ~ N(0, I_n)`` — the same distribution at ``O(L n)`` cost.

Each network is summarised by its neuron averages ``m_p^{(ℓ)} = (1/n) Σ_i (z_i^{(ℓ)})^p``
(``p = 2, 4``). Networks are independent, neurons within one are not (their
dependence *is* the 1/n effect), so errors are estimated from independent
*batches of networks* (batch means): the networks are split into ``B`` equal
batches, the estimator is computed on each, and the standard error is
``std_b / √B``.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import _checks

from ._activation import activation_fn, as_float, check_positive_int

Sampler = Literal["dense", "projected"]


class PreactivationMoments(NamedTuple):
    """Per-network neuron averages (leading axis = network, then layer ℓ = 1..L).

    Attributes:
      m2, m4: ``(1/n) Σ_i z_i²`` and ``(1/n) Σ_i z_i⁴``, shape ``(n_networks, depth)``.
      last: the last layer's preactivations, shape ``(n_networks, width)``.
    """

    m2: jax.Array
    m4: jax.Array
    last: jax.Array


def sample_preactivations(
    key,
    activation,
    x,
    depth: int,
    width: int,
    c_w,
    c_b,
    *,
    n_networks: int,
    chunk_size: int | None = None,
    method: Sampler = "dense",
) -> PreactivationMoments:
    """Draw ``n_networks`` independent networks and record their preactivation moments.

    Args:
      key: PRNG key.
      activation: elementwise function or nnlab activation layer.
      x: one input, shape ``(n_0,)``; the infinite-width first layer has
        ``K^{(1)} = C_b + C_W |x|²/n_0``.
      depth: number of preactivation layers ``L``.
      width: hidden width ``n`` (every layer, including the last).
      c_w, c_b: weight and bias variances (scalars; may be traced).
      n_networks: ensemble size.
      chunk_size: networks per ``vmap`` chunk; default keeps a chunk's weights
        under ~64 MB (``'dense'``) or 16 MB of preactivations (``'projected'``).
      method: ``'dense'`` or ``'projected'`` (module docstring).

    Returns:
      A :class:`PreactivationMoments`.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> mom = sample_preactivations(jax.random.key(0), jnp.tanh, jnp.ones(3), 2, 8, 1.0, 0.0,
      ...                             n_networks=16)
      >>> mom.m2.shape, mom.last.shape
      ((16, 2), (16, 8))
    """
    key = _checks.prng_key(key, "key")
    fn = activation_fn(activation)
    depth = check_positive_int(depth, "depth")
    width = check_positive_int(width, "width")
    n_networks = check_positive_int(n_networks, "n_networks")
    if method not in ("dense", "projected"):
        raise ValueError(f"method must be 'dense' or 'projected', got {method!r}.")
    x = jnp.asarray(x)
    if x.ndim != 1 or x.shape[0] < 1:
        raise ValueError(f"x must be one input of shape (n_0,), got shape {x.shape}.")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    if not _checks.is_traced(x) and not bool(np.all(np.isfinite(np.asarray(x)))):
        raise ValueError("x contains NaN or inf; pass a finite input.")
    for name, value in (("c_w", c_w), ("c_b", c_b)):
        if jnp.ndim(value) != 0:
            raise ValueError(f"{name} must be a scalar, got shape {jnp.shape(value)}.")
        as_float(value, name)
    if chunk_size is None:
        per_net = width * max(width, x.shape[0]) if method == "dense" else width * 16
        chunk_size = max(1, min(n_networks, (1 << 24) // per_net))
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    n0 = x.shape[0]
    dtype = x.dtype

    def layer(k, h, fan_in):
        kw, kb = jax.random.split(k)
        b = jnp.sqrt(c_b) * jax.random.normal(kb, (width,), dtype)
        if method == "dense":
            w = jax.random.normal(kw, (width, fan_in), dtype)
            return b + jnp.sqrt(c_w / fan_in) * (w @ h)
        g = jax.random.normal(kw, (width,), dtype)
        return b + jnp.sqrt(c_w / fan_in) * jnp.linalg.norm(h) * g

    def moments(z):
        z2 = z * z
        return jnp.mean(z2), jnp.mean(z2 * z2)

    def one_network(k):
        z1 = layer(jax.random.fold_in(k, 0), x, n0)

        def step(z, ell):  # a scan over layers compiles the layer body once
            z_next = layer(jax.random.fold_in(k, ell), fn(z), width)
            return z_next, moments(z_next)

        z_last, (m2, m4) = jax.lax.scan(step, z1, jnp.arange(1, depth))
        first = moments(z1)
        m2 = jnp.concatenate([first[0][None], m2])
        m4 = jnp.concatenate([first[1][None], m4])
        return m2, m4, z_last

    keys = jax.random.split(key, n_networks)
    m2, m4, last = jax.lax.map(one_network, keys, batch_size=chunk_size)
    return PreactivationMoments(m2, m4, last)


class MonteCarloEstimate(NamedTuple):
    """A batch-means estimate: ``mean`` over batches, its ``se``, and the per-``batches`` values."""

    mean: jax.Array
    se: jax.Array
    batches: jax.Array


def _batched(a, n_batches: int, argname: str):
    n_batches = check_positive_int(n_batches, "n_batches", minimum=2)
    try:
        a = jnp.asarray(a)
    except TypeError as err:
        raise TypeError(f"{argname} must be an array, got {type(a).__name__}.") from err
    if a.ndim < 1:
        raise ValueError(f"{argname} must have a leading network axis, got shape {a.shape}.")
    if not jnp.issubdtype(a.dtype, jnp.floating):
        a = a.astype(jnp.result_type(float))
    if not _checks.is_traced(a) and not bool(np.all(np.isfinite(np.asarray(a)))):
        raise ValueError(f"{argname} contains NaN or inf; drop the diverged networks first.")
    n = a.shape[0]
    if n < 2 * n_batches:
        raise ValueError(
            f"{argname} has {n} networks, fewer than 2 per batch for n_batches={n_batches}; "
            "use fewer batches or more networks."
        )
    per = n // n_batches
    return a[: per * n_batches].reshape(n_batches, per, *a.shape[1:])


def _summary(batches) -> MonteCarloEstimate:
    b = batches.shape[0]
    return MonteCarloEstimate(
        jnp.mean(batches, axis=0), jnp.std(batches, axis=0, ddof=1) / jnp.sqrt(b), batches
    )


def second_moment_estimate(m2, n_batches: int = 32) -> MonteCarloEstimate:
    """``E[z²]`` from per-network neuron averages ``m2`` (leading axis = network), batch means."""
    return _summary(jnp.mean(_batched(m2, n_batches, "m2"), axis=1))


def fourth_cumulant_estimate(m2, m4, n_batches: int = 32) -> MonteCarloEstimate:
    """``κ_4 = E[z⁴] - 3E[z²]²`` from per-network averages, unbiased within each batch.

    In a batch of ``N_b`` networks, ``mean(m4) - 3[mean(m2)² - s²/N_b]`` with
    ``s²`` the sample variance of ``m2`` over the batch is unbiased (``mean(m2)²``
    alone overestimates ``E[z²]²`` by ``Var(m2)/N_b``). The returned ``se`` is
    the batch-means standard error.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> z = jax.random.normal(jax.random.key(0), (4096, 1))   # Gaussian: κ_4 = 0
      >>> est = fourth_cumulant_estimate(z**2, z**4, n_batches=16)
      >>> bool(abs(est.mean[0]) < 4 * est.se[0])
      True
    """
    if jnp.shape(m2) != jnp.shape(m4):
        raise ValueError(
            f"m4 must have the shape of m2, {jnp.shape(m2)} (networks, layers), got "
            f"{jnp.shape(m4)}."
        )
    m2b = _batched(m2, n_batches, "m2")
    m4b = _batched(m4, n_batches, "m4")
    per = m2b.shape[1]
    mean2 = jnp.mean(m2b, axis=1)
    square = mean2**2 - jnp.var(m2b, axis=1, ddof=1) / per
    return _summary(jnp.mean(m4b, axis=1) - 3.0 * square)
