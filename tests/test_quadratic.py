"""nnlab.quadratic: uv model, NQM/linear packaging, phases and phase diagrams."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnlab
from nnlab import quadratic as nq
from nnlab.empirical import empirical_ntk
from nnlab.evaluate import Comparison


# ----------------------------------------------------------------------------- uv model
def _gd_step(m, p, lr):
    # Reference: one explicit GD step on the network parameters, from jax.grad of ½(f - y)².
    g = jax.grad(m.loss)(p)
    return jax.tree_util.tree_map(lambda a, b: a - lr * b, p, g)


@pytest.mark.parametrize(
    "n, x, y, ratio", [(7, 1.0, 0.0, 1.5), (64, 0.7, 0.3, 3.0), (300, -1.3, 2.0, 4.5)]
)
def test_uv_function_step_equals_parameter_gd(x64, n, x, y, ratio):
    # The closed form is an exact identity, so float64 rounding (~1e-16 per op) is the only
    # difference: 1e-12 relative over a few steps (before chaos amplifies it).
    m = nq.UVModel(n, x=x, y=y)
    p = m.init(jax.random.key(n))

    @jax.jit
    def five_steps(p):  # one compiled program instead of ~100 eager dispatches
        s, lr = m.state(p), ratio / m.ntk(p)
        out = [(s, s)]
        for _ in range(5):
            p = _gd_step(m, p, lr)
            s = m.function_step(s, lr)
            out.append((s, m.state(p)))
        return out

    out = jax.device_get(five_steps(p))  # host values: no eager dispatch in the checks
    # the network is the uv model: f = x v·u/√n, λ = x²(|u|² + |v|²)/n from its weights
    u, v = np.asarray(p[0]["W"][0]), np.asarray(p[1]["W"][:, 0])
    np.testing.assert_allclose(out[0][0].f, x * (u @ v) / np.sqrt(n), rtol=1e-13)
    np.testing.assert_allclose(out[0][0].lam, x**2 * (u @ u + v @ v) / n, rtol=1e-13)
    for s, ref in out[1:]:
        assert abs(s.f - ref.f) <= 1e-12 * max(1.0, abs(ref.f))
        assert abs(s.lam - ref.lam) <= 1e-12 * max(1.0, abs(ref.lam))


def test_uv_matches_lewkowycz_equations(x64):
    # y = 0, x = 1: f' = (1 - ηλ + η² f²/n) f and λ' = λ + η f²/n (ηλ - 4) (arXiv:2003.02218).
    m = nq.UVModel(50)
    f, lam, lr = 0.8, 1.7, 1.9
    s = m.function_step(nq.UVState(jnp.asarray(f), jnp.asarray(lam)), lr)
    np.testing.assert_allclose(s.f, (1 - lr * lam + lr**2 * f**2 / 50) * f, rtol=1e-14)
    np.testing.assert_allclose(s.lam, lam + lr * f**2 / 50 * (lr * lam - 4), rtol=1e-14)


def test_uv_theory_record_vs_simulation_record(x64):
    # The family's claim through the evaluation layer: the closed-form (f, λ) recursion
    # (theory, UVModel.theory) against nnlab.train on the network with the Jacobian NTK
    # (simulation, UVModel.simulate under jit(vmap)), lined up by axis name ("lr", "time")
    # without naming axes. Exact in exact arithmetic; float64 rounding (1e-16 per step) is
    # amplified by the catapult's growth of |f| over 40 steps at η λ0 = 3; rel_l2 <= 1e-9
    # leaves a margin of >1e3 over the ~1e-13 measured.
    m = nq.UVModel(128, y=0.5)
    p0 = m.init(jax.random.key(1))
    lrs = jnp.array([0.3, 0.9, 3.0]) / m.ntk(p0)
    sim = jax.jit(jax.vmap(lambda lr: m.simulate(p0, lr, 40)))(lrs).with_leading_axis("lr", lrs)
    theory = jax.jit(jax.vmap(lambda lr: m.theory(m.state(p0), lr, 40)))(lrs)
    theory = theory.with_leading_axis("lr", lrs)
    assert sim.loss.shape == (3, 41) and sim.dims_of("f") == ("lr", "time")
    for field in ("f", "lam", "loss"):
        c = Comparison.from_records(f"uv_{field}", theory, sim, field, tolerance=1e-9)
        assert c.axes == ("lr", "time") and c.passed, c.summary_line()
    assert float(jnp.max(sim.loss[2])) > 2.0 * float(sim.loss[2, 0])  # it did catapult
    # explicit GD loop for one (lazy) member
    p = jax.jit(lambda p: jax.lax.fori_loop(0, 40, lambda _, q: _gd_step(m, q, lrs[1]), p))(p0)
    np.testing.assert_allclose(sim.f[1, -1], m.apply(p), rtol=1e-10, atol=1e-12)


def test_uv_init_ntk_scale():
    # u, v ~ N(0, 1): λ0 = (|u|² + |v|²)/n has mean 2 and sd 2/sqrt(n) (chi-square).
    lam = jax.vmap(lambda k: nq.UVModel(400).ntk(nq.UVModel(400).init(k)))(
        jax.random.split(jax.random.key(0), 64)
    )
    assert abs(float(jnp.mean(lam)) - 2.0) < 4 * 0.1 / 8  # 4 standard errors


def test_uv_errors():
    with pytest.raises(ValueError, match="n must be a positive int"):
        nq.UVModel(0)
    with pytest.raises(ValueError, match="x must be non-zero"):
        nq.UVModel(4, x=0.0)
    with pytest.raises(TypeError, match="y must be a real number"):
        nq.UVModel(4, y="a")
    m = nq.UVModel(4)
    p = m.init(jax.random.key(0))
    with pytest.raises(ValueError, match="lr must be a positive"):
        m.function_step(nq.UVState(1.0, 1.0), -0.1)
    with pytest.raises(ValueError, match="lr must be a positive"):
        m.simulate(p, 0.0, 3)
    with pytest.raises(ValueError, match="steps must be a positive int"):
        m.simulate(p, 0.1, 0)


# ----------------------------------------------------------------------------- phases
def test_catapult_thresholds():
    t = nq.catapult_thresholds(jnp.array([0.5, 2.0]))
    np.testing.assert_allclose(t.lazy_max, [4.0, 1.0])
    np.testing.assert_allclose(t.catapult_max, [8.0, 2.0])
    assert jax.jit(nq.catapult_thresholds)(4.0).catapult_max == 1.0
    # the linear model has no catapult window: GD on a quadratic diverges above 2/λ0
    lin = nq.catapult_thresholds(0.5, model="linear")
    assert float(lin.lazy_max) == float(lin.catapult_max) == 4.0
    with pytest.raises(ValueError, match="model"):
        nq.catapult_thresholds(1.0, model="cnn")
    for bad in (0.0, -1.0, np.nan):
        with pytest.raises(ValueError, match="lam0 must be positive"):
            nq.catapult_thresholds(bad)


def test_phase_prediction():
    r = np.array([0.5, 1.92, 2.05, 3.0, 3.9, 4.5, 8.0])
    p = nq.phase_prediction(r)
    assert p.dims_of("phase") == ("eta_lam0",)
    assert p.phase.tolist() == [0, 0, 1, 1, 1, 2, 2]
    np.testing.assert_array_equal(p.eta_lam_final[:2], r[:2])  # lazy: λ_T = λ0
    assert np.all(np.isnan(p.eta_lam_final[2:]))
    # ±5% bands around 2 and 4 drop 1.92, 2.05 and 3.9
    banded = nq.phase_prediction(r, band=0.05)
    assert banded.coord("eta_lam0").tolist() == [0.5, 3.0, 4.5, 8.0]
    assert nq.phase_prediction(r, model="linear").phase.tolist() == [0, 0, 2, 2, 2, 2, 2]
    # the network: no prediction at or above the lower bound 4 of its upper edge
    assert nq.phase_prediction(r, model="nn").coord("eta_lam0").tolist() == r[:5].tolist()
    lazy = nq.phase_prediction(r, phases=(nq.Phase.LAZY,))
    assert lazy.coord("eta_lam0").tolist() == [0.5, 1.92]
    with pytest.raises(ValueError, match="ratios must be positive"):
        nq.phase_prediction([-1.0, 1.0])


def test_phase_diagram_boundary_select(tmp_path):
    # Hand-made codes: midpoints between the last ratio below a phase and the first at or
    # above it; NaN when the sweep never crosses or starts above.
    r = np.array([1.0, 1.5, 2.5, 3.5, 4.5])
    codes = np.array([[0, 0, 1, 1, 2], [0, 1, 1, 2, 2], [1, 1, 1, 1, 1], [0, 0, 0, 2, 2]])
    d = nq.PhaseDiagram({"phase": (("seed", "eta_lam0"), codes)}, coords={"eta_lam0": r})
    np.testing.assert_array_equal(d.boundary(nq.Phase.CATAPULT), [2.0, 1.25, np.nan, 3.0])
    np.testing.assert_array_equal(d.boundary(nq.Phase.DIVERGENT), [4.0, 3.0, np.nan, 3.0])
    np.testing.assert_array_equal(d.max_stable(), [3.5, 2.5, 4.5, 2.5])
    s = d.select(r < 3.0)
    assert isinstance(s, nq.PhaseDiagram) and s.ratio.tolist() == [1.0, 1.5, 2.5]
    np.testing.assert_array_equal(s.phase, codes[:, :3])
    # relative to the smallest ratio per seed; seedwise puts the rates first
    test = np.arange(1.0, 21.0).reshape(4, 5)
    t = nq.PhaseDiagram({"test_final": (("seed", "eta_lam0"), test)}, coords={"eta_lam0": r})
    np.testing.assert_allclose(t.relative("test_final").test_final, test / test[:, :1])
    w = t.seedwise("test_final")
    assert w.dims_of("test_final") == ("eta_lam0", "seed")
    np.testing.assert_array_equal(w.test_final, test.T)
    nnlab.save_record(d, tmp_path / "d.npz")  # the type survives a save/load round trip
    back = nnlab.load_record(tmp_path / "d.npz")
    assert isinstance(back, nq.PhaseDiagram) and back.dims_of("phase") == ("seed", "eta_lam0")


def _constructed():
    t = np.arange(60, dtype=np.float64)
    lr = 1.0
    lazy = (0.5**t, np.full(60, 1.5))  # monotone decay, ηλ = 1.5 < 2
    catapult = (np.where(t < 8, 1.6**t, 1.6**8 * 0.5 ** (t - 8)), np.where(t < 8, 2.5, 1.2))
    exploding = (1.5**t, np.full(60, 2.5))  # never comes back
    nan_run = (np.where(t < 5, 2.0**t, np.nan), np.where(t < 5, 3.0, np.nan))
    unstable_end = (np.where(t < 8, 1.6**t, 0.5 ** (t - 8)), np.full(60, 2.5))  # λ stays > 2/η
    return lr, {
        nq.Phase.LAZY: lazy,
        nq.Phase.CATAPULT: catapult,
        nq.Phase.DIVERGENT: exploding,
        "nan": nan_run,
        "unstable": unstable_end,
    }


def test_classify_phase_constructed():
    lr, runs = _constructed()
    expected = {
        nq.Phase.LAZY: nq.Phase.LAZY,
        nq.Phase.CATAPULT: nq.Phase.CATAPULT,
        nq.Phase.DIVERGENT: nq.Phase.DIVERGENT,
        "nan": nq.Phase.DIVERGENT,
        "unstable": nq.Phase.DIVERGENT,
    }
    for name, (loss, lam) in runs.items():
        assert nq.classify_phase(loss, lam, lr) is expected[name], name
    # final λ only, and a small spike below the threshold counts as lazy
    loss, lam = runs[nq.Phase.CATAPULT]
    assert nq.classify_phase(loss, lam[-1], lr) is nq.Phase.CATAPULT
    bump = np.concatenate([[1.0, 1.05], 0.5 ** np.arange(10)])
    assert nq.classify_phase(bump, np.ones(12), 1.0) is nq.Phase.LAZY


def test_phase_codes_jit_vmap_matches_classify():
    lr, runs = _constructed()
    loss = jnp.stack([jnp.asarray(v[0]) for v in runs.values()])
    lam = jnp.stack([jnp.asarray(v[1]) for v in runs.values()])
    codes = jax.jit(jax.vmap(lambda a, b: nq.phase_codes(a, b, lr)))(loss, lam)
    ref = [int(nq.classify_phase(a, b, lr)) for a, b in zip(np.asarray(loss), np.asarray(lam))]
    assert codes.tolist() == ref
    # batched call with per-row learning rates
    batched = nq.phase_codes(loss, lam, jnp.full((loss.shape[0],), lr))
    assert batched.tolist() == ref


def test_classify_phase_errors():
    with pytest.raises(ValueError, match="loss must be 1-D"):
        nq.classify_phase(np.ones((2, 3)), np.ones(3), 1.0)
    with pytest.raises(ValueError, match="lam must be a scalar"):
        nq.classify_phase(np.ones(5), np.ones(4), 1.0)
    with pytest.raises(ValueError, match="lr must be a positive"):
        nq.classify_phase(np.ones(5), np.ones(5), -1.0)


def test_uv_phase_diagram_phases():
    ratios = [0.5, 1.5, 2.5, 3.5, 4.5, 6.0]
    d = nq.uv_phase_diagram(nq.UVModel(256), ratios, key=jax.random.key(0), seeds=3, steps=200)
    expected = [0, 0, 1, 1, 2, 2]
    assert d.phase.tolist() == [expected] * 3
    assert d.dims_of("loss") == ("seed", "eta_lam0", "time") and d.time_unit == "step"
    assert d.meta["model"] == "uv" and d.ratio.tolist() == ratios
    # the prediction record against the diagram, lined up by axis name: discrete phases,
    # every seed must agree (tolerance 0) away from ±5% bands at the boundaries
    c = Comparison.from_records(
        "uv_phases",
        nq.phase_prediction(d.ratio, band=0.05),
        d,
        "phase",
        metric="max_abs",
        tolerance=0.0,
    )
    assert c.passed and c.n_seeds == 3
    cat = d.phase == nq.Phase.CATAPULT
    assert np.all(d.lr[cat] * d.lam_final[cat] < 2.0)
    assert np.all(d.loss_peak[cat] > 1.1) and np.all(d.loss_peak[:, :2] <= 1.0 + 1e-6)
    with pytest.raises(ValueError, match="ratios must be"):
        nq.uv_phase_diagram(nq.UVModel(8), [-1.0], key=jax.random.key(0), seeds=1, steps=2)
    with pytest.raises(TypeError, match="model must be a UVModel"):
        nq.uv_phase_diagram("uv", [1.0], key=jax.random.key(0), seeds=1, steps=2)


# ------------------------------------------------------------------ NQM and linear models
def _f(p, x):
    return jnp.tanh(x @ p["w"]) @ p["a"]


def _params(key):
    k1, k2 = jax.random.split(key)
    return {"w": jax.random.normal(k1, (3, 5)), "a": jax.random.normal(k2, (5, 1))}


def test_quadratic_and_linear_models_match_dense_taylor(x64):
    # Independent reference: dense Jacobian and Hessian of the flattened parameters.
    p0 = _params(jax.random.key(0))
    p1 = jax.tree_util.tree_map(lambda a: a + 0.1, _params(jax.random.key(1)))
    x = jax.random.normal(jax.random.key(2), (4, 3))
    flat0, unravel = jax.flatten_util.ravel_pytree(p0)
    flat1, _ = jax.flatten_util.ravel_pytree(p1)
    g = lambda v: _f(unravel(v), x).reshape(-1)  # noqa: E731
    d = flat1 - flat0
    jac = jax.jacfwd(g)(flat0)
    hess = jax.hessian(g)(flat0)
    lin_ref = g(flat0) + jac @ d
    quad_ref = lin_ref + 0.5 * jnp.einsum("opq,p,q->o", hess, d, d)
    np.testing.assert_allclose(
        nq.linear_model(_f, p0)(p1, x).reshape(-1), lin_ref, rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(
        nq.quadratic_model(_f, p0)(p1, x).reshape(-1), quad_ref, rtol=1e-12, atol=1e-12
    )
    with pytest.raises(TypeError, match="apply_fn must be a function"):
        nq.quadratic_model(None, p0)


@pytest.mark.parametrize("order", [None, 1, 2])
def test_taylor_ensemble_model(x64, order):
    m = nq.taylor_ensemble_model(_f, _params, order)
    p = m.init_fn(jax.random.key(0))
    x = jax.random.normal(jax.random.key(2), (4, 3))
    np.testing.assert_allclose(m.apply_fn(p, x), _f(p.params, x), rtol=1e-12)
    # the anchor receives no gradient, the parameters do
    grads = jax.grad(lambda q: jnp.sum(m.apply_fn(q, x) ** 2))(p)
    assert all(float(jnp.max(jnp.abs(g))) == 0.0 for g in jax.tree_util.tree_leaves(grads.anchor))
    assert any(float(jnp.max(jnp.abs(g))) > 0.0 for g in jax.tree_util.tree_leaves(grads.params))
    moved = nq.Anchored(jax.tree_util.tree_map(lambda a: a + 0.2, p.params), p.anchor)
    ref = {
        None: _f,
        1: lambda q, z: nq.linear_model(_f, p.anchor)(q, z),
        2: lambda q, z: nq.quadratic_model(_f, p.anchor)(q, z),
    }[order]
    np.testing.assert_allclose(m.apply_fn(moved, x), ref(moved.params, x), rtol=1e-12)
    out = jax.jit(jax.vmap(m.apply_fn, in_axes=(0, None)))(
        jax.vmap(m.init_fn)(jax.random.split(jax.random.key(3), 2)), x
    )
    assert out.shape == (2, 4, 1)
    with pytest.raises(ValueError, match="order must be None"):
        nq.taylor_ensemble_model(_f, _params, -1)


def test_ntk_max_eigenvalue_and_scaled_sgd(x64):
    p = _params(jax.random.key(0))
    x = jax.random.normal(jax.random.key(2), (6, 3))
    k = np.asarray(empirical_ntk(_f, p, x))  # independent eNTK implementation
    top = np.linalg.eigvalsh(k)[-1]
    np.testing.assert_allclose(nq.ntk_max_eigenvalue(_f, p, x), top / 6, rtol=1e-10)
    np.testing.assert_allclose(
        nq.ntk_max_eigenvalue(_f, p, x, normalization="sum"), top, rtol=1e-10
    )
    opt = nq.ntk_scaled_sgd(3.0, _f, x)
    state = opt.init(p)
    np.testing.assert_allclose(state.lr, 3.0 / (top / 6), rtol=1e-10)
    g = jax.tree_util.tree_map(jnp.ones_like, p)
    upd, _ = opt.update(g, state)
    np.testing.assert_allclose(upd["a"], -state.lr * np.ones((5, 1)), rtol=1e-12)
    with pytest.raises(ValueError, match="normalization must be"):
        nq.ntk_max_eigenvalue(_f, p, x, normalization="avg")


@pytest.mark.slow
def test_phase_diagram_linear_model_threshold():
    # GD on a linear model with MSE is stable iff η λ_max < 2: lazy at 1.8, divergent at 2.3.
    x = jax.random.normal(jax.random.key(0), (6, 3))
    y = jnp.sin(x[:, :1])
    d = nq.phase_diagram(
        _f,
        _params,
        (x, y),
        [1.8, 2.3],
        key=jax.random.key(1),
        seeds=2,
        steps=120,
        models=("linear",),
    )["linear"]
    assert d.phase.tolist() == [[0, 2], [0, 2]]
    np.testing.assert_allclose(d.lam0, d.lam[:, 0, 0], rtol=1e-6)
    with pytest.raises(ValueError, match="models must be"):
        nq.phase_diagram(
            _f, _params, (x, y), [1.0], key=jax.random.key(1), seeds=1, steps=2, models=("cnn",)
        )
    with pytest.raises(ValueError, match="models=None"):
        nq.phase_diagram(
            _f,
            _params,
            (x, y),
            {"nn": [1.0]},
            key=jax.random.key(1),
            seeds=1,
            steps=2,
            models=("nn",),
        )


@pytest.mark.slow
def test_linear_limit_matches_min_norm_solution(x64):
    # Independent reference: GD from θ0 on the linear model converges to the minimum-norm
    # step Δ = J⁺ (y - f0) (dense pseudo-inverse of the flattened Jacobian), so the test
    # prediction is f0(x*) + J* Δ. Both are exact linear algebra: 1e-8 relative in float64.
    x = jax.random.normal(jax.random.key(0), (6, 3))
    xt = jax.random.normal(jax.random.key(5), (4, 3))
    y, yt = jnp.sin(x[:, :1]), jnp.sin(xt[:, :1])
    rec = nq.linear_limit(_f, _params, (x, y, xt, yt), [0.5, 1.5], key=jax.random.key(1), seeds=2)
    assert rec.dims_of("test_final") == ("eta_lam0", "seed")
    for s, k in enumerate(jax.random.split(jax.random.key(1), 2)):
        p0 = _params(k)
        flat0, unravel = jax.flatten_util.ravel_pytree(p0)
        jac = jax.jit(jax.jacfwd(lambda v, z, u=unravel: _f(u(v), z).reshape(-1)))
        step = np.linalg.pinv(np.asarray(jac(flat0, x))) @ np.asarray(y - _f(p0, x)).ravel()
        pred = np.asarray(_f(p0, xt)).ravel() + np.asarray(jac(flat0, xt)) @ step
        ref = 0.5 * np.mean((pred - np.asarray(yt).ravel()) ** 2)
        np.testing.assert_allclose(rec.test_final[:, s], [ref, ref], rtol=1e-8)
    with pytest.raises(ValueError, match="ratios must be below 2"):
        nq.linear_limit(_f, _params, (x, y, xt, yt), [2.5], key=jax.random.key(1), seeds=1)


def test_two_layer_problem_matches_hand_construction():
    # Independent reference: the data drawn with the documented key split and the network
    # written out by hand in the NTK parameterisation, f = relu(x W1/√d) W2/√n.
    key = jax.random.key(3)
    apply_fn, init_fn, data = nq.two_layer_problem(key, width=32, dim=4, n_train=6, n_test=10)
    kx, kt, kw = jax.random.split(key, 3)
    w = jax.random.normal(kw, (4,))
    for x, y, k in ((data.x_train, data.y_train, kx), (data.x_test, data.y_test, kt)):
        g = jax.random.normal(k, x.shape)
        np.testing.assert_allclose(
            x, 2.0 * g / jnp.linalg.norm(g, axis=1, keepdims=True), rtol=1e-5
        )
        np.testing.assert_allclose(y, jnp.sin(x @ w / 2.0)[:, None], rtol=1e-5, atol=1e-6)
    params = init_fn(jax.random.key(0))
    w1, w2 = params[0]["W"], params[2]["W"]
    assert w1.shape == (4, 32) and w2.shape == (32, 1)
    assert params[0]["b"] is None and params[2]["b"] is None
    hand = jnp.maximum(data.x_test @ w1 / 2.0, 0.0) @ w2 / np.sqrt(32)
    np.testing.assert_allclose(apply_fn(params, data.x_test), hand, rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match="key"):
        nq.two_layer_problem(0)


def test_ratio_grid_and_diagram_arrays():
    grid = nq.ratio_grid(0.5, 16.0, 63)
    assert isinstance(grid, tuple) and len(grid) == 63
    assert all(isinstance(r, float) for r in grid)
    np.testing.assert_array_equal(grid, np.round(0.5 + (15.5 / 62) * np.arange(63), 3))
    assert nq.ratio_grid(1.0, 2.0, 3, decimals=0) == (1.0, 2.0, 2.0)  # 1.5 rounds to even
    with pytest.raises(ValueError, match="lo < hi"):
        nq.ratio_grid(3.0, 1.0, 5)
    with pytest.raises(ValueError, match="n"):
        nq.ratio_grid(1.0, 3.0, 1)
    r = np.array([1.0, 3.0])
    phase = np.array([[0, 1], [0, 2]])
    lam0 = np.array([0.5, 0.7])
    d = nq.PhaseDiagram(
        {"phase": (("seed", "eta_lam0"), phase), "lam0": ("seed", lam0)}, coords={"eta_lam0": r}
    )
    out = nq.diagram_arrays({"nn": d, "nqm": d.select(r < 2.0)}, fields=("phase", "lam0"))
    assert sorted(out) == ["nn_lam0", "nn_phase", "nn_ratio", "nqm_lam0", "nqm_phase", "nqm_ratio"]
    np.testing.assert_array_equal(out["nn_phase"], phase)
    np.testing.assert_array_equal(out["nqm_phase"], phase[:, :1])
    np.testing.assert_array_equal(out["nqm_ratio"], [1.0])
    np.testing.assert_array_equal(out["nn_lam0"], lam0)


def test_phase_diagram_shortfall_and_prediction():
    # Hand-made codes (as in test_phase_diagram_boundary_select): max_stable per seed is
    # [3.5, 2.5, 4.5, 2.5], so the shortfall below 4 is 1 - max_stable/4 clipped at 0.
    r = np.array([1.0, 1.5, 2.5, 3.5, 4.5])
    codes = np.array([[0, 0, 1, 1, 2], [0, 1, 1, 2, 2], [1, 1, 1, 1, 1], [0, 0, 0, 2, 2]])
    d = nq.PhaseDiagram(
        {"phase": (("seed", "eta_lam0"), codes)}, coords={"eta_lam0": r}, meta={"model": "linear"}
    )
    np.testing.assert_allclose(d.stable_shortfall(4.0), [0.125, 0.375, 0.0, 0.375])
    with pytest.raises(ValueError, match="edge"):
        d.stable_shortfall(0.0)
    # The linear model's prediction: lazy below 2, divergent above; a 30% band keeps 1.0,
    # 3.5 and 4.5 only (|r/2 - 1| >= 0.3).
    p = d.prediction(band=0.3)
    assert p.meta["model"] == "linear"
    assert p.coord("eta_lam0").tolist() == [1.0, 3.5, 4.5] and p.phase.tolist() == [0, 2, 2]
    lazy = d.prediction(phases=[nq.Phase.LAZY])
    assert lazy.coord("eta_lam0").tolist() == [1.0, 1.5]
    np.testing.assert_array_equal(lazy.eta_lam_final, [1.0, 1.5])
    # as the theory side of a comparison: max_abs of the seed-mean phase at the kept ratios
    c = Comparison.from_records("linear_phase", p, d, "phase", metric="max_abs", tolerance=0)
    mean = codes[:, [0, 3, 4]].mean(axis=0)  # [0.25, 1.5, 1.75] vs [0, 2, 2]
    assert c.value == pytest.approx(0.5) and not c.passed
    np.testing.assert_allclose(c.sim_mean, mean)
    check = d.phase_check("linear_phase", band=0.3, description="codes vs theory")
    assert (check.metric, check.tolerance, check.value) == ("max_abs", 0.0, c.value)
    assert not check.passed and check.description == "codes vs theory"
    np.testing.assert_allclose(check.theory, p.phase)
    # every seed in the predicted phase: the check passes
    agree = nq.PhaseDiagram(
        {"phase": (("seed", "eta_lam0"), np.tile([0, 0, 2, 2, 2], (3, 1)))},
        coords={"eta_lam0": r},
        meta={"model": "linear"},
    )
    assert agree.phase_check("ok", band=0.3).passed
