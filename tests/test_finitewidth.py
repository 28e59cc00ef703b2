"""Finite-width theory: quadrature, criticality, vertex recursion vs Monte Carlo."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

from nnlab import finitewidth as fw
from nnlab import layers as nl


def relu(z):
    return jnp.maximum(z, 0.0)


def _quad_reference(f, k):
    pdf = lambda z: f(z) * math.exp(-z * z / (2 * k)) / math.sqrt(2 * math.pi * k)  # noqa: E731
    return sum(
        integrate.quad(pdf, a, b, epsabs=1e-15, epsrel=1e-13, limit=200)[0]
        for a, b in ((-np.inf, 0.0), (0.0, np.inf))
    )


# ------------------------------------------------------------------ quadrature
@pytest.mark.parametrize("k", [0.01, 1.0, 4.0])
def test_gaussian_expectation_matches_adaptive_quadrature(x64, k):
    # Independent reference: scipy adaptive quadrature split at the kink; 1e-10 is far above
    # both methods' errors (~1e-13) and far below any effect tested elsewhere.
    for f_jnp, f_np in (
        (lambda z: jnp.tanh(z) ** 4, lambda z: math.tanh(z) ** 4),
        (lambda z: relu(z) ** 3, lambda z: max(z, 0.0) ** 3),
        (lambda z: jnp.sin(z) * z, lambda z: math.sin(z) * z),
    ):
        got = float(fw.gaussian_expectation(f_jnp, k))
        assert got == pytest.approx(_quad_reference(f_np, k), abs=1e-10, rel=1e-10)


def test_gaussian_expectation_exact_for_piecewise_polynomials(x64):
    # ⟨relu(z)^p⟩_K = K^{p/2} 2^{p/2-1} Γ((p+1)/2)/√π (half-normal moments), closed form.
    for p in (1, 2, 3, 4, 5):
        exact = 2.0 ** (p / 2 - 1) * math.gamma((p + 1) / 2) / math.sqrt(math.pi) * 2.0 ** (p / 2)
        assert float(fw.gaussian_expectation(lambda z, p=p: relu(z) ** p, 2.0)) == pytest.approx(
            exact, rel=1e-12
        )


# ------------------------------------------------------------------ criticality
def test_criticality_values(x64):
    relu_pt = fw.criticality(relu)
    assert (relu_pt.c_b, relu_pt.c_w, relu_pt.universality) == (0.0, 2.0, "scale_invariant")
    assert fw.criticality(nl.LeakyRelu(0.5)).c_w == pytest.approx(2.0 / 1.25)
    tanh_pt = fw.criticality(jnp.tanh)
    assert (tanh_pt.c_b, tanh_pt.c_w, tanh_pt.universality) == (0.0, 1.0, "k_star_zero")
    assert tanh_pt.a1 == pytest.approx(-2.0)  # σ3/σ1 = -2, σ2 = 0
    # GELU: K* = 0 repels (a1 > 0); the nontrivial point must satisfy both conditions.
    gelu_pt = fw.criticality(jax.nn.gelu)
    assert gelu_pt.universality == "nontrivial" and gelu_pt.c_b > 0
    par, perp = fw.susceptibilities(jax.nn.gelu, gelu_pt.k_star, gelu_pt.c_w)
    assert float(par) == pytest.approx(1.0, abs=1e-8) and float(perp) == pytest.approx(1.0)
    k_next = fw.kernel_map(jax.nn.gelu, gelu_pt.k_star, gelu_pt.c_w, gelu_pt.c_b)
    assert float(k_next) == pytest.approx(gelu_pt.k_star, rel=1e-8)
    with pytest.raises(ValueError, match="no critical"):
        fw.criticality(jax.nn.sigmoid)
    with pytest.raises(TypeError, match="activation"):
        fw.criticality("tanh")


@pytest.mark.parametrize("fn", [relu, jnp.tanh, jax.nn.gelu])
def test_chi_parallel_is_derivative_of_kernel_map(x64, fn):
    # χ_∥ is defined as dK^{(ℓ+1)}/dK^{(ℓ)}: compare the ⟨σ'σz⟩/K formula with autodiff of the
    # map itself (an independent computation); rounding-level agreement expected.
    for k in (0.3, 1.7):
        grad = jax.grad(lambda kk: fw.kernel_map(fn, kk, 1.3, 0.1))(k)
        par, _ = fw.susceptibilities(fn, k, 1.3)
        assert float(par) == pytest.approx(float(grad), rel=1e-9)


def test_kernel_recursion_matches_explicit_loop_and_jit_vmap(x64):
    ks = fw.kernel_recursion(jnp.tanh, 1.0, 6, 1.5, 0.2)
    k, ref = 1.0, []
    for _ in range(6):
        ref.append(k)
        k = 0.2 + 1.5 * _quad_reference(lambda z: math.tanh(z) ** 2, k)
    np.testing.assert_allclose(ks, ref, rtol=1e-10)
    c_ws = jnp.array([0.8, 1.0, 1.5])
    batched = jax.jit(jax.vmap(lambda c: fw.kernel_recursion(jnp.tanh, 1.0, 6, c, 0.2)))(c_ws)
    np.testing.assert_allclose(batched[2], ks, rtol=1e-12)
    # critical tanh approaches K ~ 1/(2ℓ): ℓ K^(ℓ) -> 1/2 with O(log ℓ/ℓ) corrections
    deep = fw.kernel_recursion(jnp.tanh, 1.0, 2000, 1.0, 0.0)
    assert 2000 * float(deep[-1]) == pytest.approx(0.5, rel=0.02)


# ------------------------------------------------------------------ vertex
def test_relu_vertex_matches_exact_product_form(x64):
    th = fw.finite_width_recursion(relu, 1.3, 8, 2.0, 0.0)
    np.testing.assert_allclose(th.vertex / th.kernel**2, 5.0 * np.arange(8), rtol=1e-12)
    np.testing.assert_allclose(th.metric_correction, 0.0, atol=1e-12)  # E[z²] exact for ReLU
    exact = fw.scale_invariant_kurtosis(8, 1e6)
    np.testing.assert_allclose(exact * 1e6, th.excess_kurtosis(1.0), rtol=1e-4)  # O(ℓ/n)


def test_output_density_normalised_with_kurtosis(x64):
    f = jnp.linspace(-30.0, 30.0, 60001)
    p = fw.output_density(f, 2.0, 0.7)
    dx = float(f[1] - f[0])
    assert float(jnp.sum(p) * dx) == pytest.approx(1.0, abs=1e-9)
    m4 = float(jnp.sum(p * f**4) * dx)
    assert m4 - 3 * 2.0**2 == pytest.approx(0.7, abs=1e-8)


def _mc_kurtosis(key, fn, depth, width, c_w, c_b, n_networks, method="projected"):
    mom = jax.jit(
        lambda k: fw.sample_preactivations(
            k, fn, jnp.ones(3), depth, width, c_w, c_b, n_networks=n_networks, method=method
        )
    )(key)
    return fw.fourth_cumulant_estimate(mom.m2, mom.m4, 32), fw.second_moment_estimate(mom.m2, 32)


@pytest.mark.slow
def test_relu_exact_kurtosis_vs_monte_carlo_small_width(x64, key):
    # Exact at any width (here n = 16, ℓ/n up to 1/4): only Monte Carlo noise; 32 batch means,
    # 4 points, P(|t_31| > 4.5) ~ 1e-4 each.
    n, depth = 16, 4
    kappa, m2 = _mc_kurtosis(key, relu, depth, n, 2.0, 0.0, 2**15)
    k = 2.0  # K = C_W |x|²/n_0
    theory = k**2 * fw.scale_invariant_kurtosis(depth, float(n))
    z = (kappa.mean - theory) / kappa.se
    assert float(jnp.max(jnp.abs(z))) < 4.5, z
    assert float(jnp.max(jnp.abs((m2.mean - k) / m2.se))) < 4.5


@pytest.mark.slow
def test_tanh_vertex_and_nlo_metric_vs_monte_carlo(x64, key):
    # Leading-order κ4 = 3V/n and E[z²] = K + G1/n at n = 128, depth 5 (depth/width = 0.04;
    # O(1/n²) terms are < 0.5 SE here).
    n, depth = 128, 5
    kappa, m2 = _mc_kurtosis(key, jnp.tanh, depth, n, 1.0, 0.05, 2**15)
    th = fw.finite_width_recursion(jnp.tanh, 1.05, depth, 1.0, 0.05)
    z4 = (kappa.mean - th.fourth_cumulant(n)) / kappa.se
    assert float(jnp.max(jnp.abs(z4))) < 4.5, z4
    assert float(jnp.max(jnp.abs((m2.mean - th.second_moment(n)) / m2.se))) < 4.5


@pytest.mark.slow
def test_dense_and_projected_samplers_agree(key):
    # Same law by rotational invariance; compare E[z²] and κ4 at the last layer (float32, fine
    # for 1e-3-level statistics); difference of two independent estimates in combined SE.
    out = [
        _mc_kurtosis(jax.random.fold_in(key, i), jnp.tanh, 3, 8, 1.5, 0.1, 2048, m)
        for i, m in enumerate(("dense", "projected"))
    ]
    for a, b in ((out[0][0], out[1][0]), (out[0][1], out[1][1])):
        z = (a.mean - b.mean) / jnp.sqrt(a.se**2 + b.se**2)
        assert float(jnp.max(jnp.abs(z))) < 4.5


# ------------------------------------------------------------------ errors
def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="depth"):
        fw.kernel_recursion(jnp.tanh, 1.0, 0, 1.0, 0.0)
    with pytest.raises(ValueError, match="k1"):
        fw.finite_width_recursion(jnp.tanh, -1.0, 3, 1.0, 0.0)
    with pytest.raises(ValueError, match="method"):
        fw.sample_preactivations(
            jax.random.key(0), jnp.tanh, jnp.ones(2), 2, 4, 1.0, 0.0, n_networks=4, method="fast"
        )
    with pytest.raises(ValueError, match="x must be one input"):
        fw.sample_preactivations(
            jax.random.key(0), jnp.tanh, jnp.ones((2, 2)), 2, 4, 1.0, 0.0, n_networks=4
        )
    with pytest.raises(ValueError, match="n_batches"):
        fw.fourth_cumulant_estimate(jnp.ones((10, 2)), jnp.ones((10, 2)), n_batches=8)
