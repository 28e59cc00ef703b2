"""Online learning through nnlab.train: ``data=Stream(sample)`` draws a fresh batch per step.

The theory check is online SGD of a linear student on a linear teacher with Gaussian inputs
(the solvable case of Saad & Solla, Phys. Rev. Lett. 74, 4337 (1995)), whose expected error
obeys an exact linear recursion; the other tests compare with explicit Python loops that
draw the documented batches.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _helpers import assert_member_matches_run, run_on_host_devices

from nnlab import layers as nl
from nnlab import train as T
from nnlab.train._sweep import _data_component


def _linear(p, x):
    return x @ p


def _teacher_stream(w_star, batch=1, noise=0.0, n_eval=None, **fixed):
    """``y = x·w* + noise·ε`` with ``x ~ N(0, I_d)``, ``ε ~ N(0, 1)``: one batch per key."""
    d = w_star.shape[0]

    def sample(key):
        kx, ke = jax.random.split(key)
        x = jax.random.normal(kx, (batch, d))
        return x, x @ w_star + noise * jax.random.normal(ke, (batch, 1))

    return T.Stream(sample, n_eval=n_eval, **fixed)


def _eval_batch(stream, key):
    """Reference: the documented evaluation batch of a run with ``key``."""
    eval_key, _ = jax.random.split(key)
    xs, ys, n = [], [], stream.n_eval
    while not xs or sum(len(x) for x in xs) < n:
        x, y = stream.sample(jax.random.fold_in(eval_key, len(xs)))
        xs.append(x)
        ys.append(y)
        n = n or len(x)  # default: one batch
    return jnp.concatenate(xs)[:n], jnp.concatenate(ys)[:n]


def _mse(f, y):
    return 0.5 * jnp.mean(jnp.sum((f - y) ** 2, -1))


def test_online_sgd_follows_the_exact_error_recursion(x64):
    r"""Mean over seeds of ε_g = ½‖w − w*‖² against its exact expectation.

    For ``x ~ N(0, I_d)``, ``y = x·w* + σε``, batch 1 and ``L = ½(w·x − y)²`` the update is
    ``e' = e − η (e·x − σε) x`` with ``e = w − w*``, and with ``E[xxᵀ] = I``,
    ``E[‖x‖² xxᵀ] = (d + 2) I``:  ``E‖e_{k+1}‖² = a E‖e_k‖² + η²σ²d``,
    ``a = 1 − 2η + η²(d + 2)`` (exact for every d; Saad & Solla's ODE ``dm/dt = −2η̃ m +
    η̃²(m + σ²)`` at ``η = η̃/d``, ``t = k/d`` is its d → ∞ limit). So
    ``E ε_g(k) = ½ (a^k m_0 + η²σ²d (1 − a^k)/(1 − a))``. The logged ``train_loss`` is the
    loss on an evaluation batch independent of the training batches, so its mean is the
    population loss ``½(E‖e_k‖² + σ²)``.
    """
    d, eta, sigma, steps, seeds = 8, 0.05, 0.3, 60, 1000
    w_star = jax.random.normal(jax.random.key(3), (d, 1)) / np.sqrt(d)
    stream = _teacher_stream(w_star, batch=1, noise=sigma, n_eval=20)
    gen_error = lambda f, p, p0, data: 0.5 * jnp.sum((p - w_star) ** 2)  # noqa: E731
    rec = T.train_ensemble(
        _linear,
        lambda k: jnp.zeros((d, 1)),  # the same start for every seed: only the streams differ
        stream,
        optimizer=optax.sgd(eta),
        seeds=seeds,
        key=jax.random.key(11),
        steps=steps,
        log_every=5,
        observables={"eps_g": gen_error},
    )
    assert not rec.diverged.any()
    # every seed starts at w = 0, so only independent streams make the seeds differ
    assert np.unique(np.asarray(rec.observables["eps_g"][:, -1])).size == seeds
    k = rec.step
    a = 1 - 2 * eta + eta**2 * (d + 2)
    m0 = float(jnp.sum(w_star**2))
    m = a**k * m0 + eta**2 * sigma**2 * d * (1 - a**k) / (1 - a)

    def check(samples, expected):
        # 4 standard errors over 1000 independent seeds per log (13 logs): a false alarm has
        # probability ~1e-3 by the CLT; at step 0 every seed is at w = 0 (SE = 0), hence
        # the rounding term.
        mean = samples.mean(0)
        se = samples.std(0, ddof=1) / np.sqrt(samples.shape[0])
        assert np.all(np.abs(mean - expected) <= 4 * se + 1e-12 * expected), (mean, expected, se)
        return mean, se

    mean, se = check(np.asarray(rec.observables["eps_g"]), 0.5 * m)
    check(np.asarray(rec.train_loss), 0.5 * (m + sigma**2))
    # power: the noiseless full-batch prediction ½(1 − η)^{2k} m_0 (no η²(d + 2) term from
    # fresh samples, no noise floor) is rejected by far
    naive = 0.5 * (1 - eta) ** (2 * k) * m0
    assert np.max(np.abs(mean - naive)[1:] / se[1:]) > 20


def test_a_fresh_batch_every_step_and_the_key_fixes_the_run(x64):
    d = 3
    w_star = jnp.array([[1.0], [-0.5], [2.0]])
    x_test = jax.random.normal(jax.random.key(9), (5, d))
    stream = _teacher_stream(
        w_star, batch=3, noise=0.1, n_eval=7, x_test=x_test, y_test=x_test @ w_star,
        x_probe=x_test[:2],
    )  # fmt: skip
    key, lr, steps = jax.random.key(4), 0.1, 6
    x_sum = {"x_sum": lambda f, p, p0, data: jnp.sum(data.x_train)}
    kw = dict(optimizer=optax.sgd(lr), steps=steps, log_every=2, key=key, observables=x_sum)
    p0 = jnp.zeros((d, 1))
    rec = T.train(_linear, p0, stream, **kw)

    # reference: an explicit loop drawing update k's batch as sample(fold_in(step_key, k))
    _, step_key = jax.random.split(key)
    xe, ye = _eval_batch(stream, key)
    assert xe.shape == (7, d)  # 3 batches of 3, truncated to n_eval = 7
    grad = jax.jit(jax.grad(lambda q, xb, yb: _mse(xb @ q, yb)))
    p, batches, losses = p0, [], []
    for t in range(steps + 1):
        if t % 2 == 0:
            losses.append(_mse(xe @ p, ye))
        if t == steps:
            break
        xb, yb = stream.sample(jax.random.fold_in(step_key, t))
        batches.append(xb)
        p = p - lr * grad(p, xb, yb)
    assert not np.allclose(batches[0], batches[1])  # two steps' batches differ
    # float64, the same operations in another order: rounding ~1e-16
    np.testing.assert_allclose(rec.params, p, rtol=1e-12)
    np.testing.assert_allclose(rec.train_loss, losses, rtol=1e-12)
    # observables see the evaluation batch as data.x_train (the same batch at every log)
    np.testing.assert_allclose(rec.observables["x_sum"], np.full(4, float(jnp.sum(xe))))
    np.testing.assert_allclose(rec.test_loss[-1], _mse(x_test @ p, x_test @ w_star), rtol=1e-12)
    np.testing.assert_allclose(rec.probe_outputs[-1], x_test[:2] @ p, rtol=1e-12)

    again = T.train(_linear, p0, stream, **kw)
    np.testing.assert_array_equal(again.params, rec.params)
    np.testing.assert_array_equal(again.train_loss, rec.train_loss)
    chunked = T.train(_linear, p0, stream, progress=True, **kw)
    np.testing.assert_allclose(chunked.train_loss, rec.train_loss, rtol=1e-12)
    other = T.train(_linear, p0, stream, **{**kw, "key": jax.random.key(5)})
    assert not np.allclose(other.params, rec.params)


def test_divergence_in_stream_mode_is_flagged(x64):
    d, lr, steps = 8, 1.0, 40  # a = 1 - 2η + η²(d + 2) = 9: E‖e‖² grows ninefold per step
    w_star = jax.random.normal(jax.random.key(3), (d, 1)) / np.sqrt(d)
    stream = _teacher_stream(w_star, batch=1, n_eval=100)
    key = jax.random.key(2)
    rec = T.train(_linear, jnp.zeros((d, 1)), stream, optimizer=optax.sgd(lr), steps=steps, key=key)
    # reference: the first step whose batch loss exceeds 1e6 · L(θ_0), with L(θ_0) the
    # evaluation-batch loss at the start (the documented rule)
    xe, ye = _eval_batch(stream, key)
    _, step_key = jax.random.split(key)
    p, loss0, first = jnp.zeros((d, 1)), float(_mse(xe @ jnp.zeros((d, 1)), ye)), None
    for t in range(steps):
        xb, yb = stream.sample(jax.random.fold_in(step_key, t))
        value, g = jax.value_and_grad(lambda q, xb=xb, yb=yb: _mse(xb @ q, yb))(p)
        if not np.isfinite(value) or value > 1e6 * loss0:
            first = t
            break
        p = p - lr * g
    assert first is not None and rec.diverged and rec.diverged_step == first
    np.testing.assert_allclose(rec.params, p, rtol=1e-12)  # frozen at θ_k
    logged = rec.step > first
    assert np.isnan(rec.train_loss[logged]).all() and np.isfinite(rec.train_loss[~logged]).all()

    # per member in an ensemble: only the large rate diverges
    ens = T.train_ensemble(
        _linear,
        lambda k: jnp.zeros((d, 1)),
        stream,
        optimizer=lambda lr: optax.sgd(lr),
        hyperparams={"lr": [0.05, 1.0]},
        seeds=3,
        key=key,
        steps=steps,
        log_every=10,
    )
    assert not ens.diverged[:, 0].any() and ens.diverged[:, 1].all()

    # a stream that yields NaN is flagged at step 0 (its loss is non-finite), not a crash
    nan_stream = T.Stream(lambda k: (jnp.full((2, d), jnp.nan), jnp.zeros((2, 1))))
    bad = T.train(
        _linear, jnp.zeros((d, 1)), nan_stream, optimizer=optax.sgd(0.1), steps=2, key=key
    )
    assert bad.diverged and bad.diverged_step == 0


def test_ensemble_members_equal_separate_stream_runs(x64):
    net = nl.serial(nl.Dense(8), nl.Tanh(), nl.Dense(1))
    d = 3
    w_star = jnp.array([[1.0], [0.5], [-1.0]])
    stream = _teacher_stream(w_star, batch=4, noise=0.1, n_eval=16)
    init = lambda k: net.init(k, (4, d))[1]  # noqa: E731
    key = jax.random.key(0)
    lrs = [0.05, 0.2]
    kw = dict(steps=8, log_every=4, observables=["weight_distance"])
    rec = T.train_ensemble(
        net.apply,
        init,
        stream,
        optimizer=lambda lr: optax.sgd(lr),
        hyperparams={"lr": lrs},
        seeds=2,
        key=key,
        **kw,
    )
    assert rec.axes == ("seed", "lr") and rec.train_loss.shape == (2, 2, 3)
    keys = jax.random.split(key, 2)
    for s, i in ((0, 1), (1, 0)):  # two members (each separate run is one more compile)
        one = T.train(
            net.apply,
            init(keys[s]),
            stream,
            optimizer=optax.sgd(lrs[i]),
            key=jax.random.fold_in(keys[s], 1),  # the member's documented stream key
            **kw,
        )
        distance = rec.observables["weight_distance"][s, i]
        assert_member_matches_run(rec.train_loss[s, i], distance, one)


def test_stream_with_integer_labels_and_xent(x64):
    k_classes, d = 3, 4

    def sample(key):
        x = jax.random.normal(key, (5, d))
        return x, jnp.argmax(x[:, :k_classes], axis=1)  # labels (5,) against logits (5, 3)

    rec = T.train(
        _linear,
        jnp.zeros((d, k_classes)),
        T.Stream(sample, n_eval=40),
        optimizer=optax.sgd(0.5),
        steps=20,
        log_every=10,
        loss="xent",
        key=jax.random.key(1),
    )
    # zero logits: softmax is uniform, so the cross-entropy is exactly log K at step 0
    np.testing.assert_allclose(rec.train_loss[0], np.log(k_classes), rtol=1e-14)
    assert rec.train_loss[-1] < rec.train_loss[0] and not rec.diverged


def test_stream_is_a_pytree_with_static_sample():
    x = jnp.ones((3, 2))
    stream = T.Stream(lambda k: (x, x[:, :1]), x_test=x, y_test=x[:, :1], n_eval=5)
    assert len(jax.tree_util.tree_leaves(stream)) == 2  # the test arrays; sample is static
    total = jax.jit(lambda s: jnp.sum(s.x_test) + s.n_eval)(stream)
    assert float(total) == 11.0


def test_stream_bad_input_errors():
    d = 2
    w_star = jnp.ones((d, 1))
    good = _teacher_stream(w_star, batch=2)
    p0, key, sgd = jnp.zeros((d, 1)), jax.random.key(0), optax.sgd(0.1)

    def run(data, **kw):
        return T.train(_linear, p0, data, optimizer=sgd, steps=1, **{"key": key, **kw})

    with pytest.raises(ValueError, match=r"data is a Stream.*key=jax\.random\.key"):
        run(good, key=None)
    with pytest.raises(TypeError, match="key must be a PRNG key"):
        run(good, key=3)
    with pytest.raises(ValueError, match="batch_size must be None when data is a Stream"):
        run(good, batch_size=2)
    with pytest.raises(ValueError, match="batch_size must be None when data is a Stream"):
        T.train_ensemble(
            _linear, lambda k: p0, good, optimizer=sgd, seeds=2, key=key, steps=1, batch_size=1
        )
    with pytest.raises(TypeError, match=r"data\.sample must be a callable"):
        run(T.Stream(3))
    with pytest.raises(TypeError, match=r"data.sample\(key\) must return a pair \(x, y\)"):
        run(T.Stream(lambda k: jnp.ones((2, d))))
    with pytest.raises(ValueError, match=r"data.sample\(key\) returned x of shape \(2, 2\) and y"):
        run(T.Stream(lambda k: (jnp.ones((2, d)), jnp.ones((3, 1)))))
    with pytest.raises(ValueError, match=r"data.sample\(key\) returned x of shape \(\)"):
        run(T.Stream(lambda k: (jnp.ones(()), jnp.ones((3, 1)))))
    with pytest.raises(ValueError, match=r"data.sample\(key\)\[1\] has shape \(2, 3\)"):
        run(T.Stream(lambda k: (jnp.ones((2, d)), jnp.ones((2, 3)))))
    with pytest.raises(ValueError, match=r"data.sample\(key\)\[1\] has shape \(2, 3\)"):
        T.train_ensemble(
            _linear,
            lambda k: p0,
            T.Stream(lambda k: (jnp.ones((2, d)), jnp.ones((2, 3)))),
            optimizer=sgd,
            seeds=2,
            key=key,
            steps=1,
        )
    with pytest.raises(ValueError, match=r"data\.n_eval must be a positive int, got 0"):
        run(_teacher_stream(w_star, n_eval=0))
    with pytest.raises(TypeError, match=r"data\.n_eval must be"):
        run(_teacher_stream(w_star, n_eval=2.5))
    with pytest.raises(ValueError, match=r"x_test and data\.y_test must be given together"):
        run(_teacher_stream(w_star, x_test=jnp.ones((3, d))))
    with pytest.raises(ValueError, match=r"data.y_test has shape \(3, 2\)"):
        run(_teacher_stream(w_star, x_test=jnp.ones((3, d)), y_test=jnp.ones((3, 2))))


def test_width_sweep_fingerprints_a_stream(tmp_path):
    """A Stream is fingerprinted by its sample function (code and closure) and shapes."""
    d = 2

    def make_stream(w_star, n_eval=None):
        def sample(key):
            x = jax.random.normal(key, (4, d))
            return x, x @ w_star

        return T.Stream(sample, n_eval=n_eval)

    w1, w2 = jnp.ones((d, 1)), jnp.array([[1.0], [2.0]])
    digest = lambda s: _data_component(s)["digest"]  # noqa: E731
    assert digest(make_stream(w1)) == digest(make_stream(w1))  # a new closure, same contents
    assert digest(make_stream(w1)) != digest(make_stream(w2))  # another teacher
    assert digest(make_stream(w1)) != digest(make_stream(w1, n_eval=8))
    changed = T.Stream(lambda k: (jax.random.uniform(k, (4, d)), jnp.zeros((4, 1))))
    same_shapes = T.Stream(lambda k: (jax.random.normal(k, (4, d)), jnp.zeros((4, 1))))
    assert digest(changed) != digest(same_shapes)  # a changed function body
    assert "stream sample=" in _data_component(make_stream(w1))["summary"]

    def make_model(width):
        net = nl.serial(nl.Dense(width), nl.Relu(), nl.Dense(1))
        return net.apply, lambda k: net.init(k, (4, d))[1]

    kw = dict(optimizer=optax.sgd(0.1), seeds=2, key=jax.random.key(0), steps=2)
    first = T.width_sweep(make_model, [4], make_stream(w1), out_dir=tmp_path, **kw)
    assert first.train_loss.shape == (1, 2, 3)
    again = T.width_sweep(make_model, [4], make_stream(w1), out_dir=tmp_path, **kw)
    np.testing.assert_array_equal(again.train_loss, first.train_loss)
    with pytest.raises(ValueError, match=r"different configuration:\n  data: stream"):
        T.width_sweep(make_model, [4], make_stream(w2), out_dir=tmp_path, **kw)


@pytest.mark.slow
def test_stream_sharded_over_four_devices_equals_one_device():
    run_on_host_devices("""
        import jax, jax.numpy as jnp, numpy as np, optax
        jax.config.update("jax_enable_x64", True)
        from nnlab import train as T
        assert len(jax.devices()) == 4, jax.devices()
        w_star = jnp.array([[1.0], [-1.0], [0.5]])
        def sample(key):
            x = jax.random.normal(key, (2, 3))
            return x, x @ w_star
        x_test = jnp.ones((4, 3))
        stream = T.Stream(sample, x_test=x_test, y_test=x_test @ w_star, n_eval=10)
        kw = dict(optimizer=lambda lr: optax.sgd(lr), seeds=3, key=jax.random.key(0),
                  hyperparams={"lr": jnp.array([0.05, 0.1, 50.0])}, steps=6, log_every=2)
        init = lambda k: 0.1 * jax.random.normal(k, (3, 1))
        f = lambda p, x: x @ p
        four = T.train_ensemble(f, init, stream, **kw)   # 9 members, padded to 12
        one = T.train_ensemble(f, init, stream, devices=jax.devices()[:1], **kw)
        np.testing.assert_allclose(four.train_loss, one.train_loss, rtol=1e-12)
        np.testing.assert_allclose(four.test_loss, one.test_loss, rtol=1e-12)
        np.testing.assert_array_equal(four.diverged, one.diverged)
        assert four.diverged[:, 2].all() and not four.diverged[:, :2].any()
        print("ok")
    """)
