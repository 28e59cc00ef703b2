r"""Infinite-width kernel recursion, susceptibilities and criticality (single input).

Conventions of Roberts, Yaida & Hanin (2021), "The Principles of Deep Learning
Theory", arXiv:2106.10165: preactivations ``z^{(ℓ+1)} = b + W σ(z^{(ℓ)})`` with
``W_ij ~ N(0, C_W/n_ℓ)`` and ``b_i ~ N(0, C_b)``; for one input ``x`` of dimension
``n_0`` the first layer has ``K^{(1)} = C_b + C_W |x|²/n_0`` and

.. math::
   K^{(ℓ+1)} = C_b + C_W ⟨σ(z)²⟩_{K^{(ℓ)}},

   χ_∥(K) = \frac{∂K^{(ℓ+1)}}{∂K^{(ℓ)}} = \frac{C_W}{K} ⟨σ'(z) σ(z) z⟩_K
           = C_W ⟨σ'(z)² + σ(z)σ''(z)⟩_K,   \qquad  χ_⊥(K) = C_W ⟨σ'(z)²⟩_K .

(``d⟨g⟩_K/dK = ⟨g'(z) z⟩_K / (2K)``, then Gaussian integration by parts; the
book's eq. (5.10) writes the first form.) A network is critical at a fixed point
``K*`` of the recursion with ``χ_∥(K*) = χ_⊥(K*) = 1``: then ``C_W = 1/⟨σ'²⟩_{K*}``,
``⟨σσ''⟩_{K*} = 0`` and ``C_b = K* - C_W ⟨σ²⟩_{K*} ≥ 0``.
"""

from __future__ import annotations

import functools
import math
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import _checks, _roots
from nnlab.parameterization import mlp

from ._activation import activation_fn, as_float, check_positive_int
from ._gaussian import DEFAULT_DEGREE, check_degree, derivative, gaussian_expectation
from ._network import read_mlp

# halvings of a grid cell in log K (width log 1.035): ~50 reach float64 resolution
_BISECTION_STEPS = 64

Universality = Literal["scale_invariant", "k_star_zero", "nontrivial"]


def _safe_variance(k):
    # χ_∥ = C_W ⟨σ'σz⟩/K is 0/0 at K = 0; its limit C_W σ'(0)² is reached already at K ~ 1e-19
    # (relative error ~K), while products of size K stay far from the subnormal range.
    return jnp.maximum(k, jnp.sqrt(jnp.finfo(k.dtype).tiny))


def kernel_map(activation, k, c_w, c_b, *, degree: int = DEFAULT_DEGREE) -> jax.Array:
    """One step of the single-input kernel recursion, ``C_b + C_W ⟨σ²⟩_K`` (RYH 2021, eq. 4.90).

    Example:
      >>> import jax.numpy as jnp
      >>> round(float(kernel_map(lambda z: jnp.maximum(z, 0.0), 1.5, 2.0, 0.0)), 5)
      1.5
    """
    fn = activation_fn(activation)
    k = as_float(k, "k")
    c_w = as_float(c_w, "c_w")
    c_b = as_float(c_b, "c_b")
    return c_b + c_w * gaussian_expectation(lambda z: fn(z) ** 2, k, degree)


def susceptibilities(activation, k, c_w, *, degree: int = DEFAULT_DEGREE):
    """``(χ_∥, χ_⊥)`` at kernel ``K`` (module docstring; RYH 2021, eqs. 5.10 and 5.50).

    Args:
      activation: elementwise function or nnlab activation layer.
      k: single-input kernel ``K`` (array; broadcast with ``c_w``).
      c_w: weight variance ``C_W``.
      degree: quadrature nodes per half-line.

    Returns:
      ``(chi_parallel, chi_perp)`` arrays.

    Example:
      >>> import jax.numpy as jnp
      >>> [round(float(c), 6) for c in susceptibilities(jnp.tanh, 1e-8, 1.0)]
      [1.0, 1.0]
    """
    fn = activation_fn(activation)
    fp = derivative(fn)
    k = _safe_variance(as_float(k, "k"))
    c_w = as_float(c_w, "c_w")
    par = c_w * gaussian_expectation(lambda z: fp(z) * fn(z) * z, k, degree) / k
    perp = c_w * gaussian_expectation(lambda z: fp(z) ** 2, k, degree)
    return par, perp


def kernel_recursion(activation, k1, depth: int, c_w, c_b, *, degree: int = DEFAULT_DEGREE):
    """``K^{(1)}, ..., K^{(depth)}`` from ``K^{(1)} = k1`` (a ``lax.scan``; last axis = layer).

    Example:
      >>> import jax.numpy as jnp
      >>> ks = kernel_recursion(lambda z: jnp.maximum(z, 0.0), 1.0, 4, 1.0, 0.0)
      >>> [round(v, 6) for v in ks.tolist()]
      [1.0, 0.5, 0.25, 0.125]
    """
    fn = activation_fn(activation)
    depth = check_positive_int(depth, "depth")
    k1 = as_float(k1, "k1")
    c_w = as_float(c_w, "c_w")
    c_b = as_float(c_b, "c_b")
    check_degree(degree)

    def step(k, _):
        k_next = kernel_map(fn, k, c_w, c_b, degree=degree)
        return k_next, k

    shape = jnp.broadcast_shapes(jnp.shape(k1), jnp.shape(c_w), jnp.shape(c_b))
    init = jnp.broadcast_to(k1, shape).astype(jnp.result_type(k1, c_w, c_b, float))
    _, ks = jax.lax.scan(step, init, None, length=depth)
    return jnp.moveaxis(ks, 0, -1)


class CriticalPoint(NamedTuple):
    """Critical initialisation of an activation (RYH 2021, §5.2-5.3).

    Attributes:
      c_b, c_w: the critical bias and weight variances.
      k_star: the fixed point ``K*`` (NaN for scale-invariant activations, where
        every ``K`` is a fixed point at criticality).
      universality: ``'scale_invariant'`` (``K^{(ℓ)}`` constant in depth),
        ``'k_star_zero'`` (``K^{(ℓ)} ~ 1/(-a_1 ℓ)`` when ``a_1 < 0``) or
        ``'nontrivial'`` (``K* > 0``; approached as a power law in depth).
      a1: ``σ_3/σ_1 + (3/4)(σ_2/σ_1)²`` with ``σ_p = σ^{(p)}(0)`` for the
        ``K* = 0`` class (RYH 2021, eq. 5.83), else NaN.
    """

    c_b: float
    c_w: float
    k_star: float
    universality: Universality
    a1: float

    @property
    def W_std(self) -> float:
        """``√C_W``, the ``W_std`` of a critical :class:`nnlab.layers.Dense` layer."""
        return math.sqrt(self.c_w)

    @property
    def b_std(self) -> float:
        """``√C_b``, the ``b_std`` of a critical :class:`nnlab.layers.Dense` layer."""
        return math.sqrt(self.c_b)

    def kernel_asymptote(self, depth):
        """Large-depth form of ``K^{(ℓ)}`` at criticality: ``1/(-a_1 ℓ)`` for the ``K* = 0``
        class (leading order in ``1/ℓ``), ``K*`` for the nontrivial class; NaN for the
        scale-invariant class (``K^{(ℓ)} = K^{(1)}`` depends on the input)."""
        ell = np.asarray(depth, dtype=np.float64)
        if self.universality == "k_star_zero":
            return 1.0 / (-self.a1 * ell)
        if self.universality == "nontrivial":
            return np.full_like(ell, self.k_star)
        return np.full_like(ell, np.nan)


def criticality(activation, *, k_max: float = 100.0, degree: int = DEFAULT_DEGREE):
    """Find the critical ``(C_b, C_W)`` of an activation (RYH 2021, §5.2-5.3).

    A host-side analysis (it branches on values and root-finds; not for ``jit``):

    1. scale-invariant ``σ(z) = a_+ z`` (z > 0), ``a_- z`` (z < 0): ``χ_∥ = χ_⊥ =
       C_W (a_+² + a_-²)/2`` at every ``K``, so ``C_b = 0``, ``C_W = 2/(a_+² + a_-²)``
       (ReLU: ``C_W = 2``);
    2. ``σ(0) = 0``, ``σ'(0) ≠ 0`` and ``a_1 < 0``: ``K* = 0``, ``C_b = 0``,
       ``C_W = 1/σ'(0)²`` (tanh: ``C_W = 1``), and ``K^{(ℓ)} ≈ 1/(-a_1 ℓ)``; with
       ``a_1 ≥ 0`` (GELU, SWISH) ``K* = 0`` repels, so case 3 is tried first;
    3. otherwise a ``K* ∈ (0, k_max]`` with ``⟨σ'σz⟩ = K⟨σ'²⟩`` (i.e. ``⟨σσ''⟩ = 0``)
       and ``C_b = K* - ⟨σ²⟩/⟨σ'²⟩ ≥ 0``, by bracketing on a log grid and bisection.

    Raises:
      ValueError: if no critical point exists in case 3.

    Example:
      >>> import jax.numpy as jnp
      >>> p = criticality(jnp.tanh)
      >>> (p.c_b, p.c_w, p.universality, round(p.a1, 6))
      (0.0, 1.0, 'k_star_zero', -2.0)
    """
    fn = activation_fn(activation)
    _checks.real(k_max, "k_max", positive=True, fix="k_max bounds the search for K* (> 0).")
    check_degree(degree)
    with jax.enable_x64(True):
        probe = jnp.array([-2.7, -1.0, -0.3, 0.3, 1.0, 2.7])
        a_plus, a_minus = float(fn(jnp.array(1.0))), -float(fn(jnp.array(-1.0)))
        scale_inv = all(
            np.allclose(np.asarray(fn(lam * probe)), lam * np.asarray(fn(probe)), rtol=1e-9)
            for lam in (0.5, 2.0, 3.0)
        )
        if scale_inv and a_plus**2 + a_minus**2 > 0:
            c_w = 2.0 / (a_plus**2 + a_minus**2)
            return CriticalPoint(0.0, c_w, math.nan, "scale_invariant", math.nan)
        zero = jnp.array(0.0)
        s = [float(derivative(fn, p)(zero)) for p in range(4)]
        if abs(s[0]) < 1e-12 and abs(s[1]) > 1e-12:
            a1 = s[3] / s[1] + 0.75 * (s[2] / s[1]) ** 2
            point = CriticalPoint(0.0, 1.0 / s[1] ** 2, 0.0, "k_star_zero", a1)
            if a1 < 0:
                return point
            # a1 >= 0: K grows away from K* = 0 (GELU, SWISH); prefer a K* > 0 if there is one.
            try:
                return _nontrivial_point(fn, k_max, degree)
            except ValueError:
                return point
        return _nontrivial_point(fn, k_max, degree)


def _nontrivial_point(fn, k_max, degree):
    fp = derivative(fn)

    @jax.jit
    def gap(k):  # ⟨σ'σz⟩/K - ⟨σ'²⟩ = ⟨σσ''⟩: zero at a critical K*
        par = gaussian_expectation(lambda z: fp(z) * fn(z) * z, k, degree) / k
        return par - gaussian_expectation(lambda z: fp(z) ** 2, k, degree)

    @jax.jit
    def c_b_of(k):
        m2 = gaussian_expectation(lambda z: fn(z) ** 2, k, degree)
        return k - m2 / gaussian_expectation(lambda z: fp(z) ** 2, k, degree)

    grid = np.geomspace(1e-4, k_max, 400)
    values = np.asarray(gap(jnp.asarray(grid)))
    # bisection in log K on each bracketing grid cell, the gap oriented to rise through 0
    rising = lambda log_k, sign: sign * gap(jnp.exp(log_k))  # noqa: E731
    for i in np.nonzero(np.sign(values[:-1]) * np.sign(values[1:]) < 0)[0]:
        log_k = _roots.bisect(rising, math.log(grid[i]), math.log(grid[i + 1]),
                              -np.sign(values[i]), steps=_BISECTION_STEPS)  # fmt: skip
        k_star = float(jnp.exp(log_k))
        c_b = float(c_b_of(k_star))
        if c_b >= 0:
            c_w = 1.0 / float(gaussian_expectation(lambda z: fp(z) ** 2, k_star, degree))
            return CriticalPoint(c_b, c_w, k_star, "nontrivial", math.nan)
    raise ValueError(
        "activation has no critical initialisation: no K* in (0, k_max] with "
        "⟨σσ''⟩ = 0 and C_b >= 0 (e.g. sigmoid and softplus have none; RYH 2021, §5.3). "
        "Raise k_max to search further."
    )


_MLP_ACTIVATIONS = ("relu", "tanh", "erf")


@functools.cache
def _critical_point(activation: str) -> CriticalPoint:
    """:func:`criticality` of ``mlp``'s activation layer named ``activation`` (cached)."""
    return criticality(read_mlp(mlp(1, 1, 1, activation, parameterization="standard")).activation)


def critical_mlp(activation: str, depth: int, width: int, W_std=None, b_std=None):
    """``depth`` Dense layers of width ``width`` (the last one too), ``activation`` between them,
    at the critical initialisation of ``activation`` (RYH 2021, §5.2-5.3).

    ``nnlab.parameterization.mlp(width, depth - 1, width, activation, W_std, b_std,
    'standard')`` with ``W_std = √C_W``, ``b_std = √C_b`` from :func:`criticality` (ReLU:
    ``√2, 0``; tanh: ``1, 0``): the network form that :func:`finite_width_theory` and
    :func:`sample_preactivations` take. Passing ``W_std`` or ``b_std`` overrides the critical
    value (e.g. to sweep ``W_std`` across criticality, ``functools.partial(critical_mlp,
    'tanh', depth, width)``).

    Args:
      activation: ``'relu'``, ``'tanh'`` or ``'erf'`` (names of ``mlp``'s activation layers).
      depth: number of Dense layers ``L`` (preactivations ``z^{(1..L)}``), ``>= 2``.
      width: ``n``, every layer's output width.
      W_std, b_std: weight and bias scales; ``None`` is the critical value.

    Returns:
      An ``nnlab.layers`` serial network.

    Example:
      >>> net = critical_mlp("relu", 3, 16)
      >>> [(d.out, round(d.W_std, 6), d.b_std) for d in net.layers[0::2]]
      [(16, 1.414214, 0.0), (16, 1.414214, 0.0), (16, 1.414214, 0.0)]
    """
    _checks.choice(activation, "activation", _MLP_ACTIVATIONS)
    depth = check_positive_int(depth, "depth", minimum=2)
    if W_std is None or b_std is None:
        point = _critical_point(activation)
        W_std = point.W_std if W_std is None else W_std
        b_std = point.b_std if b_std is None else b_std
    return mlp(width, depth - 1, width, activation, W_std, b_std, "standard")
