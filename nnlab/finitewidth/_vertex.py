r"""The leading 1/n correction: four-point vertex, NLO metric and output density.

Single input, all hidden widths ``n`` (conventions of :mod:`._criticality`;
Roberts, Yaida & Hanin 2021, arXiv:2106.10165, ch. 4). Given layer ``ℓ``, every
``z_i^{(ℓ+1)}`` is Gaussian with the random variance
``Ĝ = C_b + (C_W/n) Σ_j σ(z_j^{(ℓ)})²``, so ``E[z²] = E[Ĝ]`` and the fourth
cumulant is ``κ_4 = E[z⁴] - 3E[z²]² = 3 Var(Ĝ)``. Expanding ``Var(Ĝ)`` (the
neurons of layer ℓ are independent given layer ℓ-1, and share its ``Ĝ``) gives,
with ``κ_4^{(ℓ)} = (3/n) V^{(ℓ)} + O(1/n²)``,

.. math::
   V^{(1)} = 0, \qquad
   V^{(ℓ+1)} = χ_∥² V^{(ℓ)} + C_W² (⟨σ⁴⟩_K - ⟨σ²⟩_K²)

(RYH 2021, eq. 4.90 for one input), and ``V^{(2)}`` is exact at any width. The
mean metric ``G^{(ℓ)} = E[z²] = K^{(ℓ)} + G^{\{1\}(ℓ)}/n + O(1/n²)`` follows from
the Edgeworth expansion of the single-neuron law to first order in ``κ_4``,
``E[O(z)] = ⟨O⟩_G + κ_4/(24 G²) ⟨O(z) He_4(z/√G)⟩_G``:

.. math::
   G^{\{1\}(1)} = 0, \qquad
   G^{\{1\}(ℓ+1)} = χ_∥ G^{\{1\}(ℓ)} + \frac{C_W V^{(ℓ)}}{8 K²} ⟨σ(z)² He_4(z/\sqrt K)⟩_K,

with ``He_4(x) = x⁴ - 6x² + 3``. For ``σ(z) = a_+ z`` (z>0), ``a_- z`` (z<0) and
``C_b = 0`` the law is an exact product: ``Ĝ^{(ℓ+1)} = Ĝ^{(ℓ)} R_ℓ`` with ``R_ℓ``
independent of ``Ĝ^{(ℓ)}``, so

.. math::
   \frac{E[z⁴]}{E[z²]²} - 3 = 3\left[\left(1 + \frac{m_4 - m_2²}{n m_2²}\right)^{ℓ-1} - 1\right],
   \quad m_2 = \frac{a_+² + a_-²}{2},\ m_4 = \frac{3(a_+⁴ + a_-⁴)}{2},

i.e. ``3[(1 + 5/n)^{ℓ-1} - 1]`` for ReLU (``V/K² = 5(ℓ-1)`` at leading order,
RYH 2021, §5.4; ``2`` instead of ``5`` for a linear network).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from nnlab import _checks

from ._activation import activation_fn, as_float, as_float_signed, check_positive_int
from ._criticality import susceptibilities
from ._gaussian import DEFAULT_DEGREE, check_degree, gaussian_expectation


class FiniteWidthTheory(NamedTuple):
    """Layer-by-layer single-input theory to first order in 1/n (last axis = layer ℓ = 1..L).

    Attributes:
      kernel: ``K^{(ℓ)}``, the infinite-width variance.
      vertex: ``V^{(ℓ)}``, the four-point vertex (``κ_4 = 3V/n``).
      metric_correction: ``G^{\\{1\\}(ℓ)}`` (``E[z²] = K + G^{\\{1\\}}/n``).
      chi_parallel, chi_perp: susceptibilities at ``K^{(ℓ)}``.
    """

    kernel: jax.Array
    vertex: jax.Array
    metric_correction: jax.Array
    chi_parallel: jax.Array
    chi_perp: jax.Array

    def excess_kurtosis(self, width) -> jax.Array:
        """``E[z⁴]/E[z²]² - 3 ≈ 3 V/(n K²)`` at leading order in ``1/n``."""
        return 3.0 * self.vertex / (width * self.kernel**2)

    def fourth_cumulant(self, width) -> jax.Array:
        """``κ_4 = E[z⁴] - 3E[z²]² ≈ 3 V/n``."""
        return 3.0 * self.vertex / width

    def second_moment(self, width) -> jax.Array:
        """``E[z²] ≈ K + G^{\\{1\\}}/n``."""
        return self.kernel + self.metric_correction / width


def _he4(x):
    x2 = x * x
    return x2 * x2 - 6.0 * x2 + 3.0


def finite_width_recursion(
    activation, k1, depth: int, c_w, c_b, *, degree: int = DEFAULT_DEGREE
) -> FiniteWidthTheory:
    """Run the ``K``, ``V`` and ``G^{\\{1\\}}`` recursions of the module docstring.

    Gaussian expectations are by the split Gauss rule of
    :func:`gaussian_expectation`, so any elementwise ``σ`` works. ``k1``,
    ``c_w``, ``c_b`` may be arrays (broadcast together; the layer axis is
    appended last); works under ``jit`` and ``vmap``.

    Args:
      activation: elementwise function or nnlab activation layer.
      k1: first-layer variance ``K^{(1)} = C_b + C_W |x|²/n_0``.
      depth: number of layers ``L`` (outputs for ``ℓ = 1..L``).
      c_w, c_b: weight and bias variances.
      degree: quadrature nodes per half-line.

    Returns:
      A :class:`FiniteWidthTheory`.

    Example:
      >>> import jax.numpy as jnp
      >>> th = finite_width_recursion(lambda z: jnp.maximum(z, 0.0), 1.0, 4, 2.0, 0.0)
      >>> [round(v, 4) for v in th.vertex.tolist()]   # V/K² = 5(ℓ-1) for critical ReLU
      [0.0, 5.0, 10.0, 15.0]
    """
    fn = activation_fn(activation)
    depth = check_positive_int(depth, "depth")
    k1 = as_float(k1, "k1")
    c_w = as_float(c_w, "c_w")
    c_b = as_float(c_b, "c_b")
    check_degree(degree)
    dtype = jnp.result_type(k1, c_w, c_b, float)
    shape = jnp.broadcast_shapes(jnp.shape(k1), jnp.shape(c_w), jnp.shape(c_b))

    def step(carry, _):
        k, v, g1 = carry
        par, perp = susceptibilities(fn, k, c_w, degree=degree)
        m2 = gaussian_expectation(lambda z: fn(z) ** 2, k, degree)
        m4 = gaussian_expectation(lambda z: fn(z) ** 4, k, degree)
        ks = jnp.maximum(k, jnp.sqrt(jnp.finfo(dtype).tiny))
        he = gaussian_expectation(
            lambda z: fn(z) ** 2 * _he4(z / jnp.sqrt(ks)[..., None]), k, degree
        )
        k_next = c_b + c_w * m2
        v_next = par**2 * v + c_w**2 * (m4 - m2**2)
        g1_next = par * g1 + c_w * v * he / (8.0 * ks**2)
        return (k_next, v_next, g1_next), (k, v, g1, par, perp)

    zero = jnp.zeros(shape, dtype)
    init = (jnp.broadcast_to(k1, shape).astype(dtype), zero, zero)
    _, out = jax.lax.scan(step, init, None, length=depth)
    return FiniteWidthTheory(*(jnp.moveaxis(o, 0, -1) for o in out))


def scale_invariant_kurtosis(depth: int, width, a_plus=1.0, a_minus=0.0) -> jax.Array:
    """Exact ``E[z⁴]/E[z²]² - 3`` at layers ``ℓ = 1..depth`` for ``C_b = 0`` (any ``C_W``).

    ``3[(1 + (m_4 - m_2²)/(n m_2²))^{ℓ-1} - 1]`` (module docstring); ReLU by default
    (``a_+ = 1, a_- = 0``, giving ``3[(1 + 5/n)^{ℓ-1} - 1]``). ``width`` may be an
    array; the layer axis is appended last.

    Raises:
      ValueError: for ``depth < 1``, a width that is not positive and finite, or
        ``a_+ = a_- = 0``.

    Example:
      >>> round(float(scale_invariant_kurtosis(3, 10.0)[-1]), 6)   # 3 (1.5² - 1)
      3.75
    """
    depth = check_positive_int(depth, "depth")
    n = as_float(width, "width", positive=True)
    _checks.real(a_plus, "a_plus")
    _checks.real(a_minus, "a_minus")
    if not _checks.is_traced((a_plus, a_minus)) and not a_plus**2 + a_minus**2 > 0:
        raise ValueError(
            f"a_plus and a_minus must not both be 0 (the activation would vanish), got "
            f"a_plus={a_plus!r}, a_minus={a_minus!r}; ReLU is a_plus=1, a_minus=0."
        )
    m2 = (a_plus**2 + a_minus**2) / 2.0
    m4 = 1.5 * (a_plus**4 + a_minus**4)
    growth = 1.0 + (m4 - m2**2) / (n[..., None] * m2**2)
    ell = jnp.arange(depth, dtype=n.dtype).reshape((1,) * n.ndim + (depth,))
    return 3.0 * (growth**ell - 1.0)


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
    return gauss * (1.0 + fourth_cumulant / (24.0 * k**2) * _he4(x))
