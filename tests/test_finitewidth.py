"""Finite-width theory: quadrature, criticality, vertex recursion vs Monte Carlo."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

from nnlab import finitewidth as fw
from nnlab import layers as nl
from nnlab.evaluate import Comparison


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
SQRT2 = math.sqrt(2.0)


def _mlp(act, depth, width, W_std, b_std=0.0):
    layers = [nl.Dense(width, W_std, b_std, "standard")]
    for _ in range(depth - 1):
        layers += [act, nl.Dense(width, W_std, b_std, "standard")]
    return nl.serial(*layers)


def test_relu_vertex_matches_exact_product_form(x64):
    th = fw.finite_width_recursion(relu, 1.3, 8, SQRT2, 0.0)
    assert th.dims_of("vertex") == ("layer",) and th.coord("layer").tolist() == list(range(1, 9))
    np.testing.assert_allclose(th.vertex / th.kernel**2, 5.0 * np.arange(8), rtol=1e-12)
    np.testing.assert_allclose(th.metric_correction, 0.0, atol=1e-12)  # E[z²] exact for ReLU
    exact = fw.scale_invariant_kurtosis(8, 1e6)
    np.testing.assert_allclose(exact.excess_kurtosis * 1e6, th.excess_kurtosis(1.0), rtol=1e-4)


def test_finite_width_theory_reads_the_network(x64):
    # The network path must equal the explicit recursion with K1 = b_std² + W_std²|x|²/n0.
    x = jnp.array([0.5, -1.0, 2.0])
    net = _mlp(nl.Tanh(), 5, 32, 1.2, 0.3)
    got = fw.finite_width_theory(net, x)
    k1 = 0.3**2 + 1.2**2 * float(x @ x) / 3
    want = fw.finite_width_recursion(nl.Tanh(), k1, 5, 1.2, 0.3)
    for name in want.names:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-12, atol=1e-15)
    rec = got.at_width([16.0, 64.0])
    assert rec.dims_of("fourth_cumulant") == ("width", "layer")
    np.testing.assert_allclose(rec.fourth_cumulant[1], 3.0 * want.vertex / 64.0, rtol=1e-12)
    np.testing.assert_allclose(rec.second_moment[0], want.kernel + want.metric_correction / 16.0)


@pytest.mark.slow
def test_finite_width_theory_under_jit_and_vmap(x64):
    # jit of the network path (W_std traced) and a vmap sweep over W_std, named with
    # with_leading_axis, against the eager recursion (rounding-level agreement).
    x = jnp.array([0.5, -1.0, 2.0])
    net = _mlp(nl.Tanh(), 5, 32, 1.2, 0.3)
    k1 = 0.3**2 + 1.2**2 * float(x @ x) / 3
    want = fw.finite_width_recursion(jnp.tanh, k1, 5, 1.2, 0.3)
    jitted = jax.jit(fw.finite_width_theory)(net, x)
    np.testing.assert_allclose(jitted.vertex, want.vertex, rtol=1e-12)
    ws = jnp.array([0.9, 1.2])
    swept = jax.vmap(lambda w: fw.finite_width_recursion(jnp.tanh, k1, 5, w, 0.3))(ws)
    swept = swept.with_leading_axis("W_std", ws)
    np.testing.assert_allclose(swept.sel(W_std=1.2).vertex, want.vertex, rtol=1e-12)


def test_finite_width_theory_rejects_networks_it_does_not_describe():
    x = jnp.ones(3)
    with pytest.raises(ValueError, match="W_std"):
        fw.finite_width_theory(
            nl.serial(nl.Dense(8, 1.0), nl.Tanh(), nl.Dense(8, 1.0), nl.Tanh(), nl.Dense(8, 2.0)), x
        )
    with pytest.raises(ValueError, match="parameterization"):
        fw.finite_width_theory(
            nl.serial(nl.Dense(8, parameterization="mup", role="input"), nl.Relu(), nl.Dense(8)), x
        )
    with pytest.raises(ValueError, match="same layer"):
        fw.finite_width_theory(
            nl.serial(nl.Dense(8), nl.LeakyRelu(0.1), nl.Dense(8), nl.LeakyRelu(0.2), nl.Dense(8)),
            x,
        )
    with pytest.raises(TypeError, match="alternate"):
        fw.finite_width_theory(nl.serial(nl.Dense(8), nl.Relu()), x)
    with pytest.raises(TypeError, match="network"):
        fw.sample_preactivations(jax.random.key(0), jnp.tanh, x, n_networks=4)


def test_output_density_normalised_with_kurtosis(x64):
    f = jnp.linspace(-30.0, 30.0, 60001)
    p = fw.output_density(f, 2.0, 0.7)
    dx = float(f[1] - f[0])
    assert float(jnp.sum(p) * dx) == pytest.approx(1.0, abs=1e-9)
    m4 = float(jnp.sum(p * f**4) * dx)
    assert m4 - 3 * 2.0**2 == pytest.approx(0.7, abs=1e-8)


def test_output_density_bins_are_exact_bin_averages(x64):
    # Closed-form bin averages vs adaptive quadrature of the Edgeworth density over each bin
    # (the density N(f; 0, K)[1 + κ4/(24K²) He4(f/√K)] written out in plain Python).
    edges = np.array([-4.0, -1.5, -0.2, 0.3, 2.0, 5.0])
    k = 1.7
    rec = fw.output_density_bins(edges, k, 0.9)

    def density(f, kappa):
        x = f / math.sqrt(k)
        he4 = x**4 - 6 * x**2 + 3
        return math.exp(-x * x / 2) / math.sqrt(2 * math.pi * k) * (1 + kappa / (24 * k**2) * he4)

    for name, kappa in (("density", 0.9), ("nngp", 0.0)):
        ref = [
            integrate.quad(density, a, b, args=(kappa,), epsabs=1e-14)[0] / (b - a)
            for a, b in itertools.pairwise(edges)
        ]
        np.testing.assert_allclose(rec[name], ref, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(rec.coord("f"), 0.5 * (edges[1:] + edges[:-1]))
    # and the pointwise density agrees with the same formula
    assert float(fw.output_density(0.7, k, 0.9)) == pytest.approx(density(0.7, 0.9), rel=1e-12)


def test_output_histogram_matches_numpy():
    samples = np.random.default_rng(0).normal(size=(64, 5))
    edges = np.linspace(-2.0, 2.0, 9)
    rec = fw.output_histogram(samples, edges, n_batches=4)
    assert rec.dims_of("density") == ("seed", "f")
    for b in range(4):
        v = samples[16 * b : 16 * (b + 1)].ravel()
        want = np.histogram(v, edges)[0] / (v.size * 0.5)
        np.testing.assert_allclose(rec.density[b], want, rtol=1e-6)


# ------------------------------------------------------------------ Monte Carlo
def test_moment_batches_agree_with_estimates():
    rng = np.random.default_rng(0)
    m2 = rng.uniform(size=(40, 3)) + 0.5
    m4 = 3 * m2**2 + rng.uniform(size=(40, 3))
    mom = fw.PreactivationMoments(
        {"m2": (("network", "layer"), m2), "m4": (("network", "layer"), m4)},
        {"layer": np.arange(1, 4)},
    )
    batches = fw.moment_batches(mom, n_batches=8)
    for name, est in (
        ("second_moment", fw.second_moment_estimate(m2, 8)),
        ("fourth_cumulant", fw.fourth_cumulant_estimate(m2, m4, 8)),
    ):
        assert batches.dims_of(name) == ("seed", "layer")
        got = batches.estimate(name)
        np.testing.assert_allclose(got.mean, est.mean, rtol=1e-6)
        np.testing.assert_allclose(got.standard_error, est.standard_error, rtol=1e-6)
    # batch means by hand: batch b holds networks 5b..5b+4
    np.testing.assert_allclose(batches.second_moment[2], m2[10:15].mean(0), rtol=1e-6)


def test_relu_theory_and_monte_carlo_records_compare(x64, key):
    # One ReLU network definition per W_std -> theory records and Monte Carlo records, lined up
    # by axis name. ReLU with C_b = 0 is exact at every width (E[z²] = K, G1 = 0; κ4 from the
    # product form), so only Monte Carlo noise remains: 32 batch means, at most 2 x 3 points,
    # each z ~ t_31, P(|t_31| > 4.5) ~ 9e-5 per point.
    x, n, w_stds = jnp.ones(3), 32, [1.2, SQRT2]

    def make(w_std):
        return _mlp(nl.Relu(), 3, n, w_std)

    theory = fw.sweep_theory(make, w_stds, "W_std", x, n)
    sim = fw.sweep_moments(key, make, w_stds, "W_std", x, n_networks=8192, method="projected")
    assert sim.dims_of("fourth_cumulant") == ("W_std", "seed", "layer")
    second = Comparison.from_records(
        "m2", theory, sim, "second_moment", metric="max_z", tolerance=4.5
    )
    assert second.axes == ("layer", "W_std") and second.n_seeds == 32
    assert second.passed, second.value
    exact = fw.scale_invariant_kurtosis(3, float(n), kernel=2.0)  # K = C_W |x|²/n0 = 2
    critical = sim.sel(W_std=SQRT2)
    kappa = Comparison.from_records(
        "k4", exact, critical, "fourth_cumulant", metric="max_z", tolerance=4.5
    )
    assert kappa.passed, kappa.value
    # and the 1/n effect is resolved: κ4 at the last layer is many SE from 0 (Gaussian)
    assert float(kappa.sim_mean[-1] / kappa.sim_se[-1]) > 10


@pytest.mark.slow
def test_dense_sampler_draws_the_nnlab_network(x64, key):
    # 'dense' must be net.init + net.apply of the nnlab network (here with a bias-free 'ntk'
    # layer): rebuild networks from their keys and compare to rounding.
    x = jnp.array([1.0, -0.5, 2.0])
    net = nl.serial(nl.Dense(8, 1.5, 0.2, "standard"), nl.Tanh(), nl.Dense(8, 1.5, None, "ntk"))
    mom = fw.sample_preactivations(key, net, x, n_networks=3, method="dense")
    assert mom.dims_of("m4") == ("network", "layer")
    assert mom.dims_of("last") == ("network", "neuron")
    for i, k in enumerate(jax.random.split(key, 3)):
        out = net.apply(net.init(k, (1, 3))[1], x[None])[0]
        np.testing.assert_allclose(mom.last[i], out, rtol=1e-12)
        np.testing.assert_allclose(mom.m2[i, -1], jnp.mean(out**2), rtol=1e-12)


def _mc_kurtosis(key, act, depth, width, W_std, b_std, n_networks, method="projected"):
    net = _mlp(act, depth, width, W_std, b_std)
    mom = fw.sample_preactivations(key, net, jnp.ones(3), n_networks=n_networks, method=method)
    return fw.fourth_cumulant_estimate(mom.m2, mom.m4, 32), fw.second_moment_estimate(mom.m2, 32)


@pytest.mark.slow
def test_relu_exact_kurtosis_vs_monte_carlo_small_width(x64, key):
    # Exact at any width (here n = 16, ℓ/n up to 1/4): only Monte Carlo noise; 32 batch means,
    # 4 points, P(|t_31| > 4.5) ~ 1e-4 each.
    n, depth = 16, 4
    kappa, m2 = _mc_kurtosis(key, nl.Relu(), depth, n, SQRT2, 0.0, 2**15)
    k = 2.0  # K = C_W |x|²/n_0
    theory = k**2 * fw.scale_invariant_kurtosis(depth, float(n)).excess_kurtosis
    z = (kappa.mean - theory) / kappa.standard_error
    assert float(jnp.max(jnp.abs(z))) < 4.5, z
    assert float(jnp.max(jnp.abs((m2.mean - k) / m2.standard_error))) < 4.5


@pytest.mark.slow
def test_tanh_vertex_and_nlo_metric_vs_monte_carlo(x64, key):
    # Leading-order κ4 = 3V/n and E[z²] = K + G1/n at n = 128, depth 5 (depth/width = 0.04;
    # O(1/n²) terms are < 0.5 SE here). C_W = 1, C_b = 0.05.
    n, depth, b_std = 128, 5, math.sqrt(0.05)
    kappa, m2 = _mc_kurtosis(key, nl.Tanh(), depth, n, 1.0, b_std, 2**15)
    th = fw.finite_width_recursion(jnp.tanh, 1.05, depth, 1.0, b_std)
    z4 = (kappa.mean - th.fourth_cumulant(n)) / kappa.standard_error
    assert float(jnp.max(jnp.abs(z4))) < 4.5, z4
    z2 = (m2.mean - th.second_moment(n)) / m2.standard_error
    assert float(jnp.max(jnp.abs(z2))) < 4.5, z2


@pytest.mark.slow
def test_dense_and_projected_samplers_agree(key):
    # Same law by rotational invariance; compare E[z²] and κ4 at the last layer (float32, fine
    # for 1e-3-level statistics); difference of two independent estimates in combined SE.
    # C_W = 1.5, C_b = 0.1.
    out = [
        _mc_kurtosis(jax.random.fold_in(key, i), nl.Tanh(), 3, 8, 1.5**0.5, 0.1**0.5, 2048, m)
        for i, m in enumerate(("dense", "projected"))
    ]
    for a, b in ((out[0][0], out[1][0]), (out[0][1], out[1][1])):
        z = (a.mean - b.mean) / jnp.sqrt(a.standard_error**2 + b.standard_error**2)
        assert float(jnp.max(jnp.abs(z))) < 4.5


# ------------------------------------------------------------------ errors
def test_bad_inputs_raise():
    net = _mlp(nl.Tanh(), 2, 4, 1.0)
    with pytest.raises(ValueError, match="depth"):
        fw.kernel_recursion(jnp.tanh, 1.0, 0, 1.0, 0.0)
    with pytest.raises(ValueError, match="k1"):
        fw.finite_width_recursion(jnp.tanh, -1.0, 3, 1.0, 0.0)
    with pytest.raises(ValueError, match="W_std"):
        fw.finite_width_recursion(jnp.tanh, 1.0, 3, jnp.ones(2), 0.0)
    with pytest.raises(ValueError, match="method"):
        fw.sample_preactivations(jax.random.key(0), net, jnp.ones(2), n_networks=4, method="fast")
    with pytest.raises(ValueError, match="x must be one input"):
        fw.sample_preactivations(jax.random.key(0), net, jnp.ones((2, 2)), n_networks=4)
    with pytest.raises(ValueError, match="n_batches"):
        fw.fourth_cumulant_estimate(jnp.ones((10, 2)), jnp.ones((10, 2)), n_batches=8)
    with pytest.raises(ValueError, match="edges"):
        fw.output_density_bins([1.0, 0.0], 1.0, 0.0)


# ------------------------------------------------------------------ library helpers
def test_critical_mlp_at_the_critical_point(x64):
    # Independent values: ReLU C_W = 2; tanh C_W = 1/tanh'(0)² = 1; erf C_W = 1/erf'(0)² = π/4
    # (σ'(0) = 2/√π); C_b = 0 for all three (RYH 2021, §5.2-5.3).
    for act, w_std in (("relu", math.sqrt(2.0)), ("tanh", 1.0), ("erf", math.sqrt(math.pi) / 2)):
        net = fw.critical_mlp(act, 4, 16)
        dense = net.layers[0::2]
        assert len(dense) == 4 and [d.out for d in dense] == [16] * 4
        assert all(d.parameterization == "standard" for d in dense)
        for d in dense:
            assert d.W_std == pytest.approx(w_std, rel=1e-12) and d.b_std == 0.0
    off = fw.critical_mlp("tanh", 3, 8, 1.5)  # W_std overridden, b_std still critical
    assert [(d.W_std, d.b_std) for d in off.layers[0::2]] == [(1.5, 0.0)] * 3
    point = fw.criticality(jax.nn.gelu)  # nontrivial class: C_b > 0
    assert (point.W_std, point.b_std) == (math.sqrt(point.c_w), math.sqrt(point.c_b))
    with pytest.raises(ValueError, match="activation"):
        fw.critical_mlp("identity", 3, 8)
    with pytest.raises(ValueError, match="depth"):
        fw.critical_mlp("relu", 1, 8)


def test_from_layer_matches_slicing():
    rec = fw.scale_invariant_kurtosis(5, [8.0, 16.0], kernel=2.0)
    deep = fw.from_layer(rec, 3)
    assert deep.coord("layer").tolist() == [3, 4, 5]
    for name in rec.names:
        assert deep.dims_of(name) == ("width", "layer")
        np.testing.assert_array_equal(deep[name], np.asarray(rec[name])[:, 2:])
    np.testing.assert_array_equal(deep.coord("width"), rec.coord("width"))
    with pytest.raises(TypeError, match="'layer' axis"):
        fw.from_layer(fw.output_density_bins([0.0, 1.0], 1.0, 0.0), 2)


def test_depth_exponent_matches_a_log_log_least_squares_fit(x64):
    th = fw.finite_width_recursion(jnp.tanh, 1.0, 24, 1.0, 0.0)
    ells = np.arange(8, 25)
    slope = np.polyfit(np.log(ells), np.log(np.asarray(th.kernel)[7:]), 1)[0]
    assert fw.depth_exponent(th, "kernel", first=8).exponent == pytest.approx(slope, rel=1e-10)
    # a Monte Carlo record is fitted through its mean over 'seed'
    batches = fw.moment_batches(
        fw.sample_preactivations(jax.random.key(1), fw.critical_mlp("tanh", 6, 8), jnp.ones(2),
                                 n_networks=64),
        n_batches=4,
    )  # fmt: skip
    mean = np.asarray(batches.second_moment).mean(0)
    slope = np.polyfit(np.log(np.arange(2, 7)), np.log(mean[1:]), 1)[0]
    assert fw.depth_exponent(batches, first=2).exponent == pytest.approx(slope, rel=1e-6)


def test_density_correction_is_the_edgeworth_term(x64, key):
    # One hidden ReLU layer at criticality on |x|² = n0: K = 2, V^(2) = C_W²(⟨σ⁴⟩ − ⟨σ²⟩²)
    # = 4 (3K²/2 − K²/4) = 5K² = 20, κ4 = 3V/n. Theory: bin averages of
    # κ4/(24K²) He4(f/√K) N(f; 0, K), here by scipy quadrature.
    n, k = 16, 2.0
    kappa = 3.0 * 20.0 / n
    net = fw.critical_mlp("relu", 2, n)
    theory, sim = fw.density_correction(key, net, jnp.ones(3), n_networks=2048, n_bins=8,
                                        n_batches=16)  # fmt: skip
    edges = np.linspace(-3.0, 3.0, 9) * math.sqrt(k)

    def term(f):
        x = f / math.sqrt(k)
        he4 = x**4 - 6 * x**2 + 3
        return kappa / (24 * k**2) * he4 * math.exp(-f * f / (2 * k)) / math.sqrt(2 * math.pi * k)

    want = [integrate.quad(term, a, b)[0] / (b - a) for a, b in itertools.pairwise(edges)]
    np.testing.assert_allclose(theory.density, want, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(theory.coord("f"), 0.5 * (edges[1:] + edges[:-1]))
    assert sim.dims_of("density") == ("seed", "f") and sim.density.shape == (16, 8)
    c = Comparison.from_records("d", theory, sim, "density", metric="max_z", tolerance=4.5)
    assert c.passed, c


def test_susceptibility_figure_draws_the_susceptibilities():
    # ReLU: χ_∥ = χ_⊥ = C_W/2 at every K, so the lines are flat at the factors.
    k = jnp.geomspace(0.1, 10.0, 7)
    fig = fw.susceptibility_figure({"relu": relu, "tanh": jnp.tanh}, k=k, title="t")
    ax_relu, ax_tanh = fig.axes
    lines = [ln for ln in ax_relu.lines if ln.get_label().startswith("χ")]
    assert len(lines) == 6
    for line, factor in zip(lines, [0.8, 1.0, 1.2, 0.8, 1.0, 1.2], strict=True):
        np.testing.assert_allclose(line.get_xdata(), k)
        np.testing.assert_allclose(line.get_ydata(), factor, rtol=1e-6)
    chi_par = next(ln for ln in ax_tanh.lines if ln.get_label() == "χ_∥, W_std²=1")
    want = fw.susceptibilities(jnp.tanh, k, 1.0)[0]
    np.testing.assert_allclose(chi_par.get_ydata(), want, rtol=1e-6)
    assert fig._suptitle.get_text() == "t"


def test_kurtosis_figure_draws_theory_exact_and_monte_carlo(key):
    widths, depth = [8, 16], 4
    make = lambda n: fw.critical_mlp("relu", depth, n)  # noqa: E731
    sims = fw.sweep_moments(key, make, widths, "width", jnp.ones(2), n_networks=128, n_batches=8)
    th = fw.finite_width_theory(make(8), jnp.ones(2))
    exact = fw.scale_invariant_kurtosis(depth, widths)
    fig = fw.kurtosis_figure({"relu": th}, {"relu": sims}, exact={"relu": exact})
    ax = fig.axes[0]
    ells = np.arange(1, depth + 1)
    est = sims.estimate("fourth_cumulant")
    dotted = [ln for ln in ax.lines if ln.get_linestyle() == ":"]
    solid = [ln for ln in ax.lines if ln.get_linestyle() == "-"]
    markers = [ln for ln in ax.lines if ln.get_marker() == "o"]
    for i, n in enumerate(widths):
        # exact product form 3[(1 + 5/n)^(ℓ-1) - 1] and leading order 15(ℓ-1)/n, by hand
        np.testing.assert_allclose(dotted[i].get_ydata(), 3 * ((1 + 5 / n) ** (ells - 1) - 1),
                                   rtol=1e-5)  # fmt: skip
        np.testing.assert_allclose(solid[i].get_ydata(), 15 * (ells - 1) / n, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(markers[i].get_xdata(), ells / n)
        np.testing.assert_allclose(markers[i].get_ydata(), np.asarray(est.mean[i]) / 4.0, rtol=1e-5)
    assert "exact" in ax.get_title()
