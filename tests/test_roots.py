"""optimistix root finding (nnlab._roots), the functions built on it, and criticality vs scipy."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.optimize
import scipy.special

from nnlab import _roots, spectral
from nnlab import deeplinear as dl
from nnlab import finitewidth as fw


def _cube_root(c, lower=0.0, upper=2.0, steps=60):
    return _roots.bisect(lambda y, c: y**3 - c, lower, upper, c, steps=steps)


# ------------------------------------------------------------------------------ the helper
def test_bisect_reaches_the_bracket_resolution(x64):
    # y³ = c has the root c^(1/3); after k halvings of [0, 2] the midpoint is within
    # 2 / 2^(k+1) of it (plus an ulp of rounding in the last midpoint).
    c = np.array([1e-3, 0.5, 1.0, 2.0, 7.9])
    for steps in (10, 30, 60):
        got = np.asarray(jax.vmap(lambda c, steps=steps: _cube_root(c, steps=steps))(c))
        np.testing.assert_array_less(np.abs(got - np.cbrt(c)), 2.0 / 2 ** (steps + 1) + 1e-15)


def test_bisect_keeps_float32():
    # float32 in, float32 out; 40 halvings of [0, 2] (2^-40) are far below float32's ulp, so
    # the error is rounding only: 2 ulps of the root.
    c = jnp.asarray([0.5, 3.0], jnp.float32)
    got = jax.vmap(lambda c: _cube_root(c, jnp.float32(0), jnp.float32(2), steps=40))(c)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, np.cbrt([0.5, 3.0]), rtol=2 * np.finfo(np.float32).eps)


def test_bisect_jit_and_vmap_agree_with_single_calls(x64):
    c = jnp.array([0.2, 1.0, 5.0])
    mapped = jax.jit(jax.vmap(_cube_root))(c)
    for i in range(3):
        assert float(mapped[i]) == float(_cube_root(c[i]))


def test_bisect_gradient_is_the_implicit_function_theorem(x64):
    # d(c^(1/3))/dc = 1 / (3 c^(2/3)) in closed form; forward and reverse mode.
    for c in (0.3, 1.0, 6.0):
        exact = 1.0 / (3.0 * c ** (2.0 / 3.0))
        assert float(jax.grad(_cube_root)(c)) == pytest.approx(exact, rel=1e-12)
        assert float(jax.jvp(_cube_root, (c,), (1.0,))[1]) == pytest.approx(exact, rel=1e-12)


def test_bisect_without_a_sign_change_goes_to_the_documented_end(x64):
    up = _roots.bisect(lambda y, _: y - 10.0, 0.0, 1.0, steps=60)  # f < 0 throughout
    down = _roots.bisect(lambda y, _: y + 10.0, 0.0, 1.0, steps=60)  # f > 0 throughout
    assert float(up) == pytest.approx(1.0, abs=1e-15)
    assert float(down) == pytest.approx(0.0, abs=1e-15)
    # f = 0 on [0, 0.5]: exact zeros count as the upper side, so the plateau's lower end wins.
    plateau = _roots.bisect(lambda y, _: jnp.maximum(y - 0.5, 0.0), 0.0, 1.0, steps=60)
    assert float(plateau) == pytest.approx(0.0, abs=1e-15)


# ------------------------------------------------------------------------------ solve_kappa
LAM = np.arange(1, 501.0) ** -1.5


def _kappa_slope(lam, kappa, ridge):
    """∂/∂κ of Σλ/(λ+κ) + δ/κ, the derivative in the implicit function theorem."""
    return -np.sum(lam / (lam + kappa) ** 2) - ridge / kappa**2


def test_solve_kappa_iterations_count_halvings(x64):
    # One halving of [ε² κ_hi, κ_hi] on log κ leaves the midpoint of one half: κ_hi ε^(1/2) or
    # κ_hi ε^(3/2); the root for n = 10 lies in the upper half.
    kappa_hi = np.sum(LAM) / 10
    got = float(spectral.solve_kappa(LAM, 10, iterations=1))
    assert got == pytest.approx(kappa_hi * np.finfo(np.float64).eps ** 0.5, rel=1e-12)


@pytest.mark.parametrize("ridge", [0.0, 0.05])
def test_solve_kappa_gradients_are_exact(x64, ridge):
    # κ(n, δ, λ) solves S(κ) = n with S = Σλ/(λ+κ) + δ/κ; implicitly dκ/dn = 1/S'(κ),
    # dκ/dδ = -(1/κ)/S'(κ), dκ/dλ_i = -(κ/(λ_i+κ)²)/S'(κ). S' is a closed form (NumPy).
    n = 40.0
    kappa = float(spectral.solve_kappa(LAM, n, ridge=ridge))
    slope = _kappa_slope(LAM, kappa, ridge)
    grad_n = jax.grad(lambda n: spectral.solve_kappa(LAM, n, ridge=ridge))(n)
    assert float(grad_n) == pytest.approx(1.0 / slope, rel=1e-10)
    grad_ridge = jax.grad(lambda r: spectral.solve_kappa(LAM, n, ridge=r))(ridge)
    assert float(grad_ridge) == pytest.approx(-(1.0 / kappa) / slope, rel=1e-10)
    grad_lam = jax.grad(lambda lam: spectral.solve_kappa(lam, n, ridge=ridge))(jnp.asarray(LAM))
    np.testing.assert_allclose(grad_lam, -(kappa / (LAM + kappa) ** 2) / slope, rtol=1e-10)


def test_solve_kappa_float32_is_right_to_its_conditioning():
    # Reference: brentq in float64. In float32 the sum S(κ) of M = 500 positive terms adding to
    # n is rounded by up to ε(2 + log2 M) n (pairwise summation), which moves the root by that
    # over |S'(κ)|; log κ itself is resolved to ε|log κ|. Twice the sum of the two is the bound.
    eps = float(np.finfo(np.float32).eps)
    lam32 = jnp.asarray(LAM, jnp.float32)
    for n, ridge in ((10, 0.0), (100, 0.0), (100, 0.05)):
        ref = scipy.optimize.brentq(
            lambda k, n=n, r=ridge: np.sum(LAM / (LAM + k)) + r / k - n, 1e-14, 1e3, xtol=1e-300
        )
        got = spectral.solve_kappa(lam32, n, ridge=ridge)
        assert got.dtype == jnp.float32
        bound = 2 * (
            eps * (2 + math.log2(LAM.size)) * n / abs(_kappa_slope(LAM, ref, ridge)) / ref
            + eps * abs(math.log(ref))
        )
        assert abs(float(got) / ref - 1) < bound, (n, ridge, float(got), ref, bound)


# ----------------------------------------------------------------------------- mode_dynamics
@pytest.mark.parametrize("depth", [3, 4, 6])
def test_mode_dynamics_derivatives_are_exact(x64, depth):
    # For the autonomous ODE du/dt = v(u) (v = mode_velocity): du/dt = v(u(t)) and, along the
    # flow, du(t)/du0 = v(u(t)) / v(u0). Both are exact identities; the bisection's implicit
    # gradient must reproduce them to rounding (the hand-written loop had du/dt = 0). Near
    # saturation v(u) ∝ (s - u) is known only to the rounding of u, ε s, times |∂v/∂u| ≈
    # D s^(2-2/D): eight times that is the absolute tolerance (rtol covers the rest).
    s = jnp.array([2.0, 1.0, 0.4])
    t = jnp.array([[0.5], [3.0]])  # (time, mode) grid, one forward-mode pass per tangent
    atol = 8 * np.finfo(np.float64).eps * depth * float(jnp.max(s)) ** (3 - 2 / depth)
    for u0 in (1e-2, 0.9):  # growth for every mode at 1e-2; decay for s = 0.4 at 0.9
        u, du_dt = jax.jvp(
            lambda t, u0=u0: dl.mode_dynamics(s, u0, t, depth=depth), (t,), (1.0 + 0 * t,)
        )
        v = dl.mode_velocity(u, s, depth=depth)
        np.testing.assert_allclose(du_dt, v, rtol=1e-9, atol=atol)
        _, du_du0 = jax.jvp(lambda u0: dl.mode_dynamics(s, u0, t, depth=depth), (u0,), (1.0,))
        v0 = np.asarray(dl.mode_velocity(u0, s, depth=depth))
        np.testing.assert_allclose(du_du0, v / v0[None, :], rtol=1e-8, atol=atol / np.abs(v0).min())


def test_mode_dynamics_at_rest_is_s_with_finite_gradient(x64):
    # u0 = s is a fixed point; the result is s exactly and the gradient in t is finite (0).
    u = dl.mode_dynamics(jnp.array([1.0, 2.0]), jnp.array([1.0, 0.5]), 2.0, depth=3)
    assert float(u[0]) == 1.0
    g = jax.grad(lambda t: dl.mode_dynamics(1.0, 1.0, t, depth=3))(2.0)
    assert float(g) == 0.0


# ------------------------------------------------------------------------------ criticality
def test_nontrivial_critical_point_matches_scipy(x64):
    # Exact GELU σ(z) = zΦ(z) has σ'' = φ(z)(2 - z²); K* solves ⟨σσ''⟩_K = 0, here by adaptive
    # quadrature (scipy.integrate.quad to 1e-14 absolute: the integral cancels to 0 at K*, so a
    # relative tolerance cannot be met) and brentq; it gives (3 + √17)/2 to all 16 digits.
    # ⟨σσ''⟩ has slope -5e-3 at K* ≈ 3.56, so 1e-14 of quadrature error on either side moves K*
    # by ~1e-12 relative; 1e-10 leaves room for the 48-node rule of gaussian_expectation.
    def sigma_sigma2(k):
        def integrand(z):
            phi = math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
            density = math.exp(-0.5 * z * z / k) / math.sqrt(2 * math.pi * k)
            return z * scipy.special.ndtr(z) * phi * (2 - z * z) * density

        return scipy.integrate.quad(integrand, -np.inf, np.inf, epsabs=1e-14, epsrel=0)[0]

    point = fw.criticality(lambda z: jax.nn.gelu(z, approximate=False))
    assert point.universality == "nontrivial"
    ref = scipy.optimize.brentq(sigma_sigma2, 0.5 * point.k_star, 2 * point.k_star, xtol=1e-15)
    assert point.k_star == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mode_dynamics_saturated_is_s_with_finite_gradient(dtype):
    # At t = 1e3 (or inf) every mode has reached s: u is s to a few ulps of u = a^D (2D ulps,
    # as for any t), and du/dt is finite (the implicit derivative's linear solve would raise on
    # F'(s^{1/D}) = inf if the bracket reached the asymptote) and equals v(u) ≈ 0, to the
    # rounding of v near saturation (ε s |∂v/∂u|, |∂v/∂u| ≈ D s^(2-2/D); eight times that).
    with jax.enable_x64(dtype == "float64"):
        s = jnp.asarray([2.0, 1.0, 0.4], dtype)
        u0 = jnp.asarray([1e-2, 0.9, 0.9], dtype)
        ulp = float(jnp.finfo(dtype).eps)
        for depth in (3, 8):
            for t in (1e3, np.inf):
                t = jnp.asarray(t, dtype)
                u = dl.mode_dynamics(s, u0, t, depth=depth)
                assert u.dtype == dtype
                np.testing.assert_allclose(u, s, rtol=2 * depth * ulp)
                du_dt = jax.jacfwd(lambda t, d=depth: dl.mode_dynamics(s, u0, t, depth=d))(t)
                assert bool(jnp.all(jnp.isfinite(du_dt))), du_dt
                atol = 8 * ulp * depth * 2.0 ** (3 - 2 / depth)
                v = dl.mode_velocity(u, s, depth=depth)
                np.testing.assert_allclose(du_dt, v, rtol=1e-3, atol=atol)
