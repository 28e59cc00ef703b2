"""Combinators (serial, FanOut, parallel, FanInSum, FanInConcat): kernels vs Monte Carlo
over finite networks, exact identities, and named errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from finite_networks import assert_kernel_matches_monte_carlo

import nnlab
from nnlab import layers as nl

NETS = {
    # Residual block: the Identity branch and the Dense branch are independent Gaussians
    # (the Dense weights are zero-mean), so their kernels add. Two hidden layers: bias
    # O(1/width) = O(0.1%), far below 4 SE.
    "residual_mlp": lambda: nl.serial(
        nl.Dense(1024, W_std=1.3, b_std=0.2),
        nl.FanOut(2),
        nl.parallel(nl.serial(nl.Relu(), nl.Dense(1024, W_std=1.2, b_std=0.1)), nl.Identity()),
        nl.FanInSum(),
        nl.Relu(),
        nl.Dense(16, W_std=1.0, b_std=0.1),
    ),
    "concat_then_sum_mlp": lambda: nl.serial(
        nl.FanOut(3),
        nl.parallel(
            nl.Dense(1024, W_std=1.2, b_std=0.1),
            nl.Dense(1024, W_std=0.8, b_std=0.4),
            nl.serial(nl.Dense(1024), nl.Erf(), nl.Dense(1024, W_std=1.5)),
        ),
        nl.FanInSum(),
        nl.Relu(),
        nl.Dense(16),
    ),
    # A residual CNN in the full spatial layout (GlobalAvgPool), 1-D for speed.
    "residual_cnn1d_gap": lambda: nl.serial(
        nl.Conv(256, (3,), padding="SAME", W_std=1.3, b_std=0.1),
        nl.FanOut(2),
        nl.parallel(nl.serial(nl.Relu(), nl.Conv(256, (3,), padding="CIRCULAR")), nl.Identity()),
        nl.FanInSum(),
        nl.Relu(),
        nl.GlobalAvgPool(),
        nl.Dense(16),
    ),
    # Concatenation of unequal widths: the per-channel kernel is the width-weighted mean.
    # One hidden layer per branch: unbiased at any width.
    "concat_mlp": lambda: nl.serial(
        nl.FanOut(2),
        nl.parallel(
            nl.serial(nl.Dense(1024, W_std=1.5, b_std=0.1), nl.Relu()),
            nl.serial(nl.Dense(512, W_std=1.1, b_std=0.3), nl.Erf()),
        ),
        nl.FanInConcat(),
        nl.Dense(16, W_std=1.2, b_std=0.2),
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NETS))
def test_monte_carlo_branching_networks_match(x64, key, name):
    net = NETS[name]()
    if "cnn" in name:
        x = jax.random.normal(jax.random.key(1), (4, 6, 3), jnp.float64)
    else:
        x = jax.random.normal(jax.random.key(1), (4, 5), jnp.float64)
    assert_kernel_matches_monte_carlo(net, x, key)


def test_fan_in_rules_against_branch_kernels(x64):
    """FanInSum adds independent branches; FanInConcat takes the width-weighted mean."""
    x1 = jax.random.normal(jax.random.key(2), (3, 4), jnp.float64)
    x2 = jax.random.normal(jax.random.key(3), (2, 4), jnp.float64)
    a = nl.serial(nl.Dense(30, W_std=1.4, b_std=0.2), nl.Relu())
    b = nl.serial(nl.Dense(10, W_std=0.7, b_std=0.5), nl.Erf())
    ka, kb = nnlab.kernel(a, x1, x2), nnlab.kernel(b, x1, x2)
    summed = nnlab.kernel(nl.serial(nl.FanOut(2), nl.parallel(a, b), nl.FanInSum()), x1, x2)
    concat = nnlab.kernel(nl.serial(nl.FanOut(2), nl.parallel(a, b), nl.FanInConcat()), x1, x2)
    for get in ("nngp", "ntk"):
        # Sums and weighted means of the same arrays: roundoff only.
        np.testing.assert_allclose(
            getattr(summed, get), getattr(ka, get) + getattr(kb, get), rtol=1e-12
        )
        np.testing.assert_allclose(
            getattr(concat, get), 0.75 * getattr(ka, get) + 0.25 * getattr(kb, get), rtol=1e-12
        )
    concat_net = nl.serial(nl.FanOut(2), nl.parallel(a, b), nl.FanInConcat())
    shape, params = concat_net.init(jax.random.key(0), x1.shape)
    assert concat_net.apply(params, x1).shape == shape
    assert shape == (3, 40)


def test_pooling_inside_branches_selects_full_layout(x64):
    x = jax.random.normal(jax.random.key(4), (2, 4, 4, 2), jnp.float64)
    pooled = nl.serial(
        nl.Conv(4, (3, 3)),
        nl.FanOut(2),
        # the pooled branch ends in its own Conv: uncorrelated with the skip branch
        nl.parallel(
            nl.serial(nl.AvgPool((2, 2), padding="SAME"), nl.Conv(4, (1, 1))), nl.Identity()
        ),
        nl.FanInSum(),
        nl.Relu(),
        nl.GlobalAvgPool(),
        nl.Dense(1),
    )
    assert nnlab.kernels.requires_full_spatial(pooled)
    k = nnlab.kernel(pooled, x)
    assert k.nngp.shape == (2, 2) and np.all(np.isfinite(k.ntk))


def test_combinator_errors_are_named():
    x = jnp.ones((2, 5))
    with pytest.raises(ValueError, match="several branches"):
        nnlab.kernel(nl.serial(nl.Dense(3), nl.FanOut(2)), x)
    with pytest.raises(ValueError, match="parallel: expects a list of 2"):
        nl.serial(nl.FanOut(3), nl.parallel(nl.Dense(3), nl.Dense(3))).init(
            jax.random.key(0), x.shape
        )
    with pytest.raises(ValueError, match="FanInSum: branch shapes differ"):
        nl.serial(nl.FanOut(2), nl.parallel(nl.Dense(3), nl.Dense(4)), nl.FanInSum()).init(
            jax.random.key(0), x.shape
        )
    with pytest.raises(TypeError, match="FanInConcat: expects a list"):
        nl.FanInConcat().init(jax.random.key(0), x.shape)
    with pytest.raises(TypeError, match="argument 1 must be a layer"):
        nl.serial(nl.Dense(3), "relu")
    with pytest.raises(ValueError, match="FanOut: num must be a positive int"):
        nl.FanOut(0)
    with pytest.raises(TypeError, match="FanOut: num must be an int"):
        nl.FanOut(True)
    with pytest.raises(ValueError, match="repeat: n must be a positive int"):
        nl.repeat(nl.Relu(), 0)
