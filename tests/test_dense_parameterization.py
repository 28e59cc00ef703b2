"""Dense and Conv in the four width parameterizations (Yang & Hu 2021, arXiv:2011.14522)."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax import lax

import nnlab
from nnlab import layers as nl
from nnlab import parameterization as P

WIDTHS = [64, 128, 256, 512, 1024]
# Predicted log-log slopes versus width n for a 2-hidden-layer ReLU MLP (d = 4 inputs, no
# biases), from the abc exponents (input a1+b1 = 0, hidden a2+b2 = ½, output r = a3+b3):
#   init output RMS ~ n^{½ - r}                   (CLT over n hidden units)
#   one SGD step (first order in the rate η n^{-c}):
#     Δh1 ~ n^{-2a1 - c1 - r}                      (gradient reaching the input layer)
#     Δh2 ~ n^{max(1 - 2a2 - c2 - r, -2a1 - c1 - r)}  (ΔW2 h1 and W2 Δh1)
#     Δf  ~ n^{max(1 - 2a3 - c3, 1 - r + (1 - 2a2 - c2 - r))}  (ΔW3 h2 and W3 Δh2)
# standard at c = 0 blows up (Δh2 ~ n^½, Δf ~ n), ntk updates hidden features like n^-½,
# mup and meanfield keep every update Θ(1). Hidden features are Θ(1) at init in all four.
PREDICTED = {  # parameterization: (init slopes [h1, h2, f], one-step update slopes [h1, h2, f])
    "standard": ((0, 0, 0), (-0.5, 0.5, 1.0)),
    "ntk": ((0, 0, 0), (-0.5, -0.5, 0)),
    "mup": ((0, 0, -0.5), (0, 0, 0)),
    "meanfield": ((0, 0, -0.5), (0, 0, 0)),
}


def _one_step_rms(width, key, x, y, lr, seeds):
    """Per parameterization: RMS of [h1, h2, f] at init and of their change after one SGD step,
    averaged over ``seeds`` initialisations (one compiled program per width)."""
    nets = {p: P.mlp(width, 2, 1, "relu", 1.0, None, p) for p in P.PARAMETERIZATIONS}

    def member(k):
        out = {}
        for p, net in nets.items():
            params = net.init(k, x.shape)[1]
            tx = optax.chain(optax.sgd(lr), P.scale_learning_rates(nl.lr_multipliers(net, params)))
            grads = jax.grad(lambda q, net=net: 0.5 * jnp.mean((net.apply(q, x) - y) ** 2))(params)
            updates, _ = tx.update(grads, tx.init(params), params)
            h0 = P.hidden_features(net, params, x)
            h1 = P.hidden_features(net, optax.apply_updates(params, updates), x)
            rms = [jnp.sqrt(jnp.mean(a**2)) for a in h0]
            delta = [jnp.sqrt(jnp.mean((b - a) ** 2)) for a, b in zip(h0, h1)]
            out[p] = (jnp.stack(rms), jnp.stack(delta))
        return out

    res = jax.jit(jax.vmap(member))(jax.random.split(key, seeds))
    return {p: (np.mean(r, axis=0), np.mean(d, axis=0)) for p, (r, d) in res.items()}


def _slope(values):
    return np.polyfit(np.log(WIDTHS), np.log(values), 1)[0]


@pytest.mark.slow
def test_coordinate_check_matches_abc_predictions(x64):
    """Init output and one-step update scalings of Dense nets follow the abc table.

    Tolerance 0.15 on every slope: a log-log fit over a 16x width range (log 16 = 2.77)
    turns a relative error δ in the ratio of the end values into a slope error δ/2.77. The
    Θ(1) prefactors carry O(n^{-1/2}) finite-width corrections (≈ 12% at n = 64) and the
    seed averages over 8 points fluctuate by ~10% at a fixed key, each worth ~0.05 of
    slope; seen with 8 seeds over three keys: at most 0.11 off (standard's output update,
    0.89 against 1); the test averages 16 seeds. The
    predictions differ by 0.5 or more between parameterizations, so 0.15 tells them apart.
    The rate 1e-3 keeps standard's step first order (η n^{1/2} ≈ 0.03 at n = 1024).
    """
    x = jax.random.normal(jax.random.key(1), (8, 4))
    y = jnp.sin(x[:, :1])
    rows = [_one_step_rms(w, jax.random.key(0), x, y, 1e-3, 16) for w in WIDTHS]
    for p, (init_pred, delta_pred) in PREDICTED.items():
        init = np.array([r[p][0] for r in rows])
        delta = np.array([r[p][1] for r in rows])
        init_slopes = [_slope(init[:, i]) for i in range(3)]
        delta_slopes = [_slope(delta[:, i]) for i in range(3)]
        np.testing.assert_allclose(init_slopes, init_pred, atol=0.15, err_msg=p)
        np.testing.assert_allclose(delta_slopes, delta_pred, atol=0.15, err_msg=p)


# --- 'standard' and 'ntk' are today's layers, whatever the role --------------------------


@pytest.mark.parametrize("param", ["ntk", "standard"])
def test_standard_and_ntk_dense_formulas(x64, key, param):
    x = jax.random.normal(jax.random.key(1), (3, 2, 7))
    W_std, b_std = 1.3, 0.4
    kw, kb = jax.random.split(key)
    w0, b0 = jax.random.normal(kw, (7, 5)), jax.random.normal(kb, (5,))
    outs = []
    for role in ("input", "hidden", "output"):
        layer = nl.Dense(5, W_std, b_std, param, role)
        shape, params = layer.init(key, x.shape)
        assert shape == (3, 2, 5)
        if param == "ntk":  # W, b ~ N(0, 1); y = W_std/sqrt(fan_in) x W + b_std b
            np.testing.assert_array_equal(params["W"], w0)
            np.testing.assert_array_equal(params["b"], b0)
            want = W_std / np.sqrt(7) * (x @ w0) + b_std * b0[None, None]
        else:  # W ~ N(0, W_std²/fan_in), b ~ N(0, b_std²); y = x W + b
            np.testing.assert_allclose(params["W"], w0 * W_std / np.sqrt(7), rtol=1e-15)
            np.testing.assert_allclose(params["b"], b0 * b_std, rtol=1e-15)
            want = x @ params["W"] + params["b"][None, None]
        y = layer.apply(params, x)
        np.testing.assert_allclose(y, want, rtol=1e-13)
        assert layer.lr_multipliers(params) == {"W": 1.0, "b": 1.0}
        outs.append((params, y))
    for params, y in outs[1:]:  # the role changes nothing, bit for bit
        np.testing.assert_array_equal(y, outs[0][1])
        np.testing.assert_array_equal(params["W"], outs[0][0]["W"])


def _conv_ref(x, w, strides, padding):
    """Channels-last convolution by lax with explicit dimension numbers (independent path)."""
    return lax.conv_general_dilated(
        x,
        w,
        strides,
        padding,
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        precision=lax.Precision.HIGHEST,
    )


@pytest.mark.parametrize("param", ["ntk", "standard"])
def test_standard_and_ntk_conv_formulas(x64, key, param):
    x = jax.random.normal(jax.random.key(1), (2, 6, 5, 3))
    W_std, b_std = 1.4, 0.3
    kw, kb = jax.random.split(key)
    w0, b0 = jax.random.normal(kw, (3, 2, 3, 4)), jax.random.normal(kb, (4,))
    fan_in = 3 * 3 * 2
    ys = []
    for role in ("input", "hidden", "output"):
        conv = nl.Conv(4, (3, 2), (1, 2), "VALID", W_std, b_std, param, role)
        _, params = conv.init(key, x.shape)
        if param == "ntk":
            np.testing.assert_array_equal(params["W"], w0)
            want = (
                W_std / np.sqrt(fan_in) * _conv_ref(x, w0, (1, 2), "VALID")
                + b_std * b0[None, None, None]
            )
        else:
            np.testing.assert_allclose(params["W"], w0 * W_std / np.sqrt(fan_in), rtol=1e-15)
            want = _conv_ref(x, params["W"], (1, 2), "VALID") + params["b"][None, None, None]
        ys.append(conv.apply(params, x))
        np.testing.assert_allclose(ys[-1], want, rtol=1e-12)
    for y in ys[1:]:
        np.testing.assert_array_equal(y, ys[0])


# --- 'mup' and 'meanfield': multipliers and init scales -----------------------------------

# (multiplier, init std of w) of a Dense weight of width n, fan-in d (input layer), W_std s,
# written out from the abc table and the placement rule (constant s/sqrt(d) or s in the
# init for hidden layers, in the multiplier for input and output layers).
EXPECTED_W = {
    ("mup", "input"): lambda n, d, s: (s * n**0.5 / d**0.5, n**-0.5),
    ("mup", "hidden"): lambda n, d, s: (1.0, s * n**-0.5),
    ("mup", "output"): lambda n, d, s: (s * n**-0.5, n**-0.5),
    ("meanfield", "input"): lambda n, d, s: (s / d**0.5, 1.0),
    ("meanfield", "hidden"): lambda n, d, s: (n**-0.5, s),
    ("meanfield", "output"): lambda n, d, s: (s / n, 1.0),
}
# (multiplier including b_std, init std of β) of the bias: hidden_bias for input/hidden
# layers, output_bias for the output layer.
EXPECTED_B = {
    "mup": {"hidden_bias": lambda n: (n**0.5, n**-0.5), "output_bias": lambda n: (1.0, 1.0)},
    "meanfield": {"hidden_bias": lambda n: (1.0, 1.0), "output_bias": lambda n: (n**-0.5, n**0.5)},
}


@pytest.mark.parametrize(
    "param,role", list(itertools.product(["mup", "meanfield"], ["input", "hidden", "output"]))
)
def test_feature_learning_dense_scales(x64, key, param, role):
    d, out, n_hidden, W_std, b_std = 6, 3, 400, 1.7, 0.6
    fan_in = d if role == "input" else n_hidden
    out = n_hidden if role == "input" else out
    n = out if role == "input" else fan_in  # the layer's width
    layer = nl.Dense(out, W_std, b_std, param, role)
    _, params = layer.init(key, (2, fan_in))
    kw, kb = jax.random.split(key)
    mult, std = EXPECTED_W[(param, role)](n, d, W_std)
    bias_role = "output_bias" if role == "output" else "hidden_bias"
    b_mult, b_init = EXPECTED_B[param][bias_role](n)
    np.testing.assert_allclose(params["W"], std * jax.random.normal(kw, (fan_in, out)), 1e-14)
    np.testing.assert_allclose(params["b"], b_init * jax.random.normal(kb, (out,)), 1e-14)
    x = jax.random.normal(jax.random.key(2), (2, fan_in))
    want = mult * (x @ params["W"]) + b_std * b_mult * params["b"][None]
    np.testing.assert_allclose(layer.apply(params, x), want, rtol=1e-12)
    c = 0.0 if param == "mup" else -1.0  # every role shares c in both
    assert layer.lr_multipliers(params) == {"W": n**-c, "b": n**-c}
    assert nl.Dense(out, b_std=None, parameterization=param, role=role).lr_multipliers(
        {"W": params["W"], "b": None}
    ) == {"W": n**-c, "b": None}


@pytest.mark.parametrize("param", ["mup", "meanfield"])
@pytest.mark.parametrize("role", ["input", "hidden", "output"])
def test_one_by_one_conv_is_dense(x64, key, param, role):
    """A 1x1 Conv has receptive size 1 and width = channels: the Dense layer exactly."""
    x = jax.random.normal(jax.random.key(1), (2, 3, 4, 5))
    conv = nl.Conv(6, (1, 1), W_std=1.2, b_std=0.5, parameterization=param, role=role)
    dense = nl.Dense(6, W_std=1.2, b_std=0.5, parameterization=param, role=role)
    _, pc = conv.init(key, x.shape)
    _, pd = dense.init(key, x.shape)
    np.testing.assert_allclose(pc["W"][0, 0], pd["W"], rtol=1e-15)
    np.testing.assert_allclose(conv.apply(pc, x), dense.apply(pd, x), rtol=1e-12)
    assert conv.lr_multipliers(pc) == dense.lr_multipliers(pd)


@pytest.mark.parametrize("param", ["mup", "meanfield"])
def test_feature_learning_conv_formula(x64, key, param):
    """Hidden Conv: width = C_in (not times the filter), constant W_std/sqrt(prod(filter))."""
    c_in, filt, W_std, b_std = 8, (3, 2), 1.3, 0.4
    x = jax.random.normal(jax.random.key(1), (2, 6, 5, c_in))
    conv = nl.Conv(4, filt, padding="VALID", W_std=W_std, b_std=b_std, parameterization=param)
    _, params = conv.init(key, x.shape)
    kw, kb = jax.random.split(key)
    # hidden row: mup (a, b) = (0, ½) -> mult 1, std W_std n^-½ / sqrt(6); meanfield: the
    # θ = ½ shift -> mult n^-½, std W_std / sqrt(6). Bias: hidden_bias.
    mult, std = (1.0, c_in**-0.5) if param == "mup" else (c_in**-0.5, 1.0)
    b_mult, b_init = (c_in**0.5, c_in**-0.5) if param == "mup" else (1.0, 1.0)
    w_want = std * W_std / math.sqrt(6) * jax.random.normal(kw, (*filt, c_in, 4))
    np.testing.assert_allclose(params["W"], w_want, rtol=1e-14)
    np.testing.assert_allclose(params["b"], b_init * jax.random.normal(kb, (4,)), 1e-14)
    want = (
        mult * _conv_ref(x, params["W"], (1, 1), "VALID")
        + b_std * b_mult * params["b"][None, None, None]
    )
    np.testing.assert_allclose(conv.apply(params, x), want, rtol=1e-12)
    lr = 1.0 if param == "mup" else float(c_in)  # n^{-c} with n = 8 channels, not 48
    assert conv.lr_multipliers(params) == {"W": lr, "b": lr}


def test_lr_multipliers_walks_combinators(key):
    mf = dict(parameterization="meanfield")
    block = nl.serial(nl.Dense(8, role="hidden", **mf), nl.Tanh())
    net = nl.serial(
        nl.Dense(8, role="input", **mf),
        nl.Relu(),
        nl.FanOut(2),
        nl.parallel(block, nl.Identity()),
        nl.FanInSum(),
        nl.Dense(2, b_std=None, role="output", **mf),
    )
    _, params = net.init(key, (3, 5))
    m = nl.lr_multipliers(net, params)
    assert m == (
        {"W": 8.0, "b": 8.0},
        (),
        (),
        (({"W": 8.0, "b": 8.0}, ()), ()),
        (),
        {"W": 8.0, "b": None},
    )
    assert jax.tree.structure(m) == jax.tree.structure(params)
    assert P.lr_multipliers is nl.lr_multipliers
    with pytest.raises(ValueError, match="one entry per layer"):
        nl.lr_multipliers(net, params[:-1])
    with pytest.raises(TypeError, match=r"Dense.lr_multipliers: params must be"):
        nl.Dense(3).lr_multipliers([1.0])


# --- kernels, roles, transformations ------------------------------------------------------


@pytest.mark.parametrize("param", ["mup", "meanfield"])
def test_feature_learning_kernel_raises_with_the_reason(param):
    x = jnp.ones((2, 4, 4, 3))
    layers = [nl.Dense(3, parameterization=param), nl.Conv(3, (2, 2), parameterization=param)]
    for layer, inputs in zip(layers, (x[:, 0, 0], x)):
        with pytest.raises(ValueError, match=f"parameterization '{param}' has no kernel") as e:
            nnlab.kernel(layer, inputs)
        for reason in ("learns features", "NTK is not fixed", "vanishes like 1/n"):
            assert reason in str(e.value)
        assert "'ntk' or 'standard'" in str(e.value)
    with pytest.raises(ValueError, match="no kernel limit"):
        nnlab.kernel(P.mlp(8, parameterization=param), x[:, 0, 0], get="ntk")


def test_bad_parameterization_and_role():
    for make in (lambda **kw: nl.Dense(3, **kw), lambda **kw: nl.Conv(3, (2,), **kw)):
        with pytest.raises(ValueError, match=r"parameterization must be one of .*'sp'"):
            make(parameterization="sp")
        with pytest.raises(ValueError, match=r"role must be one of .*'middle'"):
            make(role="middle")


@pytest.mark.parametrize("param", P.PARAMETERIZATIONS)
def test_jit_and_vmap_over_apply(x64, param):
    net = nl.serial(
        nl.Conv(4, (3,), b_std=0.2, parameterization=param, role="input"),
        nl.Relu(),
        nl.Flatten(),
        nl.Dense(1, b_std=0.2, parameterization=param, role="output"),
    )
    x = jax.random.normal(jax.random.key(1), (5, 7, 2))
    keys = jax.random.split(jax.random.key(0), 3)
    params = jax.vmap(lambda k: net.init(k, x.shape)[1])(keys)
    ens = jax.jit(jax.vmap(net.apply, in_axes=(0, None)))(params, x)
    for i in range(3):
        one = net.apply(jax.tree.map(lambda a, i=i: a[i], params), x)
        np.testing.assert_allclose(ens[i], one, rtol=1e-12)
    per_example = jax.vmap(lambda xi: net.apply(net.init(keys[0], x.shape)[1], xi[None])[0])(x)
    np.testing.assert_allclose(per_example, ens[0], rtol=1e-12)
    mults = nl.lr_multipliers(net, params)  # ensemble params: widths read from the last axes
    assert mults[0]["W"] == (4.0 if param == "meanfield" else 1.0)
    assert mults[3]["W"] == (28.0 if param == "meanfield" else 1.0)


def test_mup_and_meanfield_cnn_train_identically(x64, key):
    """The θ-shift (a, b, c) -> (a+½, b-½, c-1) leaves a Conv/Dense net's SGD trajectory."""
    x = jax.random.normal(jax.random.key(1), (6, 8, 3))
    y = jnp.cos(x[:, :1, 0])
    outs = []
    for p in ("mup", "meanfield"):
        kw = dict(b_std=0.5, parameterization=p)
        net = nl.serial(
            nl.Conv(16, (3,), role="input", **kw),
            nl.Relu(),
            nl.Conv(16, (2,), role="hidden", **kw),
            nl.Relu(),
            nl.Flatten(),
            nl.Dense(1, role="output", **kw),
        )
        params = net.init(key, x.shape)[1]
        tx = optax.chain(optax.sgd(0.2), P.scale_learning_rates(nl.lr_multipliers(net, params)))

        @jax.jit
        def step(params, state, net=net, tx=tx):
            g = jax.grad(lambda q: 0.5 * jnp.mean((net.apply(q, x) - y) ** 2))(params)
            updates, state = tx.update(g, state, params)
            return optax.apply_updates(params, updates), state, net.apply(params, x)

        state, traj = tx.init(params), []
        for _ in range(5):
            params, state, out = step(params, state)
            traj.append(out)
        outs.append(np.stack(traj))
    # float64: the two differ only by rounding of powers of n (~1e-15 relative per op)
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-9, atol=1e-12)
    assert np.abs(outs[0][-1] - outs[0][0]).max() > 1e-2  # and it moved
