"""Tests for nnlab.taylor: linearize / expand via nested jvps."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnlab.taylor import expand, linearize


def mlp(p, x):
    return jnp.tanh(x @ p["w"] + p["b"][None]) @ p["v"]


def _params(key, scale=1.0):
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "w": scale * jax.random.normal(k1, (3, 5)),
        "b": scale * jax.random.normal(k2, (5,)),
        "v": scale * jax.random.normal(k3, (5, 2)),
    }


def _shift(p, dp, t):
    return jax.tree_util.tree_map(lambda a, b: a + t * b, p, dp)


@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_equal_at_params0(x64, key, order):
    p0 = _params(key)
    x = jax.random.normal(jax.random.key(1), (4, 3))
    # at params0 every correction term is exactly zero (Delta = 0)
    np.testing.assert_allclose(expand(mlp, p0, order)(p0, x), mlp(p0, x), rtol=0, atol=0)


def test_order_one_matches_jvp(x64, key):
    p0, dp = _params(key), _params(jax.random.key(2), 0.3)
    x = jax.random.normal(jax.random.key(1), (4, 3))
    y0, jv = jax.jvp(lambda p: mlp(p, x), (p0,), (dp,))
    # independent computation: one jvp; the only difference is float rounding
    np.testing.assert_allclose(linearize(mlp, p0)(_shift(p0, dp, 1.0), x), y0 + jv, rtol=1e-12)


def test_linearized_is_linear_in_params(x64, key):
    p0, dp = _params(key), _params(jax.random.key(2))
    x = jax.random.normal(jax.random.key(1), (4, 3))
    f = linearize(mlp, p0)
    ys = [f(_shift(p0, dp, t), x) for t in (0.0, 1.0, 2.0)]
    np.testing.assert_allclose(ys[2] - ys[1], ys[1] - ys[0], rtol=1e-12)


def quadratic(p, x):
    # jointly quadratic in the parameters: bilinear term plus a linear term
    return (x @ p["a"]) * (x @ p["b"]) + x @ p["c"]


def test_order_two_exact_for_quadratic(x64, key):
    ks = jax.random.split(key, 6)
    p0 = {n: jax.random.normal(k, (3, 2)) for n, k in zip("abc", ks[:3])}
    p = {n: jax.random.normal(k, (3, 2)) for n, k in zip("abc", ks[3:])}
    x = jax.random.normal(jax.random.key(1), (5, 3))
    np.testing.assert_allclose(expand(quadratic, p0, 2)(p, x), quadratic(p, x), rtol=1e-12)
    # the linear model is not exact here (the test can fail): it misses the bilinear term
    lin_err = jnp.max(jnp.abs(linearize(quadratic, p0)(p, x) - quadratic(p, x)))
    assert lin_err > 1e-2


def test_cubic_needs_order_three(x64):
    f = lambda p, x: (p**3) * x  # noqa: E731
    x = jnp.asarray([1.0, -2.0])
    p0, p = 0.7, 1.9
    np.testing.assert_allclose(expand(f, p0, 3)(p, x), f(p, x), rtol=1e-13)
    # order 2 misses exactly (p - p0)^3 x
    np.testing.assert_allclose(f(p, x) - expand(f, p0, 2)(p, x), (p - p0) ** 3 * x, rtol=1e-12)


def test_series_of_sin(x64):
    # sin(p) around 0: order-k error bounded by the next term |p|^(k+1)/(k+1)!
    f = lambda p, x: jnp.sin(p * x)  # noqa: E731
    p = 0.4
    for k in range(1, 6):
        err = abs(float(expand(f, 0.0, k)(p, jnp.asarray(1.0))) - np.sin(p))
        assert err <= p ** (k + 1) / np.prod(np.arange(1, k + 2)) * (1 + 1e-9)


def test_jit_and_vmap(x64, key):
    p0 = _params(key)
    f2 = expand(mlp, p0, 2)
    x = jax.random.normal(jax.random.key(1), (4, 3))
    ps = jax.vmap(lambda k: _params(k, 0.1))(jax.random.split(jax.random.key(3), 3))
    ps = jax.tree_util.tree_map(lambda a, b: a + b[None], ps, p0)
    batched = jax.jit(jax.vmap(f2, in_axes=(0, None)))(ps, x)
    for i in range(3):
        pi = jax.tree_util.tree_map(lambda a, i=i: a[i], ps)
        np.testing.assert_allclose(batched[i], f2(pi, x), rtol=1e-12)


def test_errors(key):
    p0 = _params(key)
    with pytest.raises(ValueError, match="order"):
        expand(mlp, p0, -1)
    with pytest.raises(ValueError, match="order"):
        expand(mlp, p0, 1.5)
    x = jnp.ones((2, 3))
    bad = dict(p0, w=jnp.ones((3, 4)))
    with pytest.raises(ValueError, match="does not match params0"):
        linearize(mlp, p0)(bad, x)
    with pytest.raises(ValueError, match="structure of params0"):
        linearize(mlp, p0)({"w": p0["w"]}, x)
