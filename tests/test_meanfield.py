"""Tests for nnlab.meanfield: erf integrals, Saad-Solla ODEs, online SGD, particle systems."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.special import erf

from nnlab import meanfield as mf

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
    """The RK4 scan against scipy's adaptive solver on the same right-hand side."""
    k, m, lr = 2, 2, 1.0
    q0, r0, t = _random_overlaps(7, k, m, scale=0.5)
    traj = mf.saad_solla_ode(q0, r0, t, lr=lr, alpha_max=10.0, dalpha=0.02, n_records=6)

    rhs = jax.jit(lambda qq, rr: mf.saad_solla_rhs(qq, rr, t, lr=lr))

    def f(_, y):
        dq, dr = rhs(y[: k * k].reshape(k, k), y[k * k :].reshape(k, m))
        return np.concatenate([np.ravel(dq), np.ravel(dr)])

    y0 = np.concatenate([q0.ravel(), r0.ravel()])
    ref = solve_ivp(f, (0.0, 10.0), y0, t_eval=np.asarray(traj.alpha), rtol=1e-10, atol=1e-12)
    # RK4 with h = 0.02 has global error O(h^4) ~ 1e-7 on this smooth, O(1) flow.
    np.testing.assert_allclose(traj.q.reshape(6, -1), ref.y[: k * k].T, atol=1e-6)
    np.testing.assert_allclose(traj.r.reshape(6, -1), ref.y[k * k :].T, atol=1e-6)
    assert traj.eg.shape == (6,)


def test_rhs_jit_vmap(x64):
    q, r, t = _random_overlaps(1, 2, 2)
    qs = jnp.stack([q, 0.5 * q])
    dq_v, _ = jax.vmap(lambda qq: mf.saad_solla_rhs(qq, r, t, lr=0.5))(qs)
    dq_j, _ = jax.jit(lambda qq: mf.saad_solla_rhs(qq, r, t, lr=0.5))(qs[1])
    np.testing.assert_allclose(dq_v[1], dq_j, rtol=1e-12)


def test_online_sgd_tracks_ode_over_short_time(x64, key):
    """At D = 1000, alpha = 2 (before any plateau escape), SGD ≈ ODE from the same start.

    Finite-D fluctuations of Q, R are O(D^-1/2) ~ 0.03 per seed; the seed mean over 8 seeds
    is checked against the ODE with max_z-style 4 SE plus an O(1/D) bias allowance.
    """
    dim, k, m, lr, seeds = 1000, 2, 2, 1.0, 8
    kv, kw, ks = jax.random.split(key, 3)
    v = jax.random.normal(kv, (m, dim))
    w0 = jnp.broadcast_to(jax.random.normal(kw, (k, dim)), (seeds, k, dim))
    sim = jax.vmap(
        lambda kk, w: mf.committee_online_sgd(kk, w, v, lr=lr, n_steps=2000, n_records=3)
    )(jax.random.split(ks, seeds), w0)
    q0, r0, t = mf.committee_order_parameters(w0[0], v)
    ode = mf.saad_solla_ode(q0, r0, t, lr=lr, alpha_max=2.0, n_records=3)
    np.testing.assert_allclose(sim.alpha[0], ode.alpha)
    for name, s, o in (("q", sim.q, ode.q), ("r", sim.r, ode.r), ("eg", sim.eg, ode.eg)):
        s = np.asarray(s[:, -1])
        mean, se = s.mean(axis=0), s.std(axis=0, ddof=1) / np.sqrt(seeds)
        dev = np.abs(mean - np.asarray(o[-1]))
        assert np.all(dev < N_SE * se + 5.0 / dim), f"{name}: {dev} vs SE {se}"


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
    with pytest.raises(ValueError, match="lr must be a positive"):
        mf.saad_solla_rhs(jnp.eye(2), jnp.eye(2), jnp.eye(2), lr=-1.0)
    with pytest.raises(ValueError, match="n_records"):
        mf.saad_solla_ode(jnp.eye(2), jnp.eye(2), jnp.eye(2), lr=1.0, alpha_max=1.0, n_records=1)
    with pytest.raises(ValueError, match="multiple of n_records - 1"):
        mf.committee_online_sgd(jax.random.key(0), w, w, lr=1.0, n_steps=10, n_records=4)
    with pytest.raises(TypeError, match="n_steps must be a positive int"):
        mf.committee_online_sgd(jax.random.key(0), w, w, lr=1.0, n_steps=10.0)


# --------------------------------------------------------------------------- particles


def _dense_f(a, w, x, sigma):
    return np.mean(a[None, :] * sigma(x @ w.T), axis=1)


@pytest.mark.parametrize("activation", ["relu", "tanh", "erf"])
def test_apply_matches_dense_formula(x64, key, activation):
    sigma = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh, "erf": erf}[activation]
    p = mf.init_particles(key, 300, 3)
    x = np.asarray(jax.random.normal(jax.random.key(1), (12, 3)))
    expected = _dense_f(np.asarray(p.a), np.asarray(p.w), x, sigma)
    for chunk in (None, 1, 5):  # 5 is not a divisor: rounded down to one (4)
        got = mf.meanfield_apply(p, x, activation=activation, chunk_size=chunk)
        np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("activation", ["relu", "tanh", "erf"])
def test_velocity_is_minus_n_times_gradient(x64, key, activation):
    """The chunked velocity against autodiff of the loss (an independent computation)."""
    n = 50
    p = mf.init_particles(key, n, 3)
    x = jax.random.normal(jax.random.key(1), (12, 3))
    y = jnp.sin(x[:, 0])

    def loss(params):
        return 0.5 * jnp.mean((mf.meanfield_apply(params, x, activation=activation) - y) ** 2)

    grad = jax.grad(loss)(p)
    vel, value = mf.meanfield_velocity(p, x, y, activation=activation, chunk_size=4)
    np.testing.assert_allclose(vel.a, -n * grad.a, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(vel.w, -n * grad.w, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(value, loss(p), rtol=1e-12)


def test_gradient_flow_equals_explicit_euler(x64, key):
    p = mf.init_particles(key, 40, 2)
    x = jax.random.normal(jax.random.key(1), (8, 2))
    y = jnp.tanh(x[:, 0])
    x_test = jax.random.normal(jax.random.key(2), (3, 2))
    traj = mf.particle_gradient_flow(p, x, y, dt=0.3, n_steps=6, n_records=3, x_test=x_test)
    q, losses, outs = p, [], []
    for step in range(7):
        vel, value = mf.meanfield_velocity(q, x, y)
        if step % 3 == 0:
            losses.append(value)
            outs.append(mf.meanfield_apply(q, x_test))
        q = mf.Particles(q.a + 0.3 * vel.a, q.w + 0.3 * vel.w)
    np.testing.assert_allclose(traj.times, [0.0, 0.9, 1.8], rtol=1e-12)
    np.testing.assert_allclose(traj.loss, losses, rtol=1e-10)
    np.testing.assert_allclose(traj.f_test, np.stack(outs), rtol=1e-10)


def test_sgd_batches_and_vmap(key):
    x = jax.random.normal(jax.random.key(1), (32, 2))
    y = jnp.tanh(x[:, 0])
    ps = jax.vmap(lambda k: mf.init_particles(k, 64, 2))(jax.random.split(key, 3))
    run = jax.vmap(
        lambda p, k: mf.particle_gradient_flow(
            p, x, y, dt=0.2, n_steps=40, n_records=3, batch_size=8, key=k
        )
    )
    traj = run(ps, jax.random.split(jax.random.key(5), 3))
    assert traj.loss.shape == (3, 3) and traj.f_test.shape == (3, 3, 0)
    assert bool(jnp.all(traj.loss[:, -1] < traj.loss[:, 0]))


def test_init_output_variance_matches_formula(key):
    """Var f_N(x) at init = E[a²] E[relu(w·x)²]/N = |x|²/(2dN): fluctuations are O(N^-1/2)."""
    n, dim, seeds = 200, 3, 2000
    x = jnp.array([[1.0, -2.0, 0.5]])
    f = jax.vmap(lambda k: mf.meanfield_apply(mf.init_particles(k, n, dim), x))(
        jax.random.split(key, seeds)
    )[:, 0]
    var = float(jnp.var(f, ddof=1))
    exact = float(jnp.sum(x**2)) / (2 * dim * n)
    # Sample variance of a (near-Gaussian) variable: relative SE sqrt(2/(S-1)) = 3.2%.
    assert abs(var / exact - 1.0) < N_SE * np.sqrt(2.0 / (seeds - 1))


def test_particle_density_is_normalised(key):
    p = mf.init_particles(key, 5000, 3)
    h, ae, re = mf.particle_density(p, bins=20)
    area = np.outer(np.diff(ae), np.diff(re))
    assert float(np.sum(np.asarray(h) * area)) == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ValueError, match="a_range must be"):
        mf.particle_density(p, a_range=(1.0, 0.0))


def test_particle_errors(key):
    p = mf.init_particles(key, 10, 2)
    x = jnp.ones((4, 2))
    with pytest.raises(TypeError, match="particles must be a Particles"):
        mf.meanfield_apply((p.a, p.w), x)
    with pytest.raises(ValueError, match=r"x must have shape \(P, d\) with d = 2"):
        mf.meanfield_apply(p, jnp.ones((4, 3)))
    with pytest.raises(ValueError, match="activation must be one of"):
        mf.meanfield_apply(p, x, activation="gelu")
    with pytest.raises(ValueError, match=r"y must have shape \(4,\)"):
        mf.meanfield_velocity(p, x, jnp.ones(3))
    with pytest.raises(ValueError, match="key is required"):
        mf.particle_gradient_flow(p, x, jnp.ones(4), dt=0.1, n_steps=4, n_records=2, batch_size=2)
    with pytest.raises(ValueError, match="dt must be a positive"):
        mf.particle_gradient_flow(p, x, jnp.ones(4), dt=0.0, n_steps=4, n_records=2)
    with pytest.raises(ValueError, match="n_particles must be an int >= 1"):
        mf.init_particles(key, 0, 2)
    with pytest.raises(TypeError, match="chunk_size must be an int"):
        mf.meanfield_apply(p, x, chunk_size=2.0)
