"""Predicted trajectories as records: ``mse_trajectory`` / ``network_trajectory``.

The records must hold exactly the arrays of ``gradient_descent_mse`` / ``gradient_flow_mse``,
with losses that agree with a NumPy evaluation of the mean loss, and must line up with a run
of ``nnlab.train`` in :meth:`Comparison.from_records` with no axes named by hand. The
reference run is a model linear in its parameters, ``f(x) = φ(x)·θ``: its NTK ``ΦΦᵀ`` is
exact, so ``optax.sgd`` on it *is* the linearised dynamics (Lee et al. 2019,
arXiv:1902.06720) and only rounding separates it from the closed form.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from nnlab import predict
from nnlab import train as T
from nnlab.evaluate import Comparison
from nnlab.record import Record

N, M, P = 5, 4, 12  # training points, test points, features


def _problem(k: int = 1):
    """Random cosine features φ (N + M, P) and targets (N + M, k); float64 under x64."""
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.normal(size=(N + M, 3)))
    w = jnp.asarray(rng.normal(size=(3, P)))

    def apply(theta, xs):
        return jnp.cos(xs @ w) @ theta / np.sqrt(P)

    phi = np.cos(np.asarray(x) @ np.asarray(w)) / np.sqrt(P)
    ntk = jnp.asarray(phi @ phi[:N].T)  # (N + M, N) = Φ Φ_trainᵀ, the exact NTK
    y = jnp.asarray(rng.normal(size=(N + M, k)))
    return apply, x, y, ntk


def _numpy_mse(f, y):
    """½ (1/n) Σ_i ‖f_i − y_i‖² per time, in NumPy: an independent evaluation of the loss."""
    f, y = np.asarray(f), np.asarray(y)
    return 0.5 * ((f - y) ** 2).reshape(f.shape[0], f.shape[1], -1).sum(-1).mean(-1)


@pytest.mark.parametrize(
    ("discrete", "momentum", "k"),
    [(True, 0.0, 1), (True, 0.6, 2), (False, 0.0, 1), (False, 0.0, 0)],
)
def test_record_holds_the_array_functions_outputs(x64, discrete, momentum, k):
    _, _, y, ntk = _problem(max(k, 1))
    y = y[:, 0] if k == 0 else y  # k = 0: targets (n,), no output axis
    rng = np.random.default_rng(1)
    f0 = jnp.asarray(rng.normal(size=y.shape))
    times = jnp.arange(0, 12, 3) if discrete else jnp.array([0.0, 0.5, 2.0, jnp.inf])
    kw = {"lr": 1.3, "f0_train": f0[:N], "f0_test": f0[N:]}
    if discrete:
        ref = predict.gradient_descent_mse(ntk[:N], y[:N], times, ntk[N:], momentum=momentum, **kw)
    else:
        ref = predict.gradient_flow_mse(ntk[:N], y[:N], times, ntk[N:], **kw)
    rec = predict.mse_trajectory(
        ntk[:N], y[:N], times, ntk[N:], y_test=y[N:], discrete=discrete, momentum=momentum, **kw
    )
    assert isinstance(rec, predict.MSETrajectory)
    outs = ("out0",) if k else ()
    assert rec.dims_of("f_train") == ("time", "train", *outs)
    assert rec.dims_of("f_test") == ("time", "test", *outs)
    assert rec.dims_of("train_loss") == rec.dims_of("test_loss") == ("time",)
    assert rec.time_unit == ("step" if discrete else "time")
    np.testing.assert_array_equal(rec.time, times)
    np.testing.assert_array_equal(rec.f_train, ref.train)  # exact: the same computation
    np.testing.assert_array_equal(rec.f_test, ref.test)
    # NumPy reductions sum in another order than XLA: equal to a few ulps of float64.
    np.testing.assert_allclose(rec.train_loss, _numpy_mse(ref.train, y[:N]), rtol=1e-12)
    np.testing.assert_allclose(rec.test_loss, _numpy_mse(ref.test, y[N:]), rtol=1e-12)


def test_sum_normalization_and_no_test_kernel(x64):
    _, _, y, ntk = _problem()
    rec = predict.mse_trajectory(ntk[:N], y[:N], jnp.array([1.0]), lr=0.4, loss_normalization="sum")
    ref = predict.gradient_flow_mse(ntk[:N], y[:N], 1.0, lr=0.4, loss_normalization="sum")
    assert set(rec.names) == {"f_train", "train_loss"}
    np.testing.assert_array_equal(rec.f_train[0], ref.train)
    # the sum loss is n times the mean loss
    np.testing.assert_allclose(rec.train_loss, N * _numpy_mse(rec.f_train, y[:N]), rtol=1e-12)
    assert rec.meta["loss_normalization"] == "sum"


def test_jit_and_vmap(x64):
    _, _, y, ntk = _problem()
    steps = jnp.arange(0, 20, 5)

    def theory(f0, lr):
        return predict.mse_trajectory(
            ntk[:N], y[:N], steps, ntk[N:], lr=lr, f0_train=f0[:N], f0_test=f0[N:], discrete=True
        )

    f0s = jnp.asarray(np.random.default_rng(2).normal(size=(3, N + M, 1)))
    batch = jax.jit(jax.vmap(theory, in_axes=(0, None)))(f0s, 0.7)  # one compile: both at once
    assert type(batch) is predict.MSETrajectory and batch.time_unit == "step"
    batch = batch.with_leading_axis("seed", np.arange(3))
    assert batch.dims_of("f_test") == ("seed", "time", "test", "out0")
    np.testing.assert_array_equal(batch.time, steps)
    for s in range(3):
        eager = theory(f0s[s], 0.7)
        for name in eager.names:  # compiled vs eager: the same ops, up to fused rounding
            np.testing.assert_allclose(batch[name][s], eager[name], rtol=1e-13, atol=1e-15)


LRS = (2.0, 1e-4)  # a GD rate with η λ_max near 1.4 (oscillating modes), a flow-like one
STEPS, EVERY = 40, 4


@pytest.fixture(scope="module")
def runs():
    """One ensemble of the linear model: 2 seeds x the two rates of LRS (one compile)."""
    with jax.enable_x64(True):
        apply, x, y, ntk = _problem()
        lam_max = float(np.linalg.eigvalsh(ntk[:N])[-1])
        assert LRS[0] / N * lam_max < 2 and LRS[1] / N * lam_max < 1e-3  # (used below)
        rec = T.train_ensemble(
            apply,
            lambda key: jax.random.normal(key, (P, 1)),
            T.Data(x[:N], y[:N], x[N:], y[N:], x_probe=x),
            optimizer=lambda lr: optax.sgd(lr),
            hyperparams={"lr": np.asarray(LRS)},
            seeds=2,
            key=jax.random.key(0),
            steps=STEPS,
            log_every=EVERY,
        )
        return rec.to_numpy(), y, ntk


def _gd_theory(sim, y, ntk, lr, f0_train, f0_test, y_test=None):
    return predict.mse_trajectory(
        ntk[:N], y[:N], sim.time, ntk[N:], lr=lr, f0_train=f0_train, f0_test=f0_test,
        y_test=y_test, discrete=True,
    )  # fmt: skip


def test_trained_linear_model_matches_gd_theory_via_from_records(x64, runs):
    rec, y, ntk = runs
    sim = predict.network_trajectory(rec.sel(lr=LRS[0]).isel(seed=0), N)
    assert sim.dims_of("f_train") == ("time", "train", "out0") and sim.time_unit == "step"
    theory = _gd_theory(sim, y, ntk, LRS[0], sim.f_train[0], sim.f_test[0], y_test=y[N:])
    # Only float64 rounding separates optax from the closed form: ~1e-14 relative per step
    # over 40 steps (measured ~1e-15); 1e-9 leaves a wide margin and catches any O(lr) slip.
    for field in ("f_train", "f_test", "train_loss", "test_loss"):
        c = Comparison.from_records(field, theory, sim, field, tolerance=1e-9)
        assert c.axes[0] == "time" and c.passed, (field, c.value)


def test_ensemble_mean_lines_up_over_seeds(x64, runs):
    rec, y, ntk = runs
    sim = predict.network_trajectory(rec, N).sel(lr=LRS[0])
    assert sim.dims_of("f_test") == ("seed", "time", "test", "out0")
    # the dynamics are linear in f0, so the seed mean follows the theory from the mean f0
    theory = _gd_theory(sim, y, ntk, LRS[0], sim.f_train[:, 0].mean(0), sim.f_test[:, 0].mean(0))
    c = Comparison.from_records("mean_test_outputs", theory, sim, "f_test", tolerance=1e-9)
    assert c.n_seeds == 2 and c.passed, c.value


def test_flow_time_is_lr_times_step(x64, runs):
    rec, y, _ = runs
    lr, ntk = LRS[1], runs[2]
    sim = predict.network_trajectory(rec.sel(lr=lr).isel(seed=0), N, lr=lr)
    assert sim.time_unit == "time"
    t = lr * np.arange(0, STEPS + 1, EVERY)
    np.testing.assert_allclose(sim.time, t, rtol=1e-15)
    theory = predict.mse_trajectory(ntk[:N], y[:N], t, lr=1.0, f0_train=sim.f_train[0])
    # GD is Euler on the flow: per mode |(1 - a)^k - e^{-ak}| <= k a² / 2 with a = η λ
    # <= 1e-3 (checked in the fixture), so the training outputs differ by at most
    # k_max a_max² / 2 · ‖f_0 - Y‖₂ in any entry.
    bound = STEPS * 1e-3**2 / 2 * float(np.linalg.norm(sim.f_train[0] - y[:N]))
    c = Comparison.from_records("flow", theory, sim, "f_train", metric="max_abs", tolerance=bound)
    assert c.passed, (c.value, bound)
    assert c.value > 0.0  # GD and the flow do differ: the comparison is not trivial


def test_bad_inputs(x64):
    _, _, y, ntk = _problem()
    args = (ntk[:N], y[:N])
    with pytest.raises(ValueError, match="times must be 1-D"):
        predict.mse_trajectory(*args, jnp.ones((2, 2)), lr=1.0)
    with pytest.raises(ValueError, match="y_test was given without ntk_test_train"):
        predict.mse_trajectory(*args, jnp.ones(2), lr=1.0, y_test=y[N:])
    with pytest.raises(ValueError, match="y_test must have shape"):
        predict.mse_trajectory(*args, jnp.ones(2), ntk[N:], lr=1.0, y_test=y[N + 1 :])
    with pytest.raises(ValueError, match="needs discrete=True"):
        predict.mse_trajectory(*args, jnp.ones(2), lr=1.0, momentum=0.5)
    with pytest.raises(TypeError, match="discrete must be a bool"):
        predict.mse_trajectory(*args, jnp.ones(2), lr=1.0, discrete=1)
    with pytest.raises(TypeError, match="steps must be integer"):
        predict.mse_trajectory(*args, jnp.ones(2), lr=1.0, discrete=True)
    with pytest.raises(TypeError, match=r"must be an nnlab\.Record"):
        predict.network_trajectory({"probe_outputs": 1}, N)
    steps = {"time": np.arange(3)}
    with pytest.raises(ValueError, match="no probe_outputs"):
        predict.network_trajectory(Record({"train_loss": ("time", np.ones(3))}, steps), N)
    run = Record({"probe_outputs": (("time", "probe", "out0"), np.zeros((3, N, 1)))}, steps)
    with pytest.raises(ValueError, match="exceeds the 5 probe points"):
        predict.network_trajectory(run, N + 1)
    with pytest.raises(ValueError, match="lr must be"):
        predict.network_trajectory(run, N, lr=0.0)
    flow = Record(
        {"probe_outputs": (("time", "probe"), np.zeros((3, N)))},
        coords={"time": np.arange(3.0)},
        meta={"time_unit": "time"},
    )
    assert predict.network_trajectory(flow, 2).time_unit == "time"
    with pytest.raises(ValueError, match="record's time axis is in 'time'"):
        predict.network_trajectory(flow, N, lr=0.1)
    with pytest.raises(ValueError, match="must have a 'time' and a 'probe' axis"):
        predict.network_trajectory(Record({"probe_outputs": ("probe", np.zeros(N))}), N)
