"""Trust checks for nnlab.train: target shapes, divergence rule, sweep fingerprints, bad input."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _helpers import mlp, toy_regression

from nnlab import train as T


def _linear(p, x):
    return x @ p


# ---------------------------------------------------------------- 1. target shapes


def test_output_target_shape_mismatch_is_an_error():
    x = jax.random.normal(jax.random.key(0), (6, 2))
    y3 = jnp.ones((6, 3))
    p0 = jnp.zeros((2, 1))  # outputs (6, 1)
    sgd = optax.sgd(0.1)
    with pytest.raises(ValueError, match=r"data\.y_train.*\(6, 3\).*\(6, 1\)"):
        T.train(_linear, p0, T.Data(x, y3), optimizer=sgd, steps=1)
    with pytest.raises(ValueError, match=r"data\.y_test.*\(4, 3\)"):
        T.train(_linear, p0, T.Data(x, y3[:, :1], x[:4], y3[:4]), optimizer=sgd, steps=1)
    with pytest.raises(ValueError, match=r"data\.y_train"):
        T.train(_linear, p0, T.Data(x, y3), optimizer=sgd, steps=1, loss="xent")
    with pytest.raises(ValueError, match=r"data\.y_train"):
        T.train(
            _linear, p0, T.Data(x, y3), optimizer=sgd, steps=2, batch_size=2, key=jax.random.key(0)
        )
    with pytest.raises(ValueError, match=r"data\.y_train.*\(6, 3\)"):
        T.train_ensemble(
            _linear,
            lambda k: jnp.zeros((2, 1)),
            T.Data(x, y3),
            optimizer=sgd,
            seeds=2,
            key=jax.random.key(0),
            steps=1,
        )
    # outputs (6,) against targets (6, 1) would broadcast to (6, 6): also an error
    with pytest.raises(ValueError, match=r"data\.y_train.*\(6, 1\).*\(6,\)"):
        T.train(lambda p, x: x @ p, jnp.zeros(2), T.Data(x, y3[:, :1]), optimizer=sgd, steps=1)
    # make_loss itself refuses mismatched shapes too
    with pytest.raises(ValueError, match="shape"):
        T.make_loss("mse", "mean")(jnp.ones((6, 1)), y3)


def test_xent_labels_and_convenience_shapes(x64):
    x = jax.random.normal(jax.random.key(0), (6, 2))
    p0 = jax.random.normal(jax.random.key(1), (2, 3))
    labels = jnp.array([0, 1, 2, 0, 1, 2])
    kw = dict(optimizer=optax.sgd(0.1), steps=1, loss="xent")
    a = T.train(_linear, p0, T.Data(x, labels), **kw)
    b = T.train(_linear, p0, T.Data(x, jax.nn.one_hot(labels, 3)), **kw)
    np.testing.assert_allclose(a.train_loss, b.train_loss, rtol=1e-13)
    with pytest.raises(ValueError, match=r"data\.y_train.*class labels"):
        T.train(_linear, p0, T.Data(x, labels.at[0].set(3)), **kw)
    with pytest.raises(ValueError, match=r"data\.y_train"):
        T.train(_linear, p0, T.Data(x, labels[:, None]), **kw)
    # (n,) targets still match (n, 1) outputs for mse
    q0 = jax.random.normal(jax.random.key(2), (2, 1))
    y = jnp.sin(x[:, 0])
    c = T.train(_linear, q0, T.Data(x, y), optimizer=optax.sgd(0.1), steps=1)
    d = T.train(_linear, q0, T.Data(x, y[:, None]), optimizer=optax.sgd(0.1), steps=1)
    np.testing.assert_allclose(c.train_loss, d.train_loss, rtol=1e-13)


def test_callable_loss_gets_outputs_and_targets_as_given():
    x = jax.random.normal(jax.random.key(0), (6, 2))
    seen = []

    def loss(f, y):
        seen.append((f.shape, y.shape))
        return jnp.mean(f) - jnp.mean(y)

    T.train(
        _linear,
        jnp.zeros((2, 1)),
        T.Data(x, jnp.ones((6, 3))),
        optimizer=optax.sgd(0.1),
        steps=1,
        loss=loss,
    )
    assert set(seen) == {((6, 1), (6, 3))}


# ---------------------------------------------------------------- 2. divergence


def _adam_reference(net, p0, x, y, lr, steps):
    """A Python loop of optax.adam on L = ½ mean_i ‖f_i − y_i‖²: losses and parameters."""
    loss = lambda p: 0.5 * jnp.mean(jnp.sum((net.apply(p, x) - y) ** 2, -1))  # noqa: E731
    opt = optax.adam(lr)
    state, p = opt.init(p0), p0
    losses, params = [], []
    for _ in range(steps + 1):
        v, g = jax.value_and_grad(loss)(p)
        losses.append(float(v))
        params.append(p)
        u, state = opt.update(g, state, p)
        p = optax.apply_updates(p, u)
    return np.array(losses), params


@pytest.mark.slow
def test_finite_blow_up_is_flagged_by_default(key):
    x, y = toy_regression()
    net = mlp(32, depth=2)
    _, p0 = net.init(key, x.shape)
    steps = 6
    losses, params = _adam_reference(net, p0, x, y, 10.0, steps)
    # independent rule: first step k with L(θ_k) > 1e6 · L(θ_0)
    over = np.flatnonzero(losses > 1e6 * losses[0])
    assert over.size, losses  # this run does blow up
    k = int(over[0])
    rec = T.train(net.apply, p0, T.Data(x, y), optimizer=optax.adam(10.0), steps=steps)
    assert bool(rec.diverged) and int(rec.diverged_step) == k
    # float32: the run up to step k is the same computation as the reference (~1e-5 relative)
    np.testing.assert_allclose(rec.train_loss[: k + 1], losses[: k + 1], rtol=1e-4)
    assert np.isnan(rec.train_loss[k + 1 :]).all()
    for a, b in zip(jax.tree_util.tree_leaves(rec.params), jax.tree_util.tree_leaves(params[k])):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    # divergence_factor=None restores the old rule (non-finite only): the same run goes on
    off = T.train(
        net.apply, p0, T.Data(x, y), optimizer=optax.adam(10.0), steps=steps, divergence_factor=None
    )
    assert not bool(off.diverged) and int(off.diverged_step) == -1
    np.testing.assert_allclose(off.train_loss, losses, rtol=1e-3)
    # an ensemble flags the same member at the same step
    ens = T.train_ensemble(
        net.apply,
        lambda k_: p0,
        T.Data(x, y),
        seeds=1,
        key=key,
        optimizer=lambda lr: optax.adam(lr),
        steps=steps,
        hyperparams={"lr": jnp.array([1e-3, 10.0])},
    )
    assert ens.diverged.tolist() == [[False, True]] and ens.diverged_step[0, 1] == k


@pytest.mark.slow
def test_benign_runs_and_thresholds(key):
    x, y = toy_regression()
    net = mlp(16)
    _, p0 = net.init(key, x.shape)
    d = T.Data(x, y)
    ok = T.train(net.apply, p0, d, optimizer=optax.sgd(0.1), steps=5)
    assert not bool(ok.diverged)
    # a start at the exact minimum (L0 = 0) does not trip the relative rule
    y0 = net.apply(p0, x)
    zero = T.train(net.apply, p0, T.Data(x, y0), optimizer=optax.sgd(0.1), steps=3)
    assert not bool(zero.diverged) and float(zero.train_loss[0]) == 0.0
    # the absolute divergence_threshold keeps its meaning: a loss above it diverges
    L = np.asarray(ok.train_loss)
    thr = T.train(
        net.apply,
        p0,
        d,
        optimizer=optax.sgd(0.1),
        steps=5,
        divergence_threshold=float(L[0]) * 0.999,
    )
    assert bool(thr.diverged) and int(thr.diverged_step) == 0
    # a smaller factor flags growth earlier: gradient ascent (negative rate) grows the loss
    up = T.train(net.apply, p0, d, optimizer=optax.sgd(-0.5), steps=5, divergence_factor=1.5)
    asc = np.asarray(
        T.train(
            net.apply, p0, d, optimizer=optax.sgd(-0.5), steps=5, divergence_factor=None
        ).train_loss
    )
    first = int(np.flatnonzero(asc > 1.5 * asc[0])[0])
    assert bool(up.diverged) and int(up.diverged_step) == first


@pytest.mark.parametrize("bad", [-1, 0, float("nan"), -np.inf])
def test_nonsense_divergence_settings(bad, key):
    p0 = jnp.zeros((2, 1))
    d = T.Data(jnp.ones((3, 2)), jnp.ones((3, 1)))
    with pytest.raises(ValueError, match="divergence_threshold"):
        T.train(_linear, p0, d, optimizer=optax.sgd(0.1), steps=1, divergence_threshold=bad)
    with pytest.raises(ValueError, match="divergence_factor"):
        T.train(_linear, p0, d, optimizer=optax.sgd(0.1), steps=1, divergence_factor=bad)
    with pytest.raises(ValueError, match="divergence_threshold"):
        T.train_ensemble(
            _linear,
            lambda k: p0,
            d,
            optimizer=optax.sgd(0.1),
            seeds=1,
            key=key,
            steps=1,
            divergence_threshold=bad,
        )


def test_nonsense_divergence_types():
    p0 = jnp.zeros((2, 1))
    d = T.Data(jnp.ones((3, 2)), jnp.ones((3, 1)))
    # the wrong kind is a TypeError (nnlab's convention), naming the argument
    with pytest.raises(TypeError, match="divergence_threshold"):
        T.train(_linear, p0, d, optimizer=optax.sgd(0.1), steps=1, divergence_threshold="1e6")
    with pytest.raises(TypeError, match="divergence_factor"):
        T.train(_linear, p0, d, optimizer=optax.sgd(0.1), steps=1, divergence_factor="big")
    with pytest.raises(ValueError, match="divergence_factor"):
        T.train(_linear, p0, d, optimizer=optax.sgd(0.1), steps=1, divergence_factor=0.5)


# ---------------------------------------------------------------- 3. sweeps


def _fake_record(value):
    """A TrainRecord without training (sweep mechanics only)."""
    return T.TrainRecord(
        step=np.arange(3),
        train_loss=np.full(3, float(value)),
        test_loss=None,
        probe_outputs=None,
        observables={},
        diverged=np.asarray(False),
        diverged_step=np.asarray(-1),
    )


def test_sweep_config_mismatch_is_an_error(tmp_path):
    calls = []

    def run(p, scale=1.0):
        calls.append(p)
        return _fake_record(p * scale)

    rec = T.sweep(run, [1, 2], axis="w", out_dir=tmp_path, config={"scale": 1.0})
    np.testing.assert_array_equal(rec.train_loss[:, 0], [1, 2])
    calls.clear()
    again = T.sweep(run, [1, 2], axis="w", out_dir=tmp_path, config={"scale": 1.0})
    assert calls == [] and np.array_equal(again.train_loss, rec.train_loss)
    with pytest.raises(ValueError, match=r"(?s)w=1\.npz.*config.*overwrite=True"):
        T.sweep(lambda p: run(p, 3.0), [1, 2], axis="w", out_dir=tmp_path, config={"scale": 3.0})
    new = T.sweep(
        lambda p: run(p, 3.0),
        [1, 2],
        axis="w",
        out_dir=tmp_path,
        config={"scale": 3.0},
        overwrite=True,
    )
    np.testing.assert_array_equal(new.train_loss[:, 0], [3, 6])
    assert sorted(os.listdir(tmp_path)) == ["w=1.npz", "w=2.npz"]


def test_corrupt_point_is_recomputed_with_a_warning_and_tmp_files_removed(tmp_path):
    T.sweep(_fake_record, [1, 2], axis="w", out_dir=tmp_path)
    path = tmp_path / "w=2.npz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated by a crash
    (tmp_path / "w=1.npz.tmp-12345.npz").write_bytes(b"partial")  # leftover of a crash
    calls = []

    def run(p):
        calls.append(p)
        return _fake_record(p)

    with pytest.warns(UserWarning, match=r"w=2\.npz"):
        rec = T.sweep(run, [1, 2], axis="w", out_dir=tmp_path)
    assert calls == [2]
    np.testing.assert_array_equal(rec.train_loss[:, 0], [1, 2])
    assert sorted(os.listdir(tmp_path)) == ["w=1.npz", "w=2.npz"]

    # a failing write leaves no temporary file behind
    def bad(p):
        return _fake_record(p).replace(observables={"x": np.array([object()] * 3)})

    with pytest.raises(ValueError, match=r"[Oo]bject arrays"):
        T.sweep(bad, [3], axis="w", out_dir=tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["w=1.npz", "w=2.npz"]


@pytest.mark.slow
def test_width_sweep_fingerprint(tmp_path, key):
    x, y = toy_regression()

    def model(w):
        net = mlp(w)
        return net.apply, lambda k: net.init(k, x.shape)[1]

    data = T.Data(x, y)

    def sweep(make_model=model, data=data, lr=0.1, out_dir=tmp_path, **changes):
        kw = dict(seeds=2, key=key, steps=2, optimizer=lambda lr: optax.sgd(lr))
        return T.width_sweep(
            make_model, [4, 8], data, out_dir=out_dir, hyperparams={"lr": [lr]}, **kw | changes
        )

    first = sweep()
    fresh = sweep(lr=0.5, out_dir=None)
    # a different configuration into the same out_dir: an error naming what differs
    differs = {
        "hyperparams.*overwrite=True": dict(lr=0.5),
        "steps": dict(steps=4),
        "data": dict(data=T.Data(x, -y)),
        "seeds": dict(key=jax.random.key(9)),
        "optimizer": dict(optimizer=lambda lr: optax.adam(lr)),
        "network": dict(make_model=lambda w: model(w + 1)),
    }
    for what, change in differs.items():
        with pytest.raises(ValueError, match=rf"(?s){what}"):
            sweep(**change)
    # same configuration: loaded, equal
    same = sweep()
    np.testing.assert_array_equal(same.train_loss, first.train_loss)
    redo = sweep(lr=0.5, overwrite=True)
    np.testing.assert_allclose(redo.train_loss, fresh.train_loss, rtol=1e-6)
    assert not np.allclose(redo.train_loss, first.train_loss, rtol=1e-3)


# ---------------------------------------------------------------- 4. bad input


def test_bad_input_names_the_argument(key):
    x, y = toy_regression()
    p0 = jnp.zeros((3, 1))
    d = T.Data(x, y)
    sgd = optax.sgd(0.1)
    with pytest.raises(ValueError, match=r"data\.x_train"):
        T.train(_linear, p0, T.Data(x[:0], y[:0]), optimizer=sgd, steps=1)
    with pytest.raises(TypeError, match="apply_fn"):
        T.train("net.apply", p0, d, optimizer=sgd, steps=1)
    with pytest.raises(TypeError, match="apply_fn"):
        T.train_ensemble(None, lambda k: p0, d, optimizer=sgd, seeds=1, key=key, steps=1)
    with pytest.raises(TypeError, match="init_fn"):
        T.train_ensemble(_linear, p0, d, optimizer=sgd, seeds=1, key=key, steps=1)
    for bad in (0, -3):
        with pytest.raises(ValueError, match="steps"):
            T.train(_linear, p0, d, optimizer=sgd, steps=bad)
    for bad in (float("nan"), 2.5, "10"):
        with pytest.raises(TypeError, match="steps"):
            T.train(_linear, p0, d, optimizer=sgd, steps=bad)
    with pytest.raises(ValueError, match="log_every"):
        T.train(_linear, p0, d, optimizer=sgd, steps=2, log_every=0)
    with pytest.raises(ValueError, match="batch_size"):
        T.train(_linear, p0, d, optimizer=sgd, steps=1, batch_size=0, key=key)
    with pytest.raises(ValueError, match=r"loss.*'mse'.*'xent'"):
        T.train(_linear, p0, d, optimizer=sgd, steps=1, loss="hinge")
    with pytest.raises(ValueError, match=r"loss_normalization.*'mean'.*'sum'"):
        T.train(_linear, p0, d, optimizer=sgd, steps=1, loss_normalization="avg")
    with pytest.raises(ValueError, match="optimizer"):
        T.train(_linear, p0, d, optimizer=optax.sgd(float("nan")), steps=1)
    with pytest.raises(TypeError, match="key"):
        T.train(_linear, p0, d, optimizer=sgd, steps=1, batch_size=2, key=0)
    with pytest.raises(TypeError, match="progress"):
        T.train(_linear, p0, d, optimizer=sgd, steps=1, progress="yes")
    ens = dict(optimizer=lambda lr: optax.sgd(lr), seeds=1, key=key, steps=1)
    for bad in (float("nan"), -0.1, 0.0):
        with pytest.raises(ValueError, match=r"hyperparams\['lr'\]"):
            T.train_ensemble(_linear, lambda k: p0, d, hyperparams={"lr": [0.1, bad]}, **ens)
    with pytest.raises(TypeError, match=r"hyperparams\['lr'\]"):
        T.train_ensemble(_linear, lambda k: p0, d, hyperparams={"lr": ["fast"]}, **ens)
    with pytest.raises(TypeError, match="seeds"):
        T.train_ensemble(_linear, lambda k: p0, d, optimizer=sgd, seeds=2.0, key=key, steps=1)
    with pytest.raises(TypeError, match="run_point"):
        T.sweep(3, [1])
    with pytest.raises(TypeError, match="widths"):
        T.width_sweep(lambda w: None, [True], d)
    with pytest.raises(TypeError, match="make_model"):
        T.width_sweep(None, [2], d)


def test_numpy_integers_are_ints(key):
    x, y = toy_regression()
    p0 = jnp.zeros((3, 1))
    d = T.Data(x, y)
    kw = dict(optimizer=optax.sgd(0.1), key=key)
    a = T.train(_linear, p0, d, steps=4, log_every=2, batch_size=3, **kw)
    b = T.train(
        _linear, p0, d, steps=np.int64(4), log_every=np.int32(2), batch_size=np.int64(3), **kw
    )
    np.testing.assert_array_equal(a.train_loss, b.train_loss)
    np.testing.assert_array_equal(a.step, b.step)
    e = T.train_ensemble(
        _linear,
        lambda k: p0,
        d,
        optimizer=optax.sgd(0.1),
        seeds=np.int64(2),
        key=key,
        steps=np.int64(2),
        batch_size=np.int64(3),
    )
    assert e.train_loss.shape == (2, 3)
