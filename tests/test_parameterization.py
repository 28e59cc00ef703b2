"""Tests for nnlab.parameterization: the mlp factory, symmetries, coordinate check."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnlab
from nnlab import layers as nl
from nnlab import parameterization as P
from nnlab import train as T


def _toy(n=8, d=4):
    x = jax.random.normal(jax.random.key(1), (n, d))
    return x, jnp.sin(x[:, :1])


@pytest.mark.slow
def test_coord_check_mup_learns_features_ntk_does_not():
    """Yang & Hu 2021: muP hidden updates Θ(1) in width; NTK's fall like n^{-1/2}."""
    x, y = _toy()
    widths = [128, 512, 2048]
    kw = dict(key=jax.random.key(0), lr=0.5, steps=2, seeds=3)
    mup = P.coord_check(widths, x, y, parameterization="mup", **kw)
    ntk = P.coord_check(widths, x, y, parameterization="ntk", **kw)
    # hidden layers (all but the last entry). Margins: a 16x width range with 4 seeds fits
    # slopes to about ±0.1 (seen: muP ≈ -0.03, NTK ≈ -0.44 against the predicted 0, -0.5)
    assert np.all(np.abs(mup.delta_slope[:-1]) < 0.15), mup.delta_slope
    assert np.all(ntk.delta_slope[:-1] < -0.35), ntk.delta_slope
    # both keep hidden activations Θ(1) at initialisation
    assert np.all(np.abs(mup.init_slope[:-1]) < 0.1) and np.all(np.abs(ntk.init_slope[:-1]) < 0.1)
    # muP's output update stays Θ(1) as well
    assert abs(mup.delta_slope[-1]) < 0.15


def test_meanfield_is_mup_shifted_along_the_abc_symmetry(x64):
    """(a, b, c) -> (a+θ, b-θ, c-2θ) leaves the SGD trajectory unchanged (Yang & Hu 2021 §3)."""
    x, y = _toy()
    outs = []
    for p in ("mup", "meanfield"):
        net = P.MLP(64, depth=2, b_std=0.5, parameterization=p)
        _, p0 = net.init(jax.random.key(3), x.shape)
        opt = optax.chain(optax.sgd(0.3), P.scale_learning_rates(P.lr_multipliers(net, p0)))
        rec = T.train(net.apply, p0, T.Data(x, y, x_probe=x), optimizer=opt, steps=6)
        outs.append(rec.probe_outputs)
    # float64: the two differ only by rounding of powers of n, ~1e-14 relative per step
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-9, atol=1e-12)
    assert np.abs(outs[0][-1] - outs[0][0]).max() > 1e-2  # and it moved


@pytest.mark.parametrize("param", P.PARAMETERIZATIONS)
def test_mlp_is_a_serial_of_dense_layers(param):
    net = P.MLP(
        width=16, depth=3, out=2, activation="erf", W_std=1.3, b_std=0.2, parameterization=param
    )
    dense = [nl.Dense(16, 1.3, 0.2, param, r) for r in ("input", "hidden", "hidden")]
    want = nl.serial(
        dense[0],
        nl.Erf(),
        dense[1],
        nl.Erf(),
        dense[2],
        nl.Erf(),
        nl.Dense(2, 1.3, 0.2, param, "output"),
    )
    assert net == want
    assert P.MLP is P.mlp
    ident = P.mlp(16, depth=2, activation="identity", parameterization=param)
    assert [type(lyr).__name__ for lyr in ident.layers] == ["Dense"] * 3


@pytest.mark.parametrize("param", ["ntk", "standard"])
def test_ntk_and_standard_kernels_do_not_depend_on_roles(x64, param):
    """The mlp's kernel is that of the same Dense layers built without roles."""
    x, _ = _toy()
    net = P.MLP(16, depth=2, activation="erf", W_std=1.3, b_std=0.1, parameterization=param)
    plain = nl.serial(
        nl.Dense(16, 1.3, 0.1, param),
        nl.Erf(),
        nl.Dense(16, 1.3, 0.1, param),
        nl.Erf(),
        nl.Dense(1, 1.3, 0.1, param),
    )
    np.testing.assert_array_equal(
        nnlab.kernel(net, x, get="ntk"), nnlab.kernel(plain, x, get="ntk")
    )
    _, params = net.init(jax.random.key(0), x.shape)
    np.testing.assert_array_equal(net.apply(params, x), plain.apply(params, x))


def test_hidden_features_are_the_post_activation_outputs(x64, key):
    x, _ = _toy()
    net = P.mlp(12, depth=2, activation="tanh", b_std=0.3, parameterization="mup")
    _, params = net.init(key, x.shape)
    h1 = jnp.tanh(net.layers[0].apply(params[0], x))  # layer by layer, by hand
    h2 = jnp.tanh(net.layers[2].apply(params[2], h1))
    f = net.layers[4].apply(params[4], h2)
    feats = jax.jit(lambda p: P.hidden_features(net, p, x))(params)
    for got, want in zip(feats, [h1, h2, f], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-13)
    np.testing.assert_allclose(feats[-1], net.apply(params, x), rtol=1e-13)
    with pytest.raises(TypeError, match="serial network"):
        P.hidden_features(nl.Dense(3), params[0], x)
    with pytest.raises(ValueError, match="one entry per layer"):
        P.hidden_features(net, params[:2], x)


def test_init_scales_and_lr_multipliers(key):
    n, d = 512, 4
    # effective hidden weight = multiplier * w; the multiplier n^{-a} of the hidden row
    hidden_mult = {"standard": 1.0, "ntk": n**-0.5, "mup": 1.0, "meanfield": n**-0.5}
    for p in P.PARAMETERIZATIONS:
        net = P.MLP(n, depth=2, parameterization=p)
        _, params = net.init(key, (3, d))
        m = P.lr_multipliers(net, params)
        expected = float(n) if p == "meanfield" else 1.0
        assert [mi["W"] for mi in m if mi] == [expected] * 3
        # effective weight std of the hidden layer: mult * std(w) = 1/sqrt(n) in all four
        eff = hidden_mult[p] * float(jnp.std(params[2]["W"]))
        # Monte Carlo over n^2 entries: relative SE of a std estimate ≈ 1/sqrt(2 n^2) ≈ 1.4e-3
        assert abs(eff * np.sqrt(n) - 1.0) < 6 * 1.4e-3, (p, eff)
    # the muP output weights are 1/n: multiplier n^{-1/2} times std n^{-1/2}
    net = P.MLP(n, depth=1, parameterization="mup")
    _, params = net.init(key, (3, d))
    assert abs(n**-0.5 * float(jnp.std(params[2]["W"])) * n - 1.0) < 0.25  # only n=512 samples


def test_scale_learning_rates_under_jit(key):
    net = P.MLP(8, depth=1, parameterization="meanfield")
    _, params = net.init(key, (2, 3))
    tx = P.scale_learning_rates(P.lr_multipliers(net, params))
    g = jax.tree_util.tree_map(jnp.ones_like, params)
    out, _ = jax.jit(tx.update)(g, tx.init(params), params)
    assert all(float(jnp.max(a)) == 8.0 for a in jax.tree_util.tree_leaves(out))


def test_errors():
    with pytest.raises(ValueError, match="parameterization must be one of"):
        P.MLP(8, parameterization="sp")
    with pytest.raises(ValueError, match="width must be a positive int"):
        P.MLP(0)
    with pytest.raises(ValueError, match="no kernel limit"):
        nnlab.kernel(P.MLP(8, parameterization="mup"), jnp.ones((2, 3)), get="ntk")
    with pytest.raises(ValueError, match="role must be one of"):
        P.abc("mup", "embedding")
    with pytest.raises(ValueError, match="at least two"):
        P.coord_check([8], *_toy(), key=jax.random.key(0), parameterization="mup")
    with pytest.raises(ValueError, match="input has 3 channels but the weights expect 4"):
        net = P.MLP(8)
        net.apply(net.init(jax.random.key(0), (2, 4))[1], jnp.ones((2, 3)))
    with pytest.raises(TypeError, match="W_std"):
        P.MLP(8, W_std="one")
    with pytest.raises(ValueError, match="b_std"):
        P.MLP(8, b_std=float("nan"))
    assert P.abc("meanfield", "output_bias") == P.ABC(0.5, -0.5, -1.0)
    assert P.ABC_TABLE is nl._abc.ABC_TABLE
