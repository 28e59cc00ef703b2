"""Tests for nnlab.meanfield: erf integrals, Saad-Solla ODEs, online SGD, mean-field networks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.special import erf

from nnlab import meanfield as mf
from nnlab.evaluate import Comparison

# Monte Carlo checks: a fixed key, and every entry within 4 standard errors. With ~30 entries
# checked per test the chance of a false alarm is < 30 * 6.3e-5 = 0.2%.
N_SE = 4.0


def _g(z):
    return erf(z / np.sqrt(2.0))


def _dg(z):
    return np.sqrt(2.0 / np.pi) * np.exp(-0.5 * z**2)


def _random_overlaps(seed, k, m, dim=6, scale=1.0):
    """Valid (Q, R, T) from random weights in a small dimension (so C is PSD)."""
    rng = np.random.default_rng(seed)
    w = scale * rng.standard_normal((k, dim))
    v = rng.standard_normal((m, dim))
    return w @ w.T / dim, w @ v.T / dim, v @ v.T / dim


def _gaussian(cov, n, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, cov.shape[0])) @ np.linalg.cholesky(cov).T


def _assert_mc(estimate_samples, closed_form, what):
    mean = estimate_samples.mean(axis=0)
    se = estimate_samples.std(axis=0, ddof=1) / np.sqrt(estimate_samples.shape[0])
    z = np.abs(mean - np.asarray(closed_form)) / se
    assert np.all(z < N_SE), f"{what}: max z = {z.max():.2f}"


# --------------------------------------------------------------------------- erf integrals


def test_erf_integrals_match_monte_carlo(x64):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 4))
    cov = a @ a.T / 4 + 0.3 * np.eye(4)
    u = _gaussian(cov, 400_000, 1)
    _assert_mc(_g(u[:, 0]) * _g(u[:, 1]), mf.erf_i2(cov[:2, :2]), "I2")
    _assert_mc(_dg(u[:, 0]) * u[:, 1] * _g(u[:, 2]), mf.erf_i3(cov[:3, :3]), "I3")
    _assert_mc(_dg(u[:, 0]) * _dg(u[:, 1]) * _g(u[:, 2]) * _g(u[:, 3]), mf.erf_i4(cov), "I4")


def test_erf_i2_limits(x64):
    # Identical unit-variance units: (2/pi) arcsin(1/2) = 1/3 = E[erf(u/sqrt2)^2].
    assert float(mf.erf_i2(jnp.ones((2, 2)))) == pytest.approx(1.0 / 3.0, rel=1e-14)
    # Huge variance: erf -> sign, I2 -> 1 with a sqrt(2/c) correction (c = 1e8).
    big = 1e8 * jnp.ones((2, 2))
    assert float(mf.erf_i2(big)) == pytest.approx(1.0 - (2.0 / np.pi) * np.sqrt(2e-8), rel=1e-6)
    # Batched: shape (..., 2, 2) -> (...)
    assert mf.erf_i2(jnp.stack([jnp.eye(2)] * 3)).shape == (3,)


def test_erf_integrals_bad_shape():
    with pytest.raises(
        ValueError, match=r"cov must be a covariance matrix of shape \(\.\.\., 3, 3\)"
    ):
        mf.erf_i3(jnp.eye(2))


# --------------------------------------------------------------------------- Saad-Solla ODEs


@pytest.mark.parametrize(("k", "m"), [(2, 2), (3, 2)])
def test_rhs_matches_monte_carlo(x64, k, m):
    """dR = η E[δ_i ν_n], dQ = η E[δ_i λ_k + δ_k λ_i] + η² E[δ_i δ_k], sampled directly."""
    lr = 0.7
    q, r, t = _random_overlaps(k + 10 * m, k, m)
    cov = np.block([[q, r], [r.T, t]])
    u = _gaussian(cov, 400_000, 2)
    lam, nu = u[:, :k], u[:, k:]
    err = _g(nu).sum(axis=1) - _g(lam).sum(axis=1)
    delta = _dg(lam) * err[:, None]  # (n, K)
    dr_samples = lr * delta[:, :, None] * nu[:, None, :]
    dq_samples = lr * (
        delta[:, :, None] * lam[:, None, :] + lam[:, :, None] * delta[:, None, :]
    ) + lr**2 * (delta[:, :, None] * delta[:, None, :])
    dq, dr = mf.saad_solla_rhs(q, r, t, lr=lr)
    assert dq.shape == (k, k) and dr.shape == (k, m)
    _assert_mc(dr_samples, dr, "dR/dalpha")
    _assert_mc(dq_samples, dq, "dQ/dalpha")


def test_generalisation_error_matches_monte_carlo(x64):
    q, r, t = _random_overlaps(5, 3, 2)
    cov = np.block([[q, r], [r.T, t]])
    u = _gaussian(cov, 400_000, 3)
    samples = 0.5 * (_g(u[:, :3]).sum(axis=1) - _g(u[:, 3:]).sum(axis=1)) ** 2
    _assert_mc(samples, mf.committee_generalisation_error(q, r, t), "eg")


def test_teacher_is_fixed_point(x64):
    t = jnp.array([[1.0, 0.2], [0.2, 0.8]])
    dq, dr = mf.saad_solla_rhs(t, t, t, lr=1.5)
    np.testing.assert_allclose(dq, 0.0, atol=1e-13)
    np.testing.assert_allclose(dr, 0.0, atol=1e-13)
    assert float(mf.committee_generalisation_error(t, t, t)) == pytest.approx(0.0, abs=1e-14)


def test_ode_matches_scipy_solver(x64):
    """The diffrax solve against scipy's adaptive solver on the same right-hand side."""
    k, m, lr = 2, 2, 1.0
    q0, r0, t = _random_overlaps(7, k, m, scale=0.5)
    traj = mf.saad_solla_ode(q0, r0, t, lr=lr, alpha_max=10.0, n_records=3)
    assert traj.dims_of("q") == ("time", "student", "student2")
    assert traj.time_unit == "alpha" and traj.dims_of("t") == ("teacher", "teacher2")

    rhs = jax.jit(lambda qq, rr: mf.saad_solla_rhs(qq, rr, t, lr=lr))

    def f(_, y):
        dq, dr = rhs(y[: k * k].reshape(k, k), y[k * k :].reshape(k, m))
        return np.concatenate([np.ravel(dq), np.ravel(dr)])

    y0 = np.concatenate([q0.ravel(), r0.ravel()])
    ref = solve_ivp(f, (0.0, 10.0), y0, t_eval=np.asarray(traj.alpha), rtol=1e-10, atol=1e-12)
    # Both solvers control the local error at rtol 1e-8 (diffrax's float64 default) and 1e-10
    # on this smooth O(1) flow over 10 time units: the global error is ~1e-7 at most.
    np.testing.assert_allclose(traj.q.reshape(3, -1), ref.y[: k * k].T, atol=1e-6)
    np.testing.assert_allclose(traj.r.reshape(3, -1), ref.y[k * k :].T, atol=1e-6)
    eg = jax.vmap(mf.committee_generalisation_error, (0, 0, None))(traj.q, traj.r, t)
    np.testing.assert_allclose(traj.eg, eg, rtol=1e-12)


def test_rhs_jit_vmap(x64):
    q, r, t = _random_overlaps(1, 2, 2)
    qs = jnp.stack([q, 0.5 * q])
    dq_v, _ = jax.vmap(lambda qq: mf.saad_solla_rhs(qq, r, t, lr=0.5))(qs)
    dq_j, _ = jax.jit(lambda qq: mf.saad_solla_rhs(qq, r, t, lr=0.5))(qs[1])
    np.testing.assert_allclose(dq_v[1], dq_j, rtol=1e-12)


@pytest.mark.slow  # ~9 s CPU (a compile of train and a Python loop)
def test_online_sgd_is_the_saad_solla_update(x64, key):
    """train on the Stream is w_k <- w_k + (lr/sqrt(D)) g'(lambda_k)(y - yhat) x, written out.

    The samples are those the Stream documents: step j uses N(0, I_D) drawn from
    fold_in(step_key, j) with (eval_key, step_key) = split(fold_in(key, 1)). float64 rounding
    over 40 steps: 1e-12 relative.
    """
    dim, k, m, lr, n_steps = 20, 3, 2, 0.7, 40
    kv, kw, ks = jax.random.split(key, 3)
    v = np.asarray(jax.random.normal(kv, (m, dim)))
    w = np.asarray(jax.random.normal(kw, (k, dim)))
    traj = mf.committee_online_sgd(ks, w, v, lr=lr, n_steps=n_steps, n_records=5)
    step_key = jax.random.split(jax.random.fold_in(ks, 1))[1]
    draw = jax.vmap(lambda j: jax.random.normal(jax.random.fold_in(step_key, j), (dim,)))
    xs = np.asarray(draw(jnp.arange(n_steps)))
    qs, rs = [], []
    for j in range(n_steps + 1):
        if j % 10 == 0:
            qs.append(w @ w.T / dim)
            rs.append(w @ v.T / dim)
        if j < n_steps:
            lam, nu = w @ xs[j] / np.sqrt(dim), v @ xs[j] / np.sqrt(dim)
            delta = _dg(lam) * (_g(nu).sum() - _g(lam).sum())
            w = w + (lr / np.sqrt(dim)) * delta[:, None] * xs[j][None, :]
    np.testing.assert_allclose(traj.alpha, np.arange(5) * 10 / dim, rtol=1e-15)
    np.testing.assert_allclose(traj.q, np.stack(qs), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(traj.r, np.stack(rs), rtol=1e-12, atol=1e-14)
    # eg = ½ (Σ I2(Q) + Σ I2(T) − 2 Σ I2(R)), I2(a, c, b) = (2/π) arcsin(c / sqrt((1+a)(1+b)))
    t = v @ v.T / dim

    def i2(c, a, b):
        return (2 / np.pi) * np.arcsin(c / np.sqrt(np.outer(1 + a, 1 + b))).sum()

    eg = [
        0.5 * (i2(q, q.diagonal(), q.diagonal()) + i2(t, t.diagonal(), t.diagonal()))
        - i2(r, q.diagonal(), t.diagonal())
        for q, r in zip(qs, rs)
    ]
    np.testing.assert_allclose(traj.eg, eg, rtol=1e-12)


def test_online_sgd_tracks_ode_over_short_time(key):
    """At D = 1000, alpha = 2 (before any plateau escape), SGD ≈ ODE from the same start.

    Finite-D fluctuations of Q, R are O(D^-1/2) ~ 0.03 per seed; the seed mean over 8 seeds
    is checked against the ODE with max_z-style 4 SE plus an O(1/D) bias allowance. The
    records line up by axis name in Comparison.from_records: the ODE's eg over alpha against
    the simulation's eg over (seed, alpha), at the Saad-Solla claim's 5% (rel. L2), which is
    > 4 SE here (the per-seed eg fluctuates by O(D^-1/2) ~ 3% of eg, 1% after the mean).
    The simulation runs in float32 (its rounding, ~1e-7 per step, is far below the O(D^-1/2)
    noise), the ODE in float64.
    """
    dim, k, m, lr, seeds = 1000, 2, 2, 1.0, 8
    kv, kw, ks = jax.random.split(key, 3)
    v = jax.random.normal(kv, (m, dim))
    w0 = jax.random.normal(kw, (k, dim))
    sim = mf.committee_online_sgd(ks, w0, v, lr=lr, n_steps=2000, n_records=3, seeds=seeds)
    with jax.enable_x64(True):
        q0, r0, t = mf.committee_order_parameters(np.asarray(w0, float), np.asarray(v, float))
        ode = mf.saad_solla_ode(q0, r0, t, lr=lr, alpha_max=2.0, n_records=3).to_numpy()
    assert sim.dims_of("eg") == ("seed", "time") and ode.dims_of("eg") == ("time",)
    np.testing.assert_allclose(sim.alpha, ode.time)
    for name in ("q", "r", "eg"):
        s = np.asarray(sim[name][:, -1])
        mean, se = s.mean(axis=0), s.std(axis=0, ddof=1) / np.sqrt(seeds)
        dev = np.abs(mean - np.asarray(ode[name][-1]))
        assert np.all(dev < N_SE * se + 5.0 / dim), f"{name}: {dev} vs SE {se}"
    c = Comparison.from_records("eg", ode, sim, "eg", tolerance=0.05)
    assert c.axes == ("time",) and c.n_seeds == seeds
    assert c.passed, c.summary_line()


def test_order_parameters_and_errors():
    w = jnp.ones((2, 5))
    q, r, t = mf.committee_order_parameters(w, 2.0 * jnp.ones((3, 5)))
    np.testing.assert_allclose(t, 4.0 * np.ones((3, 3)))
    np.testing.assert_allclose(q, np.ones((2, 2)))
    np.testing.assert_allclose(r, 2.0 * np.ones((2, 3)))
    with pytest.raises(ValueError, match="v must be"):
        mf.committee_order_parameters(w, jnp.ones((3, 4)))
    with pytest.raises(ValueError, match=r"r must have shape \(K, M\)"):
        mf.saad_solla_rhs(jnp.eye(2), jnp.eye(3), jnp.eye(2), lr=1.0)
    with pytest.raises(ValueError, match="lr must be > 0"):
        mf.saad_solla_rhs(jnp.eye(2), jnp.eye(2), jnp.eye(2), lr=-1.0)
    with pytest.raises(ValueError, match="n_records must be an int >= 2"):
        mf.saad_solla_ode(jnp.eye(2), jnp.eye(2), jnp.eye(2), lr=1.0, alpha_max=1.0, n_records=1)
    with pytest.raises(ValueError, match="multiple of n_records - 1"):
        mf.committee_online_sgd(jax.random.key(0), w, w, lr=1.0, n_steps=10, n_records=4)
    with pytest.raises(TypeError, match="n_steps must be an int"):
        mf.committee_online_sgd(jax.random.key(0), w, w, lr=1.0, n_steps=10.0)
    with pytest.raises(ValueError, match=r"v must be \(M, D\) teacher weights with D = 5"):
        mf.committee_online_sgd(jax.random.key(0), lambda k: w, w[:, :4], lr=1.0, n_steps=10)


# --------------------------------------------------------------------------- mean-field networks

_SIGMA = {
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(float)),
    "erf": (erf, lambda z: 2.0 / np.sqrt(np.pi) * np.exp(-(z**2))),
}


@pytest.mark.parametrize(("activation", "W_std"), [("relu", 2.0), ("erf", 0.7)])
def test_particle_flow_equals_explicit_particle_gd(x64, key, activation, W_std):
    """The mean-field particle dynamics equal the mean-field net trained by train.

    Written out independently (NumPy): particles a_i = W2[i], w_i = (W_std/sqrt(d)) W1[:, i]
    of the network's own initialisation, f = (1/N) Σ a_i σ(w_i·x), and Euler steps dt = lr
    of the mean-field velocity v_a = -(1/P) Σ_μ r_μ σ(w_i·x_μ),
    v_w = -m (1/P) Σ_μ r_μ a_i σ'(w_i·x_μ) x_μ with mobility m = W_std²/d (m = 1 at
    W_std = sqrt(d) = 2: the flow of Mei et al. exactly). float64, 6 steps: agreement to
    rounding, 1e-10 relative.
    """
    dim, n, p, lr = 4, 32, 10, 0.3
    x = np.asarray(jax.random.normal(jax.random.key(1), (p, dim)))
    y = np.sin(x[:, 0])
    x_probe = np.asarray(jax.random.normal(jax.random.key(2), (3, dim)))
    run = dict(n_particles=n, lr=lr, n_steps=6, n_records=3, activation=activation, W_std=W_std)
    traj = mf.particle_gradient_flow(key, x, y, x_probe=x_probe, **run)
    _, params = mf.meanfield_network(n, W_std=W_std).init(key, x.shape)
    a = np.asarray(params[2]["W"])[:, 0]
    w = (W_std / np.sqrt(dim)) * np.asarray(params[0]["W"]).T
    sigma, dsigma = _SIGMA[activation]
    mobility = W_std**2 / dim
    losses, outs = [], []
    for step in range(7):
        h = x @ w.T  # (P, N)
        res = sigma(h) @ a / n - y
        if step % 3 == 0:
            losses.append(0.5 * np.mean(res**2))
            outs.append(sigma(x_probe @ w.T) @ a / n)
        if step == 6:
            break
        va = -(sigma(h).T @ res) / p
        vw = -mobility * a[:, None] * ((dsigma(h) * res[:, None]).T @ x) / p
        a, w = a + lr * va, w + lr * vw
    assert traj.time_unit == "time" and traj.dims_of("outputs") == ("time", "probe")
    np.testing.assert_allclose(traj.time, [0.0, 0.9, 1.8], rtol=1e-12)
    np.testing.assert_allclose(traj.loss, losses, rtol=1e-10)
    np.testing.assert_allclose(traj.outputs, np.stack(outs), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(traj.a, a, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(traj.w, w, rtol=1e-10, atol=1e-14)


def test_seeds_widths_and_minibatches(key):
    x = jax.random.normal(jax.random.key(1), (32, 2))
    y = jnp.tanh(x[:, 0])
    run = dict(lr=0.2, n_steps=40, n_records=3, seeds=3, batch_size=8)
    traj = mf.particle_gradient_flow(key, x, y, n_particles=64, x_probe=x[:5], **run)
    assert traj.dims_of("outputs") == ("seed", "time", "probe")
    assert traj.dims_of("w") == ("seed", "particle", "dim") and traj.sizes["particle"] == 64
    assert bool(jnp.all(traj.loss[:, -1] < traj.loss[:, 0]))
    sweep = mf.particle_gradient_flow(key, x, y, n_particles=[16], **run)
    assert sweep.dims_of("loss") == ("width", "seed", "time") and sweep.coord("width").tolist() == [
        16
    ]
    assert "a" not in sweep and "outputs" not in sweep


def test_init_output_variance_matches_formula(key):
    """Var f_N(x) at init = E[a²] E[relu(w·x)²]/N = W_std²|x|²/(2dN): fluctuations O(N^-1/2)."""
    n, dim, seeds, w_std = 200, 3, 2000, 1.5
    x = jnp.array([[1.0, -2.0, 0.5]])
    net = mf.meanfield_network(n, W_std=w_std)
    f = jax.vmap(lambda k: net.apply(net.init(k, x.shape)[1], x))(jax.random.split(key, seeds))
    var = float(jnp.var(f[:, 0, 0], ddof=1))
    exact = w_std**2 * float(jnp.sum(x**2)) / (2 * dim * n)
    # Sample variance of a (near-Gaussian) variable: relative SE sqrt(2/(S-1)) = 3.2%.
    assert abs(var / exact - 1.0) < N_SE * np.sqrt(2.0 / (seeds - 1))
    # The library's value (the NNGP / N) is the closed form to rounding (float32).
    got = mf.init_output_variance(x, n, W_std=w_std)
    np.testing.assert_allclose(got, [exact], rtol=1e-6)


def test_init_output_variance_erf(x64):
    """erf: E[erf(z)²] = (2/π) arcsin(2s²/(1 + 2s²)) for z ~ N(0, s²), s² = W_std²|x|²/d."""
    x = jnp.array([[1.0, -2.0, 0.5], [0.3, 0.0, 0.1]])
    s2 = 0.7**2 * np.sum(np.asarray(x) ** 2, axis=1) / 3
    exact = (2 / np.pi) * np.arcsin(2 * s2 / (1 + 2 * s2)) / 50
    got = mf.init_output_variance(x, 50, activation="erf", W_std=0.7)
    np.testing.assert_allclose(got, exact, rtol=1e-12)


def test_seed_fluctuations_match_numpy():
    rng = np.random.default_rng(3)
    f = rng.standard_normal((2, 5, 3, 4))  # (width, seed, time, probe)
    f_ref = rng.standard_normal((3, 3, 4))  # (seed, time, probe)
    coords = {"width": np.array([8, 16]), "time": np.arange(3.0)}
    traj = mf.ParticleTrajectory(
        {"outputs": (("width", "seed", "time", "probe"), f)}, coords, {"time_unit": "time"}
    )
    ref = mf.ParticleTrajectory({"outputs": (("seed", "time", "probe"), f_ref)}, coords)
    out = mf.seed_fluctuations(traj, ref)
    assert out.dims_of("std") == ("width", "time") and out.time_unit == "time"
    assert out.dims_of("distance") == ("width", "seed", "time")
    for i in range(2):
        for t in range(3):
            std = np.sqrt(np.mean([np.var(f[i, :, t, p], ddof=1) for p in range(4)]))
            assert out.std[i, t] == pytest.approx(std, rel=1e-12)
            for s in range(5):
                d = np.sqrt(np.mean((f[i, s, t] - f_ref[:, t].mean(axis=0)) ** 2))
                assert out.distance[i, s, t] == pytest.approx(d, rel=1e-12)
    with pytest.raises(ValueError, match="needs a 'seed' axis"):
        mf.seed_fluctuations(ref.isel(seed=0))


@pytest.mark.slow  # ~6 s CPU: two diffrax compiles
def test_plateau_is_the_symmetric_fixed_point(x64):
    """The projected flow (float64 and float32) against the unprojected float64 flow.

    From Q = I, R = 0 the full flow stays on the symmetric subspace up to rounding; in
    float64 rounding has not yet grown into an escape at alpha = 200 (K = M = 2, lr = 2), so
    its eg there is the fixed point's to the solver tolerance (1e-8).
    """
    full = mf.saad_solla_ode(
        jnp.eye(2), jnp.zeros((2, 2)), jnp.eye(2), lr=2.0, alpha_max=200.0, n_records=3
    )
    plateau = float(mf.saad_solla_plateau(jnp.eye(2), 2, lr=2.0, alpha_max=200.0))
    assert plateau == pytest.approx(float(full.eg[-1]), rel=1e-7)
    with jax.enable_x64(False):  # float32: the projection keeps rounding from escaping
        single = float(mf.saad_solla_plateau(jnp.eye(2), 2, lr=2.0, alpha_max=400.0))
    assert single == pytest.approx(plateau, rel=1e-5)
    i_escape, window = mf.plateau_window(full.time, full.eg, plateau)
    assert i_escape == 2 and window.tolist() == [1]


def test_particle_density_is_normalised(key):
    a, w = mf.particles(mf.meanfield_network(5000).init(key, (1, 3))[1])
    h, ae, re = mf.particle_density(a, w, bins=20)
    area = np.outer(np.diff(ae), np.diff(re))
    assert float(np.sum(np.asarray(h) * area)) == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ValueError, match="a_range must be"):
        mf.particle_density(a, w, a_range=(1.0, 0.0))


def test_particle_errors(key):
    x, y = jnp.ones((4, 2)), jnp.ones(4)
    run = dict(n_particles=8, lr=0.1, n_steps=4, n_records=2)
    with pytest.raises(ValueError, match=r"x_probe must have shape \(P_probe, 2\)"):
        mf.particle_gradient_flow(key, x, y, x_probe=jnp.ones((3, 3)), **run)
    with pytest.raises(ValueError, match=r"y must have shape \(4,\) or \(4, 1\)"):
        mf.particle_gradient_flow(key, x, jnp.ones(3), **run)
    with pytest.raises(ValueError, match="activation must be one of"):
        mf.meanfield_network(8, activation="gelu")
    with pytest.raises(ValueError, match="lr must be > 0"):
        mf.particle_gradient_flow(key, x, y, **{**run, "lr": 0.0})
    with pytest.raises(ValueError, match="multiple of n_records - 1"):
        mf.particle_gradient_flow(key, x, y, **{**run, "n_records": 4})
    with pytest.raises(ValueError, match="n_particles must be a positive int"):
        mf.meanfield_network(0)
    with pytest.raises(TypeError, match="params must be the"):
        mf.particles({"W": x})


# ------------------------------------------------- sampled init spread, ODEs from a run's start


def test_sample_init_output_std_against_exact_variance():
    x = jax.random.normal(jax.random.key(1), (6, 3))
    rec = mf.sample_init_output_std(jax.random.key(0), x, [8, 32, 128], n_seeds=400)
    exact = np.sqrt(np.mean(np.asarray(mf.init_output_variance(x, 1)))) / np.sqrt([8, 32, 128])
    # Relative SE of an RMS sample std over S seeds is at most 1/sqrt(2(S-1)) = 3.5%: 4 SE.
    np.testing.assert_allclose(np.asarray(rec["std"]), exact, rtol=4 / np.sqrt(2 * 399))
    assert rec.dims_of("std") == ("width",)
    with pytest.raises(ValueError, match="n_seeds"):
        mf.sample_init_output_std(jax.random.key(0), x, [8], n_seeds=1)


def test_saad_solla_from_overlaps_matches_per_seed_ode(x64):
    k1, k3 = jax.random.split(jax.random.key(3))
    v = jax.random.normal(k1, (2, 200))
    sim = mf.committee_online_sgd(
        k3, lambda k: jax.random.normal(k, (2, 200)), v, lr=0.5, n_steps=2000, n_records=5,
        seeds=2,
    )  # fmt: skip
    ode = mf.saad_solla_from_overlaps(sim, lr=0.5)
    assert ode.dims_of("eg") == ("seed", "time")
    alpha = np.asarray(sim.alpha)
    for s in range(2):
        direct = mf.saad_solla_ode(
            sim.q[s, 0], sim.r[s, 0], sim.t, lr=0.5, alpha_max=alpha[-1], n_records=5
        )
        np.testing.assert_allclose(ode["eg"][s], direct.eg, rtol=1e-10)
        np.testing.assert_allclose(ode["r"][s], direct.r, rtol=1e-10)
    with pytest.raises(TypeError, match="OrderParameters"):
        mf.saad_solla_from_overlaps(ode, lr=0.5)


def test_meanfield_figures_draw_the_records():
    from nnlab.record import Record

    t = np.linspace(0.0, 1.0, 3)
    sim = mf.OrderParameters(
        {
            "eg": (("seed", "time"), np.array([[0.3, 0.2, 0.1], [0.4, 0.2, 0.05]])),
            "r": (("seed", "time", "student", "teacher"), np.ones((2, 3, 1, 1))),
        },
        {"time": t},
    )
    r = (("seed", "time", "student", "teacher"), np.ones((2, 3, 1, 1)))
    ode = Record({"eg": (("seed", "time"), sim["eg"] * 0.9), "r": r}, {"time": t})
    fig = mf.order_parameters_figure(sim, ode, plateau=0.2, escape=0.5)
    lines = fig.axes[0].get_lines()
    np.testing.assert_allclose(lines[0].get_ydata(), sim["eg"][0])
    np.testing.assert_allclose(lines[2].get_ydata(), 0.9 * sim["eg"][0])
    a, w = np.array([0.1, -0.2, 0.3]), np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    dens = mf.particle_density_figure([(a, w), (2 * a, w)], ["start", "end"], bins=4)
    assert [ax.get_title() for ax in dens.axes] == ["start", "end"]
    both = np.concatenate([a, 2 * a])  # shared ranges: quantiles over both snapshots
    r_max = np.quantile(np.tile(np.linalg.norm(w, axis=1), 2), 0.998)
    a_range = tuple(np.quantile(both, [0.002, 0.998]))
    h = mf.particle_density(a, w, bins=4, a_range=a_range, w_range=(0.0, r_max))[0]
    np.testing.assert_allclose(dens.axes[0].collections[0].get_array().reshape(4, 4), h.T)
    with pytest.raises(ValueError, match="one title per snapshot"):
        mf.particle_density_figure([(a, w)], [])
