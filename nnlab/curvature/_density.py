r"""Spectral density by stochastic Lanczos quadrature (SLQ)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import _checks
from nnlab.record import Record

from ._lanczos import _lanczos, check_num_iters, raise_if_not_symmetric
from ._operator import CurvatureOperator, check_operator
from ._trace import rademacher_probes


class Quadrature(NamedTuple):
    """Gauss quadrature per probe: ``nodes (n_v, m)`` (Ritz values), ``weights (n_v, m)``.

    For a probe ``v`` (unit norm) ``vᵀ g(M) v ≈ Σ_i weights_i g(nodes_i)``, exact for
    polynomials of degree ``< 2m``; each row of ``weights`` sums to 1.
    """

    nodes: jax.Array
    weights: jax.Array


class SpectralDensity(Record):
    """A smoothed spectral density on a grid of eigenvalues, as an :class:`nnlab.Record`.

    Variables:
      density: ``("eigenvalue",)``, a probability density in ``λ`` on the grid (the
        coordinates of ``"eigenvalue"``).
      nodes, weights: ``("probe", "node")``, the Gauss quadrature it was smoothed from.

    ``grid`` and ``quadrature`` give the coordinates and a :class:`Quadrature`. The Lanczos
    estimate (:func:`spectral_density`) and the dense reference
    (:func:`eigenvalue_density`) line up along ``"eigenvalue"`` in
    :meth:`nnlab.evaluate.Comparison.from_records`.
    """

    @classmethod
    def create(cls, grid, density, quadrature: Quadrature, sigma) -> SpectralDensity:
        return cls(
            {
                "density": (("eigenvalue",), density),
                "nodes": (("probe", "node"), quadrature.nodes),
                "weights": (("probe", "node"), quadrature.weights),
            },
            coords={"eigenvalue": grid},
            meta={"sigma": None if _checks.is_traced(sigma) else float(sigma)},
        )

    @property
    def grid(self) -> jax.Array:
        return self.coords["eigenvalue"]

    @property
    def quadrature(self) -> Quadrature:
        return Quadrature(self["nodes"], self["weights"])


def lanczos_quadrature(
    op: CurvatureOperator, key: jax.Array, *, num_iters: int = 80, num_probes: int = 10
) -> Quadrature:
    r"""Stochastic Lanczos quadrature nodes and weights (Lin, Saad & Yang 2016).

    For each Rademacher probe ``v = z/√P`` an ``m``-step Lanczos run (:func:`lanczos`, with
    full reorthogonalisation) gives ``T = S Θ Sᵀ``; the Gauss quadrature of the spectral
    measure ``Σ_j (vᵀu_j)² δ_{λ_j}`` has nodes ``θ_i`` and weights ``τ_i = S_{1i}²``. Since
    ``E[(vᵀu_j)²] = 1/P``, the average over probes estimates the spectral density
    ``φ(λ) = (1/P) Σ_j δ(λ − λ_j)`` (Ghorbani, Krishnan & Xiao 2019, arXiv:1901.10159).

    Args:
      op: the symmetric operator.
      key: PRNG key.
      num_iters: Lanczos steps per probe (``<= op.dim``).
      num_probes: number of probes.

    Returns:
      A :class:`Quadrature`.

    Raises:
      TypeError / ValueError: for a bad ``op``, ``key``, ``num_iters`` or ``num_probes``, and
        (outside ``jit``) a non-symmetric operator (the check of :func:`lanczos`).
    """
    check_operator(op)
    num_iters = check_num_iters(num_iters, op.dim)
    num_probes = _checks.integer(num_probes, "num_probes")
    key = _checks.prng_key(key, "key")
    probe_key, run_key = jax.random.split(key)
    probes = rademacher_probes(probe_key, num_probes, op.dim, op.dtype)
    keys = jax.random.split(run_key, num_probes)

    def one(args):
        z, k = args
        res, asym = _lanczos(op, k, num_iters, z)
        theta, s = jnp.linalg.eigh(res.tridiagonal())
        return theta, jnp.square(s[0]), asym

    nodes, weights, asym = jax.lax.map(one, (probes, keys))
    raise_if_not_symmetric(asym, "op", op.dtype)  # outside jit only, see lanczos
    return Quadrature(nodes, weights)


def gaussian_broadening(quadrature: Quadrature, grid: jax.Array, sigma: float) -> jax.Array:
    r"""``φ_σ(t) = (1/n_v) Σ_l Σ_i τ_i^l g_σ(t − θ_i^l)`` with ``g_σ`` the normal density.

    Integrates to 1 over the real line (the weights of each probe sum to 1); on a finite
    grid it integrates to 1 up to the Gaussian tails beyond the grid ends.
    """
    if not isinstance(quadrature, Quadrature):
        raise TypeError(
            "quadrature must be a Quadrature from lanczos_quadrature, got "
            f"{type(quadrature).__name__}."
        )
    _checks.real(sigma, "sigma", positive=True, fix="sigma is the broadening width (> 0).")
    grid = _check_grid(grid)
    diff = grid[:, None, None] - quadrature.nodes[None]
    g = jnp.exp(-0.5 * jnp.square(diff / sigma)) / (sigma * jnp.sqrt(2 * jnp.pi))
    return jnp.mean(jnp.sum(quadrature.weights[None] * g, axis=-1), axis=-1)


def _check_grid(grid) -> jax.Array:
    try:
        grid = jnp.asarray(grid)
    except TypeError as err:
        raise TypeError(f"grid must be a 1-D array of points, got {type(grid).__name__}.") from err
    if grid.ndim != 1:
        raise ValueError(f"grid must be 1-D, got shape {grid.shape}.")
    if not jnp.issubdtype(grid.dtype, jnp.floating):
        grid = grid.astype(jnp.result_type(float))
    if not _checks.is_traced(grid) and not bool(np.all(np.isfinite(np.asarray(grid)))):
        raise ValueError("grid contains NaN or inf; pass finite evaluation points.")
    return grid


def spectral_density(
    op: CurvatureOperator,
    key: jax.Array,
    grid: jax.Array,
    *,
    sigma: float,
    num_iters: int = 80,
    num_probes: int = 10,
) -> SpectralDensity:
    r"""Smoothed spectral density of ``op`` on ``grid`` by stochastic Lanczos quadrature.

    ``φ_σ(t) = (1/n_v) Σ_l Σ_i τ_i^l g_σ(t − θ_i^l)`` estimates
    ``(1/P) Σ_j g_σ(t − λ_j)``, the eigenvalue histogram smoothed by a Gaussian of width
    ``σ`` (Lin, Saad & Yang 2016, SIAM Review 58(1); Ghorbani, Krishnan & Xiao 2019,
    arXiv:1901.10159; the Hessian densities of PyHessian, Yao et al. 2020). With
    ``m >= P`` Lanczos steps the quadrature is exact for each probe and the only error is
    the probe average, whose variance is ``O(1/(n_v P))``.

    Args:
      op: the symmetric operator.
      key: PRNG key.
      grid: ``(G,)`` points ``t`` at which to evaluate the density.
      sigma: width of the Gaussian broadening (> 0), in units of eigenvalue.
      num_iters, num_probes: see :func:`lanczos_quadrature`.

    Returns:
      A :class:`SpectralDensity`.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from nnlab.curvature import matrix_operator
      >>> op = matrix_operator(jnp.diag(jnp.linspace(0.0, 1.0, 20)))
      >>> grid = jnp.linspace(-0.5, 1.5, 401)
      >>> d = spectral_density(op, jax.random.key(0), grid, sigma=0.05, num_iters=20)
      >>> round(float(jnp.trapezoid(d.density, grid)), 4)
      1.0
    """
    try:
        _checks.real(sigma, "sigma", positive=True, fix="sigma is the broadening width (> 0).")
    except ValueError as err:
        raise ValueError(str(err).replace("must be > 0", "must be a positive float")) from None
    grid = _check_grid(grid)
    quad = lanczos_quadrature(op, key, num_iters=num_iters, num_probes=num_probes)
    return SpectralDensity.create(grid, gaussian_broadening(quad, grid, sigma), quad, sigma)


def eigenvalue_density(eigenvalues: jax.Array, grid: jax.Array, *, sigma: float) -> SpectralDensity:
    r"""The density of known eigenvalues, smoothed as :func:`spectral_density` smooths.

    ``φ_σ(t) = (1/P) Σ_j g_σ(t − λ_j)``: the quantity :func:`spectral_density` estimates, as
    one exact "quadrature" with nodes ``λ_j`` and weights ``1/P`` (:func:`gaussian_broadening`).
    The dense reference for SLQ on small operators (eigenvalues from
    :func:`dense_eigenpairs`).

    Example:
      >>> import jax.numpy as jnp
      >>> grid = jnp.linspace(-1.0, 2.0, 301)
      >>> d = eigenvalue_density(jnp.array([0.0, 1.0]), grid, sigma=0.1)
      >>> round(float(jnp.trapezoid(d.density, grid)), 4)
      1.0
    """
    lam = _checks.finite_array(eigenvalues, "eigenvalues", ndim=1, shape_hint="(P,)")
    _checks.real(sigma, "sigma", positive=True, fix="sigma is the broadening width (> 0).")
    grid = _check_grid(grid)
    quad = Quadrature(lam[None], jnp.full((1, lam.shape[0]), 1.0 / lam.shape[0], lam.dtype))
    return SpectralDensity.create(grid, gaussian_broadening(quad, grid, sigma), quad, sigma)
