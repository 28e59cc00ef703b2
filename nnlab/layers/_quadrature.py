"""Any elementwise activation, by polar quadrature split at the activation's kinks.

For a zero-mean Gaussian pair with covariance ``[[v1, c], [c, v2]]`` and
correlation ``ρ = c / sqrt(v1 v2)``, write the standard pair ``(z1, z2)`` in polar
coordinates ``(R, θ)`` and ``β = atan2(sqrt(1-ρ²), ρ) ∈ [0, π]``. Then

    u = r1 R cos θ,   v = r2 R cos(θ - β),   r1 = sqrt(v1), r2 = sqrt(v2),

    T = E[φ(u) φ(v)] = (1/2π) ∫_0^{2π} dθ ∫_0^∞ R e^{-R²/2} φ(r1 R cos θ) φ(r2 R cos(θ-β)) dR,

and the same for ``Ṫ = E[φ'(u) φ'(v)]`` with ``φ'``. The activations here change
fast only near 0 (the saturation of tanh/sigmoid, the soft kink of softplus/swish,
the kink of ReLU): for a large variance ``φ(r x)`` is nearly a step or a kink in
the Gaussian variable, across the lines ``u = 0`` and ``v = 0``. Both lines pass
through the origin, so in polar coordinates they sit at the four angles
``θ = π/2, 3π/2`` (``u = 0``) and ``β + π/2, β + 3π/2`` (``v = 0``), and radially
only at ``R = 0``. The rule therefore splits the circle at those four angles (arcs
of length ``β``, ``π - β``, ``β``, ``π - β``; at ``ρ = ±1`` two of them are empty)
and each arc at its midpoint, and integrates every half-arc and the radius
``[0, 9.5]`` (the Gaussian tail beyond is ``< e^{-45}``) by Gauss–Legendre after
the sinh map ``x = a + ε sinh(μ (t + 1)/2)``, ``μ = asinh(length/ε)`` (Johnston &
Elliott 2005), which grades the nodes geometrically towards the kink at ``a`` down to
the width ``ε`` of the feature: ``ε = min(1, 1/(2 r1), 1/(2 r2))`` in angle
and ``min(1, 1/r1, 1/r2)`` in radius. Every feature is at an end of a piece, so the
convergence is exponential with a rate almost independent of the variance, instead
of the algebraic convergence of a product Gauss–Hermite rule once ``sqrt(v) ≫ 1``.

``degree`` Gauss–Legendre nodes per half-arc and ``2·degree`` radially give
``16·degree²`` evaluations of ``φ`` (and of ``φ'``) per kernel entry. Measured worst
error of ``T`` and ``Ṫ`` (float64) over ρ ∈ {0, 0.5, -0.99, 1-1e-6, 1, -1} with
``v2 = 0.7 v1``, relative to ``sqrt(E[φ(u)²] E[φ(v)²])``, against nested adaptive
scipy quadrature split at the kinks (tanh / softplus; sigmoid ≈ tanh, swish ≈ softplus):

    ===============  ============  ============  ============  ============  ============
    rule             v1 = 1e-4     v1 = 1        v1 = 9        v1 = 1e2      v1 = 1e4
    ===============  ============  ============  ============  ============  ============
    old GH, 32²      1e-15/7e-16   4e-5/8e-13    2e-1/8e-5     1/3e-2        1/3e-2
    polar, deg. 8    2e-6/6e-8     2e-7/8e-7     2e-6/5e-5     7e-5/2e-4     7e-4/5e-3
    polar, deg. 12   3e-11/7e-12   2e-11/1e-11   5e-10/2e-8    6e-8/7e-7     1e-6/4e-5
    polar, deg. 16   1e-15/2e-15   2e-15/2e-15   2e-13/1e-12   4e-11/2e-10   1e-8/3e-8
    polar, deg. 20   5e-15/4e-15   5e-15/5e-15   6e-15/9e-15   1e-13/4e-14   2e-11/3e-10
    polar, deg. 24   5e-15/5e-15   5e-15/5e-15   5e-15/4e-15   6e-15/4e-15   7e-13/1e-13
    ===============  ============  ============  ============  ============  ============

The default ``degree = 20`` (6400 points) is the smallest with error ≤ 1e-9 over this
range for all four built-in activations.

(tests/test_quadrature_accuracy.py checks sigmoid, softplus, swish and a user
function the same way). Functions whose fast change is away from 0 (``tanh(x - 3)``)
or that oscillate on the scale of ``sqrt(v)`` (``sin`` at ``v ≫ 1``) are still
integrated, but without this guarantee: raise ``degree`` and compare.

:func:`gauss_hermite_kernel` keeps the plain product Gauss–Hermite rule (exact for
polynomials of degree ``< 2·degree`` in each variable, accurate for small variances
only); its nodes now come from the eigenvalues of the Jacobi matrix (Golub & Welsch
1969), which, unlike ``numpy.polynomial.hermite_e.hermegauss``, do not overflow for
large ``degree``.

Example: the activations at 0, and a kernel entry with a closed form: inputs whose
pre-activations are uncorrelated (``ρ = 0``) give the sigmoid's ``T = E[σ(u)]² = 1/4``,
since ``σ(x) + σ(-x) = 1``.

    >>> import jax.numpy as jnp, nnlab
    >>> from nnlab import layers as nl
    >>> acts = (nl.Tanh(), nl.Sigmoid(), nl.Softplus(), nl.Swish())
    >>> [round(float(a.apply((), jnp.array(0.0))), 6) for a in acts]
    [0.0, 0.5, 0.693147, 0.0]
    >>> k = nnlab.kernel(nl.serial(nl.Dense(1), nl.Sigmoid()), jnp.eye(2), get="nngp")
    >>> round(float(k[0, 1]), 6)
    0.25
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import _checks

from ._base import Array, layer, static
from ._elementwise_base import Activation, correlation

DEFAULT_DEGREE = 20
MAX_DEGREE = 512
RADIUS = 9.5  # radial cut: ∫_R^∞ R^3 e^{-R²/2} dR < 1e-17 (relative) beyond it


def _check_degree(name: str, degree) -> int:
    degree = _checks.integer(
        degree,
        f"{name}: degree",
        minimum=2,
        fix="Pass the number of quadrature nodes per dimension, e.g. degree=20.",
    )
    if degree > MAX_DEGREE:
        raise ValueError(
            f"{name}: degree must be an int >= 2 and <= {MAX_DEGREE}, got {degree}. "
            "The default converges to ~1e-13 already; larger rules only cost memory."
        )
    return degree


def _golub_welsch(diagonal: np.ndarray, off: np.ndarray, mass: float):
    """Gauss rule from its Jacobi matrix (Golub & Welsch 1969): no overflow for any degree."""
    values, vectors = np.linalg.eigh(np.diag(diagonal) + np.diag(off, 1) + np.diag(off, -1))
    weights = mass * vectors[0] ** 2
    return values, weights


@lru_cache(maxsize=64)
def _hermite(degree: int):
    k = np.arange(1, degree, dtype=np.float64)
    nodes, weights = _golub_welsch(np.zeros(degree), np.sqrt(k), 1.0)
    nodes = 0.5 * (nodes - nodes[::-1])  # exact symmetry
    weights = 0.5 * (weights + weights[::-1])
    return nodes, weights / weights.sum()


@lru_cache(maxsize=64)
def _legendre(degree: int):
    if degree <= 200:
        return np.polynomial.legendre.leggauss(degree)
    k = np.arange(1, degree, dtype=np.float64)
    return _golub_welsch(np.zeros(degree), k / np.sqrt(4 * k * k - 1), 2.0)


def hermite_rule(degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights (summing to one) with ``Σ w_i f(x_i) ≈ E[f(z)]``, ``z ~ N(0, 1)``.

    Exact for polynomials of degree ``< 2·degree``. Computed from the symmetric
    tridiagonal Jacobi matrix of the probabilists' Hermite polynomials (off-diagonal
    ``sqrt(k)``), so any ``degree`` works (tails' weights underflow to 0, never NaN).
    """
    degree = _check_degree("hermite_rule", degree)
    nodes, weights = _hermite(degree)
    return nodes.copy(), weights.copy()


def derivative(fn: Callable[[Array], Array]) -> Callable[[Array], Array]:
    """The elementwise derivative of an elementwise ``fn`` by forward-mode autodiff.

    For elementwise functions the Jacobian is diagonal, so one ``jax.jvp`` with
    a tangent of ones gives ``φ'(x)`` for every entry (the same numbers as
    ``vmap(grad(fn))`` at the cost of a single forward pass).
    """

    def fn_prime(x: Array) -> Array:
        return jax.jvp(fn, (x,), (jnp.ones_like(x),))[1]

    return fn_prime


def gauss_hermite_kernel(
    fn: Callable[[Array], Array],
    fn_prime: Callable[[Array], Array] | None,
    c: Array,
    v1: Array,
    v2: Array,
    need_dot: bool,
    degree: int = 32,
):
    """``(T, Ṫ)`` of an elementwise ``fn`` by ``degree × degree`` product Gauss-Hermite quadrature.

    ``T ≈ Σ_ij w_i w_j φ(sqrt(v1) x_i) φ(sqrt(v2)(ρ x_i + sqrt(1-ρ²) x_j))`` with the
    nodes of :func:`hermite_rule`. Exact for polynomial ``φ`` of degree ``< degree``;
    for tanh-like ``φ`` accurate only while ``sqrt(v) ≲ 1`` (see the module table).
    The layers use :func:`polar_kernel` instead.

    Args:
      fn: the activation, applied elementwise to arrays.
      fn_prime: its derivative, or None to use :func:`derivative`.
      c, v1, v2: covariance and the two variances (broadcastable arrays).
      need_dot: whether to compute ``Ṫ = E[φ'(u) φ'(v)]``.
      degree: nodes per dimension.

    Returns:
      ``(T, Ṫ)`` with the broadcast shape of the inputs (``Ṫ`` None unless requested).
    """
    degree = _check_degree("gauss_hermite_kernel", degree)
    fn_prime = derivative(fn) if fn_prime is None else fn_prime
    shape = jnp.broadcast_shapes(jnp.shape(c), jnp.shape(v1), jnp.shape(v2))
    dtype = jnp.result_type(c, v1, v2)
    rho, _ = correlation(c, v1, v2)
    rho = jnp.broadcast_to(rho, shape)
    r1 = jnp.broadcast_to(jnp.sqrt(jnp.maximum(v1, 0.0)), shape)
    r2 = jnp.broadcast_to(jnp.sqrt(jnp.maximum(v2, 0.0)), shape)
    comp = _complement(rho)
    nodes, weights = _hermite(degree)
    inner = jnp.asarray(nodes, dtype).reshape((1,) * len(shape) + (degree,))
    w = jnp.asarray(weights, dtype)

    def step(carry, node_weight):
        x_i, w_i = node_weight
        u = r1 * x_i
        v = r2[..., None] * (rho[..., None] * x_i + comp[..., None] * inner)
        t = carry[0] + w_i * fn(u) * (fn(v) @ w)
        if not need_dot:
            return (t,), None
        return (t, carry[1] + w_i * fn_prime(u) * (fn_prime(v) @ w)), None

    zero = jnp.zeros(shape, dtype)
    init = (zero, zero) if need_dot else (zero,)
    xs = (jnp.asarray(nodes, dtype), w)
    out, _ = jax.lax.scan(step, init, xs)
    return out[0], (out[1] if need_dot else None)


def _complement(rho: Array) -> Array:
    """``sqrt((1-ρ)(1+ρ))`` with a finite (zero) derivative at ``ρ = ±1`` (double where)."""
    q = (1.0 - rho) * (1.0 + rho)
    positive = q > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, q, 1.0)), 0.0)


def _graded(scale: Array, length: Array, t: np.ndarray, w: np.ndarray):
    """Sinh-graded Gauss–Legendre on ``[0, length]``: offsets from the kink and weights.

    ``x = ε sinh(μ (t+1)/2)`` with ``μ = asinh(length/ε)``; shapes ``(..., n)``.
    """
    lead = (1,) * jnp.ndim(scale)
    t, w = t.reshape(lead + t.shape), w.reshape(lead + w.shape)
    mu = jnp.arcsinh(length / scale)[..., None]
    arg = mu * (0.5 * (t + 1.0))
    e = scale[..., None]
    return e * jnp.sinh(arg), e * jnp.cosh(arg) * (0.5 * mu) * w


def _polar_rule(rho: Array, r1: Array, r2: Array, degree: int, dtype):
    """Per-entry polar rule: ``(a, b, wa)`` angular ``(..., 8n)`` and ``(R, wR)`` radial.

    Points are ``u = a_j R_k``, ``v = b_j R_k`` with weight ``wa_j wR_k``, where
    ``a_j = r1 cos θ_j`` and ``b_j = r2 cos(θ_j - β)``.
    """
    t, w = (jnp.asarray(x, dtype) for x in _legendre(degree))
    tr, wr = (jnp.asarray(x, dtype) for x in _legendre(2 * degree))
    s = _complement(rho)
    beta = jnp.arctan2(s, rho)  # angle of arcs whose ends are a u-kink and a v-kink
    gamma = jnp.arctan2(s, -rho)  # π - β, computed without cancellation
    # Angular width of the kink features: 1/(2 r) for u = 0 and v = 0. At and near ρ = ±1
    # the u- and v-kinks meet at the same ends, so every end is graded to the narrower one.
    ea = eb = 1.0 / jnp.maximum(1.0, 2.0 * jnp.maximum(r1, r2))
    # Radius: kinks only at R = 0, the narrowest of width 1/max(r1, r2).
    er = 1.0 / jnp.maximum(1.0, jnp.maximum(r1, r2))
    radius, wrad = _graded(er, jnp.full_like(er, RADIUS), tr, wr)
    wrad = wrad * radius * jnp.exp(-0.5 * radius * radius)
    # Half-arcs, graded from their kink end by δ; (cos θ, cos(θ - β)) on each:
    #   arc [π/2, π/2+β]:   (-sin δ, sin(β-δ)) from the u-kink, (-sin(β-δ), sin δ) from the v-kink
    #   arc [π/2+β, 3π/2]:  (-sin(γ-δ), -sin δ) from the v-kink, (-sin δ, -sin(γ-δ)) from the u-kink
    # and the opposite arcs (θ + π) with both signs flipped.
    da, wda = _graded(ea, 0.5 * beta, t, w)
    db, wdb = _graded(eb, 0.5 * beta, t, w)
    dc, wdc = _graded(eb, 0.5 * gamma, t, w)
    dd, wdd = _graded(ea, 0.5 * gamma, t, w)
    bb, gg = beta[..., None], gamma[..., None]
    cos_u = jnp.concatenate(
        [-jnp.sin(da), -jnp.sin(bb - db), -jnp.sin(gg - dc), -jnp.sin(dd)], axis=-1
    )
    cos_v = jnp.concatenate(
        [jnp.sin(bb - da), jnp.sin(db), -jnp.sin(dc), -jnp.sin(gg - dd)], axis=-1
    )
    wang = jnp.concatenate([wda, wdb, wdc, wdd], axis=-1) / (2.0 * np.pi)
    a = jnp.concatenate([cos_u, -cos_u], axis=-1) * r1[..., None]
    b = jnp.concatenate([cos_v, -cos_v], axis=-1) * r2[..., None]
    return a, b, jnp.concatenate([wang, wang], axis=-1), radius, wrad


def polar_kernel(
    fn: Callable[[Array], Array],
    fn_prime: Callable[[Array], Array] | None,
    c: Array,
    v1: Array,
    v2: Array,
    need_dot: bool,
    degree: int = DEFAULT_DEGREE,
):
    """``(T, Ṫ)`` of an elementwise ``fn`` by the kink-split polar rule of the module docstring.

    Args:
      fn: the activation, applied elementwise to arrays.
      fn_prime: its derivative, or None to use :func:`derivative`.
      c, v1, v2: covariance and the two variances (broadcastable arrays).
      need_dot: whether to compute ``Ṫ = E[φ'(u) φ'(v)]``.
      degree: Gauss–Legendre nodes per half-arc (``2·degree`` radially); ``16·degree²``
        points per kernel entry.

    Returns:
      ``(T, Ṫ)`` with the broadcast shape of the inputs (``Ṫ`` None unless requested).
      Relative accuracy (to ``sqrt(E[φ(u)²] E[φ(v)²])``) ~1e-13 at the default degree for
      tanh, sigmoid, softplus and swish over variances 1e-4..1e4 and all ρ ∈ [-1, 1].
    """
    degree = _check_degree("polar_kernel", degree)
    fn_prime = derivative(fn) if fn_prime is None else fn_prime
    shape = jnp.broadcast_shapes(jnp.shape(c), jnp.shape(v1), jnp.shape(v2))
    dtype = jnp.result_type(c, v1, v2)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(dtype, jnp.float32)
    rho, _ = correlation(c, v1, v2)
    rho = jnp.broadcast_to(rho, shape).astype(dtype)
    r1 = jnp.broadcast_to(jnp.sqrt(jnp.maximum(v1, 0.0)), shape).astype(dtype)
    r2 = jnp.broadcast_to(jnp.sqrt(jnp.maximum(v2, 0.0)), shape).astype(dtype)
    a, b, wang, radius, wrad = _polar_rule(rho, r1, r2, degree, dtype)

    def step(carry, angle):
        a_j, b_j, w_j = angle
        u = a_j[..., None] * radius
        v = b_j[..., None] * radius
        t = carry[0] + w_j * jnp.sum(fn(u) * fn(v) * wrad, axis=-1)
        if not need_dot:
            return (t,), None
        return (t, carry[1] + w_j * jnp.sum(fn_prime(u) * fn_prime(v) * wrad, axis=-1)), None

    zero = jnp.zeros(shape, dtype)
    init = (zero, zero) if need_dot else (zero,)
    xs = tuple(jnp.moveaxis(x, -1, 0) for x in (a, b, wang))
    out, _ = jax.lax.scan(step, init, xs)
    return out[0], (out[1] if need_dot else None)


class QuadratureActivation(Activation):
    """Mixin: an activation whose kernel is computed by :func:`polar_kernel`.

    Subclasses define ``fn`` and may define ``fn_prime`` (else autodiff) and a
    static ``degree`` field.
    """

    degree: int

    def __post_init__(self):
        _check_degree(type(self).__name__, self.degree)

    def fn_prime(self, x: Array) -> Array:
        return derivative(self.fn)(x)

    def kernel_fns(self, c, v1, v2, need_dot):
        return polar_kernel(self.fn, self.fn_prime, c, v1, v2, need_dot, self.degree)


@layer
class Elementwise(QuadratureActivation):
    """Any elementwise activation ``fn``, with its kernel by polar quadrature (module docstring).

    ``T`` and ``Ṫ`` follow the module docstring; ``fn_deriv`` defaults to the
    autodiff derivative of ``fn``. ``fn`` and ``fn_deriv`` are static fields
    (hashed by identity), so pass the same function object to reuse compiled
    code; the layer works under ``jax.jit`` and ``jax.vmap``.

    Args:
      fn: a Python callable acting elementwise on arrays (e.g. ``jnp.tanh``).
      fn_deriv: its derivative, or None for autodiff.
      degree: Gauss–Legendre nodes per half-arc (``16·degree²`` points per kernel
        entry, see the module table); an int in [2, 512].

    Example:
      >>> import jax.numpy as jnp, nnlab
      >>> from nnlab import layers as nl
      >>> net = nl.serial(nl.Dense(8), nl.Elementwise(jnp.tanh), nl.Dense(1))
      >>> nnlab.kernel(net, jnp.ones((2, 3)), get="nngp").shape
      (2, 2)
    """

    fn: Callable[[Array], Array] = static()
    fn_deriv: Callable[[Array], Array] | None = static(default=None)
    degree: int = static(default=DEFAULT_DEGREE)

    def __post_init__(self):
        if not callable(self.fn):
            raise TypeError(f"Elementwise: fn must be callable, got {type(self.fn).__name__}.")
        if self.fn_deriv is not None and not callable(self.fn_deriv):
            raise TypeError(
                "Elementwise: fn_deriv must be callable or None, got "
                f"{type(self.fn_deriv).__name__}."
            )
        _check_degree("Elementwise", self.degree)

    @property
    def name(self) -> str:
        return f"Elementwise({getattr(self.fn, '__name__', repr(self.fn))})"

    def fn_prime(self, x: Array) -> Array:
        if self.fn_deriv is None:
            return derivative(self.fn)(x)
        return self.fn_deriv(x)


def _tanh_prime(x: Array) -> Array:
    t = jnp.tanh(x)
    return 1.0 - t * t


@layer
class Tanh(QuadratureActivation):
    """``φ(x) = tanh(x)``; kernel by polar quadrature (no closed form exists)."""

    degree: int = static(default=DEFAULT_DEGREE)

    @property
    def is_odd(self) -> bool:
        return True

    def fn(self, x: Array) -> Array:
        return jnp.tanh(x)

    def fn_prime(self, x: Array) -> Array:
        return _tanh_prime(x)


@layer
class Sigmoid(QuadratureActivation):
    """Logistic ``φ(x) = 1 / (1 + e^{-x})``; kernel by polar quadrature."""

    degree: int = static(default=DEFAULT_DEGREE)

    def fn(self, x: Array) -> Array:
        return jax.nn.sigmoid(x)

    def fn_prime(self, x: Array) -> Array:
        s = jax.nn.sigmoid(x)
        return s * (1.0 - s)


@layer
class Softplus(QuadratureActivation):
    """``φ(x) = log(1 + e^x)``; kernel by polar quadrature."""

    degree: int = static(default=DEFAULT_DEGREE)

    def fn(self, x: Array) -> Array:
        return jax.nn.softplus(x)

    def fn_prime(self, x: Array) -> Array:
        return jax.nn.sigmoid(x)


@layer
class Swish(QuadratureActivation):
    """Swish / SiLU ``φ(x) = x σ(x)`` (Ramachandran et al. 2017, arXiv:1710.05941).

    Kernel by polar quadrature.
    """

    degree: int = static(default=DEFAULT_DEGREE)

    def fn(self, x: Array) -> Array:
        return jax.nn.silu(x)

    def fn_prime(self, x: Array) -> Array:
        s = jax.nn.sigmoid(x)
        return s * (1.0 + x * (1.0 - s))
