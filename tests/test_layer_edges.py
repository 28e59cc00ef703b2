"""Edge cases of the layer/kernel machinery found in review: each an error or an exact value."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnlab
from nnlab import layers as nl


def _images():
    x = jax.random.normal(jax.random.key(3), (3, 4, 4, 2), jnp.float64)
    return x * jnp.linspace(0.2, 2.0, 16).reshape(1, 4, 4, 1)  # per-position scales differ


@pytest.mark.parametrize("after", [nl.Relu(), nl.Erf(), nl.LayerNorm()], ids=["relu", "erf", "ln"])
def test_nonlinearity_after_spatial_flatten_is_an_error(x64, after):
    # Each flattened feature keeps its position's variance: T(mean_p K_p) != mean_p T(K_p).
    # (This used to return T of the mean, e.g. 0.968 where the exact value is 0.964.)
    net = nl.serial(nl.Conv(8, (3, 3)), nl.Flatten(), after, nl.Dense(1))
    with pytest.raises(ValueError, match="after Flatten"):
        nnlab.kernel(net, _images())


def test_flatten_then_dense_then_nonlinearity_is_fine(x64):
    x = _images()
    net = nl.serial(
        nl.Conv(8, (3, 3)), nl.Relu(), nl.Flatten(), nl.Dense(4), nl.Relu(), nl.Dense(1)
    )
    k = nnlab.kernel(net, x)
    assert np.all(np.isfinite(k.ntk))
    # a single position: Flatten is a reshape and a nonlinearity may follow
    one = jax.random.normal(jax.random.key(4), (3, 1, 1, 2), jnp.float64)
    flat = nl.serial(nl.Conv(8, (1, 1)), nl.Flatten(), nl.Relu(), nl.Dense(1))
    plain = nl.serial(nl.Dense(8), nl.Relu(), nl.Dense(1))
    np.testing.assert_allclose(
        nnlab.kernel(flat, one).ntk, nnlab.kernel(plain, one.reshape(3, 2)).ntk, rtol=1e-12
    )


def test_blocked_kernel_of_a_concat_has_no_stale_branches(x64):
    net = nl.serial(nl.FanOut(2), nl.parallel(nl.Dense(2), nl.Dense(3)), nl.FanInConcat())
    x = jax.random.normal(jax.random.key(5), (10, 3), jnp.float64)
    blocked, whole = nnlab.kernel(net, x, batch_size=4), nnlab.kernel(net, x)
    assert blocked.branches is None and whole.branches is None
    np.testing.assert_allclose(blocked.ntk, whole.ntk, rtol=1e-12)


def test_vmap_over_a_layer_with_a_batch_of_hyperparameters(x64):
    x = jax.random.normal(jax.random.key(6), (3, 2), jnp.float64)
    stds = jnp.array([0.5, 1.5])
    batched = nl.serial(
        nl.Dense(4, W_std=stds, b_std=jnp.array([0.1, 0.2])), nl.Relu(), nl.Dense(1)
    )
    axes = jax.tree.map(lambda leaf: 0 if jnp.ndim(leaf) else None, batched)
    out = jax.vmap(lambda net: nnlab.kernel(net, x, get="ntk"), in_axes=(axes,))(batched)
    for i, (w, b) in enumerate(((0.5, 0.1), (1.5, 0.2))):
        one = nl.serial(nl.Dense(4, W_std=w, b_std=b), nl.Relu(), nl.Dense(1))
        np.testing.assert_allclose(out[i], nnlab.kernel(one, x, get="ntk"), rtol=1e-12)


def test_init_accepts_unknown_batch_and_shape_structs():
    key = jax.random.key(0)
    assert nl.Dense(3).init(key, (-1, 2))[0] == (-1, 3)
    spec = jax.ShapeDtypeStruct((4, 2), jnp.float32)
    assert nl.serial(nl.Dense(3), nl.Relu()).init(key, spec)[0] == (4, 3)
    with pytest.raises(ValueError, match="input_shape"):
        nl.Dense(3).init(key, (4, -1))


def test_devices_may_be_any_iterable():
    x = jnp.ones((2, 3))
    k = nnlab.kernel(nl.Dense(1), x, devices=np.array(jax.devices()), get="nngp")
    np.testing.assert_allclose(k, nnlab.kernel(nl.Dense(1), x, get="nngp"))


def test_output_nngp_of_a_closure_is_its_outer_product():
    # features='output' needs no derivative, so a function closing over its parameters
    # (the Flax NNX idiom) is fine there, unlike in empirical_ntk.
    x = jax.random.normal(jax.random.key(7), (3, 2))
    k = nnlab.empirical.empirical_nngp(lambda p, x: jnp.cos(x), {"u": jnp.ones(2)}, x)
    np.testing.assert_allclose(k, jnp.cos(x) @ jnp.cos(x).T / 2, rtol=1e-6)
