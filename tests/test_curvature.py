"""nnlab.curvature against dense references (jax.hessian / jax.jacobian, numpy eigh)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

from nnlab import curvature as cv
from nnlab import layers as nl
from nnlab.evaluate import Comparison
from nnlab.record import Record
from nnlab.train import Data, train, train_ensemble

# 3 → 5 → 2 tanh network, W ~ N(0, 1/fan_in), b ~ N(0, 0.1²): P = 15 + 5 + 10 + 2 = 32.
NET = nl.serial(
    nl.Dense(5, 1.0, 0.1, parameterization="standard"),
    nl.Tanh(),
    nl.Dense(2, 1.0, 0.1, parameterization="standard"),
)
mlp_apply = NET.apply


def problem(dtype=jnp.float64, n=7, seed=0):
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    x = jax.random.normal(k2, (n, 3), dtype)
    _, params = NET.init(k1, x.shape)
    params = jax.tree_util.tree_map(lambda a: a.astype(dtype), params)
    y = jax.random.normal(k3, (n, 2), dtype)
    return params, x, y


def mse(f, y):
    return 0.5 * jnp.mean(jnp.sum(jnp.square(f - y), axis=-1))


def xent(f, y):
    labels = jnp.argmax(y, axis=-1)
    logp = jax.nn.log_softmax(f, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=-1))


@functools.partial(jax.jit, static_argnames="loss")
def dense_hessian(params, x, y, loss=mse):
    """The independent reference: jax.hessian of the loss of the raveled parameters."""
    flat, unravel = ravel_pytree(params)
    return jax.hessian(lambda q: loss(mlp_apply(unravel(q), x), y))(flat)


@functools.partial(jax.jit, static_argnames="loss")
def dense_gauss_newton(params, x, y, loss=mse):
    flat, unravel = ravel_pytree(params)
    f = mlp_apply(params, x)
    jac = jax.jacobian(lambda q: mlp_apply(unravel(q), x).reshape(-1))(flat)
    h_out = jax.hessian(lambda g: loss(g.reshape(f.shape), y))(f.reshape(-1))
    return jac, jac.T @ h_out @ jac


# ------------------------------------------------------------------------ operators
@pytest.mark.parametrize("loss", ["mse", "xent"])
def test_hessian_operator_matches_dense(x64, key, loss):
    params, x, y = problem()
    if loss == "xent":
        y = jax.nn.one_hot(jnp.arange(7) % 2, 2, dtype=jnp.float64)
    h = dense_hessian(params, x, y, mse if loss == "mse" else xent)
    op = cv.hessian_operator(mlp_apply, params, x, y, loss=loss)
    assert op.dim == h.shape[0] == 32
    # Products are exact up to float64 rounding of O(10) operations (~1e-15 relative).
    np.testing.assert_allclose(cv.dense(op), h, atol=1e-12)


def test_batched_operator_equals_unbatched(x64, key):
    # n = 7 with batch_size 3: two scanned chunks and a remainder of one example.
    params, x, y = problem()
    v = jax.random.normal(key, (32,), jnp.float64)
    for make in (cv.hessian_operator, cv.gauss_newton_operator):
        full = make(mlp_apply, params, x, y).matvec(v)
        for loss_normalization in ("mean", "sum"):
            a = make(mlp_apply, params, x, y, loss_normalization=loss_normalization)
            b = make(mlp_apply, params, x, y, loss_normalization=loss_normalization, batch_size=3)
            np.testing.assert_allclose(b.matvec(v), a.matvec(v), rtol=1e-12, atol=1e-13)
        # sum normalisation is n times the mean
        s = make(mlp_apply, params, x, y, loss_normalization="sum").matvec(v)
        np.testing.assert_allclose(s, 7 * full, rtol=1e-12)


def test_hvp_pytree():
    p = {"a": jnp.array([1.0, 2.0]), "b": jnp.array(3.0)}
    out = cv.hvp(lambda q: q["a"][0] ** 2 * q["b"], p, {"a": jnp.ones(2), "b": jnp.array(0.0)})
    # H = [[2b, 0, 2a0], [0, 0, 0], [2a0, 0, 0]] times (1, 1, 0)
    np.testing.assert_allclose(out["a"], [6.0, 0.0])
    np.testing.assert_allclose(out["b"], 2.0)


@pytest.mark.parametrize("loss", ["mse", "xent"])
def test_gauss_newton_matches_dense(x64, loss):
    params, x, y = problem()
    loss_fn = mse
    if loss == "xent":
        y = jax.nn.one_hot(jnp.arange(7) % 2, 2, dtype=jnp.float64)
        loss_fn = xent
    _, g = dense_gauss_newton(params, x, y, loss_fn)
    op = cv.gauss_newton_operator(mlp_apply, params, x, y, loss=loss)
    np.testing.assert_allclose(cv.dense(op), g, atol=1e-12)


@pytest.mark.slow
def test_gauss_newton_spectrum_is_ntk_spectrum(x64, key):
    # For L = ½ mean ‖f − y‖², G = JᵀJ/n: its nonzero eigenvalues are those of the eNTK JJᵀ/n.
    params, x, y = problem(n=5)
    jac, _ = dense_gauss_newton(params, x, y)
    ntk = np.sort(np.linalg.eigvalsh(np.asarray(jac @ jac.T)))[::-1] / 5
    op = cv.gauss_newton_operator(mlp_apply, params, x, y)
    eig = cv.top_eigenpairs(op, key, 10, num_iters=op.dim).eigenvalues
    # rank(G) = n·out = 10 of P = 32; Lanczos restarts on the null space, and the Ritz
    # values of the exact-arithmetic run are exact; rounding leaves ~1e-13.
    np.testing.assert_allclose(eig, ntk, rtol=1e-9)
    # one layer's eNTK: Θ_S = J_S J_Sᵀ with the Jacobian of the selected leaves only
    first = cv.ntk_operator(mlp_apply, params, x, wrt=(True, False, False))
    np.testing.assert_allclose(cv.dense(first), jac[:, :20] @ jac[:, :20].T, atol=1e-12)


def dense_ntk(params, x):
    """J Jᵀ from jax.jacobian of the raveled parameters: the eNTK reference."""
    jac, _ = dense_gauss_newton(params, x, jnp.zeros((x.shape[0], 2), x.dtype))
    return np.asarray(jac @ jac.T)


@pytest.mark.slow
def test_one_top_eigenvalue_for_hessian_gauss_newton_and_ntk(x64, key):
    # One Lanczos routine for the three matrices, against eigvalsh of independent dense ones
    # (eagerly; test_sharpness_and_ntk_observables_in_train checks the three inside train).
    params, x, y = problem()
    ntk = cv.ntk_operator(mlp_apply, params, x)
    assert ntk.dim == 14 and ntk.unravel(jnp.arange(14.0)).shape == (7, 2)
    # one jvp and one transposed jvp: exact to float64 rounding of O(10) operations
    np.testing.assert_allclose(cv.dense(ntk), dense_ntk(params, x), atol=1e-12)
    cases = {
        "hessian": (cv.hessian_operator(mlp_apply, params, x, y), dense_hessian(params, x, y)),
        "gauss_newton": (
            cv.gauss_newton_operator(mlp_apply, params, x, y),
            dense_gauss_newton(params, x, y)[1],
        ),
        "ntk": (ntk, dense_ntk(params, x)),
    }
    for name, (op, ref) in cases.items():
        want = np.linalg.eigvalsh(np.asarray(ref))[-1]
        # The default 20 steps (of P = 32; the eNTK's 14 are capped at 14, exact) converge
        # the well-separated top Ritz value to rounding: measured relative errors < 1e-13.
        np.testing.assert_allclose(cv.top_eigenvalue(op, key), want, rtol=1e-10, err_msg=name)


def test_eigenvalue_density_and_outliers(x64):
    # the dense density is the Gaussian-smoothed eigenvalue histogram, exactly
    lam = np.array([3.0, 1.0, 0.5, 0.0])
    grid = np.linspace(-1.0, 4.0, 51)
    exact = cv.eigenvalue_density(jnp.asarray(lam), grid, sigma=0.3)
    g = np.exp(-0.5 * ((grid[:, None] - lam[None]) / 0.3) ** 2) / (0.3 * np.sqrt(2 * np.pi))
    np.testing.assert_allclose(exact.density, g.mean(axis=1), rtol=1e-12, atol=1e-15)
    assert exact.dims_of("density") == ("eigenvalue",)
    np.testing.assert_allclose(exact.grid, grid)
    # three eigenvalues a factor 10 above a bulk in [0.5, 1]: three outliers
    assert cv.count_outliers([40.0, 20.0, 10.0, 1.0, 0.9, 0.7, 0.5, -0.2]) == 3
    with pytest.raises(ValueError, match="at least two positive"):
        cv.count_outliers([1.0, -1.0])


# ------------------------------------------------------------------------ Lanczos
def test_lanczos_basis_orthonormal_and_tridiagonal(x64, key):
    params, x, y = problem()
    op = cv.hessian_operator(mlp_apply, params, x, y)
    res = cv.lanczos(op, key, 20)
    v = res.basis
    np.testing.assert_allclose(v @ v.T, np.eye(20), atol=1e-12)
    np.testing.assert_allclose(v @ dense_hessian(params, x, y) @ v.T, res.tridiagonal(), atol=1e-12)


def test_lanczos_breakdown_restarts(x64, key):
    # A rank-2 matrix in dimension 12: the Krylov space is invariant after 3 steps; the
    # restarts must still produce an orthonormal basis and all 12 eigenvalues.
    u = jax.random.normal(key, (12, 2), jnp.float64)
    a = u @ jnp.diag(jnp.array([3.0, -1.0])) @ u.T
    res = cv.lanczos(cv.matrix_operator(a), jax.random.key(1), 12)
    np.testing.assert_allclose(res.basis @ res.basis.T, np.eye(12), atol=1e-12)
    np.testing.assert_allclose(
        np.linalg.eigvalsh(res.tridiagonal()), np.linalg.eigvalsh(a), atol=1e-10
    )


@pytest.mark.parametrize("which", ["largest", "smallest", "magnitude"])
def test_top_eigenpairs_match_dense(x64, key, which):
    params, x, y = problem()
    h = np.asarray(dense_hessian(params, x, y))
    lam, u = np.linalg.eigh(h)
    order = {
        "largest": np.argsort(-lam),
        "smallest": np.argsort(lam),
        "magnitude": np.argsort(-np.abs(lam)),
    }[which][:3]
    op = cv.hessian_operator(mlp_apply, params, x, y)
    # 24 of 32 Lanczos steps: the extremal Ritz values have converged to rounding.
    ep = cv.top_eigenpairs(op, key, 3, num_iters=24, which=which)
    np.testing.assert_allclose(ep.eigenvalues, lam[order], rtol=1e-6)
    overlap = np.abs(np.sum(np.asarray(ep.eigenvectors) * u[:, order].T, axis=1))
    np.testing.assert_allclose(overlap, 1.0, atol=1e-6)
    # eigenvector as a pytree, and the Rayleigh quotient in that form
    tree = op.unravel(ep.eigenvectors[0])
    assert jax.tree_util.tree_structure(tree) == jax.tree_util.tree_structure(params)
    if which != "largest":
        return
    dense = cv.dense_eigenpairs(op)  # the dense reference as a record, largest first
    np.testing.assert_allclose(dense.eigenvalues, lam[::-1], atol=1e-12)
    overlap = np.abs(np.sum(np.asarray(dense.eigenvectors[:3]) * u[:, ::-1][:, :3].T, axis=1))
    np.testing.assert_allclose(overlap, 1.0, atol=1e-9)
    assert dense.dims_of("eigenvectors") == ("mode", "component")
    # The family's estimate (the Lanczos Eigenpairs record) against its dense reference
    # record, lined up along "mode" by from_records without passing axes (the SLQ density's
    # pair is in test_slq_density_integrates_to_one_and_matches_dense); the 1e-6 above.
    c = Comparison.from_records("top", dense, ep, "eigenvalues", metric="max_rel", tolerance=1e-6)
    assert c.passed and c.axes == ("mode",) and c.theory.shape == (3,)


def test_top_eigenvalue_float32(key):
    with jax.enable_x64(True):
        p64, x64_, y64 = problem(jnp.float64)
        lam = np.linalg.eigvalsh(np.asarray(dense_hessian(p64, x64_, y64)))[-1]
        params, x, y = jax.tree_util.tree_map(np.asarray, (p64, x64_, y64))
    params, x, y = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), (params, x, y))
    ep = cv.top_eigenpairs(cv.hessian_operator(mlp_apply, params, x, y), key, 1, num_iters=20)
    assert ep.eigenvalues.dtype == jnp.float32
    # float32 data and products: relative error ~ a few ulp times the condition of λ_max.
    np.testing.assert_allclose(ep.eigenvalues[0], lam, rtol=1e-4)


def test_per_layer_block(x64, key):
    params, x, y = problem()
    h = np.asarray(dense_hessian(params, x, y))
    # params = (dense0, (), dense1); ravel_pytree order: dense0 W (3x5), b (5), dense1 W, b
    sizes = [leaf.size for leaf in jax.tree_util.tree_leaves(params)]
    assert sizes == [15, 5, 10, 2]
    block = h[:20, :20]
    by_predicate = lambda path, leaf: path[0].idx == 0  # noqa: E731
    by_prefix = (True, False, False)
    for wrt in (by_predicate, by_prefix):
        op = cv.hessian_operator(mlp_apply, params, x, y, wrt=wrt)
        assert op.dim == 20
        np.testing.assert_allclose(cv.dense(op), block, atol=1e-12)
    ep = cv.top_eigenpairs(op, key, 2, num_iters=20)
    np.testing.assert_allclose(ep.eigenvalues, np.linalg.eigvalsh(block)[::-1][:2], rtol=1e-6)
    tree = op.unravel(ep.eigenvectors[0])
    assert float(jnp.abs(tree[2]["W"]).max()) == 0.0 and float(jnp.abs(tree[0]["W"]).max()) > 0
    # a pytree of bools selecting a single leaf: the bias of the output layer
    mask = ({"W": False, "b": False}, (), {"W": False, "b": True})
    op = cv.hessian_operator(mlp_apply, params, x, y, wrt=mask)
    np.testing.assert_allclose(cv.dense(op), h[30:32, 30:32], atol=1e-12)


# ------------------------------------------------------------------------ trace
def test_hutchinson_trace_within_standard_errors(x64, key):
    params, x, y = problem()
    h = np.asarray(dense_hessian(params, x, y))
    est = cv.hutchinson_trace(cv.hessian_operator(mlp_apply, params, x, y), key, 400)
    # Unbiased with variance 2 Σ_{i≠j} H_ij² per probe: the estimate lies within 4 SE of
    # the exact trace (fails with probability 6e-5 for a correct estimator).
    assert abs(float(est.mean) - np.trace(h)) < 4 * float(est.error)
    # and the measured SE agrees with the theoretical one; for 400 probes the sample std
    # has a relative error ~ sqrt((kurtosis - 1)/(4n)) < 10%, allow 25%.
    se_theory = np.sqrt(2 * (np.sum(h**2) - np.sum(np.diag(h) ** 2)) / 400)
    np.testing.assert_allclose(float(est.error), se_theory, rtol=0.25)


def test_hutchinson_exact_for_diagonal(key):
    est = cv.hutchinson_trace(cv.matrix_operator(jnp.diag(jnp.arange(6.0))), key, 3)
    np.testing.assert_allclose(est.mean, 15.0)
    np.testing.assert_allclose(est.error, 0.0)


# ------------------------------------------------------------------------ density
@pytest.mark.slow
def test_slq_density_integrates_to_one_and_matches_dense(x64, key):
    params, x, y = problem()
    h = np.asarray(dense_hessian(params, x, y))
    lam = np.linalg.eigvalsh(h)
    sigma = 0.05 * (lam[-1] - lam[0])
    grid = jnp.linspace(lam[0] - 8 * sigma, lam[-1] + 8 * sigma, 801)
    op = cv.hessian_operator(mlp_apply, params, x, y)
    n_probes = 64
    # Full Lanczos (m = P): each probe's quadrature is exact, so the only error is the
    # probe average, an unbiased Monte Carlo mean whose spread we measure per point.
    d = cv.spectral_density(op, key, grid, sigma=sigma, num_iters=32, num_probes=n_probes)
    np.testing.assert_allclose(jnp.sum(d.quadrature.weights, axis=1), 1.0, atol=1e-12)
    # Gaussian tails beyond ±8σ are < 1e-15; the trapezoid rule on 801 points is exact to
    # ~1e-10 for a smooth integrand.
    np.testing.assert_allclose(jnp.trapezoid(d.density, grid), 1.0, atol=1e-8)

    g = np.exp(-0.5 * ((np.asarray(grid)[:, None] - lam[None]) / sigma) ** 2)
    exact = (g / (sigma * np.sqrt(2 * np.pi))).mean(axis=1)
    per_probe = np.stack(
        [
            cv.gaussian_broadening(
                cv.Quadrature(d.quadrature.nodes[i : i + 1], d.quadrature.weights[i : i + 1]),
                grid,
                sigma,
            )
            for i in range(n_probes)
        ]
    )
    np.testing.assert_allclose(per_probe.mean(axis=0), d.density, rtol=1e-10, atol=1e-14)
    se = per_probe.std(axis=0, ddof=1) / np.sqrt(n_probes)
    mask = exact > 0.01 * exact.max()
    assert np.max(np.abs(d.density - exact)[mask] / se[mask]) < 4.5
    # the same check as records: the dense reference record against the SLQ record, lined
    # up along "eigenvalue". The error is the probe average's, so E‖φ̂ − φ‖² = Σ SE², and
    # rel_l2 ≈ ‖SE‖/‖φ‖ (measured 3.72% against 3.69%); three times that bounds it.
    ref = cv.eigenvalue_density(jnp.asarray(lam), grid, sigma=sigma)
    np.testing.assert_allclose(ref.density, exact, rtol=1e-10, atol=1e-14)
    scale = np.linalg.norm(se) / np.linalg.norm(exact)
    c = Comparison.from_records("slq", ref, d, "density", tolerance=3 * scale)
    assert c.passed and c.axes == ("eigenvalue",), (c.value, scale)

    # histogram: mass per bin from the quadrature weights vs the fraction of eigenvalues.
    edges = np.linspace(lam[0] - 1e-6, lam[-1] + 1e-6, 6)
    nodes, weights = np.asarray(d.quadrature.nodes), np.asarray(d.quadrature.weights)
    in_bin = (nodes[..., None] >= edges[:-1]) & (nodes[..., None] < edges[1:])
    mass = np.sum(weights[..., None] * in_bin, axis=1)  # (probe, bin)
    frac = np.histogram(lam, edges)[0] / lam.size
    mass_se = mass.std(axis=0, ddof=1) / np.sqrt(n_probes)
    assert np.all(np.abs(mass.mean(axis=0) - frac) < 4.5 * mass_se + 1e-9)


@pytest.mark.slow
def test_slq_with_few_iterations_approximates_density(x64, key):
    # m = 12 < P = 32 Lanczos steps: Gauss quadrature is exact for polynomials of degree
    # < 24, so with a broad kernel (σ = 1/4 of the spectral width) the smoothed density is
    # reproduced to a few percent of its peak.
    params, x, y = problem()
    lam = np.linalg.eigvalsh(np.asarray(dense_hessian(params, x, y)))
    sigma = 0.25 * (lam[-1] - lam[0])
    grid = jnp.linspace(lam[0] - 3 * sigma, lam[-1] + 3 * sigma, 201)
    op = cv.hessian_operator(mlp_apply, params, x, y)
    full = cv.spectral_density(op, key, grid, sigma=sigma, num_iters=32, num_probes=16)
    few = cv.spectral_density(op, key, grid, sigma=sigma, num_iters=12, num_probes=16)
    assert float(jnp.max(jnp.abs(few.density - full.density))) < 0.03 * float(full.density.max())


# ------------------------------------------------------------------------ jit / vmap
@pytest.mark.slow
def test_jit_vmap_and_no_recompile(x64, key):
    params, x, y = problem()

    @jax.jit
    def top(p, k):
        return cv.top_eigenpairs(cv.hessian_operator(mlp_apply, p, x, y), k, 2, num_iters=24)

    eager = cv.top_eigenpairs(cv.hessian_operator(mlp_apply, params, x, y), key, 2, num_iters=24)
    jitted = top(params, key)
    np.testing.assert_allclose(jitted.eigenvalues, eager.eigenvalues, rtol=1e-10)
    top(params, jax.random.key(3))
    assert top._cache_size() == 1
    # vmap over a batch of parameter sets: each equals its own run
    batch = jax.tree_util.tree_map(lambda a: jnp.stack([a, 1.1 * a]), params)
    out = jax.vmap(top, in_axes=(0, None))(batch, key)
    for i in range(2):
        one = top(jax.tree_util.tree_map(lambda a, i=i: a[i], batch), key)
        np.testing.assert_allclose(out.eigenvalues[i], one.eigenvalues, rtol=1e-10)
    # the eNTK's top eigenvalue under jit and vmap over parameter sets
    ntk_top = jax.jit(jax.vmap(lambda p: cv.top_eigenvalue(cv.ntk_operator(mlp_apply, p, x), key)))
    lams = ntk_top(batch)
    for i in range(2):
        p = jax.tree_util.tree_map(lambda a, i=i: a[i], batch)
        np.testing.assert_allclose(lams[i], np.linalg.eigvalsh(dense_ntk(p, x))[-1], rtol=1e-10)
    # vmap over keys for the trace
    op = cv.hessian_operator(mlp_apply, params, x, y)
    keys = jax.random.split(key, 3)
    means = jax.vmap(lambda k: cv.hutchinson_trace(op, k, 4).mean)(keys)
    for i in range(3):
        np.testing.assert_allclose(means[i], cv.hutchinson_trace(op, keys[i], 4).mean, rtol=1e-12)


# ------------------------------------------------------------------------ observable
def test_sharpness_and_ntk_observables_in_train(x64):
    params, x, y = problem()
    rec = train(
        mlp_apply,
        params,
        Data(x, y),
        optimizer=optax.sgd(0.5),
        steps=20,
        log_every=10,
        observables={
            "sharpness": cv.sharpness(num_iters=24),
            "gn": cv.sharpness(matrix="gauss_newton"),
            "ntk": "ntk_top_eigenvalue",  # train's built-in, the same Lanczos routine
        },
    )
    got = np.asarray(rec.observables["sharpness"])
    assert got.shape == (3,) and rec.dims_of("obs.sharpness") == ("time",)
    # Lanczos top eigenvalues against eigvalsh of the dense matrices at the logged parameters
    # (converged to ~1e-13: see test_top_eigenvalue_matches_dense_eigvalsh).
    for p, i in ((params, 0), (rec.params, -1)):
        want = np.linalg.eigvalsh(np.asarray(dense_hessian(p, x, y)))[-1]
        np.testing.assert_allclose(got[i], want, rtol=1e-6)
        gn = np.linalg.eigvalsh(np.asarray(dense_gauss_newton(p, x, y)[1]))[-1]
        np.testing.assert_allclose(rec.observables["gn"][i], gn, rtol=1e-8)
        ntk = np.linalg.eigvalsh(dense_ntk(p, x))[-1]
        np.testing.assert_allclose(rec.observables["ntk"][i], ntk, rtol=1e-10)
        # mean MSE: G = JᵀJ/n shares the nonzero spectrum of Θ/n
        np.testing.assert_allclose(rec.observables["gn"][i], ntk / 7, rtol=1e-8)


# ------------------------------------------------------------------------ edge of stability
def test_stability_threshold_record():
    th = cv.stability_threshold([0.1, 0.4])
    np.testing.assert_allclose(th["sharpness"], [20.0, 5.0])
    assert th.dims_of("sharpness") == ("lr",)
    line = cv.stability_threshold(0.5, time=np.arange(4))
    assert line.dims_of("sharpness") == ("lr", "time") and line.time_unit == "step"
    np.testing.assert_allclose(line["sharpness"], np.full((1, 4), 4.0))
    with pytest.raises(ValueError, match="lr must be positive"):
        cv.stability_threshold([0.1, -1.0])


def test_edge_of_stability_reads_the_phase():
    # Synthetic trajectories at η = 1 (threshold 2) and a control at η = 0.1 (threshold 20),
    # against values worked out by hand.
    t = np.arange(0.0, 9.0)
    rise = [1.0, 1.5, 2.0, 2.1, 1.9, 2.0, 2.2, 1.8, 2.0]  # ratio λη/2 = λ/2
    late = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.9, 2.0]  # reaches 2 after 3/4 of the run
    above = [2.0] * 9  # starts at the edge: no progressive sharpening
    values = np.array([[rise, [2.0] * 9], [late, [2.0] * 9], [above, [2.0] * 9]])
    rec = Record(
        {"obs.sharpness": (("seed", "lr", "time"), values)},
        coords={"lr": [1.0, 0.1], "time": t},
        meta={"time_unit": "step"},
    )
    eos = cv.edge_of_stability(rec)
    assert eos.dims_of("sharpness") == ("seed", "lr") and eos.time_unit == "step"
    # ratio 0.75 → 1.0 between t = 1 and 2: onset 1 + 0.22/0.25 = 1.88; phase = t >= 2
    np.testing.assert_allclose(eos["onset"][0, 0], 1.88)
    phase = np.array(rise[2:])
    np.testing.assert_allclose(eos["sharpness"][0, 0], phase.mean())
    np.testing.assert_allclose(eos["deviation"][0, 0], np.percentile(np.abs(phase / 2 - 1), 90))
    np.testing.assert_allclose(eos["gap_closed"][0, 0], (phase.mean() - 1.0) / (2.0 - 1.0))
    np.testing.assert_allclose(eos["peak_ratio"][:, 1], 0.1)  # the control: λη/2 = 0.1
    np.testing.assert_allclose(eos["initial_sharpness"][:, 0], [1.0, 1.0, 2.0])
    # onset at t = 7 + 0.02/0.05 = 7.4 > 0.75 · 8 = 6 (too late), and a start at the edge:
    # no phase, NaN
    np.testing.assert_allclose(eos["onset"][1, 0], 7.4)
    assert np.isnan(eos["sharpness"][1:, 0]).all() and np.isinf(eos["deviation"][1:, 0]).all()
    th = cv.stability_threshold([1.0])
    assert not Comparison.from_records("eos", th, eos, "sharpness", tolerance=0.1).passed
    assert Comparison.from_records("eos", th, eos.isel(seed=0), "sharpness", tolerance=0.1).passed
    with pytest.raises(ValueError, match="needs 'lr'"):
        cv.edge_of_stability(rec.isel(lr=0))


@pytest.mark.slow
def test_gd_sharpness_hovers_at_two_over_lr():
    # The family's theory (the threshold 2/η) against its simulation (full-batch GD logging
    # the Lanczos sharpness through nnlab.train), lined up by from_records on "lr" (mean over
    # two seeds). Learning rates put 2/η at 1.2 and 1.4 times the initial sharpness, as in
    # the edge_of_stability experiment; measured within 0.75% of 2/η over the phase.
    # Tolerance 10%: Cohen et al.'s "hovering just above 2/η", the experiment's claim.
    key = jax.random.key(0)
    kx, kt, kp = jax.random.split(key, 3)
    x = jax.random.normal(kx, (64, 6))
    teacher = nl.serial(nl.Dense(32), nl.Tanh(), nl.Dense(1))
    y = teacher.apply(teacher.init(kt, x.shape)[1], 3.0 * x)
    y = y / jnp.std(y)
    net = nl.serial(nl.Dense(16), nl.Tanh(), nl.Dense(16), nl.Tanh(), nl.Dense(1))
    init = lambda k: net.init(k, x.shape)[1]  # noqa: E731
    op0 = cv.hessian_operator(net.apply, init(jax.random.split(kp, 2)[0]), x, y)
    lam0 = float(cv.top_eigenvalue(op0, key))
    lrs = 2.0 / (lam0 * np.array([1.2, 1.4]))
    sgd, obs = lambda lr: optax.sgd(lr), {"sharpness": cv.sharpness()}
    rec = train_ensemble(
        net.apply, init, Data(x, y), optimizer=sgd, seeds=2, key=kp, hyperparams={"lr": lrs},
        steps=1500, log_every=15, observables=obs,
    )  # fmt: skip
    eos = cv.edge_of_stability(rec)
    c = Comparison.from_records(
        "eos", cv.stability_threshold(lrs), eos, "sharpness", metric="max_rel", tolerance=0.1
    )
    assert c.passed and c.axes == ("lr",) and c.n_seeds == 2, c.value
    assert np.all(eos["gap_closed"] > 0.5)  # progressive sharpening closed the gap


# ------------------------------------------------------------------------ errors
def test_errors(key):
    params, x, y = problem(jnp.float32)
    op = cv.hessian_operator(mlp_apply, params, x, y)
    with pytest.raises(ValueError, match="num_iters=40 exceeds"):
        cv.lanczos(op, key, 40)
    with pytest.raises(ValueError, match="num_iters must be a positive int"):
        cv.lanczos(op, key, 0)
    with pytest.raises(ValueError, match="k must be an int"):
        cv.top_eigenpairs(op, key, 0)
    with pytest.raises(ValueError, match="num_iters must be >= k"):
        cv.top_eigenpairs(op, key, 5, num_iters=3)
    with pytest.raises(ValueError, match="which must be"):
        cv.top_eigenpairs(op, key, 1, which="top")
    with pytest.raises(ValueError, match="v0 must have shape"):
        cv.lanczos(op, key, 3, v0=jnp.ones(3))
    with pytest.raises(ValueError, match="selects no leaf"):
        cv.hessian_operator(mlp_apply, params, x, y, wrt=lambda path, leaf: False)
    with pytest.raises(ValueError, match="wrt must be None"):
        cv.hessian_operator(mlp_apply, params, x, y, wrt={"a": True})
    with pytest.raises(ValueError, match="same number of examples"):
        cv.hessian_operator(mlp_apply, params, x, y[:3])
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        cv.gauss_newton_operator(mlp_apply, params, x, y, batch_size=0)
    with pytest.raises(TypeError, match="x must be an array"):
        cv.hessian_operator(mlp_apply, params, [[1.0]], y)
    with pytest.raises(ValueError, match="loss must be"):
        cv.hessian_operator(mlp_apply, params, x, y, loss="hinge")
    with pytest.raises(TypeError, match="op must be a CurvatureOperator"):
        cv.hutchinson_trace(jnp.eye(3), key)
    with pytest.raises(ValueError, match="num_probes must be an int >= 2"):
        cv.hutchinson_trace(op, key, 1)
    with pytest.raises(ValueError, match="sigma must be a positive"):
        cv.spectral_density(op, key, jnp.linspace(0, 1, 5), sigma=0.0)
    with pytest.raises(ValueError, match="grid must be 1-D"):
        cv.spectral_density(op, key, jnp.zeros((2, 2)), sigma=0.1)
    with pytest.raises(ValueError, match="matrix must be a square"):
        cv.matrix_operator(jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="num_iters must be a positive int"):
        cv.sharpness(num_iters=0)
    with pytest.raises(ValueError, match="matrix must be"):
        cv.sharpness(matrix="fisher")
    with pytest.raises(ValueError, match="num_iters must be a positive int"):
        cv.top_eigenvalue(op, key, num_iters=0)
    with pytest.raises(TypeError, match="x must be an array"):
        cv.ntk_operator(mlp_apply, params, [[1.0]])
    with pytest.raises(ValueError, match="eigenvalues must"):
        cv.eigenvalue_density(jnp.zeros((2, 2)), jnp.linspace(0, 1, 5), sigma=0.1)


# ------------------------------------------------------------------------ library helpers
def test_spectrum_vs_dense_references(x64, key):
    # A diagonal operator: the dense eigenvalues are the sorted diagonal, Rademacher probes
    # give vᵀDv = tr D exactly, and the dense density is the Gaussian-smoothed diagonal.
    lam = np.concatenate([np.linspace(0.0, 1.0, 37), [4.0, 6.0, 9.0]])
    op = cv.matrix_operator(jnp.diag(jnp.asarray(lam)))
    check = cv.spectrum_vs_dense(op, key, num_probes=8, slq_iters=40, slq_probes=4,
                                 sigma_fraction=0.02, grid_size=120)  # fmt: skip
    np.testing.assert_allclose(check.dense.eigenvalues, np.sort(lam)[::-1], rtol=1e-12)
    np.testing.assert_allclose(check.trace.samples, lam.sum(), rtol=1e-12)
    sigma = 0.02 * 9.0
    grid = np.linspace(-5 * sigma, 9.0 + 5 * sigma, 120)
    np.testing.assert_allclose(check.density.grid, grid)
    np.testing.assert_allclose(check.dense_density.grid, grid)
    g = np.exp(-0.5 * ((grid[:, None] - lam[None]) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
    np.testing.assert_allclose(check.dense_density.density, g.mean(axis=1), rtol=1e-10)
    # SLQ with m = P = 40 steps is exact per probe: only the probes' weights fluctuate
    c = Comparison.from_records("slq", check.dense_density, check.density, "density",
                                metric="rel_l2", tolerance=0.5)  # fmt: skip
    assert c.passed, c
    with pytest.raises(ValueError, match="sigma_fraction"):
        cv.spectrum_vs_dense(op, key, sigma_fraction=0.0)


def test_threshold_learning_rates_invert_the_threshold():
    lrs = cv.threshold_learning_rates(3.0, [1.2, 1.5, 10.0])
    np.testing.assert_allclose(cv.stability_threshold(lrs)["sharpness"], [3.6, 4.5, 30.0])
    assert lrs.dtype == np.float64
    with pytest.raises(ValueError, match="factors"):
        cv.threshold_learning_rates(3.0, [1.0, -1.0])
    with pytest.raises(ValueError, match="sharpness"):
        cv.threshold_learning_rates(0.0, [1.0])


def test_edge_of_stability_at_lr_selects_by_coordinate():
    values = np.arange(12.0).reshape(2, 3, 2)  # ("seed", "lr", "time")
    rec = Record({"obs.sharpness": (("seed", "lr", "time"), values)},
                 coords={"lr": [0.1, 0.2, 0.4], "time": [0.0, 1.0]})  # fmt: skip
    eos = cv.edge_of_stability(rec)
    got = eos.at_lr("peak_ratio", [0.4, 0.1])
    want = np.stack([eos["peak_ratio"][:, 2], eos["peak_ratio"][:, 0]])
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(got[0], values[:, 2].max(-1) * 0.4 / 2)  # λ η/2 at η = 0.4


def test_sharpness_trajectories_log_the_hessian_top_eigenvalue(x64, key):
    # Linear least squares: H = XᵀX/n at every step, whatever the rate or the seed.
    x = jax.random.normal(key, (12, 3))
    y = x @ jnp.array([[1.0], [-0.5], [2.0]])
    lam = np.linalg.eigvalsh(np.asarray(x.T @ x) / 12)[-1]
    lrs = cv.threshold_learning_rates(lam, [1.5, 4.0])
    init = lambda k: 0.1 * jax.random.normal(k, (3, 1))  # noqa: E731
    rec = cv.sharpness_trajectories(lambda p, x: x @ p, init, Data(x, y), lrs, key=key,
                                    seeds=2, steps=6, log_every=2, num_iters=3)  # fmt: skip
    assert rec.dims_of("obs.sharpness") == ("seed", "lr", "time")
    assert rec["obs.sharpness"].shape == (2, 2, 4)
    np.testing.assert_allclose(rec["obs.sharpness"], lam, rtol=1e-10)
    np.testing.assert_allclose(rec.coord("lr"), lrs)
    # the same training as a hand-written full-batch GD ensemble
    sgd = lambda lr: optax.sgd(lr)  # noqa: E731
    ref = train_ensemble(lambda p, x: x @ p, init, Data(x, y), optimizer=sgd, seeds=2, key=key,
                         hyperparams={"lr": lrs}, steps=6, log_every=2)  # fmt: skip
    np.testing.assert_allclose(rec.train_loss, np.asarray(ref.train_loss), rtol=1e-12)
