"""Tests for nnlab.predict: every value is checked against an independent computation.

References used: dense numpy/scipy linear algebra (``scipy.linalg.expm``, ``np.linalg.solve``),
explicit iterations of the dynamics, optax training of a linear model, scipy ODE solves,
scipy's multivariate normal density and optimiser, the arc-cosine kernels of Cho & Saul 2009
written out here, and a Monte Carlo ensemble of trained finite networks.
"""

from __future__ import annotations

import doctest

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.integrate
import scipy.linalg
import scipy.optimize
import scipy.stats

from nnlab import predict


def _psd(rng, n, m=0, rank=None, d=None):
    """Random feature Gram matrices: Θ_train (n, n), Θ_test_train (m, n), Θ_test_test."""
    d = d or 3 * (n + m)
    feats = rng.normal(size=(n + m, d)) / np.sqrt(d)
    if rank is not None:
        feats[:, rank:] = 0.0
    k = feats @ feats.T
    return k[:n, :n], k[n:, :n], k[n:, n:], feats


def _expm_flow(ntk, ntk_x, y, f0, f0_x, eta, t):
    """Dense reference for gradient flow: matrix exponential and explicit inverse."""
    e = scipy.linalg.expm(-eta * ntk * t)
    train = y + e @ (f0 - y)
    test = f0_x + ntk_x @ np.linalg.solve(ntk, (np.eye(len(y)) - e) @ (y - f0))
    return train, test


# ---------------------------------------------------------------- regression / GP


def test_kernel_regression_and_gp_match_dense_solve(x64):
    rng = np.random.default_rng(0)
    k, kx, kxx, _ = _psd(rng, 12, 5)
    y = rng.normal(size=(12, 2))
    ridge = 0.1
    ref_mean = kx @ np.linalg.solve(k + ridge * np.eye(12), y)
    ref_cov = kxx - kx @ np.linalg.solve(k + ridge * np.eye(12), kx.T)
    # Cholesky vs LU solve of a matrix with condition number < 1e3: agree to ~1e-12.
    np.testing.assert_allclose(
        predict.kernel_regression(k, y, kx, ridge=ridge), ref_mean, atol=1e-10
    )
    post = predict.gp_posterior(k, y, kx, kxx, noise=ridge)
    np.testing.assert_allclose(post.mean, ref_mean, atol=1e-10)
    np.testing.assert_allclose(post.covariance, ref_cov, atol=1e-10)
    diag = predict.gp_posterior(k, y[:, 0], kx, np.diag(kxx), noise=ridge)
    np.testing.assert_allclose(diag.covariance, np.diag(ref_cov), atol=1e-10)
    np.testing.assert_allclose(diag.mean, ref_mean[:, 0], atol=1e-10)


def test_not_positive_definite_errors_and_nan_under_jit():
    k = jnp.array([[1.0, 2.0], [2.0, 1.0]])  # eigenvalues 3 and -1
    y = jnp.array([1.0, 0.0])
    with pytest.raises(ValueError, match=r"k_train \+ ridge \* I is not positive definite.*ridge"):
        predict.kernel_regression(k, y, k)
    with pytest.raises(ValueError, match="not positive semi-definite"):
        predict.gradient_flow_mse(k, y, 1.0)
    with pytest.raises(ValueError, match="not positive semi-definite"):
        predict.ensemble_mse({"nngp": k, "ntk": k}, y, 1.0)
    # Inside jit the failure is NaN, never a silent finite number.
    assert jnp.all(jnp.isnan(jax.jit(predict.kernel_regression)(k, y, k)))
    assert jnp.all(jnp.isnan(jax.jit(predict.gradient_flow_mse)(k, y, 1.0).train))
    # A ridge makes it PD and the result finite.
    assert jnp.all(jnp.isfinite(predict.kernel_regression(k, y, k, ridge=1.5)))


def test_singular_kernel_needs_ridge_and_flow_tolerates_psd(x64):
    rng = np.random.default_rng(1)
    k, kx, _, _ = _psd(rng, 6, 2, rank=3)  # rank 3 of 6: PSD, singular
    y = rng.normal(size=6)
    with pytest.raises(ValueError, match="positive definite"):
        predict.kernel_regression(k - 1e-6 * np.eye(6), y, kx)
    out = predict.gradient_flow_mse(k, y, jnp.array([1.0, jnp.inf]), kx)
    assert np.all(np.isfinite(out.train)) and np.all(np.isfinite(out.test))
    # At t = inf the test prediction is the min-norm interpolant: pseudo-inverse solution.
    np.testing.assert_allclose(out.test[1], kx @ np.linalg.pinv(k, rcond=1e-10) @ y, atol=1e-8)


def test_shape_and_value_errors():
    k = jnp.eye(3)
    with pytest.raises(ValueError, match=r"k_train must be a square \(n, n\).*\(3, 2\)"):
        predict.kernel_regression(jnp.ones((3, 2)), jnp.ones(3), jnp.ones((1, 3)))
    with pytest.raises(ValueError, match=r"y must have shape \(n,\).*n = 3.*\(4,\)"):
        predict.kernel_regression(k, jnp.ones(4), jnp.ones((1, 3)))
    with pytest.raises(ValueError, match=r"k_test_train must have shape \(m, 3\).*\(2, 2\)"):
        predict.kernel_regression(k, jnp.ones(3), jnp.ones((2, 2)))
    with pytest.raises(ValueError, match="ridge must be >= 0, got -1"):
        predict.kernel_regression(k, jnp.ones(3), jnp.ones((1, 3)), ridge=-1.0)
    with pytest.raises(ValueError, match="loss_normalization must be one of 'mean', 'sum'"):
        predict.gradient_flow_mse(k, jnp.ones(3), 1.0, loss_normalization="avg")
    with pytest.raises(ValueError, match="t must be >= 0"):
        predict.gradient_flow_mse(k, jnp.ones(3), -1.0)
    with pytest.raises(TypeError, match="steps must be integer"):
        predict.gradient_descent_mse(k, jnp.ones(3), 1.5)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\)"):
        predict.gradient_descent_mse(k, jnp.ones(3), 2, momentum=1.0)
    with pytest.raises(ValueError, match="get must be 'ntk' or 'nngp'"):
        predict.ensemble_mse(k, jnp.ones(3), 1.0, get="gp")
    with pytest.raises(TypeError, match="must provide a 'nngp' kernel"):
        predict.ensemble_mse(k, jnp.ones(3), 1.0)
    with pytest.raises(ValueError, match="compute_cov=True needs nngp_test_test"):
        predict.ensemble_mse({"nngp": k, "ntk": k}, jnp.ones(3), 1.0, {"nngp": k, "ntk": k})
    with pytest.raises(ValueError, match="f0_test was given without ntk_test_train"):
        predict.gradient_flow_mse(k, jnp.ones(3), 1.0, f0_test=jnp.ones(2))


# ---------------------------------------------------------------- gradient flow / GD


def test_gradient_flow_limits_and_dense_reference(x64):
    rng = np.random.default_rng(2)
    ntk, ntk_x, _, _ = _psd(rng, 8, 4)
    y = rng.normal(size=8)
    f0, f0_x = rng.normal(size=8), rng.normal(size=4)
    t = jnp.array([0.0, 0.3, 2.0, jnp.inf])
    out = predict.gradient_flow_mse(
        ntk, y, t, ntk_x, lr=0.7, f0_train=f0, f0_test=f0_x, loss_normalization="sum"
    )
    assert out.train.shape == (4, 8) and out.test.shape == (4, 4)
    # t = 0: the initial outputs, exactly.
    np.testing.assert_allclose(out.train[0], f0, atol=1e-12)
    np.testing.assert_allclose(out.test[0], f0_x, atol=1e-12)
    # t = inf: kernel regression on the residual (Lee et al. 2019 eq. 9 at t -> inf).
    kr = predict.kernel_regression(ntk, y - f0, ntk_x)
    np.testing.assert_allclose(out.test[-1], f0_x + kr, atol=1e-9)
    np.testing.assert_allclose(out.train[-1], y, atol=1e-9)
    # Finite t: scipy matrix exponential (cond(Θ) ~ 10, so 1e-9 is ample).
    for i in (1, 2):
        ref_train, ref_test = _expm_flow(ntk, ntk_x, y, f0, f0_x, 0.7, float(t[i]))
        np.testing.assert_allclose(out.train[i], ref_train, atol=1e-9)
        np.testing.assert_allclose(out.test[i], ref_test, atol=1e-9)


def test_mean_loss_normalization_is_rate_over_n(x64):
    rng = np.random.default_rng(3)
    ntk, ntk_x, _, _ = _psd(rng, 5, 2)
    y = rng.normal(size=(5, 3))
    a = predict.gradient_flow_mse(ntk, y, 2.0, ntk_x, lr=1.0, loss_normalization="mean")
    b = predict.gradient_flow_mse(ntk, y, 2.0, ntk_x, lr=1.0 / 5, loss_normalization="sum")
    np.testing.assert_allclose(a.test, b.test, atol=1e-12)
    assert a.test.shape == (2, 3)
    lr_sum = predict.max_learning_rate(ntk, loss_normalization="sum")
    lr_mean = predict.max_learning_rate(ntk, loss_normalization="mean")
    np.testing.assert_allclose(lr_mean, 5 * lr_sum, rtol=1e-12)


def test_gradient_flow_jit_vmap_traced_times_and_rates():
    rng = np.random.default_rng(4)
    ntk, ntk_x, _, _ = _psd(rng, 6, 3)
    ntk, ntk_x = jnp.asarray(ntk, jnp.float32), jnp.asarray(ntk_x, jnp.float32)
    y = jnp.asarray(rng.normal(size=6), jnp.float32)
    ts = jnp.array([0.5, 1.0, 4.0])
    fn = jax.jit(lambda t, lr: predict.gradient_flow_mse(ntk, y, t, ntk_x, lr=lr).test)
    eager = predict.gradient_flow_mse(ntk, y, ts, ntk_x, lr=0.5).test
    np.testing.assert_allclose(fn(ts, 0.5), eager, rtol=1e-5, atol=1e-6)
    # vmap over learning rates equals separate calls; ηt enters only as a product.
    lrs = jnp.array([0.25, 0.5])
    batched = jax.vmap(fn, in_axes=(None, 0))(ts, lrs)
    np.testing.assert_allclose(batched[1], eager, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(batched[0][1], fn(ts * 0.5, 0.5)[1], rtol=1e-5, atol=1e-6)
    # A second call with new values does not recompile.
    before = fn._cache_size()
    fn(ts + 1.0, 0.3)
    assert fn._cache_size() == before
    assert eager.dtype == jnp.float32


def _explicit_gd(ntk, ntk_x, y, f0, f0_x, lr, momentum, steps):
    """Function-space heavy ball: u ← βu - ηΘ(f - Y); f ← f + u (and the same for test)."""
    f, fx = f0.copy(), f0_x.copy()
    u, ux = np.zeros_like(f), np.zeros_like(fx)
    out = {}
    for k in range(max(steps) + 1):
        if k in steps:
            out[k] = (f.copy(), fx.copy())
        g = f - y
        u, ux = momentum * u - lr * ntk @ g, momentum * ux - lr * ntk_x @ g
        f, fx = f + u, fx + ux
    return out


@pytest.mark.parametrize("momentum", [0.0, 0.8])
def test_discrete_gd_equals_explicit_iteration(x64, momentum):
    rng = np.random.default_rng(5)
    ntk, ntk_x, _, _ = _psd(rng, 7, 3)
    y, f0, f0_x = rng.normal(size=7), rng.normal(size=7), rng.normal(size=3)
    # Sum loss: the explicit iteration below steps by lr Θ (f - Y).
    lr = 0.9 * float(predict.max_learning_rate(ntk, momentum=momentum, loss_normalization="sum"))
    steps = [0, 1, 2, 7, 40]
    kw = dict(momentum=momentum, f0_train=f0, f0_test=f0_x, loss_normalization="sum")
    out = predict.gradient_descent_mse(ntk, y, jnp.array(steps), ntk_x, lr=lr, **kw)
    ref = _explicit_gd(ntk, ntk_x, y, f0, f0_x, lr, momentum, steps)
    for i, s in enumerate(steps):
        # 40 products of matrices with spectral radius < 1: rounding stays ~1e-12.
        np.testing.assert_allclose(out.train[i], ref[s][0], atol=1e-9)
        np.testing.assert_allclose(out.test[i], ref[s][1], atol=1e-9)
    # Traced step counts under jit (binary powers with 31 bits) agree.
    jitted = jax.jit(lambda k: predict.gradient_descent_mse(ntk, y, k, ntk_x, lr=lr, **kw).test)
    np.testing.assert_allclose(jitted(jnp.array(steps)), out.test, atol=1e-9)


def test_momentum_matches_optax_sgd_on_linear_model(x64):
    """Independent check: optax heavy ball on θ of a linear model f(x) = φ(x)·θ, NTK = ΦΦᵀ."""
    rng = np.random.default_rng(6)
    _, _, _, feats = _psd(rng, 6, 3, d=20)
    phi, phi_x = jnp.asarray(feats[:6]), jnp.asarray(feats[6:])
    y = jnp.asarray(rng.normal(size=6))
    theta0 = jnp.asarray(rng.normal(size=20))
    lr, beta, steps = 0.3, 0.6, 25
    opt = optax.sgd(lr, momentum=beta)

    def loss(theta):
        return 0.5 * jnp.sum((phi @ theta - y) ** 2)

    theta, state = theta0, opt.init(theta0)
    for _ in range(steps):
        updates, state = opt.update(jax.grad(loss)(theta), state)
        theta = optax.apply_updates(theta, updates)
    out = predict.gradient_descent_mse(
        phi @ phi.T,
        y,
        steps,
        phi_x @ phi.T,
        lr=lr,
        momentum=beta,
        f0_train=phi @ theta0,
        f0_test=phi_x @ theta0,
        loss_normalization="sum",  # the loss above is ½ Σ
    )
    np.testing.assert_allclose(out.train, phi @ theta, atol=1e-10)
    np.testing.assert_allclose(out.test, phi_x @ theta, atol=1e-10)


@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_max_learning_rate_is_the_stability_edge(x64, momentum):
    rng = np.random.default_rng(7)
    ntk, _, _, _ = _psd(rng, 5)
    y = rng.normal(size=5)
    lr_max = float(predict.max_learning_rate(ntk, momentum=momentum, loss_normalization="sum"))
    np.testing.assert_allclose(lr_max, 2 * (1 + momentum) / np.linalg.eigvalsh(ntk)[-1])
    for factor, grows in ((0.98, False), (1.02, True)):
        ref = _explicit_gd(
            ntk, ntk[:1], y, np.zeros(5), np.zeros(1), factor * lr_max, momentum, [0, 3000]
        )
        residual = np.linalg.norm(ref[3000][0] - y) / np.linalg.norm(y)
        assert (residual > 1.0) == grows


def test_gradient_flow_ode_mse_matches_closed_form(x64):
    rng = np.random.default_rng(8)
    ntk, ntk_x, _, _ = _psd(rng, 6, 2)
    y = rng.normal(size=(6, 2))
    t = jnp.array([0.5, 3.0])
    mse = lambda f, y: 0.5 * jnp.sum((f - y) ** 2)  # noqa: E731
    ode = predict.gradient_flow(mse, ntk, y, t, ntk_x, lr=0.8, substeps=200)
    ref = predict.gradient_flow_mse(ntk, y, t, ntk_x, lr=0.8, loss_normalization="sum")
    # RK4 global error O(h^4) with ηλ_max h <= 0.8*3*2.5/200*... ~ 1e-2: error ~ 1e-9.
    np.testing.assert_allclose(ode.train, ref.train, atol=1e-8)
    np.testing.assert_allclose(ode.test, ref.test, atol=1e-8)


def test_gradient_flow_cross_entropy_matches_scipy(x64):
    rng = np.random.default_rng(9)
    ntk, ntk_x, _, _ = _psd(rng, 5, 2)
    labels = jax.nn.one_hot(jnp.array([0, 1, 2, 1, 0]), 3)
    xent = lambda f, y: optax.softmax_cross_entropy(f, y).sum()  # noqa: E731
    t = jnp.array([1.0, 4.0])
    out = predict.gradient_flow(xent, ntk, labels, t, ntk_x, lr=2.0)

    def rhs(_, z):
        f = z[:15].reshape(5, 3)
        g = np.asarray(jax.nn.softmax(f, axis=-1)) - np.asarray(labels)  # ∂ xent / ∂ f
        return np.concatenate([(-2.0 * ntk @ g).ravel(), (-2.0 * ntk_x @ g).ravel()])

    sol = scipy.integrate.solve_ivp(
        rhs, (0, 4.0), np.zeros(21), t_eval=[1.0, 4.0], rtol=1e-10, atol=1e-12
    )
    np.testing.assert_allclose(out.train, sol.y[:15].T.reshape(2, 5, 3), atol=1e-7)
    np.testing.assert_allclose(out.test, sol.y[15:].T.reshape(2, 2, 3), atol=1e-7)


def test_gradient_flow_ode_under_jit_and_vmap_with_repeated_times(x64):
    """Traced rates and times; t = 0 and a repeated time are zero-length intervals."""
    rng = np.random.default_rng(13)
    ntk, ntk_x, _, _ = _psd(rng, 5, 2)
    y = rng.normal(size=5)
    mean_mse = lambda f, y: 0.5 * jnp.mean((f - y) ** 2)  # noqa: E731
    t = jnp.array([0.0, 0.5, 0.5, 2.0])
    lrs = jnp.array([0.5, 2.0])
    flow = jax.jit(
        jax.vmap(lambda lr, t: predict.gradient_flow(mean_mse, ntk, y, t, ntk_x, lr=lr), (0, None))
    )
    out = flow(lrs, t)
    assert out.train.shape == (2, 4, 5) and out.test.shape == (2, 4, 2)
    np.testing.assert_array_equal(out.train[:, 0], 0.0)  # no step taken at t = 0
    np.testing.assert_array_equal(out.train[:, 1], out.train[:, 2])
    for i, lr in enumerate(lrs.tolist()):
        ref = predict.gradient_flow_mse(ntk, y, t, ntk_x, lr=lr)  # the mean loss, as mean_mse
        # z = (lr/n) λ_max h <= 0.4 · 1.8 · 0.015 ≈ 0.011 per step. Tsit5's global error goes
        # as z⁵ (measured 6e-10 for a flow at z ≈ 0.23), so it is < 1e-13 here.
        np.testing.assert_allclose(out.train[i], ref.train, atol=1e-10)
        np.testing.assert_allclose(out.test[i], ref.test, atol=1e-10)


# ---------------------------------------------------------------- likelihood


def test_log_marginal_likelihood_matches_scipy(x64):
    rng = np.random.default_rng(10)
    k, _, _, _ = _psd(rng, 9)
    y = rng.normal(size=(9, 2))
    ref = sum(
        scipy.stats.multivariate_normal(np.zeros(9), k + 0.2 * np.eye(9)).logpdf(y[:, c])
        for c in range(2)
    )
    np.testing.assert_allclose(predict.log_marginal_likelihood(k, y, noise=0.2), ref, rtol=1e-10)


def _relu_nngp_np(x, w_std, b_std):
    """One-hidden-layer ReLU NNGP (arc-cosine kernel, Cho & Saul 2009), numpy."""
    s = w_std**2 * x @ x.T / x.shape[1] + b_std**2
    d = np.sqrt(np.diag(s))
    cos = np.clip(s / np.outer(d, d), -1, 1)
    th = np.arccos(cos)
    return w_std**2 * np.outer(d, d) * (np.sin(th) + (np.pi - th) * cos) / (2 * np.pi) + b_std**2


def test_fit_hyperparameters_matches_scipy_optimum(x64):
    rng = np.random.default_rng(11)
    x = rng.normal(size=(30, 3))
    k_true = _relu_nngp_np(x, 1.5, 0.5) + 0.1 * np.eye(30)
    y = np.linalg.cholesky(k_true) @ rng.normal(size=(30, 2))

    def relu_nngp(xj, w_std, b_std):
        s = w_std**2 * xj @ xj.T / xj.shape[1] + b_std**2
        d = jnp.sqrt(jnp.diag(s))
        cos = jnp.clip(s / (d[:, None] * d[None, :]), -1 + 1e-12, 1 - 1e-12)
        th = jnp.arccos(cos)
        outer = d[:, None] * d[None, :]
        return w_std**2 * outer * (jnp.sin(th) + (jnp.pi - th) * cos) / (2 * jnp.pi) + b_std**2

    def cov(p):
        return relu_nngp(jnp.asarray(x), jnp.exp(p[0]), jnp.exp(p[1])) + jnp.exp(p[2]) * jnp.eye(30)

    fit = predict.fit_hyperparameters(cov, jnp.zeros(3), y, steps=1500, optimizer=optax.adam(0.02))
    assert fit.log_likelihood.shape == (1500,)

    def neg(p):  # independent: numpy kernel + scipy density + BFGS
        c = _relu_nngp_np(x, np.exp(p[0]), np.exp(p[1])) + np.exp(p[2]) * np.eye(30)
        mvn = scipy.stats.multivariate_normal(np.zeros(30), c)
        return -sum(mvn.logpdf(y[:, j]) for j in range(2))

    best = scipy.optimize.minimize(
        neg,
        np.zeros(3),
        method="Nelder-Mead",
        options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 4000},
    )
    # Same maximum: log likelihoods agree to 1e-4 nats (flat directions make params less sharp).
    np.testing.assert_allclose(-neg(np.asarray(fit.params)), -best.fun, atol=1e-4)
    np.testing.assert_allclose(fit.log_likelihood[-1], -best.fun, atol=1e-3)


# ---------------------------------------------------------------- infinite ensemble


def test_ensemble_matches_dense_formulas(x64):
    rng = np.random.default_rng(12)
    nngp, nngp_x, nngp_xx, _ = _psd(rng, 7, 3)
    ntk, ntk_x, _, _ = _psd(rng, 7, 3)
    ntk, ntk_x = ntk + nngp, ntk_x + nngp_x
    y = rng.normal(size=7)
    t, eta = 1.3, 0.6
    out = predict.ensemble_mse(
        {"nngp": nngp, "ntk": ntk},
        y,
        jnp.array([t]),
        {"nngp": nngp_x, "ntk": ntk_x},
        nngp_xx,
        lr=eta,
        loss_normalization="sum",
    )
    # Lee et al. 2019 eqs. 15-16 with expm and an explicit inverse.
    a = ntk_x @ np.linalg.inv(ntk) @ (np.eye(7) - scipy.linalg.expm(-eta * ntk * t))
    cov = nngp_xx + a @ nngp @ a.T - a @ nngp_x.T - nngp_x @ a.T
    np.testing.assert_allclose(out.mean[0], a @ y, atol=1e-9)
    np.testing.assert_allclose(out.covariance[0], cov, atol=1e-9)
    # Readout-only training: the simplified form K** - K*X K^{-1}(I - e^{-2ηKt}) KX*.
    nn = predict.ensemble_mse(
        nngp, y, t, {"nngp": nngp_x}, nngp_xx, get="nngp", lr=eta, loss_normalization="sum"
    )
    e2 = scipy.linalg.expm(-2 * eta * nngp * t)
    ref = nngp_xx - nngp_x @ np.linalg.solve(nngp, (np.eye(7) - e2) @ nngp_x.T)
    np.testing.assert_allclose(nn.covariance, ref, atol=1e-9)
    # Diagonal-only variances equal the diagonal of the full covariance.
    var = predict.ensemble_mse(
        {"nngp": nngp, "ntk": ntk},
        y,
        t,
        {"nngp": nngp_x, "ntk": ntk_x},
        np.diag(nngp_xx),
        lr=eta,
        loss_normalization="sum",
    )
    np.testing.assert_allclose(var.covariance, np.diag(out.covariance[0]), atol=1e-9)
    # On the training points at t = inf the ensemble interpolates with zero variance.
    inf = predict.ensemble_mse({"nngp": nngp, "ntk": ntk}, y, jnp.inf)
    np.testing.assert_allclose(inf.mean, y, atol=1e-8)
    np.testing.assert_allclose(inf.covariance, 0.0, atol=1e-8)


# Two-point example of Lee et al. 2019 (arXiv:1902.06720, Fig. 2 setting): one hidden ReLU
# layer, NTK parameterisation with W_std = 1, b_std = 0.1 in both layers, η = 1,
# L = ½ Σ (f - y)².
W_STD, B_STD = 1.0, 0.1
X_TRAIN = np.array([[1.0, 0.0], [np.cos(np.pi / 3), np.sin(np.pi / 3)]])
X_TEST = np.array([[np.cos(np.pi / 6), np.sin(np.pi / 6)]])
Y_TRAIN = np.array([1.0, 0.5])


def _two_point_kernels():
    """Arc-cosine closed forms (Cho & Saul 2009) for NNGP and NTK, all three points."""
    x = np.concatenate([X_TRAIN, X_TEST])
    s1 = W_STD**2 * x @ x.T / 2 + B_STD**2  # first-layer pre-activation covariance = Θ₁
    d = np.sqrt(np.diag(s1))
    cos = np.clip(s1 / np.outer(d, d), -1, 1)
    th = np.arccos(cos)
    e_relu = np.outer(d, d) * (np.sin(th) + (np.pi - th) * cos) / (2 * np.pi)
    e_step = (np.pi - th) / (2 * np.pi)
    nngp = W_STD**2 * e_relu + B_STD**2
    ntk = nngp + W_STD**2 * e_step * s1
    return nngp, ntk


def _two_point_theory(t):
    nngp, ntk = _two_point_kernels()
    e = scipy.linalg.expm(-ntk[:2, :2] * t) if np.isfinite(t) else np.zeros((2, 2))
    a = ntk[2:, :2] @ np.linalg.inv(ntk[:2, :2]) @ (np.eye(2) - e)
    mean = a @ Y_TRAIN
    var = nngp[2:, 2:] + a @ nngp[:2, :2] @ a.T - a @ nngp[:2, 2:] - nngp[2:, :2] @ a.T
    return float(mean[0]), float(var[0, 0])


def test_two_point_ensemble_against_closed_form(x64):
    nngp, ntk = _two_point_kernels()
    k_train = {"nngp": nngp[:2, :2], "ntk": ntk[:2, :2]}
    k_test = {"nngp": nngp[2:, :2], "ntk": ntk[2:, :2]}
    for t in (0.0, 1.0, 10.0, np.inf):
        out = predict.ensemble_mse(
            k_train, Y_TRAIN, t, k_test, nngp[2:, 2:], loss_normalization="sum"
        )
        mean, var = _two_point_theory(t)
        np.testing.assert_allclose(out.mean[0], mean, atol=1e-12)
        np.testing.assert_allclose(out.covariance[0, 0], var, atol=1e-12)


def test_two_point_analytic_kernels_match_nnlab_kernel(x64):
    layers = pytest.importorskip("nnlab.layers")
    import nnlab

    net = layers.serial(
        layers.Dense(512, W_std=W_STD, b_std=B_STD, parameterization="ntk"),
        layers.Relu(),
        layers.Dense(1, W_std=W_STD, b_std=B_STD, parameterization="ntk"),
    )
    x = jnp.asarray(np.concatenate([X_TRAIN, X_TEST]))
    k = nnlab.kernel(net, x, get=("nngp", "ntk"))
    nngp, ntk = _two_point_kernels()
    np.testing.assert_allclose(k.nngp, nngp, atol=1e-10)
    np.testing.assert_allclose(k.ntk, ntk, atol=1e-10)


@pytest.mark.slow
def test_two_point_ensemble_against_trained_finite_networks(key):
    """512 networks of width 512, NTK parameterisation, full-batch GD with dt = 0.05."""
    width, n_nets, dt = 512, 512, 0.05
    x, y = jnp.asarray(X_TRAIN, jnp.float32), jnp.asarray(Y_TRAIN, jnp.float32)
    x_test = jnp.asarray(X_TEST, jnp.float32)

    def apply(p, x):
        h = jax.nn.relu(W_STD / np.sqrt(2) * x @ p["w1"] + B_STD * p["b1"][None, :])
        return W_STD / np.sqrt(width) * h @ p["w2"] + B_STD * p["b2"]

    def init(k):
        k1, k2, k3, k4 = jax.random.split(k, 4)
        return {
            "w1": jax.random.normal(k1, (2, width)),
            "b1": jax.random.normal(k2, (width,)),
            "w2": jax.random.normal(k3, (width,)),
            "b2": jax.random.normal(k4, ()),
        }

    def train(k, n_steps):
        loss = lambda p: 0.5 * jnp.sum((apply(p, x) - y) ** 2)  # noqa: E731
        step = lambda p, _: (jax.tree.map(lambda a, g: a - dt * g, p, jax.grad(loss)(p)), None)  # noqa: E731
        p, _ = jax.lax.scan(step, init(k), None, length=n_steps)
        return apply(p, x_test)[0]

    keys = jax.random.split(key, n_nets)
    for t in (1.0, 10.0):
        outs = jax.jit(jax.vmap(train, in_axes=(0, None)), static_argnums=1)(keys, int(t / dt))
        mean, var = _two_point_theory(t)
        se = float(jnp.std(outs)) / np.sqrt(n_nets)
        # Mean within 4 SE (finite-width and dt = 0.05 discretisation biases are ~1e-3 < SE/5).
        assert abs(float(jnp.mean(outs)) - mean) < 4 * se, (t, float(jnp.mean(outs)), mean, se)
        # Variance within 4 SE of a Gaussian sample variance, sqrt(2/(N-1)) var.
        se_var = var * np.sqrt(2 / (n_nets - 1))
        assert abs(float(jnp.var(outs)) - var) < 4 * se_var, (t, float(jnp.var(outs)), var)


def test_docstring_examples_run():
    from nnlab.predict import _ensemble, _flow_ode, _gradient_descent, _likelihood, _regression

    for module in (_regression, _gradient_descent, _ensemble, _likelihood, _flow_ode):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, module.__name__
