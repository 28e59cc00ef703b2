"""Any elementwise activation, by two-dimensional Gauss-Hermite quadrature.

For a zero-mean Gaussian pair with covariance ``[[v1, c], [c, v2]]`` and
correlation ``ρ = c / sqrt(v1 v2)``, the Cholesky factor gives

    u = sqrt(v1) z1,   v = sqrt(v2) (ρ z1 + sqrt(1 - ρ²) z2),   z1, z2 ~ N(0, 1) iid,

so ``T = E[φ(u) φ(v)] ≈ Σ_ij w_i w_j φ(sqrt(v1) x_i) φ(sqrt(v2)(ρ x_i + sqrt(1-ρ²) x_j))``
with the nodes ``x_i`` and weights ``w_i`` (normalised to sum to one) of the
``degree``-point Gauss-Hermite rule for the weight ``exp(-x²/2)`` (Golub &
Welsch 1969), and the same for ``Ṫ`` with ``φ'``. The rule is exact for
polynomials of degree ``< 2·degree`` in each variable and converges
exponentially for analytic ``φ`` of moderate growth; for kinks (ReLU) or jumps
(step) convergence is only algebraic in ``degree``.

Cost: ``degree²`` evaluations of ``φ`` per kernel entry, computed as a scan
over the outer nodes (memory ``N1·N2·degree``) with an inner contraction.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ._base import Array, layer, static
from ._elementwise_base import Activation, correlation

DEFAULT_DEGREE = 32


def hermite_rule(degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights (summing to one) with ``Σ w_i f(x_i) ≈ E[f(z)]``, ``z ~ N(0, 1)``."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(degree)
    return nodes, weights / weights.sum()


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
    degree: int = DEFAULT_DEGREE,
):
    """``(T, Ṫ)`` of an elementwise ``fn`` by ``degree × degree`` Gauss-Hermite quadrature.

    Args:
      fn: the activation, applied elementwise to arrays.
      fn_prime: its derivative, or None to use :func:`derivative`.
      c, v1, v2: covariance and the two variances (broadcastable arrays).
      need_dot: whether to compute ``Ṫ = E[φ'(u) φ'(v)]``.
      degree: nodes per dimension.

    Returns:
      ``(T, Ṫ)`` with the broadcast shape of the inputs (``Ṫ`` None unless requested).
    """
    fn_prime = derivative(fn) if fn_prime is None else fn_prime
    shape = jnp.broadcast_shapes(jnp.shape(c), jnp.shape(v1), jnp.shape(v2))
    dtype = jnp.result_type(c, v1, v2)
    rho, _ = correlation(c, v1, v2)
    rho = jnp.broadcast_to(rho, shape)
    r1 = jnp.broadcast_to(jnp.sqrt(jnp.maximum(v1, 0.0)), shape)
    r2 = jnp.broadcast_to(jnp.sqrt(jnp.maximum(v2, 0.0)), shape)
    comp = jnp.sqrt((1.0 - rho) * (1.0 + rho))
    nodes, weights = hermite_rule(degree)
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


class QuadratureActivation(Activation):
    """Mixin: an activation whose kernel is computed by :func:`gauss_hermite_kernel`.

    Subclasses define ``fn`` and may define ``fn_prime`` (else autodiff) and a
    static ``degree`` field.
    """

    degree: int

    def fn_prime(self, x: Array) -> Array:
        return derivative(self.fn)(x)

    def kernel_fns(self, c, v1, v2, need_dot):
        return gauss_hermite_kernel(self.fn, self.fn_prime, c, v1, v2, need_dot, self.degree)


def _check_degree(name: str, degree) -> None:
    if not isinstance(degree, int) or isinstance(degree, bool) or degree < 2:
        raise ValueError(f"{name}: degree must be an int >= 2, got {degree!r}.")


@layer
class Elementwise(QuadratureActivation):
    """Any elementwise activation ``fn``, with its kernel by Gauss-Hermite quadrature.

    ``T`` and ``Ṫ`` follow the module docstring; ``fn_deriv`` defaults to the
    autodiff derivative of ``fn``. ``fn`` and ``fn_deriv`` are static fields
    (hashed by identity), so pass the same function object to reuse compiled
    code; the layer works under ``jax.jit`` and ``jax.vmap``.

    Args:
      fn: a Python callable acting elementwise on arrays (e.g. ``jnp.tanh``).
      fn_deriv: its derivative, or None for autodiff.
      degree: quadrature nodes per dimension (even degrees avoid a node at 0,
        which matters for functions with a kink there).

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
    """``φ(x) = tanh(x)``; kernel by Gauss-Hermite quadrature (no closed form exists).

    Example:
      >>> import jax.numpy as jnp
      >>> from nnlab import layers as nl
      >>> float(nl.Tanh().apply((), jnp.array(0.0)))
      0.0
    """

    degree: int = static(default=DEFAULT_DEGREE)

    def __post_init__(self):
        _check_degree("Tanh", self.degree)

    def fn(self, x: Array) -> Array:
        return jnp.tanh(x)

    def fn_prime(self, x: Array) -> Array:
        return _tanh_prime(x)


@layer
class Sigmoid(QuadratureActivation):
    """Logistic ``φ(x) = 1 / (1 + e^{-x})``; kernel by Gauss-Hermite quadrature.

    Example:
      >>> import jax.numpy as jnp
      >>> from nnlab import layers as nl
      >>> float(nl.Sigmoid().apply((), jnp.array(0.0)))
      0.5
    """

    degree: int = static(default=DEFAULT_DEGREE)

    def __post_init__(self):
        _check_degree("Sigmoid", self.degree)

    def fn(self, x: Array) -> Array:
        return jax.nn.sigmoid(x)

    def fn_prime(self, x: Array) -> Array:
        s = jax.nn.sigmoid(x)
        return s * (1.0 - s)


@layer
class Softplus(QuadratureActivation):
    """``φ(x) = log(1 + e^x)``; kernel by Gauss-Hermite quadrature.

    Example:
      >>> import jax.numpy as jnp
      >>> from nnlab import layers as nl
      >>> round(float(nl.Softplus().apply((), jnp.array(0.0))), 6)
      0.693147
    """

    degree: int = static(default=DEFAULT_DEGREE)

    def __post_init__(self):
        _check_degree("Softplus", self.degree)

    def fn(self, x: Array) -> Array:
        return jax.nn.softplus(x)

    def fn_prime(self, x: Array) -> Array:
        return jax.nn.sigmoid(x)


@layer
class Swish(QuadratureActivation):
    """Swish / SiLU ``φ(x) = x σ(x)`` (Ramachandran et al. 2017, arXiv:1710.05941).

    Kernel by Gauss-Hermite quadrature.

    Example:
      >>> import jax.numpy as jnp
      >>> from nnlab import layers as nl
      >>> float(nl.Swish().apply((), jnp.array(0.0)))
      0.0
    """

    degree: int = static(default=DEFAULT_DEGREE)

    def __post_init__(self):
        _check_degree("Swish", self.degree)

    def fn(self, x: Array) -> Array:
        return jax.nn.silu(x)

    def fn_prime(self, x: Array) -> Array:
        s = jax.nn.sigmoid(x)
        return s * (1.0 + x * (1.0 - s))
