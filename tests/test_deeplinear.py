"""Tests for nnlab.deeplinear: exact mode dynamics, modes, datasets and the GD simulator."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import quad, solve_ivp

from nnlab import deeplinear as dl
from nnlab.evaluate import Comparison
from nnlab.record import stack


# ------------------------------------------------------------------------------ theory
@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5, 7])
@pytest.mark.parametrize("u0", [1e-3, 0.3, 2.5])  # below s/2, near s, above s (decay)
def test_mode_dynamics_solves_its_ode(x64, depth, u0):
    # Independent reference: an adaptive RK solve of tau du/dt = D u^(2-2/D)(s - u) with
    # rtol 1e-11; the closed form / bisection is exact to ~1e-13, so 1e-8 is generous.
    s, tau = 1.7, 2.0
    t = np.linspace(0.0, 12.0, 25)
    ref = solve_ivp(
        lambda _, u: depth * u ** (2 - 2 / depth) * (s - u) / tau,
        (0.0, t[-1]),
        [u0],
        t_eval=t,
        rtol=1e-11,
        atol=1e-14,
        method="DOP853",
    ).y[0]
    got = np.asarray(dl.mode_dynamics(s, u0, jnp.asarray(t), tau=tau, depth=depth))
    np.testing.assert_allclose(got, ref, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("depth", [2, 3, 4, 6])
def test_mode_dynamics_derivative_matches_velocity(x64, depth):
    # Central differences with h = 1e-4: truncation error ~h^2 u''' ~ 1e-8 relative.
    s = jnp.array([2.0, 1.0, 0.4])
    t = jnp.array([[0.5], [1.5], [3.0], [6.0]])
    h = 1e-4
    u = dl.mode_dynamics(s[None, :], 1e-2, t, tau=1.0, depth=depth)
    du = (
        dl.mode_dynamics(s[None, :], 1e-2, t + h, depth=depth)
        - dl.mode_dynamics(s[None, :], 1e-2, t - h, depth=depth)
    ) / (2 * h)
    # Where u has saturated, du/dt ~ 0 and rounding (eps * u / h ~ 1e-11) sets an atol.
    np.testing.assert_allclose(
        du, dl.mode_velocity(u, s[None, :], depth=depth), rtol=1e-6, atol=1e-10
    )


def test_two_layer_closed_form_is_saxe_eq7(x64):
    # u(t) = s e^{2st/tau} / (e^{2st/tau} - 1 + s/u0), written out independently.
    s, u0, tau = 1.3, 1e-3, 3.0
    t = np.linspace(0, 20, 41)
    e = np.exp(2 * s * t / tau)
    np.testing.assert_allclose(
        dl.mode_dynamics(s, u0, jnp.asarray(t), tau=tau, depth=2),
        s * e / (e - 1 + s / u0),
        rtol=1e-12,
    )


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5, 8])
def test_learning_time_matches_quadrature_and_inverts_dynamics(x64, depth):
    s, u0, tau = jnp.array([2.0, 0.5, 0.5]), jnp.array([1e-3, 1e-2, 0.9]), 1.5
    u_f = jnp.array([1.0, 0.45, 0.6])
    t = dl.learning_time(s, u0, u_f, tau=tau, depth=depth)
    for i in range(3):  # adaptive quadrature of tau / (D u^(2-2/D)(s-u)), rel error < 1e-10
        ref, _ = quad(
            lambda u, i=i: tau / (depth * u ** (2 - 2 / depth) * (float(s[i]) - u)),
            float(u0[i]),
            float(u_f[i]),
            epsabs=0,
            epsrel=1e-12,
            limit=200,
        )
        np.testing.assert_allclose(float(t[i]), ref, rtol=1e-9)
    np.testing.assert_allclose(dl.mode_dynamics(s, u0, t, tau=tau, depth=depth), u_f, rtol=1e-10)


def test_mode_dynamics_limits_and_dtype():
    u = dl.mode_dynamics(jnp.array([1.0, 3.0]), 0.01, jnp.array([[0.0], [1e3]]), depth=4)
    assert u.dtype == jnp.float32
    np.testing.assert_allclose(u[0], [0.01, 0.01], rtol=1e-5)
    np.testing.assert_allclose(u[1], [1.0, 3.0], rtol=1e-5)


def test_theory_under_jit_and_vmap(x64):
    s = jnp.array([0.5, 1.0, 2.0])
    direct = dl.mode_dynamics(s, 0.01, 3.0, depth=3)
    jitted = jax.jit(lambda s: dl.mode_dynamics(s, 0.01, 3.0, depth=3))(s)
    mapped = jax.vmap(lambda s: dl.mode_dynamics(s, 0.01, 3.0, depth=3))(s)
    np.testing.assert_allclose(jitted, direct, rtol=1e-13)
    np.testing.assert_allclose(mapped, direct, rtol=1e-13)
    lt = jax.jit(lambda s: dl.learning_time(s, 0.01, s / 2, depth=5))(s)
    np.testing.assert_allclose(lt, dl.learning_time(s, 0.01, s / 2, depth=5), rtol=1e-13)


def test_theory_errors():
    with pytest.raises(ValueError, match="depth must be >= 1"):
        dl.mode_dynamics(1.0, 0.1, 1.0, depth=0)
    with pytest.raises(TypeError, match="depth must be a Python int"):
        dl.mode_dynamics(1.0, 0.1, 1.0, depth=2.0)
    with pytest.raises(ValueError, match="s must be positive"):
        dl.mode_dynamics(jnp.array([1.0, 0.0]), 0.1, 1.0)
    with pytest.raises(ValueError, match="u0 must be positive"):
        dl.mode_dynamics(1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="t must be >= 0"):
        dl.mode_dynamics(1.0, 0.1, -1.0)
    with pytest.raises(ValueError, match="u_f must lie between u0 and s"):
        dl.learning_time(1.0, 0.1, 1.0)
    with pytest.raises(ValueError, match="u_f must lie between u0 and s"):
        dl.learning_time(1.0, 0.1, 0.05)
    with pytest.raises(ValueError, match="tau must be positive"):
        dl.learning_time(1.0, 0.1, 0.5, tau=-1.0)


# ------------------------------------------------------------------------------ modes, data
def test_hierarchical_data_modes(x64):
    data = dl.hierarchical_data(3)
    assert data.x.shape == (8, 8) and data.y.shape == (8, 15)
    # Each item has exactly one property per level (root, 2, 4, 8 nodes): 4 properties.
    np.testing.assert_array_equal(np.asarray(data.y).sum(axis=1), 4.0)
    modes = dl.mode_decomposition(data.x, data.y)
    # Item-similarity eigenvalues 2^(L+1-k) - 1 by level k, multiplicities 1, 1, 2, 4.
    np.testing.assert_allclose(modes.s**2 * 8, [15, 7, 3, 3, 1, 1, 1, 1], rtol=1e-12)
    onehot = dl.hierarchical_data(3, whitened=False)
    same = dl.mode_decomposition(onehot.x, onehot.y)  # whitening undoes the scale
    np.testing.assert_allclose(same.s, modes.s, rtol=1e-12)


def test_mode_decomposition_whitening(x64, key):
    k1, k2 = jax.random.split(key)
    x = jax.random.normal(k1, (40, 5)) @ jnp.diag(jnp.array([3.0, 2.0, 1.0, 0.5, 0.2]))
    y = jax.random.normal(k2, (40, 3))
    m = dl.mode_decomposition(x, y)
    xw = x @ m.whitening
    np.testing.assert_allclose(xw.T @ xw / 40, jnp.eye(5), atol=1e-12)
    # The SVD reconstructs the whitened cross-correlation (dense reference).
    np.testing.assert_allclose((m.u * m.s[None, :]) @ m.v.T, y.T @ xw / 40, atol=1e-12)
    assert m.u.shape == (3, 3) and m.v.shape == (5, 3)
    plain = dl.mode_decomposition(x, y, whiten=False)
    np.testing.assert_allclose(plain.s, np.linalg.svd(np.asarray(y.T @ x / 40))[1], rtol=1e-12)
    top = dl.mode_decomposition(x, y, rank=2)  # the two strongest modes, unchanged
    np.testing.assert_allclose(top.s, m.s[:2], rtol=1e-12)
    np.testing.assert_allclose(jnp.abs(top.u.T @ m.u[:, :2]), jnp.eye(2), atol=1e-10)
    assert top.v.shape == (5, 2)


def test_random_teacher_is_exactly_whitened(x64, key):
    data = dl.random_teacher(key, 6, 5, [3.0, 1.5, 0.5], n_samples=20)
    sxx, syx = dl.correlations(data.x, data.y)
    np.testing.assert_allclose(sxx, jnp.eye(6), atol=1e-12)
    np.testing.assert_allclose(np.linalg.svd(np.asarray(syx))[1], [3, 1.5, 0.5, 0, 0], atol=1e-12)


def test_project_modes_and_product(key):
    ks = jax.random.split(key, 3)
    ws = [jax.random.normal(ks[0], (2, 4, 3)), jax.random.normal(ks[1], (2, 5, 4))]
    u = jnp.linalg.qr(jax.random.normal(ks[2], (5, 2)))[0]
    v = jnp.eye(3)[:, :2]
    got = dl.project_modes(ws, u, v)
    for b in range(2):
        w = np.asarray(ws[1][b]) @ np.asarray(ws[0][b])
        np.testing.assert_allclose(got[b], np.diag(np.asarray(u).T @ w @ np.asarray(v)), rtol=1e-5)


def test_modes_and_data_errors(key):
    with pytest.raises(ValueError, match="x must be 2-D"):
        dl.mode_decomposition(jnp.ones(4), jnp.ones((4, 2)))
    with pytest.raises(ValueError, match="same number of samples"):
        dl.mode_decomposition(jnp.ones((4, 3)), jnp.ones((5, 2)))
    with pytest.raises(ValueError, match="does not compose"):
        dl.project_modes([jnp.ones((4, 3)), jnp.ones((2, 5))], jnp.eye(2), jnp.eye(3))
    with pytest.raises(ValueError, match="the weight product has shape"):
        dl.project_modes([jnp.ones((4, 3))], jnp.eye(2), jnp.eye(3)[:, :2])
    with pytest.raises(TypeError, match="non-empty list"):
        dl.project_modes(jnp.ones((4, 3)), jnp.eye(4), jnp.eye(3))
    with pytest.raises(ValueError, match=r"singular_values must be 1-D with 1 to min\(d, k\) = 2"):
        dl.random_teacher(key, 4, 2, [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="n_samples must be >= n_in"):
        dl.random_teacher(key, 4, 2, [1.0], n_samples=3)
    with pytest.raises(ValueError, match="n_levels must be a positive int"):
        dl.hierarchical_data(0)
    with pytest.raises(ValueError, match="rank must be <= min"):
        dl.mode_decomposition(jnp.eye(3), jnp.ones((3, 2)), rank=3)


# ------------------------------------------------------------------------------ records
def test_theory_records_under_jit(x64):
    # The records hold exactly the array functions' values.
    s, t = jnp.array([2.0, 1.0, 0.4]), jnp.linspace(0.0, 20.0, 4001)
    rec = jax.jit(lambda s: dl.mode_trajectory(s, 1e-2, t, depth=2, tau=2.0))(s)
    assert isinstance(rec, dl.ModeTrajectory) and rec.time_unit == "time"
    assert rec.dims_of("mode_strength") == ("time", "mode")
    np.testing.assert_allclose(
        rec.mode_strength, dl.mode_dynamics(s[None], 1e-2, t[:, None], tau=2.0, depth=2)
    )
    times = dl.learning_times(s, 1e-2, s / 2, depth=2, tau=2.0)
    np.testing.assert_allclose(
        times.learning_time, dl.learning_time(s, 1e-2, s / 2, tau=2.0, depth=2), rtol=1e-13
    )
    # crossing_times on the fine grid (dt = 0.005: linear interpolation of a smooth curve,
    # error ~ dt^2 |u''| / u' << 1e-3 relative) finds the exact learning times.
    np.testing.assert_allclose(
        dl.crossing_times(rec, s / 2).learning_time, times.learning_time, rtol=1e-3
    )
    # Stage order: the exact times are ordered by s; swapping two modes' times gives exactly
    # one out-of-order pair; a NaN (never learnt) time is late against every stronger mode.
    assert dl.stage_order_violations(times, s) == 0
    swapped = times.replace(learning_time=times.learning_time[jnp.array([1, 0, 2])])
    assert dl.stage_order_violations(swapped, s) == 1
    never = times.replace(learning_time=times.learning_time.at[0].set(jnp.nan))
    assert dl.stage_order_violations(never, s) == 2
    with pytest.raises(ValueError, match="time_unit must be one of"):
        dl.mode_trajectory(s, 1e-2, t, time_unit="steps")
    with pytest.raises(TypeError, match="mode_strength"):
        dl.crossing_times(times, 0.5)


# ------------------------------------------------------------------------------ simulation
def test_network_and_inits(x64, key):
    u = jnp.linalg.qr(jax.random.normal(key, (4, 2)))[0]
    v = jnp.eye(6)[:, :2]
    ps = dl.init_params(key, (6, 5, 3, 4), init="aligned", W_std=0.2, u=u, v=v)
    ws = [p["W"].T for p in ps]  # Dense stores W_l^T
    np.testing.assert_allclose(dl.weight_product(ws), 0.008 * u @ v.T, atol=1e-14)
    for lower, upper in itertools.pairwise(ws):  # balancedness W_{l+1}^T W_{l+1} = W_l W_l^T
        np.testing.assert_allclose(upper.T @ upper, lower @ lower.T, atol=1e-14)
    # The network computes x -> W_3 W_2 W_1 x with these parameters (dense reference).
    net = dl.network((5, 3, 4), W_std=0.2)
    x = jax.random.normal(key, (7, 6))
    np.testing.assert_allclose(net.apply(ps, x), x @ dl.weight_product(ws).T, atol=1e-14)
    orth = dl.init_params(key, (6, 5, 4), init="orthogonal", W_std=0.5)
    np.testing.assert_allclose(np.linalg.svd(np.asarray(orth[0]["W"]))[1], 0.5, rtol=1e-12)
    # 'random' is the network's own standard init, W_ij ~ N(0, W_std^2 / fan_in): the sample
    # variance of 60000 entries has relative standard error sqrt(2/60000) = 0.58%; 3%
    # is over 5 standard errors.
    (big,) = dl.init_params(key, (200, 300), init="random", W_std=1.5)
    assert big["b"] is None
    np.testing.assert_allclose(jnp.var(big["W"]) * 200, 1.5**2, rtol=0.03)
    assert abs(float(jnp.mean(big["W"]))) < 5 * 1.5 / np.sqrt(200 * 60000)


def test_simulation_and_theory_records_compare(x64, key):
    # One compiled program over seeds x two rates; theory and simulation records meet in
    # Comparison.from_records by axis name. GD is the Euler discretisation of the flow, so
    # the error is O(lr s_max) (its slope 1 in lr is the slow test below): measured rel_l2
    # 0.12% / 0.16% for the trajectories and max_rel 0.40% / 0.61% for the half-times at
    # lr = 0.01 / 0.02. Tolerance 1%: a factor-2 error in the rate convention would shift
    # the sigmoids by a factor 2 in time (an O(1) error).
    data = dl.hierarchical_data(2)
    modes = dl.mode_decomposition(data.x, data.y)
    lrs, u0 = (0.01, 0.02), 0.01
    sim = dl.simulate(
        key,
        data.x,
        data.y,
        (8,),
        lr=jnp.array(lrs),
        n_steps=1200,
        log_every=20,
        n_seeds=2,
        W_std=u0**0.5,
        modes=modes,
    )
    assert sim.dims_of("mode_strength") == ("seed", "lr", "time", "mode")
    assert sim.time_unit == "step" and not bool(np.any(sim.diverged))
    theory_t, sim_t = [], []
    for lr in lrs:
        one = sim.sel(lr=lr)
        theory = dl.mode_trajectory(modes.s, u0, one.time, tau=1 / lr, time_unit="step")
        c = Comparison.from_records("modes", theory, one, "mode_strength", tolerance=0.01)
        assert c.passed, c
        theory_t.append(dl.learning_times(modes.s, u0, modes.s / 2, tau=1 / lr, time_unit="step"))
        sim_t.append(dl.crossing_times(one, modes.s / 2))
    c = Comparison.from_records(
        "half_times",
        stack(theory_t, "lr", lrs),
        stack(sim_t, "lr", lrs),
        "learning_time",
        metric="max_rel",
        tolerance=0.01,
    )
    assert c.passed and c.axes == ("lr", "mode"), c
    # The stage figure draws the theory curve and the seed-mean simulation it was given.
    ax = dl.stages_figure([("lr = 0.02", theory, one)]).axes[0]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), theory["mode_strength"][:, 0])
    np.testing.assert_allclose(
        ax.lines[1].get_ydata(), np.mean(one["mode_strength"], axis=0)[:: len(one.time) // 40, 0]
    )
    with pytest.raises(ValueError, match="panels is empty"):
        dl.stages_figure([])


@pytest.mark.slow
@pytest.mark.parametrize("depth", [2, 3])
def test_simulation_matches_theory_with_error_linear_in_lr(x64, key, depth):
    # GD is the Euler discretisation of the flow: with aligned small init the error against
    # the exact solution must be O(lr). Halving lr should halve it (slope 1 within 0.15).
    # One compiled run over the three rates; errors compared at the same t / tau.
    data = dl.random_teacher(key, 5, 4, [2.0, 1.0, 0.5])
    modes = dl.mode_decomposition(data.x, data.y, rank=3)
    u0, lrs, n_log, log_every = 0.01, (0.02, 0.01, 0.005), 35, 80
    sim = dl.simulate(
        key,
        data.x,
        data.y,
        (6,) * (depth - 1),
        lr=jnp.array(lrs),
        n_steps=n_log * log_every,
        log_every=log_every,
        n_seeds=2,
        W_std=u0 ** (1 / depth),
        modes=modes,
    )
    errors = []
    for lr, stride in zip(lrs, (1, 2, 4)):  # logged steps at t / tau = 1.6 k for every rate
        idx = np.arange(0, n_log // 4 * 4 + 1, stride)[: n_log // 4 + 1]
        got = np.asarray(sim.sel(lr=lr).mode_strength)[:, idx]
        theory = dl.mode_trajectory(
            modes.s, u0, sim.time[idx], depth=depth, tau=1 / lr
        ).mode_strength
        errors.append(float(np.linalg.norm(got[0] - theory) / np.linalg.norm(theory)))
        np.testing.assert_allclose(got[1], got[0], rtol=1e-9)  # hidden frames don't matter
    assert errors[0] < 0.02
    slopes = np.diff(np.log(errors)) / np.diff(np.log(np.asarray(lrs)))
    np.testing.assert_allclose(slopes, 1.0, atol=0.15)


@pytest.mark.slow
def test_random_init_converges_to_least_squares(x64, key):
    # From small random init, full-batch GD on a deep linear net reaches the global minimum
    # W = Sigma_yx Sigma_xx^{-1} (generic data, full rank): dense reference by lstsq. The
    # residual decays geometrically; 6000 steps take it to rounding level (1e-9 is loose).
    k1, k2 = jax.random.split(key)
    x = jax.random.normal(k1, (30, 4))
    y = jax.random.normal(k2, (30, 3))
    sim = dl.simulate(
        key,
        x,
        y,
        (6,),
        lr=0.1,
        n_steps=6000,
        log_every=600,
        n_seeds=2,
        init="random",
        W_std=0.3,
    )
    w_star = np.linalg.lstsq(np.asarray(x), np.asarray(y), rcond=None)[0].T
    for w in np.asarray(sim.weight_product):
        np.testing.assert_allclose(w, w_star, atol=1e-9)
    assert sim.loss.shape == (2, 11) and bool(np.all(np.diff(sim.loss, axis=1) <= 1e-12))


def test_simulate_errors():
    data = dl.hierarchical_data(2)
    k = jax.random.key(0)
    with pytest.raises(ValueError, match="multiple of log_every"):
        dl.simulate(k, data.x, data.y, (8,), lr=0.1, n_steps=10, log_every=3)
    with pytest.raises(ValueError, match="lr must be > 0"):
        dl.simulate(k, data.x, data.y, (8,), lr=0.0, n_steps=10)
    with pytest.raises(ValueError, match="1-D array of positive, finite rates"):
        dl.simulate(k, data.x, data.y, (8,), lr=jnp.array([0.1, -0.1]), n_steps=10)
    with pytest.raises(ValueError, match="init must be one of"):
        dl.simulate(k, data.x, data.y, (8,), lr=0.1, n_steps=10, init="zeros")
    with pytest.raises(ValueError, match=r"hidden_widths\[0\] must be a positive int"):
        dl.simulate(k, data.x, data.y, (0,), lr=0.1, n_steps=10)
    with pytest.raises(ValueError, match="n_aligned must be <= 2"):
        dl.simulate(k, data.x, data.y, (2,), lr=0.1, n_steps=10, n_aligned=3)
    with pytest.raises(ValueError, match="same number of samples"):
        dl.simulate(k, data.x, data.y[:2], (8,), lr=0.1, n_steps=10)
    with pytest.raises(ValueError, match="W_std must be >= 0"):
        dl.simulate(k, data.x, data.y, (8,), lr=0.1, n_steps=10, W_std=-1.0)
    with pytest.raises(ValueError, match="needs the mode directions"):
        dl.init_params(k, (3, 4, 2), init="aligned")
    with pytest.raises(ValueError, match="at least one layer"):
        dl.network(())
