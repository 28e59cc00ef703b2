"""Matrix-free kernel operators: products equal the dense kernels they stand for.

References are independent dense computations: ``nnlab.kernel`` (the analytic kernel, whose own
tests compare it with neural-tangents values) and ``nnlab.empirical.empirical_ntk`` (Jacobian
contraction). Products with small blocks (several blocks, padded edges) must agree with them to
float64 rounding (1e-12 relative, a few hundred flops per entry) and, in float32, to 1e-5.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest
from _helpers import run_on_host_devices

import nnlab
from nnlab import layers as nl
from nnlab.empirical import empirical_ntk, ntk_operator
from nnlab.kernels import matrix_operator


def _mlp():
    return nl.serial(
        nl.Dense(1, W_std=1.4, b_std=0.1), nl.Relu(), nl.Dense(1, W_std=1.3, b_std=0.2),
        nl.Erf(), nl.Dense(1),
    )  # fmt: skip


def _cnn(pool):
    readout = nl.GlobalAvgPool() if pool else nl.Flatten()
    return nl.serial(nl.Conv(1, (3,), W_std=1.4, b_std=0.1), nl.Relu(), readout, nl.Dense(1))


def _data(n1=29, n2=11, shape=(5,), seed=0):
    k1, k2 = jax.random.split(jax.random.key(seed))
    return jax.random.normal(k1, (n1, *shape)), jax.random.normal(k2, (n2, *shape))


@pytest.mark.parametrize("get", ["ntk", "nngp"])
@pytest.mark.parametrize(
    "net, shape", [(_mlp(), (5,)), (_cnn(False), (6, 2)), (_cnn(True), (6, 2))],
    ids=["mlp", "cnn-flatten", "cnn-pool"],
)  # fmt: skip
def test_products_equal_the_dense_kernel(x64, net, shape, get):
    x1, x2 = _data(shape=shape)
    v = jax.random.normal(jax.random.key(3), (11, 3))
    for a, b in ((x1, x2), (x1, None)):
        dense = nnlab.kernel(net, a, b, get=get)
        # 4 rows per block: 29 rows are 8 blocks, the last one padded
        op = nnlab.kernel_operator(net, a, b, get=get, block_rows=4)
        vb = v if b is not None else jax.random.normal(jax.random.key(4), (29, 3))
        np.testing.assert_allclose(op @ vb, dense @ vb, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(op.mv(vb[:, 0]), dense @ vb[:, 0], rtol=1e-12, atol=1e-13)
        u = jax.random.normal(jax.random.key(5), (29,))
        np.testing.assert_allclose(op.T @ u, dense.T @ u, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(op.as_matrix(), dense, rtol=1e-13)
    sym = nnlab.kernel_operator(net, x1, get=get)
    np.testing.assert_allclose(sym.diagonal(), jnp.diag(nnlab.kernel(net, x1, get=get)), rtol=1e-12)


def test_float32_products_match_float64():
    with jax.enable_x64(True):
        x1, _ = _data(n1=40)
        v = jax.random.normal(jax.random.key(1), (40,))
        ref = np.asarray(nnlab.kernel(_mlp(), x1, get="ntk") @ v)
    x32, v32 = jnp.asarray(x1, jnp.float32), jnp.asarray(v, jnp.float32)
    got = nnlab.kernel_operator(_mlp(), x32, block_rows=8) @ v32
    assert got.dtype == jnp.float32
    # float32 entries carry ~1e-7 relative error; a 40-term sum of them stays under 1e-5
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * float(np.max(np.abs(ref))))


def test_operator_under_jit_and_vmap(x64):
    x1, _ = _data()
    op = nnlab.kernel_operator(_mlp(), x1, block_rows=8)
    v = jax.random.normal(jax.random.key(2), (29, 4))
    want = nnlab.kernel(_mlp(), x1, get="ntk") @ v
    np.testing.assert_allclose(jax.jit(lambda o, w: o @ w)(op, v), want, rtol=1e-12)
    cols = jax.vmap(op.mv, in_axes=1, out_axes=1)(v)
    np.testing.assert_allclose(cols, want, rtol=1e-12)


def test_lineax_cg_on_the_operator_solves_the_dense_system(x64):
    x1, _ = _data(n1=60)
    net = _mlp()
    b = jax.random.normal(jax.random.key(7), (60,))
    dense = nnlab.kernel(net, x1, get="ntk") + 0.1 * jnp.eye(60)
    op = nnlab.kernel_operator(net, x1, block_rows=16).as_lineax()
    shifted = op + lx.TaggedLinearOperator(
        lx.IdentityLinearOperator(op.in_structure()) * 0.1,
        (lx.symmetric_tag, lx.positive_semidefinite_tag),
    )
    sol = lx.linear_solve(shifted, b, lx.CG(rtol=1e-12, atol=1e-14, max_steps=500))
    np.testing.assert_allclose(sol.value, np.linalg.solve(np.asarray(dense), np.asarray(b)),
                               rtol=1e-8)  # fmt: skip


@pytest.mark.parametrize("outputs", [0, 3])
def test_empirical_ntk_operator_equals_jacobian_contraction(x64, outputs):
    net = nl.serial(nl.Dense(32, W_std=1.4), nl.Tanh(), nl.Dense(max(outputs, 1)))
    _, params = net.init(jax.random.key(0), (1, 5))
    fn = net.apply if outputs else (lambda p, x: net.apply(p, x)[:, 0])
    trace = (-1,) if outputs else ()
    x1, x2 = _data(n1=23, n2=9)
    v = jax.random.normal(jax.random.key(8), (9, 2))
    dense = empirical_ntk(fn, params, x1, x2, trace_axes=trace)
    op = ntk_operator(fn, params, x1, x2, batch_size=5)
    np.testing.assert_allclose(op @ v, dense @ v, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(op.T @ jnp.ones(23), dense.T @ jnp.ones(23), rtol=1e-12)
    sym = ntk_operator(fn, params, x1, batch_size=5)
    k11 = empirical_ntk(fn, params, x1, trace_axes=trace)
    np.testing.assert_allclose(sym.diagonal(), jnp.diag(k11), rtol=1e-12)
    np.testing.assert_allclose(sym.as_matrix(), k11, rtol=1e-13)
    np.testing.assert_allclose(jax.jit(lambda o, w: o @ w)(sym, jnp.ones(23)), k11 @ jnp.ones(23),
                               rtol=1e-12)  # fmt: skip


def test_matrix_operator(x64):
    k = jax.random.normal(jax.random.key(0), (6, 4))
    op = matrix_operator(k)
    assert not op.symmetric and op.shape == (6, 4)
    np.testing.assert_allclose(op @ jnp.ones(4), k @ jnp.ones(4), rtol=1e-15)
    np.testing.assert_allclose(op.T @ jnp.ones(6), k.T @ jnp.ones(6), rtol=1e-15)
    assert matrix_operator(k @ k.T).symmetric


def test_bad_inputs_are_refused():
    x1, _ = _data()
    op = nnlab.kernel_operator(_mlp(), x1)
    with pytest.raises(ValueError, match=r"v must have shape \(29,\)"):
        op @ jnp.ones(28)
    with pytest.raises(TypeError, match="v must hold real floats"):
        op @ jnp.ones(29, int)
    with pytest.raises(ValueError, match="get"):
        nnlab.kernel_operator(_mlp(), x1, get="cov1")
    with pytest.raises(TypeError, match="block_rows"):
        nnlab.kernel_operator(_mlp(), x1, block_rows=2.5)
    with pytest.raises(TypeError, match="net must be an nnlab layer"):
        nnlab.kernel_operator(lambda x: x, x1)
    with pytest.raises(ValueError, match="x1 contains NaN"):
        nnlab.kernel_operator(_mlp(), x1.at[0, 0].set(jnp.nan))
    spatial = nl.serial(nl.Conv(1, (3,)), nl.Relu())
    with pytest.raises(ValueError, match="spatial output"):
        nnlab.kernel_operator(spatial, jnp.ones((4, 6, 2))) @ jnp.ones(4)
    with pytest.raises(ValueError, match=r"shape \(N,\) or \(N, k\)"):
        ntk_operator(lambda p, x: x[:, :, None] * p, jnp.ones(()), x1)
    with pytest.raises(ValueError, match="k must be a kernel matrix"):
        matrix_operator(jnp.ones(3))


@pytest.mark.slow
def test_products_sharded_over_four_devices_equal_one_device():
    run_on_host_devices("""
        import jax, jax.numpy as jnp, numpy as np
        jax.config.update("jax_enable_x64", True)
        import nnlab
        from nnlab import layers as nl
        assert len(jax.devices()) == 4, jax.devices()
        net = nl.serial(nl.Dense(8, W_std=1.5, b_std=0.1), nl.Relu(), nl.Dense(1))
        x = jax.random.normal(jax.random.key(0), (37, 5))
        v = jax.random.normal(jax.random.key(1), (37, 2))
        four = nnlab.kernel_operator(net, x, block_rows=3)
        one = nnlab.kernel_operator(net, x, devices=jax.devices()[:1])
        np.testing.assert_allclose(four @ v, one @ v, rtol=1e-13)
        np.testing.assert_allclose(four @ v, nnlab.kernel(net, x, get="ntk") @ v, rtol=1e-12)
        print("ok")
    """)
