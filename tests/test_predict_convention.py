"""One loss convention: ``nnlab.train`` and ``nnlab.predict`` agree with their defaults.

Both default to the mean loss ``L = (1/2n) Σ_i |f(x_i) - y_i|²``. Nothing here passes
``loss_normalization``: a default drifting apart in either package fails these tests. The
reference is ``nnlab.train`` with ``optax.sgd`` on a model linear in its parameters,
``f(x) = φ(x)·θ``, whose NTK ``ΦΦᵀ`` is exact, so its training is the linearised dynamics
(Lee et al. 2019, arXiv:1902.06720) with no width correction.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from nnlab import predict
from nnlab import train as T

N, M, D = 6, 3, 10  # training points, test points, features


def _linear_model():
    """Random-feature model f(x) = tanh(x W) θ / √D: data, features and θ_0 (float64)."""
    rng = np.random.default_rng(0)
    w = jnp.asarray(rng.normal(size=(2, D)))
    x = jnp.asarray(rng.normal(size=(N + M, 2)))

    def apply(theta, xs):
        return jnp.tanh(xs @ w) @ theta / np.sqrt(D)

    phi = jnp.tanh(x @ w) / np.sqrt(D)  # (N + M, D): ∂f/∂θ, the same at every θ
    theta0 = jnp.asarray(rng.normal(size=(D, 1)))
    y = jnp.asarray(rng.normal(size=(N, 1)))
    return apply, x, y, phi, theta0


@pytest.mark.parametrize("momentum", [0.0, 0.7])
def test_train_sgd_equals_predict_gd_with_defaults(x64, momentum):
    apply, x, y, phi, theta0 = _linear_model()
    lr, steps = 1.5, 30
    rec = T.train(
        apply,
        theta0,
        T.Data(x[:N], y, x_probe=x),
        optimizer=optax.sgd(lr, momentum=momentum or None),
        steps=steps,
        log_every=5,
    )
    ntk = phi @ phi[:N].T  # (N + M, N)
    f0 = apply(theta0, x)
    out = predict.gradient_descent_mse(
        ntk[:N],
        y,
        jnp.asarray(rec.step),
        ntk[N:],
        lr=lr,
        momentum=momentum,
        f0_train=f0[:N],
        f0_test=f0[N:],
    )
    theory = jnp.concatenate([out.train, out.test], axis=1)
    # The model is exactly linear: both sides are the same 30-step recursion, and the
    # closed form (eigendecomposition, |1 - ηλ| < 1) differs from it by rounding, ~1e-14.
    assert float(jnp.max(jnp.abs(rec.probe_outputs[-1] - f0))) > 0.1  # it did move
    np.testing.assert_allclose(rec.probe_outputs, theory, atol=1e-10)


def test_max_learning_rate_default_is_the_edge_of_train(x64):
    apply, x, y, phi, theta0 = _linear_model()
    lr_max = float(predict.max_learning_rate(phi[:N] @ phi[:N].T))
    runs = {
        factor: T.train(
            apply, theta0, T.Data(x[:N], y), optimizer=optax.sgd(factor * lr_max), steps=400
        )
        for factor in (0.95, 1.05)
    }
    # Below the edge every mode contracts; above it the top mode grows by 1.05 per step. It
    # holds 0.5% of the initial loss, so the loss passes train's divergence rule (10⁶ × its
    # start) once 1.05^(2k) > 10⁶ / 0.005, at k ≈ 195 of the 400 steps.
    assert not bool(runs[0.95].diverged)
    assert runs[0.95].train_loss[-1] < runs[0.95].train_loss[0]
    assert bool(runs[1.05].diverged)


def test_gradient_flow_mean_loss_and_ensemble_match_gradient_flow_mse_defaults(x64):
    """The ODE with the mean loss written out, and the ensemble mean, under the defaults."""
    _, _, y, phi, _ = _linear_model()
    ntk = phi @ phi[:N].T
    t, lr = jnp.array([0.5, 4.0]), 3.0
    closed = predict.gradient_flow_mse(ntk[:N], y, t, ntk[N:], lr=lr)
    mean_mse = lambda f, y: 0.5 * jnp.mean(jnp.sum((f - y) ** 2, axis=-1))  # noqa: E731
    ode = predict.gradient_flow(mean_mse, ntk[:N], y, t, ntk[N:], lr=lr)
    # Tsit5, 100 steps per interval: z = (lr/n) λ_max h = 0.5 · 1.26 · 0.035 ≈ 0.022. Its
    # global error goes as z⁵ and is ~6e-10 at z ≈ 0.23 (an MSE flow with 20 substeps), so
    # here ≲ 1e-13 (measured 5e-14); 1e-9 is a safe bound.
    np.testing.assert_allclose(ode.train, closed.train, atol=1e-9)
    np.testing.assert_allclose(ode.test, closed.test, atol=1e-9)
    # The ensemble mean starts from f0 = 0 (the mean over initialisations), as closed does.
    kernels = {"nngp": ntk[:N], "ntk": ntk[:N]}
    ens = predict.ensemble_mse(
        kernels, y, t, {"nngp": ntk[N:], "ntk": ntk[N:]}, lr=lr, compute_cov=False
    )
    np.testing.assert_allclose(ens.mean, closed.test, atol=1e-12)
