"""Monte Carlo over finite networks, shared by the kernel tests: samples and the SE check."""

import jax
import jax.numpy as jnp
import numpy as np


def flat_jacobian(fn, params, n):
    """Jacobian of ``fn(params) -> (n,)`` with respect to every leaf, as an (n, P) matrix."""
    jac = jax.jacobian(fn)(params)
    return jnp.concatenate([j.reshape(n, -1) for j in jax.tree_util.tree_leaves(jac)], axis=1)


def mc_kernels(net, x, n_seeds, key):
    """Per seed: empirical NNGP (mean over output units of f f^T) and NTK J J^T of unit 0."""

    def one(k):
        _, params = net.init(k, x.shape)
        f = net.apply(params, x)
        flat = flat_jacobian(lambda p: net.apply(p, x)[:, 0], params, x.shape[0])
        return f @ f.T / f.shape[1], flat @ flat.T

    return jax.lax.map(one, jax.random.split(key, n_seeds), batch_size=4)


def assert_within_se(samples, theory, n_se=4.0):
    """Seeds are independent, so the mean's standard error is std/sqrt(seeds); allow ``n_se``
    SE (plus 1e-9 of the scale for roundoff where a sample is nearly deterministic)."""
    samples, theory = np.asarray(samples), np.asarray(theory)
    mean = samples.mean(0)
    se = samples.std(0, ddof=1) / np.sqrt(samples.shape[0])
    err = np.abs(mean - theory)
    bound = n_se * se + 1e-9 * np.abs(theory).max()
    assert np.all(err <= bound), f"max error/SE = {np.max(err / np.maximum(se, 1e-300)):.2f}"


def assert_kernel_matches_monte_carlo(net, x, key, n_seeds=32, **kernel_kw):
    """``nnlab.kernel(net, x, **kernel_kw)``'s NNGP and NTK within 4 SE of ``n_seeds`` finite
    networks (:func:`mc_kernels`)."""
    import nnlab

    nngp_s, ntk_s = mc_kernels(net, x, n_seeds, key)
    k = nnlab.kernel(net, x, **kernel_kw)
    assert_within_se(nngp_s, k.nngp)
    assert_within_se(ntk_s, k.ntk)
