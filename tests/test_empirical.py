"""Tests for nnlab.empirical: eNTK methods, NNGP, pseudo-NTK, Monte Carlo kernels."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import nnlab
from nnlab import layers as nl
from nnlab.empirical import (
    _structured,
    empirical_nngp,
    empirical_ntk,
    method_costs,
    monte_carlo_kernel,
    pseudo_ntk,
)

METHODS = ("jacobian", "ntk_vp", "structured")


def dense_reference(apply_fn, params, x1, x2):
    """Full eNTK K[n, *o, m, *o'] from explicitly flattened Jacobians (independent path)."""
    flat, unravel = ravel_pytree(params)
    jac = jax.jit(lambda w, x: jax.jacrev(lambda w: apply_fn(unravel(w), x))(w))
    j1, j2 = jac(flat, x1), jac(flat, x2)
    r = j1.ndim - 2
    k = np.tensordot(np.asarray(j1), np.asarray(j2), axes=([r + 1], [r + 1]))
    return k  # (N1, *out, N2, *out)


def reduce_reference(k, out_ndim, trace, diag):
    """Apply trace/diagonal with explicit numpy loops over axes (not via einsum letters).

    A traced axis is averaged over (the neural-tangents convention): np.trace / its size.
    """
    r = out_ndim - 1
    # move to (N1, N2, o1, o1', o2, o2', ...)
    perm = [0, 1 + r]
    for j in range(r):
        perm += [1 + j, 2 + r + j]
    k = np.transpose(k, perm)
    axis = 2
    for j in range(1, out_ndim):
        if j in trace:
            k = np.trace(k, axis1=axis, axis2=axis + 1) / k.shape[axis]
        elif j in diag:
            k = np.moveaxis(np.diagonal(k, axis1=axis, axis2=axis + 1), -1, axis)
            axis += 1
        else:
            axis += 2
    return k


class FlaxCNN(nn.Module):
    """Conv + Dense with outputs of shape (N, 3, 2): several output axes."""

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(4, (3,))(x)
        x = nn.tanh(x).reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(8)(x))
        return nn.Dense(6)(x).reshape(x.shape[0], 3, 2)


def mlp_fn(p, x):
    h = jnp.tanh(x @ p["w"] * 0.5 + p["b"][None])
    return h @ (p["v"].T / 3.0)


def _mlp_case(key):
    k = jax.random.split(key, 5)
    p = {
        "w": jax.random.normal(k[0], (3, 7)),
        "v": jax.random.normal(k[1], (2, 7)),
        "b": jax.random.normal(k[2], (7,)),
    }
    return mlp_fn, p, jax.random.normal(k[3], (5, 3)), jax.random.normal(k[4], (4, 3))


def cnn_fn(p, x):
    # NWC conv (weights WIO) with a NTK-style scale, ReLU, flatten, Dense readout
    y = jax.lax.conv_general_dilated(
        x, p["k"] / 2.0, (1,), "SAME", dimension_numbers=("NWC", "WIO", "NWC")
    )
    y = jax.nn.relu(y + p["c"][None, None])
    return y.reshape(y.shape[0], -1) @ p["w"]


def _cnn_case(key):
    k = jax.random.split(key, 5)
    p = {
        "k": jax.random.normal(k[0], (3, 2, 3)),
        "c": jax.random.normal(k[1], (3,)),
        "w": jax.random.normal(k[2], (18, 2)),
    }
    return cnn_fn, p, jax.random.normal(k[3], (4, 6, 2)), jax.random.normal(k[4], (3, 6, 2))


def _flax_case(key):
    m = FlaxCNN()
    k1, k2, k3 = jax.random.split(key, 3)
    x1, x2 = jax.random.normal(k1, (4, 5, 2)), jax.random.normal(k2, (3, 5, 2))
    params = m.init(k3, x1)  # Flax keeps float32 params: cast to the input dtype
    return m.apply, jax.tree_util.tree_map(lambda a: a.astype(x1.dtype), params), x1, x2


CASES = {"mlp": _mlp_case, "cnn": _cnn_case, "flax": _flax_case}
AXES = {
    "mlp": [((-1,), ()), ((), ()), ((), (-1,))],
    "cnn": [((-1,), ()), ((), ())],
    "flax": [((), ()), ((1,), ()), ((2,), (1,)), ((1, 2), ())],
}


@pytest.mark.parametrize("case", list(CASES))
def test_methods_agree_with_dense_reference(x64, key, case):
    fn, p, x1, x2 = CASES[case](key)
    full = dense_reference(fn, p, x1, x2)
    out_ndim = fn(p, x1).ndim
    for trace_axes, diag_axes in AXES[case]:
        trace = {a % out_ndim for a in trace_axes}
        diag = {a % out_ndim for a in diag_axes}
        ref = reduce_reference(full, out_ndim, trace, diag)
        for method in METHODS:
            k = empirical_ntk(
                fn, p, x1, x2, method=method, trace_axes=trace_axes, diagonal_axes=diag_axes
            )
            assert k.shape == ref.shape, (method, trace_axes, diag_axes)
            # float64: the methods differ only by summation order, ~1e-15 relative
            np.testing.assert_allclose(k, ref, rtol=1e-6, atol=1e-9 * np.abs(ref).max())


def test_structured_finds_dense_layers(key):
    fn, p, x1, _ = _mlp_case(key)
    plan = _structured.make_plan(fn, p, x1.shape[1:], x1.dtype)
    leaves = dict(zip(["b", "v", "w"], range(3)))  # dict leaves are sorted by key
    assert {u.leaf for u in plan.dense} | set(plan.fallback) == {0, 1, 2}
    assert leaves["w"] in {u.leaf for u in plan.eligible}
    scales = {u.leaf: u.scale for u in plan.eligible}
    assert scales[leaves["v"]] == pytest.approx(1 / 3)
    assert leaves["b"] in plan.fallback  # biases go through the Jacobian path
    # a tied weight (used twice) must fall back
    tied = lambda p, x: jnp.tanh(x @ p["w"]) @ p["w"].T  # noqa: E731
    plan = _structured.make_plan(tied, {"w": jnp.ones((3, 3))}, (3,), jnp.float32)
    assert plan.dense == () and plan.fallback == (0,)


@pytest.mark.parametrize("method", METHODS)
def test_chunked_equals_unchunked(x64, key, method):
    fn, p, x1, x2 = _flax_case(key)
    for b in (x2, None):
        whole = empirical_ntk(fn, p, x1, b, method=method, trace_axes=())
        chunked = empirical_ntk(fn, p, x1, b, method=method, trace_axes=(), batch_size=3)
        np.testing.assert_allclose(chunked, whole, rtol=1e-12, atol=1e-14)


def test_batch_coupled_function(x64, key):
    # centring over the batch couples examples: only batch_independent=False is right
    k1, k2 = jax.random.split(key)
    p = jax.random.normal(k1, (3, 2))
    fn = lambda p, x: jnp.tanh(x @ p) - jnp.mean(jnp.tanh(x @ p), axis=0, keepdims=True)  # noqa: E731
    x = jax.random.normal(k2, (5, 3))
    ref = reduce_reference(dense_reference(fn, p, x, x), 2, {1}, set())
    for method in ("jacobian", "ntk_vp"):
        k = empirical_ntk(fn, p, x, method=method, batch_independent=False)
        np.testing.assert_allclose(k, ref, rtol=1e-10)
    # per example, the centred output is identically zero: a zero eNTK is refused
    with pytest.raises(ValueError, match=r"identically zero.*batch_independent=True"):
        empirical_ntk(fn, p, x, method="jacobian")


def test_jit_vmap_and_no_recompile(key):
    fn, p, x1, x2 = _mlp_case(key)
    eager = empirical_ntk(fn, p, x1, x2, method="structured")
    jitted = jax.jit(lambda p, a, b: empirical_ntk(fn, p, a, b, method="structured"))
    np.testing.assert_allclose(jitted(p, x1, x2), eager, rtol=1e-5)
    jitted(p, x1 + 1.0, x2)
    assert jitted._cache_size() == 1
    ps = jax.tree_util.tree_map(lambda a: jnp.stack([a, 2 * a]), p)
    for method in METHODS:
        batched = jax.vmap(lambda q, m=method: empirical_ntk(fn, q, x1, x2, method=m))(ps)
        for i in range(2):
            q = jax.tree_util.tree_map(lambda a, i=i: a[i], ps)
            np.testing.assert_allclose(
                batched[i], empirical_ntk(fn, q, x1, x2, method="jacobian"), rtol=1e-4
            )


def test_bad_inputs(key):
    fn, p, x1, _x2 = _mlp_case(key)
    with pytest.raises(ValueError, match="same per-example shape"):
        empirical_ntk(fn, p, x1, jnp.ones((4, 2)))
    with pytest.raises(ValueError, match="method must be one of"):
        empirical_ntk(fn, p, x1, method="fast")
    with pytest.raises(ValueError, match="batch axis 0"):
        empirical_ntk(fn, p, x1, trace_axes=(0,))
    with pytest.raises(ValueError, match="out of range"):
        empirical_ntk(fn, p, x1, trace_axes=(3,))
    with pytest.raises(ValueError, match="share an axis"):
        empirical_ntk(fn, p, x1, trace_axes=(-1,), diagonal_axes=(1,))
    with pytest.raises(ValueError, match="batch_size"):
        empirical_ntk(fn, p, x1, batch_size=0)
    with pytest.raises(ValueError, match="batch_independent"):
        empirical_ntk(fn, p, x1, method="structured", batch_independent=False)
    with pytest.raises(ValueError, match="outputs of shape"):
        empirical_ntk(lambda p, x: mlp_fn(p, x)[:1], p, x1)
    with pytest.raises(TypeError, match="x1 must be an array"):
        empirical_ntk(fn, p, [[1.0, 2.0, 3.0]])


def test_auto_cost_model(key):
    # the benchmark shape: structured is estimated cheapest by orders of magnitude
    params = {
        "w0": jnp.zeros((100, 1024)),
        "w1": jnp.zeros((1024, 1024)),
        "w2": jnp.zeros((1024, 1024)),
        "w3": jnp.zeros((1024, 1)),
    }

    def fn(p, x):
        return jax.nn.relu(jax.nn.relu(jax.nn.relu(x @ p["w0"]) @ p["w1"]) @ p["w2"]) @ p["w3"]

    plan = _structured.make_plan(fn, params, (100,), jnp.float32)
    costs = method_costs(params, 256, 256, (1,), plan)
    assert min(costs, key=costs.get) == "structured"
    assert costs["jacobian"] > 50 * costs["structured"]


def _relative_frobenius(a, b):
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


def _fit_slope(widths, errors):
    return np.polyfit(np.log(widths), np.log(errors), 1)[0]


@pytest.mark.slow
def test_entk_converges_to_analytic_ntk(x64):
    x = jax.random.normal(jax.random.key(1), (6, 4)) / 2.0
    widths = [64, 256, 1024, 4096]
    errors = []
    for n in widths:
        net = nl.serial(
            nl.Dense(n, W_std=1.5, b_std=0.2), nl.Relu(),
            nl.Dense(n, W_std=1.5, b_std=0.2), nl.Relu(),
            nl.Dense(1, W_std=1.5, b_std=0.2),
        )  # fmt: skip
        analytic = nnlab.kernel(net, x, None, get="ntk")
        errs = []
        for s in range(3):  # average 3 seeds to tame single-draw noise in the slope
            _, p = net.init(jax.random.key(100 + s), x.shape)
            errs.append(_relative_frobenius(empirical_ntk(net.apply, p, x), analytic))
        errors.append(np.mean(errs))
    slope = _fit_slope(widths, errors)
    # fluctuations of the eNTK are O(n^{-1/2}) (Hanin & Nica, 2019): slope -0.5 in theory
    assert slope <= -0.4, (slope, errors)
    assert errors[-1] < 0.1


def test_monte_carlo_within_four_standard_errors(x64, key):
    net = nl.serial(nl.Dense(128, W_std=1.5, b_std=0.2), nl.Erf(), nl.Dense(2, W_std=1.2))
    x = jax.random.normal(jax.random.key(1), (4, 3))
    x2 = jax.random.normal(jax.random.key(2), (3, 3))
    est = monte_carlo_kernel(net, key, x, x2, n_samples=64, batch_size=16)
    analytic = nnlab.kernel(net, x, x2, get=("nngp", "ntk"))
    # NNGP: unbiased at any width -> z-scores are standard normal
    z = np.abs(est["nngp"].mean - analytic.nngp) / est["nngp"].standard_error
    assert z.max() < 4.0, z
    # NTK: bias O(1/n) at width 128 is well below one standard error here
    z = np.abs(est["ntk"].mean - analytic.ntk) / est["ntk"].standard_error
    assert z.max() < 4.0, z
    # the standard error is the sample std / sqrt(S): check against explicit draws
    single = monte_carlo_kernel(net, key, x, x2, n_samples=64, batch_size=64, get="nngp")
    np.testing.assert_allclose(single.mean, est["nngp"].mean, rtol=1e-10)
    np.testing.assert_allclose(single.standard_error, est["nngp"].standard_error, rtol=1e-8)


def test_monte_carlo_matches_explicit_loop(x64, key):
    net = nl.serial(nl.Dense(8), nl.Relu(), nl.Dense(1))
    x = jax.random.normal(jax.random.key(1), (3, 2))
    est = monte_carlo_kernel(net, key, x, n_samples=5, batch_size=2, get="nngp")
    keys = jax.random.split(key, 6)[:5]  # 3 batches of 2 keys, last one masked
    draws = []
    for k in keys:
        _, p = net.init(k, x.shape)
        f = net.apply(p, x)
        draws.append(np.asarray(f @ f.T))
    draws = np.stack(draws)
    np.testing.assert_allclose(est.mean, draws.mean(0), rtol=1e-10)
    np.testing.assert_allclose(est.standard_error, draws.std(0, ddof=1) / np.sqrt(5), rtol=1e-8)
    with pytest.raises(ValueError, match="n_samples"):
        monte_carlo_kernel(net, key, x, n_samples=1)
    with pytest.raises(ValueError, match="get must name"):
        monte_carlo_kernel(net, key, x, n_samples=4, get="cov")


def test_empirical_nngp(x64, key):
    fn, p, x1, x2 = _flax_case(key)
    f1, f2 = fn(p, x1), fn(p, x2)
    k = empirical_nngp(fn, p, x1, x2, trace_axes=(), diagonal_axes=(1,))
    # explicit loop: K[n, m, a, b, b'] = f1[n, a, b] f2[m, a, b']
    ref = np.zeros((4, 3, 3, 2, 2))
    for a in range(3):
        ref[:, :, a] = np.einsum("nb,mc->nmbc", f1[:, a], f2[:, a])
    np.testing.assert_allclose(k, ref, rtol=1e-12)
    np.testing.assert_allclose(
        empirical_nngp(fn, p, x1, trace_axes=(1, 2)),
        np.einsum("nab,mab->nm", f1, f1) / 6,  # traced axes are averaged: 3 x 2 outputs
        rtol=1e-12,
    )
    # last-layer features of an MLP: phi = tanh(...) computed by hand
    fn, p, x1, x2 = _mlp_case(key)
    phi1 = np.tanh(x1 @ p["w"] * 0.5 + p["b"][None])
    phi2 = np.tanh(x2 @ p["w"] * 0.5 + p["b"][None])
    k = empirical_nngp(fn, p, x1, x2, features="last_layer")
    np.testing.assert_allclose(k, phi1 @ phi2.T / 7, rtol=1e-12)
    with pytest.raises(ValueError, match="no Dense layer"):
        empirical_nngp(lambda p, x: jnp.sin(x * p), 1.0, x1, features="last_layer")


def test_pseudo_ntk_definition(x64, key):
    fn, p, x1, x2 = _flax_case(key)
    summed = lambda p, x: fn(p, x).sum(axis=(1, 2))[:, None]  # noqa: E731
    ref = reduce_reference(dense_reference(summed, p, x1, x2), 2, {1}, set()) / 6
    for method in METHODS:
        np.testing.assert_allclose(pseudo_ntk(fn, p, x1, x2, method=method), ref, rtol=1e-10)


@pytest.mark.slow
def test_pseudo_ntk_error_falls_with_width(x64):
    # Mohamadi et al. (2023): ||Theta - pNTK (x) I||_F / ||Theta||_F = O(n^{-1/2})
    x = jax.random.normal(jax.random.key(1), (5, 3))
    widths = [32, 128, 512]
    errors = []
    for n in widths:
        net = nl.serial(nl.Dense(n), nl.Relu(), nl.Dense(n), nl.Relu(), nl.Dense(4))
        errs = []
        for s in range(3):
            _, p = net.init(jax.random.key(s), x.shape)
            full = empirical_ntk(net.apply, p, x, trace_axes=())  # (N, N, 4, 4)
            approx = pseudo_ntk(net.apply, p, x)[:, :, None, None] * jnp.eye(4)[None, None]
            errs.append(_relative_frobenius(approx, full))
        errors.append(np.mean(errs))
    slope = _fit_slope(widths, errors)
    assert slope <= -0.35, (slope, errors)  # theory -0.5; margin for 3-seed noise
