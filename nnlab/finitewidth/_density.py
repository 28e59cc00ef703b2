"""The output density of a finite network: the Edgeworth 1/n term and its histogram.

For one input the single-output density of a finite network, to first order in the fourth
cumulant ``κ_4``, is the NNGP Gaussian times ``1 + κ_4/(24K²) He_4(f/√K)`` (Antognini 2019,
"Finite size corrections for neural network Gaussian processes", arXiv:1908.10030;
Roberts, Yaida & Hanin 2021, arXiv:2106.10165, ch. 4). :func:`output_density_bins` gives
its bin averages in closed form and :func:`output_histogram` the per-batch histograms of
Monte Carlo outputs that estimate them, both as :class:`nnlab.Record` s over the axis ``'f'``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.stats import norm

from nnlab import _checks
from nnlab.record import Record

from ._activation import as_float, as_float_signed
from ._gaussian import he4
from ._monte_carlo import _batched, sample_preactivations
from ._network import read_mlp
from ._vertex import finite_width_theory


def output_density(f, k, fourth_cumulant) -> jax.Array:
    """Single-output density of a finite network to first order in ``κ_4`` (Antognini 2019).

    ``p(f) = N(f; 0, K) [1 + κ_4/(24 K²) He_4(f/√K)]`` — the NNGP Gaussian plus
    the leading finite-width correction (Antognini 2019, "Finite size corrections
    for neural network Gaussian processes", arXiv:1908.10030; Edgeworth series).
    For a one-hidden-layer network ``K = K^{(2)}``, ``κ_4 = 3V^{(2)}/n`` with
    ``V^{(2)} = C_W² (⟨σ⁴⟩ - ⟨σ²⟩²)_{K^{(1)}}``, exact in ``n``; the ``O(1/n²)``
    remainder comes from the sixth and higher cumulants.

    Example:
      >>> round(float(output_density(0.0, 1.0, 0.0)), 6)
      0.398942

    Raises:
      ValueError: for ``k <= 0`` (the NNGP variance) or NaN/inf in ``f``, ``k`` or
        ``fourth_cumulant``.
    """
    f = as_float_signed(f, "f")
    k = as_float(k, "k", positive=True)
    fourth_cumulant = as_float_signed(fourth_cumulant, "fourth_cumulant")
    x = f / jnp.sqrt(k)
    gauss = jnp.exp(-0.5 * x * x) / jnp.sqrt(2.0 * jnp.pi * k)
    return gauss * (1.0 + fourth_cumulant / (24.0 * k**2) * he4(x))


def output_density_bins(edges, k, fourth_cumulant) -> Record:
    r"""Bin averages of :func:`output_density` and of the NNGP Gaussian, in closed form.

    With ``x = f/√K`` and ``∫ He_4(x) φ(x) dx = -He_3(x) φ(x)`` (``He_3 = x³ - 3x``), bin
    ``[a, b]`` holds ``[Φ(x) - κ_4/(24K²) He_3(x) φ(x)]_{a/√K}^{b/√K}`` of probability; the
    averages are that over ``b - a``, the quantity a histogram estimates.

    Args:
      edges: increasing bin edges, 1-D (at least 2).
      k, fourth_cumulant: as in :func:`output_density`.

    Returns:
      A :class:`nnlab.Record` with ``density`` and ``nngp`` over ``('f',)`` (coordinates:
      the bin centres).

    Example:
      >>> rec = output_density_bins([-1.0, 0.0, 1.0], 1.0, 0.0)
      >>> [round(v, 4) for v in rec.density.tolist()]   # Φ(1) - Φ(0)
      [0.3413, 0.3413]
    """
    edges = as_float_signed(edges, "edges")
    k = as_float(k, "k", positive=True)
    c = as_float_signed(fourth_cumulant, "fourth_cumulant") / (24.0 * k**2)
    if edges.ndim != 1 or edges.shape[0] < 2:
        raise ValueError(f"edges must be 1-D with at least 2 values, got shape {edges.shape}.")
    if not _checks.is_traced(edges) and not bool(np.all(np.diff(np.asarray(edges)) > 0)):
        raise ValueError(f"edges must be increasing, got {np.asarray(edges).tolist()}.")
    density, nngp = _bin_averages(edges, k, c)
    return Record(
        {"density": ("f", density), "nngp": ("f", nngp)}, {"f": 0.5 * (edges[1:] + edges[:-1])}
    )


@jax.jit
def _bin_averages(edges, k, c):
    x = edges / jnp.sqrt(k)
    gauss = norm.cdf(x)
    corrected = gauss - c * (x**3 - 3.0 * x) * norm.pdf(x)
    width = jnp.diff(edges)
    return jnp.diff(corrected) / width, jnp.diff(gauss) / width


def output_histogram(samples, edges, n_batches: int = 32) -> Record:
    """Per-batch histogram densities of network outputs ``samples`` (leading axis = network).

    Each batch of networks pools its samples; ``density = count / (N · bin width)`` with
    ``N`` the batch's number of samples (those outside ``edges`` included), an unbiased
    estimate of the bin average of the density (compare with
    :func:`output_density_bins`). Returns a :class:`nnlab.Record` with ``density`` over
    ``('seed', 'f')``, one row per batch (coordinates ``f``: the bin centres).
    """
    edges = jnp.asarray(edges)
    if edges.ndim != 1 or edges.shape[0] < 2:
        raise ValueError(f"edges must be 1-D with at least 2 values, got shape {edges.shape}.")
    batches = _batched(samples, n_batches, "samples")
    density = _histogram(batches.reshape(batches.shape[0], -1), edges)
    return Record({"density": (("seed", "f"), density)}, {"f": 0.5 * (edges[1:] + edges[:-1])})


@jax.jit
def _histogram(flat, edges):
    # numpy's bins: [e_j, e_{j+1}), the last one closed; counts as differences of "below e_j"
    below = jnp.sum(flat[..., None] < edges[None, None], axis=1)
    below = below.at[:, -1].set(jnp.sum(flat <= edges[-1], axis=1))
    return jnp.diff(below, axis=1) / (flat.shape[1] * jnp.diff(edges))[None]


def density_correction(
    key,
    network,
    x,
    *,
    n_networks: int,
    n_bins: int = 24,
    span: float = 3.0,
    n_batches: int = 32,
    chunk_size: int | None = None,
    method: str = "dense",
) -> tuple[Record, Record]:
    """The finite-width correction to the output density: Edgeworth theory and Monte Carlo.

    The theory is :func:`output_density_bins` at the output layer of
    :func:`finite_width_theory` (``K = K^{(L)}``, ``κ_4 = 3V^{(L)}/n`` with ``n`` the first
    layer's width), the simulation :func:`output_histogram` of the outputs of
    :func:`sample_preactivations`; both have the NNGP Gaussian's bin averages subtracted,
    leaving the ``κ_4/(24K²) He_4`` term (Antognini 2019, arXiv:1908.10030). The bins are
    ``n_bins`` equal ones on ``[-span √K, span √K]``. The Gaussian part uses ``K``, not
    ``E[z²] = K + G^{1}/n``: exact at ``O(1/n)`` where ``G^{1(L)} = 0`` (one hidden
    layer, or ReLU-like activations at ``C_b = 0``).

    Args:
      key: PRNG key of the Monte Carlo.
      network, x: as in :func:`finite_width_theory` and :func:`sample_preactivations`.
      n_networks, chunk_size, method: as in :func:`sample_preactivations`.
      n_bins, span: the bins.
      n_batches: batch-means batches of the histogram (the ``'seed'`` axis).

    Returns:
      ``(theory, simulation)``: records with ``density`` over ``('f',)`` and ``('seed',
      'f')`` that :meth:`nnlab.evaluate.Comparison.from_records` lines up.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from nnlab.parameterization import mlp
      >>> net = mlp(16, 1, 16, "relu", 2**0.5, 0.0, "standard")   # one hidden layer
      >>> th, mc = density_correction(jax.random.key(0), net, jnp.ones(4), n_networks=256,
      ...                             n_bins=6, n_batches=8)
      >>> th.density.shape, mc.density.shape
      ((6,), (8, 6))
    """
    width = read_mlp(network).dense[0].out
    _checks.integer(n_bins, "n_bins", minimum=1)
    _checks.real(span, "span", positive=True)
    th = finite_width_theory(network, x)
    edges = np.linspace(-span, span, n_bins + 1) * np.sqrt(th.kernel[-1])
    theory = output_density_bins(edges, th.kernel[-1], th.fourth_cumulant(width)[-1])
    moments = sample_preactivations(
        key, network, x, n_networks=n_networks, chunk_size=chunk_size, method=method
    )
    sim = output_histogram(moments.last, edges, n_batches)
    return (
        theory.replace(density=theory.density - theory.nngp),
        sim.replace(density=sim.density - theory.nngp[None]),
    )
