"""Activations of the kernel engine: closed forms against quadrature, Monte Carlo,
known kernels, the neural-tangents reference, float32 stability, jit/vmap/grad, errors."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnlab
from nnlab import layers as nl
from nnlab.kernels import input_kernel

# neural-tangents 0.6.5 values (see tests/data/neural_tangents/README.md)
REFERENCE = Path(__file__).resolve().parent / "data" / "neural_tangents"

SMOOTH = {
    "Erf": nl.Erf(),
    "Erf(a,b,c)": nl.Erf(a=0.7, b=1.3, c=0.2),
    "Gelu": nl.Gelu(),
    "Sin": nl.Sin(),
    "Sin(a,b,c)": nl.Sin(a=0.7, b=1.3, c=0.4),
    "Cos(a,b,c)": nl.Cos(a=0.5, b=0.8, c=-0.3),
    "Rbf": nl.Rbf(gamma=0.7),
    "Gaussian": nl.Gaussian(a=1.2, width=0.8),
    **{f"Monomial({q})": nl.Monomial(q) for q in range(5)},
}
NONSMOOTH_KINK = {
    "Relu": nl.Relu(),
    "LeakyRelu": nl.LeakyRelu(0.1),
    "ABRelu": nl.ABRelu(-0.4, 1.2),
    "Abs": nl.Abs(),
}
NONSMOOTH_JUMP = {"Step": nl.Step(), "Sign": nl.Sign()}
QUADRATURE_ONLY = {
    "Tanh": nl.Tanh(),
    "Sigmoid": nl.Sigmoid(),
    "Softplus": nl.Softplus(),
    "Swish": nl.Swish(),
    "Elementwise(sin²)": nl.Elementwise(lambda x: jnp.sin(x) ** 2),
}
ALL = {**SMOOTH, **NONSMOOTH_KINK, **NONSMOOTH_JUMP, **QUADRATURE_ONLY}


def gaussian_kernel(w_std=1.3, b_std=0.4):
    """The kernel after one Dense layer of random inputs: (5, 4) cross block."""
    x1 = jax.random.normal(jax.random.key(1), (5, 3))
    x2 = jax.random.normal(jax.random.key(2), (4, 3))
    return nl.Dense(8, W_std=w_std, b_std=b_std).kernel(input_kernel(x1, x2))


def max_error(k, ref):
    return max(
        float(jnp.max(jnp.abs(getattr(k, f) - getattr(ref, f)))) for f in ("nngp", "ntk", "cov1")
    )


# ----------------------------------------------------------------------------- quadrature


@pytest.mark.parametrize("name", list(SMOOTH))
def test_closed_form_matches_quadrature_smooth(x64, name):
    act = SMOOTH[name]
    k = gaussian_kernel()
    ref = act.kernel(k)
    quad = nl.Elementwise(act.fn, degree=128).kernel(k)
    # Analytic integrands: Gauss-Hermite converges exponentially; at 128 nodes the measured
    # difference is ~1e-13, so 1e-6 (the brief's bar) leaves a wide margin yet catches any
    # wrong coefficient or convention (those give O(1e-2) and above).
    for field in ("nngp", "ntk", "cov1", "cov2"):
        np.testing.assert_allclose(getattr(quad, field), getattr(ref, field), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", list(NONSMOOTH_KINK) + list(NONSMOOTH_JUMP))
def test_closed_form_matches_quadrature_nonsmooth(x64, name):
    """Kinks (ReLU family: T has a kink, Ṫ a jump) and jumps (Step, Sign).

    The polar rule of nnlab.layers._quadrature splits the circle at the angles of the
    lines u = 0 and v = 0 where these kinks and jumps sit, so the integrand is smooth on
    every piece and the rule converges exponentially (a product Gauss-Hermite rule
    converges only like n^-0.7..n^-1 here). Measured max error (nngp, ntk, cov1) at
    degrees 16..128: <= 6e-14 of the kernel's scale; asserted 1e-12 at every degree.
    """
    act = {**NONSMOOTH_KINK, **NONSMOOTH_JUMP}[name]
    k = gaussian_kernel()
    ref = act.kernel(k)
    degrees = np.array([16, 32, 64, 128])
    errors = np.array(
        [max_error(nl.Elementwise(act.fn, degree=int(d)).kernel(k), ref) for d in degrees]
    )
    scale = max(float(jnp.max(jnp.abs(ref.nngp))), float(jnp.max(jnp.abs(ref.ntk))))
    assert np.all(errors < 1e-12 * scale), errors


def test_quadrature_is_exact_for_polynomials(x64):
    # A degree-n product Gauss-Hermite rule integrates polynomials of degree < 2n exactly in
    # each variable: x^5 needs 3 nodes per dimension (u^5 v^5 has degree 10 in z1, so take
    # n = 6). The layers' polar rule is not exact for polynomials but converges
    # exponentially: at its default degree it matches to the same 1e-12 (measured 5e-14).
    k = gaussian_kernel()
    ref = nl.Monomial(5).kernel(k)
    a, b = k.marginals()
    t, tdot = nl.gauss_hermite_kernel(lambda x: x**5, None, k.nngp, a, b, True, 6)
    want_t, want_tdot = nl.Monomial(5).kernel_fns(k.nngp, a, b, True)
    np.testing.assert_allclose(t, want_t, rtol=1e-12)
    np.testing.assert_allclose(tdot, want_tdot, rtol=1e-12)
    quad = nl.Elementwise(lambda x: x**5).kernel(k)
    np.testing.assert_allclose(quad.nngp, ref.nngp, rtol=1e-12)
    np.testing.assert_allclose(quad.ntk, ref.ntk, rtol=1e-12)


# ----------------------------------------------------------------------------- Monte Carlo


@pytest.mark.parametrize("name", list(ALL))
def test_monte_carlo_gaussian_pair(x64, name):
    """T = E[φ(u)φ(v)] and Ṫ = E[φ'(u)φ'(v)] against 2^17 direct samples, within 4 SE."""
    act = ALL[name]
    c = jnp.array([[0.5, -0.9, 1.4, 0.0]])
    v1 = jnp.array([[1.0, 1.2, 2.0, 0.7]])
    v2 = jnp.array([[1.5, 0.8, 1.1, 1.3]])
    t, tdot = act.kernel_fns(c, v1, v2, True)
    z = jax.random.normal(jax.random.key(3), (2, 1 << 17, 1))
    rho = c / jnp.sqrt(v1 * v2)
    u = jnp.sqrt(v1) * z[0]
    v = jnp.sqrt(v2) * (rho * z[0] + jnp.sqrt(1 - rho**2) * z[1])
    dphi = jax.vmap(jax.vmap(jax.grad(act.fn)))  # independent of any fn_prime shortcut
    n = z.shape[1]
    for samples, analytic in ((act.fn(u) * act.fn(v), t), (dphi(u) * dphi(v), tdot)):
        mean = samples.mean(0)
        se = samples.std(0) / np.sqrt(n)
        assert np.all(np.abs(mean - analytic[0]) <= 4 * se + 1e-12), (mean, analytic, se)


FINITE = {"Gelu": nl.Gelu(), "Tanh": nl.Tanh(), "Sin": nl.Sin(b=1.5), "Step": nl.Step()}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FINITE))
def test_finite_network_nngp(x64, name):
    """Empirical output covariance of width-1024 two-hidden-layer networks over 16 seeds.

    Each seed gives f f^T / 256 over 256 iid readout units; seeds are independent, so
    the standard error is the seeds' standard deviation / 4. The finite-width bias is
    O(1/width) ~ 1e-3 relative, well below 4 SE (~5e-2 relative here).
    """
    act = FINITE[name]
    net = nl.serial(
        nl.Dense(1024, W_std=1.5, b_std=0.3),
        act,
        nl.Dense(1024, W_std=1.5, b_std=0.3),
        act,
        nl.Dense(256, W_std=1.2, b_std=0.2),
    )
    x = jax.random.normal(jax.random.key(4), (4, 3))
    analytic = nnlab.kernel(net, x, get="nngp")

    def empirical(key):
        _, params = net.init(key, x.shape)
        f = net.apply(params, x)
        return f @ f.T / f.shape[1]

    samples = jax.vmap(empirical)(jax.random.split(jax.random.key(5), 16))
    se = samples.std(0, ddof=1) / 4.0
    np.testing.assert_array_less(jnp.abs(samples.mean(0) - analytic), 4 * se)


@pytest.mark.slow
def test_finite_network_ntk_gelu(x64):
    """Empirical NTK Σ_θ ∂f/∂θ ∂f/∂θ of a width-512 Gelu network, 32 seeds, within 4 SE."""
    net = nl.serial(
        nl.Dense(512, W_std=1.4, b_std=0.3), nl.Gelu(), nl.Dense(1, W_std=1.1, b_std=0.2)
    )
    x = jax.random.normal(jax.random.key(6), (3, 2))
    analytic = nnlab.kernel(net, x, get="ntk")

    def entk(key):
        _, params = net.init(key, x.shape)
        jac = jax.jacrev(lambda p: net.apply(p, x)[:, 0])(params)
        leaves = [j.reshape(x.shape[0], -1) for j in jax.tree.leaves(jac)]
        return sum(j @ j.T for j in leaves)

    samples = jax.vmap(entk)(jax.random.split(jax.random.key(7), 32))
    se = samples.std(0, ddof=1) / np.sqrt(32)
    np.testing.assert_array_less(jnp.abs(samples.mean(0) - analytic), 4 * se)


# ----------------------------------------------------------------------------- known kernels


W1, B1, W2, B2 = 1.6, 0.3, 0.9, 0.2  # the two-layer net Dense(16) -> act -> Dense(1)


def _first_layer(seed):
    """Inputs (5, 4) and (3, 4) and the first Dense's NNGP ``k12`` and variances, in numpy."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=(5, 4)), rng.normal(size=(3, 4))
    k12 = W1**2 * x1 @ x2.T / 4 + B1**2
    k11 = W1**2 * np.sum(x1 * x1, 1) / 4 + B1**2
    k22 = W1**2 * np.sum(x2 * x2, 1) / 4 + B1**2
    return x1, x2, k12, k11, k22


def _assert_two_layer(act, x1, x2, k12, t, tdot):
    """The two-layer net's kernel against the numpy ``T`` and ``Ṫ`` of ``act``."""
    net = nl.serial(nl.Dense(16, W_std=W1, b_std=B1), act, nl.Dense(1, W_std=W2, b_std=B2))
    k = nnlab.kernel(net, jnp.asarray(x1), jnp.asarray(x2))
    np.testing.assert_allclose(k.nngp, W2**2 * t + B2**2, rtol=1e-12)
    np.testing.assert_allclose(k.ntk, W2**2 * t + B2**2 + W2**2 * tdot * k12, rtol=1e-12)


def test_relu_arccos_kernel_numpy(x64):
    """Cho & Saul (2009) arc-cosine kernel of degree 1 written independently in numpy."""
    x1, x2, k12, k11, k22 = _first_layer(0)
    norm = np.sqrt(np.outer(k11, k22))
    theta = np.arccos(np.clip(k12 / norm, -1, 1))
    t = norm * (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / (2 * np.pi)
    tdot = (np.pi - theta) / (2 * np.pi)
    _assert_two_layer(nl.Relu(), x1, x2, k12, t, tdot)


def test_erf_arcsine_kernel_numpy(x64):
    """Williams (1997) arcsine kernel written independently in numpy."""
    x1, x2, k12, k11, k22 = _first_layer(1)
    denom = np.outer(1 + 2 * k11, 1 + 2 * k22)
    t = 2 / np.pi * np.arcsin(2 * k12 / np.sqrt(denom))
    tdot = 4 / np.pi / np.sqrt(denom - 4 * k12**2)
    _assert_two_layer(nl.Erf(), x1, x2, k12, t, tdot)


def test_gelu_uncorrelated_limit(x64):
    """At c = 0 the Gelu kernel factorises: E[uΦ(u)] = v/sqrt(2π(1+v)), E[φ'] = 1/2."""
    v1, v2 = jnp.array([0.3, 2.0, 7.0]), jnp.array([1.1, 0.4, 9.0])
    t, tdot = nl.Gelu().kernel_fns(jnp.zeros(3), v1, v2, True)
    mean = lambda v: v / np.sqrt(2 * np.pi * (1 + v))  # noqa: E731
    np.testing.assert_allclose(t, mean(v1) * mean(v2), rtol=1e-13)
    np.testing.assert_allclose(tdot, 0.25, rtol=1e-13)


def test_monomial_isserlis(x64):
    """E[u^q v^q] by counting Isserlis pairings for q = 2, 3: 2c² + v1v2, 6c³ + 9c v1v2."""
    c, v1, v2 = jnp.array(0.4), jnp.array(1.3), jnp.array(0.7)
    t2, d2 = nl.Monomial(2).kernel_fns(c, v1, v2, True)
    t3, d3 = nl.Monomial(3).kernel_fns(c, v1, v2, True)
    np.testing.assert_allclose(t2, 2 * c**2 + v1 * v2, rtol=1e-14)
    np.testing.assert_allclose(d2, 4 * c, rtol=1e-14)
    np.testing.assert_allclose(t3, 6 * c**3 + 9 * c * v1 * v2, rtol=1e-14)
    np.testing.assert_allclose(d3, 9 * (2 * c**2 + v1 * v2), rtol=1e-14)


# ----------------------------------------------------------------------------- neural-tangents


@pytest.mark.parametrize("arch", ["mlp_gelu_1", "mlp_relu_2", "mlp_erf_1", "mlp_relu_1_standard"])
def test_neural_tangents_reference(x64, arch):
    spec = json.loads((REFERENCE / "neural_tangents_kernels.json").read_text())[arch]
    ref = np.load(REFERENCE / "neural_tangents_kernels.npz")
    net = nl.serial(*[getattr(nl, name)(**kwargs) for name, kwargs in spec])
    x1, x2 = jnp.asarray(ref["x1"]), jnp.asarray(ref["x2"])
    k12, k11 = nnlab.kernel(net, x1, x2), nnlab.kernel(net, x1)
    # Both libraries work in float64; measured agreement is 1e-15 except on the NTK
    # diagonal, where the angle arccos(ρ) of ρ = 1 - O(eps) is sqrt(2 eps) ~ 2e-8 and the
    # two libraries clip ρ differently: up to ~1e-9 relative. Hence rtol 1e-8.
    for name, got in (
        ("nngp12", k12.nngp),
        ("ntk12", k12.ntk),
        ("nngp11", k11.nngp),
        ("ntk11", k11.ntk),
    ):
        want = ref[f"{arch}/{name}"]
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-8 * np.abs(want).max())


# ----------------------------------------------------------------------------- float32


CLOSED = {**SMOOTH, **NONSMOOTH_KINK, **NONSMOOTH_JUMP}


# Monomials overflow with their own value; Erf's Ṫ is the lead's (reported: it is inf at
# ρ = ±1 once 2v/(1+2v) rounds to 1 in float32, v ≳ 1e8).
HUGE = [n for n in CLOSED if not n.startswith(("Monomial", "Erf"))]


@pytest.mark.parametrize("name", HUGE)
def test_float32_huge_variances(name):
    """Variances ~1e30 (deep nets with large W_std) stay finite and match float64."""
    act = CLOSED[name]
    c = np.array([5e29, -3e29, 1e30, 2e30, 0.0])
    v1 = np.array([1e30, 1e30, 1e30, 2e30, 3e29])
    v2 = np.array([8e29, 5e29, 1e30, 2e30, 4e29])
    t32, d32 = act.kernel_fns(*(jnp.asarray(a, jnp.float32) for a in (c, v1, v2)), True)
    assert np.all(np.isfinite(t32)) and np.all(np.isfinite(d32)), (t32, d32)
    with jax.enable_x64(True):
        t64, d64 = act.kernel_fns(*(jnp.asarray(a) for a in (c, v1, v2)), True)
        t64, d64 = np.asarray(t64), np.asarray(d64)
    # Entries with |ρ| = 1 (third, fourth) are snapped to ±1 by correlation(); off the
    # diagonal the float32 rounding of ρ (~1e-7) moves T by ~1e-6 relative, and the
    # arccos/arcsin kernels amplify it to at most sqrt(eps) ~ 3e-4: hence 1e-3.
    scale = max(np.abs(t64).max(), 1e-30)
    np.testing.assert_allclose(t32, t64, rtol=1e-3, atol=1e-3 * scale)
    np.testing.assert_allclose(d32, d64, rtol=1e-3, atol=1e-3 * max(np.abs(d64).max(), 1e-30))


@pytest.mark.slow
@pytest.mark.parametrize("act", [nl.Relu(), nl.Erf(), nl.Gelu()], ids=["Relu", "Erf", "Gelu"])
def test_float32_deep_stack_finite(act):
    """20 layers, W_std = 5, b_std = 0.5: finite NNGP/NTK in float32, equal to float64.

    For ReLU/GELU the variance grows like (W_std²/2)^depth ~ 1e22, so v1 v2 overflows
    float32 (neural-tangents returns NaN here, its issue #197). Relative agreement with
    float64 to 1e-3: 20 layers of O(eps) rounding amplified by the chaotic phase (the
    correlation map's slope > 1 multiplies off-diagonal errors at every layer).
    """
    x = jax.random.normal(jax.random.key(8), (3, 4))
    net = nl.serial(*([nl.Dense(8, W_std=5.0, b_std=0.5), act] * 20), nl.Dense(1))
    k = nnlab.kernel(net, x)
    assert bool(jnp.all(jnp.isfinite(k.nngp)) & jnp.all(jnp.isfinite(k.ntk)))
    with jax.enable_x64(True):
        k64 = nnlab.kernel(net, jnp.asarray(np.asarray(x), jnp.float64))
        ntk64, nngp64 = np.asarray(k64.ntk), np.asarray(k64.nngp)
    np.testing.assert_allclose(np.asarray(k.ntk, np.float64), ntk64, rtol=1e-3)
    np.testing.assert_allclose(np.asarray(k.nngp, np.float64), nngp64, rtol=1e-3)


@pytest.mark.parametrize(
    "act",
    [nl.Step(), nl.Sign(), nl.Sin(), nl.Gaussian(), nl.Rbf(), nl.Tanh()],
    ids=["Step", "Sign", "Sin", "Gaussian", "Rbf", "Tanh"],
)
def test_float32_moderately_deep_finite(act):
    """4 layers with W_std = 3 in float32: finite kernels and finite gradients.

    (Gelu, Relu and Erf are covered by the 20-layer test above and by the float64
    finite-difference gradient test; Gelu's XLA compile time grows fast with depth.)
    """
    x = jax.random.normal(jax.random.key(9), (3, 4))

    def ntk(w):
        net = nl.serial(*([nl.Dense(8, W_std=w, b_std=0.5), act] * 4), nl.Dense(1))
        return nnlab.kernel(net, x, get="ntk")

    assert bool(jnp.all(jnp.isfinite(ntk(3.0))))
    assert np.isfinite(float(jax.grad(lambda w: ntk(w).sum())(3.0)))


# ----------------------------------------------------------------------------- jit / vmap / grad


def _mixed_net(w=1.4):
    return nl.serial(
        nl.Dense(16, W_std=w, b_std=0.3),
        nl.Gelu(),
        nl.Dense(16, W_std=w, b_std=0.2),
        nl.Tanh(),
        nl.Dense(16, W_std=w, b_std=0.1),
        nl.Sin(b=0.8),
        nl.Dense(1),
    )


def test_jit_and_vmap_match_eager(x64):
    net = _mixed_net()
    xs = jax.random.normal(jax.random.key(10), (3, 4, 5))
    x2 = jax.random.normal(jax.random.key(11), (2, 5))
    eager = [nnlab.kernel(net, x, x2) for x in xs]
    jitted = jax.jit(lambda x: nnlab.kernel(net, x, x2))(xs[0])
    np.testing.assert_allclose(jitted.ntk, eager[0].ntk, rtol=1e-12)
    np.testing.assert_allclose(jitted.nngp, eager[0].nngp, rtol=1e-12)
    vmapped = jax.vmap(lambda x: nnlab.kernel(net, x, x2, get="ntk"))(xs)
    np.testing.assert_allclose(vmapped, np.stack([e.ntk for e in eager]), rtol=1e-12)


def test_elementwise_is_hashable_and_does_not_recompile(x64):
    fn = jnp.tanh
    f = jax.jit(lambda net, x: nnlab.kernel(net, x, get="nngp"))
    x = jnp.ones((2, 3))
    nets = [nl.serial(nl.Dense(4, W_std=w), nl.Elementwise(fn), nl.Dense(1)) for w in (1.0, 2.0)]
    assert hash(nets[0].layers[1]) == hash(nl.Elementwise(fn))
    a, b = f(nets[0], x), f(nets[1], x)
    assert f._cache_size() == 1
    assert not np.allclose(a, b)
    np.testing.assert_allclose(
        a, nnlab.kernel(nl.serial(nl.Dense(4), nl.Tanh(), nl.Dense(1)), x, get="nngp"), rtol=1e-12
    )


@pytest.mark.parametrize(
    "act",
    [
        nl.Gelu(),
        nl.Sin(c=0.3),
        nl.Gaussian(width=1.5),
        nl.Monomial(3),
        nl.Step(),
        nl.Rbf(),
        nl.Tanh(),
    ],
    ids=["Gelu", "Sin", "Gaussian", "Monomial3", "Step", "Rbf", "Tanh"],
)
def test_gradients_match_finite_differences(x64, act):
    x = jax.random.normal(jax.random.key(12), (3, 4))
    x2 = jax.random.normal(jax.random.key(13), (2, 4))

    def total(w, x):
        net = nl.serial(nl.Dense(8, W_std=w, b_std=0.3), act, nl.Dense(1, W_std=w, b_std=0.1))
        k = nnlab.kernel(net, x, x2)
        return k.ntk.sum() + k.nngp.sum()

    gw, gx = jax.grad(total, argnums=(0, 1))(1.3, x)
    h = 1e-5  # central differences: O(h²) ~ 1e-10 truncation, O(eps/h) ~ 1e-11 rounding
    fd_w = (total(1.3 + h, x) - total(1.3 - h, x)) / (2 * h)
    direction = jax.random.normal(jax.random.key(14), x.shape)
    fd_x = (total(1.3, x + h * direction) - total(1.3, x - h * direction)) / (2 * h)
    np.testing.assert_allclose(gw, fd_w, rtol=1e-6)
    np.testing.assert_allclose(jnp.sum(gx * direction), fd_x, rtol=1e-6, atol=1e-9)


# ----------------------------------------------------------------------------- layers and errors


@pytest.mark.parametrize("name", list(ALL))
def test_apply_is_elementwise_fn(name):
    act = ALL[name]
    x = jnp.linspace(-2.0, 2.0, 7).reshape(1, 7)
    shape, params = act.init(jax.random.key(0), x.shape)
    assert shape == x.shape
    np.testing.assert_allclose(act.apply(params, x), act.fn(x))


@pytest.mark.parametrize("act", [nl.Gelu(), nl.Tanh(), nl.Step(), nl.Elementwise(jnp.cos)], ids=str)
def test_activation_on_raw_inputs_raises(act):
    with pytest.raises(ValueError, match=act.name.split("(")[0]):
        nnlab.kernel(nl.serial(act, nl.Dense(1)), jnp.ones((2, 3)))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="degree must be >= 0, got -1"):
        nl.Monomial(-1)
    with pytest.raises(TypeError, match="degree must be an int"):
        nl.Monomial(2.0)
    with pytest.raises(TypeError, match="fn must be callable"):
        nl.Elementwise(3.0)
    with pytest.raises(TypeError, match="fn_deriv must be callable"):
        nl.Elementwise(jnp.tanh, fn_deriv="tanh'")
    with pytest.raises(ValueError, match="degree must be an int >= 2, got 1"):
        nl.Elementwise(jnp.tanh, degree=1)
    with pytest.raises(ValueError, match="Tanh: degree"):
        nl.Tanh(degree=0)
