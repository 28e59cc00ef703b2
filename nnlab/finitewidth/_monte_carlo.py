"""Monte Carlo over ensembles of finite networks: preactivation moments and their errors.

Many independent draws of one ``nnlab.layers`` network ``serial(Dense, σ, ..., Dense)``
(see :mod:`._network`; ``C_W = W_std²``, ``C_b = b_std²``) are taken at one input ``x``:
``net.init`` is ``vmap``-ed over keys within chunks and ``lax.map``-ped over chunks so
memory stays bounded. Two samplers draw the same joint law of the preactivations:

* ``'dense'`` initialises every weight matrix with ``net.init`` and applies the layers
  (``O(L n²)`` per network);
* ``'projected'`` uses that, for one input, a Dense layer's output given its input ``h``
  is ``N(0, (b_std² + W_std² |h|²/n_in) I)`` at initialisation (``W h`` is rotation
  invariant), so it draws ``z^{(ℓ+1)} = (C_b + C_W |σ(z^{(ℓ)})|²/n)^{1/2} g`` with
  ``g ~ N(0, I_n)``: the same distribution at ``O(L n)`` cost.

Each network is summarised by its neuron averages ``m_p^{(ℓ)} = (1/n) Σ_i (z_i^{(ℓ)})^p``
(``p = 2, 4``). Networks are independent, neurons within one are not (their
dependence *is* the 1/n effect), so errors are estimated from independent
*batches of networks* (batch means): the networks are split into ``B`` equal
batches, the estimator is computed on each, and the standard error is
``std_b / √B``. :func:`moment_batches` keeps the per-batch values along the axis
``'seed'``, so :meth:`nnlab.evaluate.Comparison.from_records` takes exactly this
batch-means standard error.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import _checks
from nnlab import layers as nl
from nnlab.empirical import MonteCarloEstimate
from nnlab.record import Record, stack

from ._activation import activation_fn, check_positive_int
from ._network import read_mlp, single_input, variances

Sampler = Literal["dense", "projected"]


class PreactivationMoments(Record):
    """Per-network neuron averages of an ensemble of networks at one input.

    Variables:
      m2, m4: ``(1/n) Σ_i z_i²`` and ``(1/n) Σ_i z_i⁴``, dims ``('network', 'layer')``
        (layer coordinates ``ℓ = 1..L``).
      last: the last layer's preactivations, dims ``('network', 'neuron')``.
    """


class BatchMoments(Record):
    """Batch-means estimates of ``E[z²]`` and ``κ_4 = E[z⁴] - 3E[z²]²`` per layer.

    Variables ``second_moment`` and ``fourth_cumulant`` with dims ``(..., 'seed', 'layer')``:
    one value per independent *batch of networks* along ``'seed'`` (``meta['seed']`` says
    so), so the mean and standard error over ``'seed'`` are the batch-means estimate.
    """

    def estimate(self, name: str) -> MonteCarloEstimate:
        """Mean and standard error over the batches of variable ``name``."""
        values = self[name]
        axis = self.dims_of(name).index("seed")
        b = values.shape[axis]
        se = jnp.std(values, axis=axis, ddof=1) / jnp.sqrt(b)
        return MonteCarloEstimate(jnp.mean(values, axis=axis), se)


def sample_preactivations(
    key,
    network,
    x,
    *,
    n_networks: int,
    chunk_size: int | None = None,
    method: Sampler = "dense",
) -> PreactivationMoments:
    """Draw ``n_networks`` independent initialisations of ``network`` and record their moments.

    Args:
      key: PRNG key.
      network: ``serial(Dense(n, W_std, b_std), σ, ..., Dense(n, W_std, b_std))`` from
        ``nnlab.layers`` in the 'standard' or 'ntk' parameterization (for instance
        ``nnlab.parameterization.mlp(n, L - 1, n, 'tanh', W_std, b_std, 'standard')``);
        its ``W_std``/``b_std`` may be traced (a new value does not recompile).
      x: one input, shape ``(n_0,)``; the infinite-width first layer has
        ``K^{(1)} = b_std² + W_std² |x|²/n_0``.
      n_networks: ensemble size.
      chunk_size: networks per ``vmap`` chunk; default keeps a chunk's weights under
        ~64 MB (``'dense'``) or 16 MB of preactivations (``'projected'``).
      method: ``'dense'`` or ``'projected'`` (module docstring).

    Returns:
      A :class:`PreactivationMoments`.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from nnlab import layers as nl
      >>> net = nl.serial(nl.Dense(8, 1.0, 0.0, "standard"), nl.Tanh(),
      ...                 nl.Dense(8, 1.0, 0.0, "standard"))
      >>> mom = sample_preactivations(jax.random.key(0), net, jnp.ones(3), n_networks=16)
      >>> mom.dims_of("m2"), mom.m2.shape, mom.last.shape
      (('network', 'layer'), (16, 2), (16, 8))
    """
    key = _checks.prng_key(key, "key")
    parts = read_mlp(network)
    x = single_input(x)
    n_networks = check_positive_int(n_networks, "n_networks")
    _checks.choice(method, "method", ("dense", "projected"))
    if chunk_size is None:
        sizes = [x.shape[0]] + [d.out for d in parts.dense]
        if method == "dense":
            per_net = sum(a * b for a, b in itertools.pairwise(sizes))
        else:
            per_net = 16 * max(sizes)
        chunk_size = max(1, min(n_networks, (1 << 24) // per_net))
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    return _sample(key, network, x, n_networks, chunk_size, method)


@functools.partial(jax.jit, static_argnums=(3, 4, 5))
def _sample(key, network, x, n_networks, chunk_size, method):
    parts = read_mlp(network)

    def moments(z):
        z2 = z * z
        return jnp.mean(z2), jnp.mean(z2 * z2)

    def dense(k):
        _, params = network.init(k, (1, x.shape[0]))
        h, out = x[None], []
        for lyr, p in zip(network.layers, params, strict=True):
            h = lyr.apply(p, h)
            if isinstance(lyr, nl.Dense):
                out.append(moments(h))
        return out, h[0]

    def projected(k):
        fn = activation_fn(parts.activation) if parts.activation is not None else None
        h, out = x, []
        for i, lyr in enumerate(parts.dense):
            c_w, c_b = variances(lyr)
            std = jnp.sqrt(c_b + c_w * jnp.sum(h * h) / h.shape[0])
            z = std * jax.random.normal(jax.random.fold_in(k, i), (lyr.out,), x.dtype)
            out.append(moments(z))
            h = fn(z) if fn is not None else z
        return out, z

    def one_network(k):
        out, last = dense(k) if method == "dense" else projected(k)
        m2, m4 = (jnp.stack(m) for m in zip(*out, strict=True))
        return m2, m4, last

    keys = jax.random.split(key, n_networks)
    m2, m4, last = jax.lax.map(one_network, keys, batch_size=chunk_size)
    return PreactivationMoments(
        {
            "m2": (("network", "layer"), m2),
            "m4": (("network", "layer"), m4),
            "last": (("network", "neuron"), last),
        },
        {"layer": np.arange(1, parts.depth + 1)},
    )


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
    if not _checks.is_traced(a) and not _checks.all_finite(a):
        raise ValueError(f"{argname} contains NaN or inf; drop the diverged networks first.")
    n = a.shape[0]
    if n < 2 * n_batches:
        raise ValueError(
            f"{argname} has {n} networks, fewer than 2 per batch for n_batches={n_batches}; "
            "use fewer batches or more networks."
        )
    per = n // n_batches
    return a[: per * n_batches].reshape(n_batches, per, *a.shape[1:])


@jax.jit
def _second_moment_batches(m2b):
    return jnp.mean(m2b, axis=1)


@jax.jit
def _fourth_cumulant_batches(m2b, m4b):
    # mean(m2)² overestimates E[z²]² by Var(m2)/N_b; subtracting s²/N_b makes it unbiased.
    square = jnp.mean(m2b, axis=1) ** 2 - jnp.var(m2b, axis=1, ddof=1) / m2b.shape[1]
    return jnp.mean(m4b, axis=1) - 3.0 * square


@jax.jit
def _summary(batches) -> MonteCarloEstimate:
    b = batches.shape[0]
    return MonteCarloEstimate(
        jnp.mean(batches, axis=0), jnp.std(batches, axis=0, ddof=1) / jnp.sqrt(b)
    )


def _check_same_shape(m2, m4):
    if jnp.shape(m2) != jnp.shape(m4):
        raise ValueError(
            f"m4 must have the shape of m2, {jnp.shape(m2)} (networks, layers), got "
            f"{jnp.shape(m4)}."
        )


def second_moment_estimate(m2, n_batches: int = 32) -> MonteCarloEstimate:
    """``E[z²]`` from per-network neuron averages ``m2`` (leading axis = network), batch means.

    Returns an :class:`nnlab.empirical.MonteCarloEstimate` ``(mean, standard_error)``.
    """
    return _summary(_second_moment_batches(_batched(m2, n_batches, "m2")))


def fourth_cumulant_estimate(m2, m4, n_batches: int = 32) -> MonteCarloEstimate:
    """``κ_4 = E[z⁴] - 3E[z²]²`` from per-network averages, unbiased within each batch.

    In a batch of ``N_b`` networks, ``mean(m4) - 3[mean(m2)² - s²/N_b]`` with
    ``s²`` the sample variance of ``m2`` over the batch is unbiased (``mean(m2)²``
    alone overestimates ``E[z²]²`` by ``Var(m2)/N_b``). The returned
    :class:`nnlab.empirical.MonteCarloEstimate` has the batch-means standard error.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> z = jax.random.normal(jax.random.key(0), (4096, 1))   # Gaussian: κ_4 = 0
      >>> est = fourth_cumulant_estimate(z**2, z**4, n_batches=16)
      >>> bool(abs(est.mean[0]) < 4 * est.standard_error[0])
      True
    """
    _check_same_shape(m2, m4)
    m2b, m4b = _batched(m2, n_batches, "m2"), _batched(m4, n_batches, "m4")
    return _summary(_fourth_cumulant_batches(m2b, m4b))


def moment_batches(moments: PreactivationMoments, n_batches: int = 32) -> BatchMoments:
    """Per-batch ``E[z²]`` and unbiased ``κ_4`` of :func:`sample_preactivations` output.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from nnlab.parameterization import mlp
      >>> net = mlp(8, 1, 8, "relu", 2**0.5, 0.0, "standard")   # 2 Dense layers of width 8
      >>> mom = sample_preactivations(jax.random.key(0), net, jnp.ones(3), n_networks=64)
      >>> moment_batches(mom, n_batches=8).dims_of("fourth_cumulant")
      ('seed', 'layer')
    """
    if not isinstance(moments, Record) or "m2" not in moments or "m4" not in moments:
        raise TypeError(
            "moments must be the PreactivationMoments of sample_preactivations, got "
            f"{type(moments).__name__}."
        )
    m2b = _batched(moments.m2, n_batches, "m2")
    m4b = _batched(moments.m4, n_batches, "m4")
    dims = ("seed", "layer")
    return BatchMoments(
        {
            "second_moment": (dims, _second_moment_batches(m2b)),
            "fourth_cumulant": (dims, _fourth_cumulant_batches(m2b, m4b)),
        },
        {"layer": moments.coord("layer")},
        {"seed": f"independent batch of {m2b.shape[1]} networks"},
    )


def sweep_moments(
    key,
    make_network: Callable,
    values: Sequence,
    axis: str,
    x,
    *,
    n_networks: int,
    n_batches: int = 32,
    chunk_size: int | None = None,
    method: Sampler = "dense",
) -> BatchMoments:
    """:func:`moment_batches` of ``make_network(v)`` for each ``v`` in ``values``, along ``axis``.

    Draw ``i`` uses ``jax.random.fold_in(key, i)``; one compile per network shape (a new
    ``W_std`` reuses it). Returns a :class:`BatchMoments` with dims ``(axis, 'seed', 'layer')``
    and ``values`` as the coordinates of ``axis`` (e.g. ``'width'`` or ``'W_std'``).
    """
    key = _checks.prng_key(key, "key")
    _checks.function(make_network, "make_network", "make_network(value) -> network")
    if not isinstance(axis, str) or not axis:
        raise TypeError(f"axis must be an axis name such as 'width', got {axis!r}.")
    values = list(values)
    if not values:
        raise ValueError("values must hold at least one value to sweep over, got none.")
    recs = [
        moment_batches(
            sample_preactivations(
                jax.random.fold_in(key, i),
                make_network(v),
                x,
                n_networks=n_networks,
                chunk_size=chunk_size,
                method=method,
            ),
            n_batches,
        )
        for i, v in enumerate(values)
    ]
    rec = stack(recs, axis, np.asarray(values))
    return BatchMoments({n: (rec.dims_of(n), rec[n]) for n in rec.names}, rec.coords, rec.meta)
