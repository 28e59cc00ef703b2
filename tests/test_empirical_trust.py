"""Trustworthy empirical kernels: the trace convention, params-ignoring functions, bad input.

* ``trace_axes`` AVERAGES over the traced output axes (the neural-tangents convention), so the
  traced eNTK/eNNGP of a net with ``k`` outputs estimates the analytic per-output kernel for
  every ``k``. Checked by Monte Carlo over initialisations of a one-hidden-layer MLP, for which
  both estimators are exactly unbiased at any width (see ``_one_hidden_layer``), so the sample
  mean must lie within 4 standard errors of ``nnlab.kernel``.
* A function that ignores ``params`` (the Flax NNX closure ``lambda p, x: model(x)``) must raise
  instead of returning an all-zero NTK, eagerly and under ``jax.jit``.
* Bad arguments at every entry point raise TypeError/ValueError naming the argument.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.flatten_util import ravel_pytree

import nnlab
from nnlab import layers as nl
from nnlab import taylor
from nnlab.empirical import empirical_nngp, empirical_ntk, monte_carlo_kernel, pseudo_ntk

METHODS = ("jacobian", "ntk_vp", "structured", "auto")


def _one_hidden_layer(width, k):
    r"""``f = W2^T relu(W1^T x / sqrt(d) * 1.5 + 0.2 b1) * 1.5 / sqrt(n) + 0.2 b2`` (NTK param.).

    Why the Monte Carlo test is exact: the eNTK is
    ``Theta_oo(x, x') = (1.5^2/n) sum_i phi_i phi'_i + 0.2^2
    + (1.5^2/n) sum_i W2_io^2 phi'(h_i) phi'(h'_i) (1.5^2 x.x'/d + 0.2^2)``;
    ``W2`` is independent of the hidden pre-activations ``h_i``, which are i.i.d. Gaussian
    with the analytic NNGP covariance, so ``E[Theta_oo]`` equals the analytic NTK at every
    width (no O(1/n) bias), for each output ``o`` and hence for their mean. Likewise
    ``E[f_o(x) f_o(x')]`` equals the analytic NNGP. The sample mean over seeds is then within
    a few standard errors of the analytic kernel (central limit theorem; max |z| over the
    distinct entries of a 5x5 kernel exceeds 4 with probability ~1e-3 even before fixing
    the key).
    """
    return nl.serial(
        nl.Dense(width, W_std=1.5, b_std=0.2), nl.Relu(), nl.Dense(k, W_std=1.5, b_std=0.2)
    )


def _draws(fn, net, x, seeds):
    """``fn(params)`` for ``seeds`` i.i.d. initialisations, as one vmapped, jitted program.

    In the NTK parameterisation every leaf (weights and biases) is i.i.d. N(0, 1) (see
    ``nl.Dense``), so the draws are made with numpy's generator on the leaves of one
    ``net.init`` template: the same distribution, without compiling the PRNG per seed.
    """
    template = net.init(jax.random.key(0), x.shape)[1]
    leaves, treedef = jax.tree_util.tree_flatten(template)
    rng = np.random.default_rng(7)
    batch = [jnp.asarray(rng.standard_normal((seeds, *np.shape(a)))) for a in leaves]
    params = jax.tree_util.tree_unflatten(treedef, batch)
    return jax.tree_util.tree_map(np.asarray, jax.jit(jax.vmap(fn))(params))


def _traced_setup(width, k, get):
    """``_one_hidden_layer(width, k)``, inputs (5, 4) and the analytic kernel ``get`` there."""
    net = _one_hidden_layer(width, k)
    x = jax.random.normal(jax.random.key(1), (5, 4))
    return net, x, np.asarray(nnlab.kernel(net, x, get=get))


def _assert_traced_convention(draws, traced, analytic, k, power):
    """The Monte Carlo mean of ``draws[traced]`` lies within 4 SE of ``analytic``, and 4 SE
    is below ``power`` of the kernel's scale (the test has power: the sum convention would
    be off by a factor k, 200% for k = 3); the convention itself: the untraced
    ``draws['full']`` (N, N, k, k) has trace = k times the traced kernel (to rounding)."""
    samples = draws[traced]
    se = samples.std(0, ddof=1) / np.sqrt(samples.shape[0])
    z = np.abs(samples.mean(0) - analytic) / se
    assert z.max() < 4.0, (z.max(), k)
    assert 4 * se.max() < power * np.abs(analytic).max()
    ratio = np.trace(draws["full"], axis1=3, axis2=4) / samples
    np.testing.assert_allclose(ratio, k, rtol=1e-12)


# ----------------------------------------------------------------------------- convention
@pytest.mark.parametrize("k", [1, 3])
def test_traced_entk_estimates_analytic_ntk_for_any_number_of_outputs(x64, k):
    net, x, analytic = _traced_setup(512, k, "ntk")

    def kernels(p):
        out = {m: empirical_ntk(net.apply, p, x, method=m) for m in METHODS}
        out["chunked"] = empirical_ntk(net.apply, p, x, method="ntk_vp", batch_size=2)
        out["full"] = empirical_ntk(net.apply, p, x, trace_axes=())  # (N, N, k, k)
        return out

    draws = _draws(kernels, net, x, 32)
    _assert_traced_convention(draws, "auto", analytic, k, power=0.1)  # 4 SE: a few per cent
    # every method follows it (float64: they differ only by summation order), chunked too
    for method in (*METHODS, "chunked"):
        np.testing.assert_allclose(draws[method], draws["auto"], rtol=1e-10, err_msg=method)


@pytest.mark.parametrize("k", [1, 3])
def test_traced_nngp_estimates_analytic_nngp_for_any_number_of_outputs(x64, k):
    net, x, analytic = _traced_setup(256, k, "nngp")

    def kernels(p):
        f = net.apply(p, x)
        return {
            "mean": empirical_nngp(net.apply, p, x),
            "full": empirical_nngp(net.apply, p, x, trace_axes=()),
            "matmul": f @ f.T / k,  # independent: a plain matmul
        }

    draws = _draws(kernels, net, x, 256)
    _assert_traced_convention(draws, "mean", analytic, k, power=0.5)
    np.testing.assert_allclose(draws["mean"], draws["matmul"], rtol=1e-12)


def test_trace_averages_each_traced_axis_of_a_multi_axis_output(x64, key):
    # outputs (N, 3, 2): tracing both axes averages over the 6 outputs; tracing one axis
    # averages over that axis only
    k1, k2 = jax.random.split(key)
    p = {"w": jax.random.normal(k1, (4, 6))}
    fn = lambda p, x: jnp.tanh(x @ p["w"]).reshape(x.shape[0], 3, 2)  # noqa: E731
    x = jax.random.normal(k2, (3, 4))
    flat, unravel = ravel_pytree(p)
    jac = jax.jacrev(lambda w: fn(unravel(w), x))(flat)  # (N, 3, 2, P)
    full = np.einsum("nabp,mcdp->nmacbd", jac, jac)  # (N, N, 3, 3, 2, 2)
    both = np.einsum("nmaabb->nm", full) / 6
    last = np.einsum("nmacbb->nmac", full) / 2

    @jax.jit
    def kernels(p, x):
        out = {}
        for m in ("jacobian", "ntk_vp", "structured"):
            out[m + ":both"] = empirical_ntk(fn, p, x, method=m, trace_axes=(1, 2))
            out[m + ":last"] = empirical_ntk(fn, p, x, method=m, trace_axes=-1)
        out["nngp"] = empirical_nngp(fn, p, x, trace_axes=(1, 2))
        return out

    ks = kernels(p, x)
    for m in ("jacobian", "ntk_vp", "structured"):
        np.testing.assert_allclose(ks[m + ":both"], both, rtol=1e-10, err_msg=m)
        np.testing.assert_allclose(ks[m + ":last"], last, rtol=1e-10, err_msg=m)
    f = np.asarray(fn(p, x))
    np.testing.assert_allclose(ks["nngp"], np.einsum("nab,mab->nm", f, f) / 6, rtol=1e-12)


# ----------------------------------------------------------------------------- NNX
class _NNXMLP(nnx.Module):
    def __init__(self, rngs):
        self.l1 = nnx.Linear(3, 32, rngs=rngs)
        self.l2 = nnx.Linear(32, 2, rngs=rngs)
        self.drop = nnx.Dropout(0.1, rngs=rngs)  # holds RngKey/RngCount (non-float) state

    def __call__(self, x):
        return self.l2(jax.nn.relu(self.l1(x)))


def _nnx_case():
    model = _NNXMLP(nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (4, 3))
    return model, x


def test_nnx_closure_ignoring_params_raises_eagerly_and_under_jit():
    model, x = _nnx_case()
    _, params, _ = nnx.split(model, nnx.Param, ...)
    closure = lambda p, x: model(x)  # noqa: E731  # the NNX idiom that ignores params
    for method in METHODS:
        with pytest.raises(ValueError, match=r"apply_fn ignores params.*nnx\.split"):
            empirical_ntk(closure, params, x, method=method)
    with pytest.raises(ValueError, match="apply_fn ignores params"):
        jax.jit(lambda p, a: empirical_ntk(closure, p, a))(params, x)  # raised at trace time
    with pytest.raises(ValueError, match="apply_fn ignores params"):
        jax.vmap(lambda p: empirical_ntk(closure, p, x))(
            jax.tree_util.tree_map(lambda a: jnp.stack([a, a]), params)
        )
    # The output NNGP f(x1) f(x2) takes no derivative: the closure's outer product is right.
    f = model(x)
    np.testing.assert_allclose(
        empirical_nngp(closure, params, x), f @ f.T / f.shape[-1], rtol=1e-5, atol=1e-7
    )
    with pytest.raises(ValueError, match="apply_fn ignores params"):
        empirical_nngp(closure, params, x, features="last_layer")
    with pytest.raises(ValueError, match="apply_fn ignores params"):
        pseudo_ntk(closure, params, x)
    with pytest.raises(ValueError, match="apply_fn ignores params"):
        jax.jit(lambda p, a: pseudo_ntk(closure, p, a))(params, x)


def test_nnx_split_merge_idiom_matches_dense_reference():
    model, x = _nnx_case()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    apply_fn = lambda p, x: nnx.merge(graphdef, p, rest)(x)  # noqa: E731
    flat, unravel = ravel_pytree(params)
    jac = jax.jacrev(lambda w: apply_fn(unravel(w), x))(flat)  # (N, 2, P)
    ref = np.einsum("nop,mop->nm", jac, jac) / 2  # mean over the 2 logits
    scale = np.abs(ref).max()
    ks = jax.jit(lambda p, a: {m: empirical_ntk(apply_fn, p, a, method=m) for m in METHODS})(
        params, x
    )
    ks["eager"] = empirical_ntk(apply_fn, params, x)
    for method, k in ks.items():
        # float32: relative rounding ~1e-6 on sums of O(100) terms
        np.testing.assert_allclose(k, ref, rtol=1e-4, atol=1e-5 * scale, err_msg=method)


def test_nnx_full_state_with_rng_counters_is_a_clear_type_error():
    model, x = _nnx_case()
    graphdef, state = nnx.split(model)  # includes RngKey (key<fry>) and RngCount (uint32)
    apply_fn = lambda p, x: nnx.merge(graphdef, p)(x)  # noqa: E731
    pattern = r"params has non-float leaves.*count.*uint32.*nnx\.split\(model, nnx\.Param, \.\.\.\)"
    for method in METHODS:
        with pytest.raises(TypeError, match=pattern):
            empirical_ntk(apply_fn, state, x, method=method)
    with pytest.raises(TypeError, match=pattern):
        jax.jit(lambda s, a: empirical_ntk(apply_fn, s, a))(state, x)
    with pytest.raises(TypeError, match="params has non-float leaves"):
        pseudo_ntk(apply_fn, state, x)
    with pytest.raises(TypeError, match="params0 has non-float leaves"):
        taylor.linearize(apply_fn, state)
    with pytest.raises(TypeError, match="params0 has non-float leaves"):
        taylor.expand(apply_fn, state, 2)
    # the output NNGP does not differentiate: the full state is fine there
    f = apply_fn(state, x)
    np.testing.assert_allclose(empirical_nngp(apply_fn, state, x), f @ f.T / 2, rtol=1e-6)


def test_zero_kernel_from_params_that_do_not_move_the_output_raises(key):
    # params are used (so the structural check passes) but the gradient is exactly zero
    p = {"w": jax.random.normal(key, (3, 2))}
    x = jax.random.normal(jax.random.key(1), (4, 3))
    frozen = lambda p, x: jnp.tanh(x @ jax.lax.stop_gradient(p["w"]))  # noqa: E731
    for method in METHODS:
        with pytest.raises(ValueError, match="identically zero"):
            empirical_ntk(frozen, p, x, method=method)
    with pytest.raises(ValueError, match="identically zero"):
        pseudo_ntk(frozen, p, x)
    # a kernel with exactly zero entries but not all zero is fine
    half = lambda p, x: x[:, :1] * p["w"][0, 0]  # noqa: E731
    k = empirical_ntk(half, p, x.at[0, 0].set(0.0))
    assert float(k[0, 0]) == 0.0 and float(jnp.abs(k).max()) > 0


def test_no_params_is_a_value_error(key):
    x = jax.random.normal(key, (3, 2))
    with pytest.raises(ValueError, match="params has no array leaves"):
        empirical_ntk(lambda p, x: x, {}, x)
    # a fixed feature map has a well-defined output NNGP
    np.testing.assert_allclose(empirical_nngp(lambda p, x: x, None, x), x @ x.T / 2, rtol=1e-6)


# ----------------------------------------------------------------------------- bad input
def _mlp_case(key):
    k = jax.random.split(key, 3)
    p = {"w": jax.random.normal(k[0], (3, 5)), "v": jax.random.normal(k[1], (5, 2))}
    fn = lambda p, x: jnp.tanh(x @ p["w"]) @ p["v"]  # noqa: E731
    return fn, p, jax.random.normal(k[2], (4, 3))


KERNELS = {
    "empirical_ntk": empirical_ntk,
    "empirical_nngp": empirical_nngp,
    "pseudo_ntk": pseudo_ntk,
}


@pytest.mark.parametrize("name", list(KERNELS))
def test_empty_and_nonfinite_inputs(key, name):
    fn, p, x = _mlp_case(key)
    kernel = KERNELS[name]
    empty = jnp.zeros((0, 3))
    with pytest.raises(ValueError, match="x1 must have at least 1 example"):
        kernel(fn, p, empty)
    with pytest.raises(ValueError, match="x2 must have at least 1 example"):
        kernel(fn, p, x, empty)
    with pytest.raises(ValueError, match="x1 contains NaN or inf"):
        kernel(fn, p, x.at[1, 2].set(jnp.nan))
    with pytest.raises(ValueError, match="x2 contains NaN or inf"):
        kernel(fn, p, x, x.at[0, 0].set(jnp.inf))
    with pytest.raises(ValueError, match="x1 must have a leading batch axis"):
        kernel(fn, p, jnp.ones(()))
    with pytest.raises(TypeError, match="apply_fn must be a callable"):
        kernel("mlp", p, x)
    with pytest.raises(TypeError, match="apply_fn must be a callable"):
        kernel(p, fn, x)  # arguments swapped


def test_monte_carlo_bad_input(key):
    net = nl.serial(nl.Dense(8), nl.Relu(), nl.Dense(2))
    x = jax.random.normal(jax.random.key(1), (3, 2))
    with pytest.raises(ValueError, match="x1 must have at least 1 example"):
        monte_carlo_kernel(net, key, jnp.zeros((0, 2)), n_samples=2)
    with pytest.raises(ValueError, match="x2 must have at least 1 example"):
        monte_carlo_kernel(net, key, x, jnp.zeros((0, 2)), n_samples=2)
    with pytest.raises(ValueError, match="x1 contains NaN"):
        monte_carlo_kernel(net, key, x.at[0, 0].set(jnp.nan), n_samples=2)
    with pytest.raises(ValueError, match="x2 contains NaN"):
        monte_carlo_kernel(net, key, x, x.at[0, 0].set(jnp.nan), n_samples=2)
    with pytest.raises(TypeError, match="key must be a PRNG key"):
        monte_carlo_kernel(net, 0, x, n_samples=2)
    with pytest.raises(TypeError, match="key must be a PRNG key"):
        monte_carlo_kernel(net, "seed", x, n_samples=2)
    with pytest.raises(ValueError, match="key must be a single PRNG key"):
        monte_carlo_kernel(net, jax.random.split(key, 3), x, n_samples=2)
    with pytest.raises(TypeError, match="net must be an nnlab layer"):
        monte_carlo_kernel(net.apply, key, x, n_samples=2)
    with pytest.raises(ValueError, match="method must be one of"):
        monte_carlo_kernel(net, key, x, n_samples=2, method="fast")
    with pytest.raises(TypeError, match="n_samples must be an int"):
        monte_carlo_kernel(net, key, x, n_samples=2.0)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        monte_carlo_kernel(net, key, x, n_samples=2, batch_size=0)
    # numpy ints are ints; a legacy uint32 key is a key (it used to break the key split)
    legacy = jax.random.PRNGKey(0)
    est = monte_carlo_kernel(
        net, legacy, x, n_samples=np.int64(2), batch_size=np.int64(2), get="nngp"
    )
    draws = []
    for kk in jax.random.split(jax.random.wrap_key_data(legacy), 2):
        f = net.apply(net.init(kk, x.shape)[1], x)
        draws.append(np.asarray(f @ f.T) / 2)
    np.testing.assert_allclose(est.mean, np.mean(draws, 0), rtol=1e-5)


def test_method_axes_and_batch_size_checks(key):
    fn, p, x = _mlp_case(key)
    for kernel in (empirical_ntk, pseudo_ntk):
        with pytest.raises(ValueError, match="method must be one of"):
            kernel(fn, p, x, method="fast")
        with pytest.raises(ValueError, match="batch_size must be a positive int"):
            kernel(fn, p, x, batch_size=0)
        with pytest.raises(TypeError, match="batch_size must be an int"):
            kernel(fn, p, x, batch_size=2.5)
    for kernel in (empirical_ntk, empirical_nngp):
        with pytest.raises(ValueError, match=r"trace_axes.*out of range"):
            kernel(fn, p, x, trace_axes=(2,))
        with pytest.raises(ValueError, match=r"trace_axes.*batch axis"):
            kernel(fn, p, x, trace_axes=0)
        with pytest.raises(ValueError, match=r"trace_axes.*repeats"):
            kernel(fn, p, x, trace_axes=(1, -1))
        with pytest.raises(TypeError, match="trace_axes"):
            kernel(fn, p, x, trace_axes=("logits",))
        with pytest.raises(TypeError, match="trace_axes"):
            kernel(fn, p, x, trace_axes=None)
        with pytest.raises(ValueError, match=r"diagonal_axes.*out of range"):
            kernel(fn, p, x, trace_axes=(), diagonal_axes=(5,))
    with pytest.raises(ValueError, match="features must be one of"):
        empirical_nngp(fn, p, x, features="hidden")
    with pytest.raises(TypeError, match="batch_independent must be a bool"):
        empirical_ntk(fn, p, x, batch_independent="yes")
    # numpy integers are valid batch sizes and axes
    whole = empirical_ntk(fn, p, x, method="jacobian")
    np.testing.assert_allclose(
        empirical_ntk(fn, p, x, method="jacobian", batch_size=np.int64(3)), whole, rtol=1e-6
    )
    np.testing.assert_allclose(
        empirical_ntk(fn, p, x, method="jacobian", trace_axes=(np.int64(-1),)), whole, rtol=1e-6
    )
    np.testing.assert_allclose(
        pseudo_ntk(fn, p, x, batch_size=np.int32(3)), pseudo_ntk(fn, p, x), rtol=1e-6
    )


def test_taylor_bad_input(key):
    fn, p, x = _mlp_case(key)
    with pytest.raises(TypeError, match="apply_fn must be a callable"):
        taylor.linearize(None, p)
    with pytest.raises(TypeError, match="apply_fn must be a callable"):
        taylor.expand(p, fn, 2)
    with pytest.raises(TypeError, match="params0 has non-float leaves"):
        taylor.linearize(fn, {"w": jnp.ones((3, 5), jnp.int32), "v": p["v"]})
    f_lin = taylor.linearize(fn, p)
    with pytest.raises(ValueError, match="x must have at least 1 example"):
        f_lin(p, jnp.zeros((0, 3)))
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        f_lin(p, x.at[0, 0].set(jnp.nan))
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        taylor.expand(fn, p, 2)(p, x.at[0, 0].set(jnp.inf))
    with pytest.raises(TypeError, match="params has non-float leaves"):
        f_lin({"w": jnp.ones((3, 5), jnp.int32), "v": p["v"]}, x)
    # valid calls, including under jit (no value checks on tracers)
    np.testing.assert_allclose(jax.jit(f_lin)(p, x), fn(p, x), rtol=1e-6)
    np.testing.assert_allclose(taylor.expand(fn, p, np.int64(2))(p, x), fn(p, x), rtol=1e-6)
