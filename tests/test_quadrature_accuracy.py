"""Accuracy of the quadrature activations (Tanh, Sigmoid, Softplus, Swish, Elementwise).

Reference: nested adaptive scipy quadrature of the Gaussian conditional decomposition
``T = E_z1[φ(r1 z1) E_z2[φ(r2 (ρ z1 + sqrt(1-ρ²) z2))]]``, each 1-D integral split at the
kink of its integrand (``z1 = 0`` and ``z2 = -ρ z1 / sqrt(1-ρ²)``) and asked for 1e-13
relative accuracy; at ``ρ = ±1`` the one-dimensional ``E[φ(r1 z) φ(±r2 z)]``. The
reference itself is checked against the closed-form arcsine kernel of erf first.

Errors are measured relative to the Cauchy–Schwarz scale ``sqrt(E[φ(u)²] E[φ(v)²])``
(``T`` itself vanishes at ρ = 0 for odd φ), with the bar 1e-8 in float64.
"""

from __future__ import annotations

import itertools
import math
import warnings
from functools import cache

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

import nnlab
from nnlab import layers as nl
from nnlab.layers import _quadrature as quad

_CUT = 12.0  # |z| beyond 12 carries < 1e-32 of the Gaussian mass
_NORM = 1.0 / math.sqrt(2.0 * math.pi)


def _quad(f, points):
    edges = [-_CUT, *sorted(p for p in points if -_CUT < p < _CUT), _CUT]
    with warnings.catch_warnings():
        # QUADPACK flags "roundoff" where 1e-13 relative is below the integrand's own
        # rounding (tiny pieces); the erf closed-form check below bounds the reference.
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        return sum(
            integrate.quad(f, lo, hi, epsabs=1e-16, epsrel=1e-13, limit=400)[0]
            for lo, hi in itertools.pairwise(edges)
        )


@cache
def reference(phi, v1, v2, rho):
    """``E[φ(u) φ(v)]`` for ``(u, v)`` centred Gaussian, variances v1, v2, correlation ρ."""
    r1, r2 = math.sqrt(v1), math.sqrt(v2)
    if abs(rho) == 1.0:
        return _quad(lambda z: phi(r1 * z) * phi(rho * r2 * z) * _NORM * math.exp(-z * z / 2), [0])
    s = math.sqrt((1.0 - rho) * (1.0 + rho))

    def inner(z1):
        m = rho * z1
        return _quad(lambda z2: phi(r2 * (m + s * z2)) * _NORM * math.exp(-z2 * z2 / 2), [-m / s])

    return _quad(lambda z1: phi(r1 * z1) * inner(z1) * _NORM * math.exp(-z1 * z1 / 2), [0])


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _tanh_prime(x):
    return 1.0 - math.tanh(x) ** 2


def _softplus(x):
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _sigmoid_prime(x):
    return _sigmoid(x) * (1.0 - _sigmoid(x))


def _swish(x):
    return x * _sigmoid(x)


def _swish_prime(x):
    return _sigmoid(x) * (1.0 + x * (1.0 - _sigmoid(x)))


def _arctan_prime(x):
    return 1.0 / (1.0 + x * x)


# (layer, φ, φ' in plain Python for scipy); the Elementwise entries are user functions whose
# derivative comes from autodiff.
ACTIVATIONS = {
    "tanh": (nl.Tanh(), math.tanh, _tanh_prime),
    "sigmoid": (nl.Sigmoid(), _sigmoid, _sigmoid_prime),
    "softplus": (nl.Softplus(), _softplus, _sigmoid),
    "swish": (nl.Swish(), _swish, _swish_prime),
    "Elementwise(arctan)": (nl.Elementwise(jnp.arctan), math.atan, _arctan_prime),
}
# Full range of the guarantee: variances 1e-4..1e4 independently, ρ at and near ±1.
V_PAIRS_FAST = [(1e-4, 1e4), (1e4, 1e4), (9.0, 1.0)]
RHOS_FAST = [-1.0, 0.3, 1.0 - 1e-9]
V_PAIRS_SLOW = [(1e-4, 1e-4), (1e-4, 1e4), (1e-1, 1e2), (1.0, 1.0), (1e2, 9.0), (1e4, 1e4)]
RHOS_SLOW = [-1.0, -1.0 + 1e-12, -0.7, 0.0, 0.5, 0.999, 1.0 - 1e-9, 1.0]


def _scale(phi, v1, v2):
    return math.sqrt(reference(phi, v1, v1, 1.0) * reference(phi, v2, v2, 1.0))


def _check_grid(name, pairs, rhos, tol=1e-8):
    layer, phi, phi_prime = ACTIVATIONS[name]
    v1 = np.array([a for a, _ in pairs for _ in rhos])
    v2 = np.array([b for _, b in pairs for _ in rhos])
    rho = np.array([r for _ in pairs for r in rhos])
    c = rho * np.sqrt(v1) * np.sqrt(v2)
    t, tdot = layer.kernel_fns(jnp.asarray(c), jnp.asarray(v1), jnp.asarray(v2), True)
    worst = 0.0
    for got, f in ((t, phi), (tdot, phi_prime)):
        for i in range(len(v1)):
            # The reference uses the correlation the layer sees (c / (sqrt(v1) sqrt(v2)),
            # equal to rho up to one rounding, which moves T by far less than 1e-8).
            want = reference(f, float(v1[i]), float(v2[i]), float(rho[i]))
            err = abs(float(got[i]) - want) / _scale(f, float(v1[i]), float(v2[i]))
            worst = max(worst, err)
            assert err <= tol, (name, v1[i], v2[i], rho[i], float(got[i]), want, err)
    return worst


def test_reference_matches_erf_closed_form():
    # Williams (1997): E[erf(u) erf(v)] = (2/π) arcsin(2c / sqrt((1+2v1)(1+2v2))).
    for v1, v2, rho in [(1e-4, 1e4, 0.3), (1e4, 1e4, 1.0 - 1e-9), (9.0, 1.0, -1.0)]:
        c = rho * math.sqrt(v1 * v2)
        want = 2 / math.pi * math.asin(2 * c / math.sqrt((1 + 2 * v1) * (1 + 2 * v2)))
        assert abs(reference(math.erf, v1, v2, rho) - want) <= 1e-12 * max(abs(want), 1e-2)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_matches_scipy_reference(x64, name):
    _check_grid(name, V_PAIRS_FAST, RHOS_FAST)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_matches_scipy_reference_full_grid(x64, name):
    _check_grid(name, V_PAIRS_SLOW, RHOS_SLOW)


def test_user_sin_moderate_variance(x64):
    # sin oscillates on the scale 1/sqrt(v) everywhere, which no kink split helps; the
    # guarantee covers it for variances up to ~1 (documented in the module docstring).
    # Closed form: E[sin u sin v] = e^{-(v1+v2)/2} sinh(c), E[cos u cos v] = e^{..} cosh(c).
    layer = nl.Elementwise(jnp.sin)
    v1, v2 = np.array([1e-4, 0.5, 1.0, 1.0]), np.array([1.0, 0.3, 1.0, 1e-2])
    rho = np.array([0.4, -1.0, 1.0, 1.0 - 1e-9])
    c = rho * np.sqrt(v1 * v2)
    t, tdot = layer.kernel_fns(jnp.asarray(c), jnp.asarray(v1), jnp.asarray(v2), True)
    damp = np.exp(-(v1 + v2) / 2)
    scale_t = np.sqrt(damp**2 * np.sinh(v1) * np.sinh(v2))
    scale_d = np.sqrt(damp**2 * np.cosh(v1) * np.cosh(v2))
    np.testing.assert_array_less(np.abs(t - damp * np.sinh(c)), 1e-8 * scale_t)
    np.testing.assert_array_less(np.abs(tdot - damp * np.cosh(c)), 1e-8 * scale_d)


# ------------------------------------------------------------------ one hidden tanh layer


def _tanh_net(w_std, b_std=0.1):
    return nl.serial(nl.Dense(64, W_std=w_std, b_std=b_std), nl.Tanh(), nl.Dense(1, W_std=w_std))


def _tanh_net_reference(x, w_std, b_std=0.1):
    """NNGP and NTK of ``_tanh_net`` from the scipy T and Ṫ (Jacot et al. 2018 recursion)."""
    k1 = w_std**2 * x @ x.T / x.shape[1] + b_std**2  # first layer: NNGP = NTK
    n = len(x)
    t, tdot = np.zeros((n, n)), np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            v1, v2 = k1[i, i], k1[j, j]
            rho = 1.0 if i == j else k1[i, j] / math.sqrt(v1 * v2)
            t[i, j] = reference(math.tanh, v1, v2, rho)
            tdot[i, j] = reference(_tanh_prime, v1, v2, rho)
    nngp = w_std**2 * t
    return nngp, nngp + w_std**2 * k1 * tdot


@pytest.mark.parametrize("w_std", [3.0, 10.0])
def test_one_hidden_tanh_layer_matches_scipy(x64, w_std):
    x = np.array([[1.0, 0.3], [-0.4, 0.9]])
    k = nnlab.kernel(_tanh_net(w_std), jnp.asarray(x))
    nngp, ntk = _tanh_net_reference(x, w_std)
    np.testing.assert_allclose(k.nngp, nngp, rtol=1e-8)
    np.testing.assert_allclose(k.ntk, ntk, rtol=1e-8)


@pytest.mark.parametrize("w_std", [3.0, 10.0, 100.0])
def test_tanh_ntk_is_psd(x64, w_std):
    # Near-parallel inputs make the NTK nearly singular, where a quadrature error shows
    # up as a negative eigenvalue. The true NTK is PSD; allow rounding, 1e-12 of the top.
    x = jnp.array([[1.0, 0.3], [1.0, 0.3001], [-0.4, 0.9], [0.7, -0.2], [1.0, 0.2999]])
    k = nnlab.kernel(_tanh_net(w_std), x)
    for m in (k.ntk, k.nngp):
        eig = np.linalg.eigvalsh(np.asarray(m))
        assert eig.min() >= -1e-12 * eig.max(), eig


# ------------------------------------------------------------------ price, degree, dtypes


@pytest.mark.slow  # ~10 s on 2 shared cores (compile time of large rules)
def test_derivative_in_c_is_tdot(x64):
    """Price's theorem: ∂T/∂c = E[φ'(u) φ'(v)]; autodiff through the graded nodes gives it."""
    c = jnp.array([0.3, -50.0, 900.0, 0.0])
    v1, v2 = jnp.array([1.0, 100.0, 1e4, 1e-4]), jnp.array([0.5, 30.0, 100.0, 1e4])
    layer = nl.Tanh()
    grad = jax.vmap(jax.grad(lambda c, a, b: layer.kernel_fns(c, a, b, False)[0]))(c, v1, v2)
    _, tdot = layer.kernel_fns(c, v1, v2, True)
    np.testing.assert_allclose(grad, tdot, rtol=1e-8, atol=1e-12)


@pytest.mark.slow  # ~10 s on 2 shared cores (compile time of large rules)
def test_no_nan_at_large_degree(x64):
    nodes, weights = quad.hermite_rule(400)
    assert np.all(np.isfinite(nodes)) and np.all(np.isfinite(weights))
    np.testing.assert_allclose(weights.sum(), 1.0, rtol=1e-13)
    np.testing.assert_allclose(weights @ nodes**2, 1.0, rtol=1e-10)
    c, v1, v2 = jnp.array([0.5, 3.0]), jnp.array([1.0, 100.0]), jnp.array([2.0, 0.5])
    t_gh, d_gh = quad.gauss_hermite_kernel(jnp.tanh, None, c, v1, v2, True, 400)
    t_big, d_big = nl.Tanh(degree=100).kernel_fns(c, v1, v2, True)
    t, d = nl.Tanh().kernel_fns(c, v1, v2, True)
    for a in (t_gh, d_gh, t_big, d_big):
        assert bool(jnp.all(jnp.isfinite(a)))
    np.testing.assert_allclose(t_big, t, rtol=1e-12)
    np.testing.assert_allclose(d_big, d, rtol=1e-12)


def test_bad_degree_raises():
    with pytest.raises(ValueError, match=r"Tanh: degree must be an int >= 2, got 1"):
        nl.Tanh(degree=1)
    with pytest.raises(TypeError, match=r"Sigmoid: degree must be an int, got 2\.5"):
        nl.Sigmoid(degree=2.5)
    with pytest.raises(TypeError, match=r"Swish: degree must be an int, got True"):
        nl.Swish(degree=True)
    with pytest.raises(ValueError, match=r"<= 512, got 10000"):
        nl.Elementwise(jnp.tanh, degree=10_000)
    with pytest.raises(ValueError, match=r"hermite_rule: degree must be an int >= 2, got 0"):
        quad.hermite_rule(0)


@pytest.mark.slow  # ~10 s on 2 shared cores
@pytest.mark.parametrize("name", ["tanh", "softplus"])
def test_float32_matches_float64(name):
    """float32 stays finite and within 1e-5 of the scale of float64 (6400-term sums of
    float32 products: ~sqrt(6400)·6e-8 ≈ 5e-6 of rounding)."""
    layer = ACTIVATIONS[name][0]
    v1 = np.array([1e-4, 1.0, 1e2, 1e4, 1e4, 1e30])
    v2 = np.array([1e4, 1.0, 9.0, 1e4, 1e-4, 1e30])
    rho = np.array([0.3, 1.0, -0.999, 1.0, -1.0, 0.5])
    c = rho * np.sqrt(v1) * np.sqrt(v2)
    t32, d32 = layer.kernel_fns(*(jnp.asarray(a, jnp.float32) for a in (c, v1, v2)), True)
    assert t32.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(t32)) & jnp.all(jnp.isfinite(d32))), (t32, d32)
    with jax.enable_x64(True):
        args = [jnp.asarray(a) for a in (c, v1, v2)]
        t64, d64 = (np.asarray(a) for a in layer.kernel_fns(*args, True))
        s64 = [
            np.sqrt(np.asarray(layer.kernel_fns(a, a, a, True)[i]))
            for a in args[1:]
            for i in (0, 1)
        ]
    scale_t, scale_d = s64[0] * s64[2], s64[1] * s64[3]
    np.testing.assert_array_less(np.abs(np.asarray(t32, np.float64) - t64), 1e-5 * scale_t)
    np.testing.assert_array_less(np.abs(np.asarray(d32, np.float64) - d64), 1e-5 * scale_d)


@pytest.mark.slow  # ~10 s on 2 shared cores (compile time of large rules)
def test_jit_and_vmap(x64):
    layer = nl.Softplus()
    c, v1, v2 = jnp.array([[0.2, -3.0]]), jnp.array([[1.0, 100.0]]), jnp.array([[0.5, 0.2]])
    eager = layer.kernel_fns(c, v1, v2, True)
    jitted = jax.jit(lambda *a: layer.kernel_fns(*a, True))(c, v1, v2)
    mapped = jax.vmap(lambda *a: layer.kernel_fns(*a, True))(c[0], v1[0], v2[0])
    for a, b in zip(eager, jitted, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13)
    for a, b in zip(eager, mapped, strict=True):
        np.testing.assert_allclose(a[0], b, rtol=1e-13)
