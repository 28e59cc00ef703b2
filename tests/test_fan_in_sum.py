"""FanInSum adds branch kernels only where the branches are uncorrelated; otherwise an error.

The kernel of a sum ``f_a + f_b`` is ``K_aa + K_bb + K_ab + K_ba``. The cross terms vanish
when one branch is odd in parameters of its own (it ends in its own Dense/Conv, possibly
followed by odd activations, pooling or LayerNorm): flipping those parameters flips it and
leaves the other. Before this check, ``parallel(Identity(), Identity())`` returned ``2K``
(the truth is ``4K``) and two ReLU branches dropped ``E[relu] E[relu]`` cross terms.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from finite_networks import assert_within_se, mc_kernels

import nnlab
from nnlab import layers as nl


def _x():
    return jax.random.normal(jax.random.key(1), (4, 5), jnp.float64)


def _two_relu_branches():
    return nl.serial(
        nl.FanOut(2),
        nl.parallel(
            nl.serial(nl.Dense(512, W_std=1.4, b_std=0.3), nl.Relu()),
            nl.serial(nl.Dense(512, W_std=1.1, b_std=0.2), nl.Relu()),
        ),
        nl.FanInSum(),
        nl.Dense(8),
    )


CORRELATED = {
    "identity+identity": lambda: nl.serial(
        nl.Dense(8), nl.FanOut(2), nl.parallel(nl.Identity(), nl.Identity()), nl.FanInSum()
    ),
    "relu+relu": _two_relu_branches,
    "avgpool+identity": lambda: nl.serial(
        nl.Conv(4, (3,)),
        nl.FanOut(2),
        nl.parallel(nl.AvgPool((2,), padding="SAME"), nl.Identity()),
        nl.FanInSum(),
        nl.GlobalAvgPool(),
        nl.Dense(1),
    ),
    "fanout+sum": lambda: nl.serial(nl.Dense(8), nl.Relu(), nl.FanOut(3), nl.FanInSum()),
    "sin-with-phase": lambda: nl.serial(
        nl.FanOut(2),
        nl.parallel(nl.serial(nl.Dense(8), nl.Sin(c=0.3)), nl.serial(nl.Dense(8), nl.Relu())),
        nl.FanInSum(),
        nl.Dense(1),
    ),
    "erf-with-offset": lambda: nl.serial(
        nl.FanOut(2),
        nl.parallel(nl.serial(nl.Dense(8), nl.Erf(c=0.5)), nl.serial(nl.Dense(8), nl.Relu())),
        nl.FanInSum(),
        nl.Dense(1),
    ),
}


@pytest.mark.parametrize("name", sorted(CORRELATED))
def test_correlated_branches_are_an_error(x64, name):
    net = CORRELATED[name]()
    x = _x() if "pool" not in name else jax.random.normal(jax.random.key(1), (3, 6, 2))
    with pytest.raises(ValueError, match=r"FanInSum: branches .* are correlated"):
        nnlab.kernel(net, x)


def test_identity_sum_is_really_four_times_the_kernel(x64):
    # The finite network: f = 2 h exactly, so E[f f'] = 4 K_h (not the 2 K_h once returned).
    x = _x()
    h = nl.Dense(8, W_std=1.3, b_std=0.2)
    net = nl.serial(h, nl.FanOut(2), nl.parallel(nl.Identity(), nl.Identity()), nl.FanInSum())
    _, params = net.init(jax.random.key(0), x.shape)
    np.testing.assert_allclose(net.apply(params, x), 2 * h.apply(params[0], x), rtol=1e-15)


@pytest.mark.slow
def test_old_relu_sum_was_wrong_by_monte_carlo(x64, key):
    # The sum of the branch kernels (what FanInSum returned) misses E[relu]E[relu] cross
    # terms: Monte Carlo over 64 width-512 networks rejects it, and accepts it plus the
    # cross terms computed from the closed-form ReLU means sqrt(q/(2 pi)).
    x = _x()
    net = _two_relu_branches()
    nngp_s, _ = mc_kernels(net, x, 64, key)
    a = nl.serial(nl.Dense(512, W_std=1.4, b_std=0.3), nl.Relu(), nl.Dense(8))
    b = nl.serial(nl.Dense(512, W_std=1.1, b_std=0.2), nl.Relu(), nl.Dense(8))
    summed = nnlab.kernel(a, x, get="nngp") + nnlab.kernel(b, x, get="nngp")
    q = lambda w, bs: w**2 * jnp.sum(x * x, 1) / x.shape[1] + bs**2  # noqa: E731
    mu_a, mu_b = jnp.sqrt(q(1.4, 0.3) / (2 * jnp.pi)), jnp.sqrt(q(1.1, 0.2) / (2 * jnp.pi))
    cross = jnp.outer(mu_a, mu_b) + jnp.outer(mu_b, mu_a)  # readout W_std = 1
    assert_within_se(nngp_s, summed + cross)
    with pytest.raises(AssertionError):
        assert_within_se(nngp_s, summed)


ALLOWED = {
    "residual": lambda: nl.serial(
        nl.Dense(8, W_std=1.3, b_std=0.2),
        nl.FanOut(2),
        nl.parallel(nl.serial(nl.Relu(), nl.Dense(8)), nl.Identity()),
        nl.FanInSum(),
    ),
    "relu+erf": lambda: nl.serial(
        nl.FanOut(2),
        nl.parallel(nl.serial(nl.Dense(8), nl.Relu()), nl.serial(nl.Dense(8), nl.Erf())),
        nl.FanInSum(),
    ),
    "relu+sin+tanh": lambda: nl.serial(
        nl.FanOut(3),
        nl.parallel(
            nl.serial(nl.Dense(8), nl.Relu()),
            nl.serial(nl.Dense(8), nl.Sin(b=0.7)),
            nl.serial(nl.Dense(8), nl.Tanh()),
        ),
        nl.FanInSum(),
    ),
    "three-dense": lambda: nl.serial(
        nl.FanOut(3), nl.parallel(nl.Dense(8), nl.Dense(8), nl.Identity()), nl.FanInSum()
    ),
}


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_uncorrelated_branches_add_under_jit(x64, name):
    net = ALLOWED[name]()
    x = _x()
    k = jax.jit(lambda n, x: nnlab.kernel(n, x))(net, x)
    parts = net.layers[-2].layers
    pre = nl.serial(*net.layers[:-3]) if len(net.layers) > 3 else None
    expected = 0
    for p in parts:
        branch = p if pre is None else nl.serial(pre, p)
        if isinstance(p, nl.Identity) and pre is None:
            expected = expected + nnlab.kernels.input_kernel(x).nngp
        else:
            expected = expected + nnlab.kernel(branch, x, get="nngp")
    np.testing.assert_allclose(k.nngp, expected, rtol=1e-12)
