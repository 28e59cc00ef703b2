"""The kernel() entry point: conventions, blocks, devices, transformations, errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _helpers import run_on_host_devices
from finite_networks import mc_kernels

import nnlab
from nnlab import layers as nl
from nnlab.kernels import Kernel, auto_batch_size


def _mlp(parameterization="ntk", act=None, depth=2, W_std=1.4, b_std=0.3):
    act = act or nl.Relu()
    hidden = []
    for _ in range(depth):
        hidden += [nl.Dense(256, W_std=W_std, b_std=b_std, parameterization=parameterization), act]
    return nl.serial(*hidden, nl.Dense(1, W_std=1.0, b_std=0.2, parameterization=parameterization))


def _relu_mlp_reference(x1, x2, W_std, b_std, depth, W_out, b_out):
    """NNGP/NTK recursion of a ReLU MLP in the NTK parameterization, written with numpy."""
    x1, x2 = np.asarray(x1), np.asarray(x2)
    d = x1.shape[1]
    k12 = x1 @ x2.T / d
    v1 = np.sum(x1 * x1, 1) / d
    v2 = np.sum(x2 * x2, 1) / d
    ntk = np.zeros_like(k12)
    for layer in range(depth + 1):
        w, b = (W_std, b_std) if layer < depth else (W_out, b_out)
        k12, v1, v2 = w**2 * k12 + b**2, w**2 * v1 + b**2, w**2 * v2 + b**2
        ntk = k12 + w**2 * ntk
        if layer == depth:
            return k12, ntk
        norm = np.sqrt(np.outer(v1, v2))
        theta = np.arccos(np.clip(k12 / norm, -1, 1))
        ntk = ntk * (np.pi - theta) / (2 * np.pi)
        k12 = norm * (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / (2 * np.pi)
        v1, v2 = v1 / 2, v2 / 2


def _data(n1=7, n2=5, d=6, seed=0, dtype=jnp.float64):
    k1, k2 = jax.random.split(jax.random.key(seed))
    return (jax.random.normal(k1, (n1, d), dtype), jax.random.normal(k2, (n2, d), dtype))


def test_relu_mlp_matches_independent_recursion(x64):
    x1, x2 = _data()
    k = nnlab.kernel(_mlp(depth=3), x1, x2)
    nngp, ntk = _relu_mlp_reference(x1, x2, 1.4, 0.3, 3, 1.0, 0.2)
    np.testing.assert_allclose(k.nngp, nngp, rtol=1e-12)
    np.testing.assert_allclose(k.ntk, ntk, rtol=1e-12)


def test_get_variants_and_output_types(x64):
    x1, x2 = _data()
    net = _mlp()
    full = nnlab.kernel(net, x1, x2)
    assert isinstance(full, Kernel) and full.nngp.shape == (7, 5)
    np.testing.assert_array_equal(nnlab.kernel(net, x1, x2, get="ntk"), full.ntk)
    nngp_only = nnlab.kernel(net, x1, x2, get=("nngp",))
    assert nngp_only.ntk is None
    np.testing.assert_array_equal(nngp_only.nngp, full.nngp)


def test_symmetric_kernel_is_symmetric_and_matches_explicit_x2(x64):
    x1, _ = _data()
    net = _mlp()
    k = nnlab.kernel(net, x1)
    np.testing.assert_allclose(k.ntk, k.ntk.T, rtol=1e-14)
    np.testing.assert_allclose(k.nngp, nnlab.kernel(net, x1, x1, get="nngp"), rtol=1e-14)
    np.testing.assert_allclose(jnp.diag(k.nngp), k.cov1, rtol=1e-14)


@pytest.mark.parametrize("batch_size", [1, 2, 3, 4, 6])
@pytest.mark.parametrize("symmetric", [True, False])
def test_blocked_equals_unblocked(x64, batch_size, symmetric):
    x1, x2 = _data(n1=7, n2=5)
    x2 = None if symmetric else x2
    net = _mlp()
    ref = nnlab.kernel(net, x1, x2)
    blk = nnlab.kernel(net, x1, x2, batch_size=batch_size)
    for name in ("nngp", "ntk", "cov1", "cov2"):
        np.testing.assert_allclose(getattr(blk, name), getattr(ref, name), rtol=1e-13, err_msg=name)


@pytest.mark.parametrize(
    ("n", "rows", "multiple"),
    [(12000, 11585, 1), (20000, 11585, 1), (7, 2, 1), (7, 3, 1), (7, 6, 1), (37, 8, 4), (5, 9, 1)],
)
def test_balanced_blocks_pad_less_than_their_rounding(n, rows, multiple):
    # The fewest blocks of at most `rows` (rounded up to `multiple`), made as equal as
    # possible: N = 12000 with 11585-row blocks is two blocks of 6000 (it was padded to
    # 2 x 11585 = 23170 rows, 3.7x the entries, before).
    from nnlab.kernels._compute import _balanced_blocks

    block, count = _balanced_blocks(n, rows, multiple)
    cap = math.ceil(rows / multiple) * multiple
    assert block % multiple == 0 and block <= cap
    assert count == math.ceil(n / cap)  # no more blocks than the cap needs
    assert n <= block * count < n + count * multiple


def test_auto_batch_size_blocks_only_when_needed():
    gib = 1 << 30
    cpu = jax.devices("cpu")[0]
    assert auto_batch_size(100, 100, 8, cpu) is None
    rows = auto_batch_size(10**6, 10**6, 32, cpu)
    # One block's working set stays within the 4 GiB cap.
    assert rows is not None and rows * rows * 32 <= 4 * gib


def test_jit_and_vmap(x64):
    x1, x2 = _data()
    net = _mlp()
    eager = nnlab.kernel(net, x1, x2)
    jitted = jax.jit(lambda a, b: nnlab.kernel(net, a, b))(x1, x2)
    np.testing.assert_allclose(jitted.ntk, eager.ntk, rtol=1e-13)
    # Layers are pytrees: they can be jit arguments, and W_std can be vmapped over.
    as_arg = jax.jit(lambda n, a: nnlab.kernel(n, a, get="nngp"))(net, x1)
    np.testing.assert_allclose(as_arg, nnlab.kernel(net, x1, get="nngp"), rtol=1e-13)
    batches = jnp.stack([x1, 2 * x1, -x1])
    vm = jax.vmap(lambda a: nnlab.kernel(net, a, x2, get="ntk"))(batches)
    for i, b in enumerate(batches):
        np.testing.assert_allclose(vm[i], nnlab.kernel(net, b, x2, get="ntk"), rtol=1e-12)
    stds = jnp.array([0.5, 1.0, 2.0])
    per_std = jax.vmap(lambda w: nnlab.kernel(_mlp(W_std=w), x1, x2, get="ntk"))(stds)
    for i, w in enumerate(stds):
        np.testing.assert_allclose(
            per_std[i], nnlab.kernel(_mlp(W_std=float(w)), x1, x2, get="ntk"), rtol=1e-12
        )


def test_no_recompilation_on_second_call(x64):
    x1, x2 = _data()
    net = _mlp()
    f = jax.jit(lambda a, b: nnlab.kernel(net, a, b, get="ntk"))
    f(x1, x2)
    before = f._cache_size()
    f(x1 + 1.0, x2)
    assert f._cache_size() == before


def test_gradients_wrt_hyperparameters_and_inputs(x64):
    x1, x2 = _data()

    @jax.jit
    def loss(w, b, a):
        return jnp.sum(nnlab.kernel(_mlp(W_std=w, b_std=b), a, x2, get="ntk") ** 2)

    g = jax.grad(loss, argnums=(0, 1, 2))(1.3, 0.2, x1)
    h = 1e-6
    fd_w = (loss(1.3 + h, 0.2, x1) - loss(1.3 - h, 0.2, x1)) / (2 * h)
    fd_b = (loss(1.3, 0.2 + h, x1) - loss(1.3, 0.2 - h, x1)) / (2 * h)
    e = jnp.zeros_like(x1).at[2, 3].set(h)
    fd_x = (loss(1.3, 0.2, x1 + e) - loss(1.3, 0.2, x1 - e)) / (2 * h)
    np.testing.assert_allclose(g[0], fd_w, rtol=1e-6)
    np.testing.assert_allclose(g[1], fd_b, rtol=1e-6)
    np.testing.assert_allclose(g[2][2, 3], fd_x, rtol=1e-6)
    # On the diagonal (x1 against itself) the gradient is finite too.
    gd = jax.jit(jax.grad(lambda a: jnp.sum(nnlab.kernel(_mlp(), a, get="ntk"))))(x1)
    assert jnp.all(jnp.isfinite(gd))


@pytest.mark.slow
@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_monte_carlo_finite_networks_match(x64, key, parameterization):
    x, _ = _data(n1=4, d=3)
    net = nl.serial(
        nl.Dense(1024, W_std=1.4, b_std=0.3, parameterization=parameterization),
        nl.Relu(),
        nl.Dense(1, W_std=1.1, b_std=0.2, parameterization=parameterization),
    )
    nngp_s, ntk_s = mc_kernels(net, x, 200, key)
    k = nnlab.kernel(net, x)
    for samples, theory in ((nngp_s, k.nngp), (ntk_s, k.ntk)):
        mean = samples.mean(0)
        se = samples.std(0, ddof=1) / np.sqrt(samples.shape[0])
        z = np.abs(mean - theory) / se
        assert np.max(z) < 4.0, (parameterization, np.max(z))


def test_standard_parameterization_ntk_scales_with_width(x64):
    x1, x2 = _data()
    narrow = nl.serial(
        nl.Dense(10, parameterization="standard"),
        nl.Relu(),
        nl.Dense(1, parameterization="standard"),
    )
    wide = nl.serial(
        nl.Dense(20, parameterization="standard"),
        nl.Relu(),
        nl.Dense(1, parameterization="standard"),
    )
    kn, kw = nnlab.kernel(narrow, x1, x2), nnlab.kernel(wide, x1, x2)
    np.testing.assert_allclose(kn.nngp, kw.nngp, rtol=1e-14)
    # The readout's weight gradient contributes width · E[relu relu]: it doubles with the width.
    hidden = nnlab.kernel(
        nl.serial(nl.Dense(10, parameterization="standard"), nl.Relu()), x1, x2, get="nngp"
    )
    np.testing.assert_allclose(kw.ntk - kn.ntk, 10 * hidden, rtol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("depth", [30])
@pytest.mark.parametrize("act", [nl.Relu(), nl.Erf()], ids=["relu", "erf"])
def test_float32_deep_stack_large_weights_is_finite(depth, act):
    x1, x2 = _data(dtype=jnp.float32)
    net = _mlp(act=act, depth=depth, W_std=3.0, b_std=0.5)
    k = nnlab.kernel(net, x1, x2)
    k11 = nnlab.kernel(net, x1)
    for a in (k.nngp, k.ntk, k11.nngp, k11.ntk):
        assert a.dtype == jnp.float32
        assert jnp.all(jnp.isfinite(a))


def test_errors_are_named():
    x1, x2 = _data(dtype=jnp.float32)
    net = _mlp()
    with pytest.raises(ValueError, match="get must be"):
        nnlab.kernel(net, x1, get="covariance")
    with pytest.raises(ValueError, match="x2 must have the same trailing shape"):
        nnlab.kernel(net, x1, x2[:, :3])
    with pytest.raises(TypeError, match="x1 must have a floating dtype"):
        nnlab.kernel(net, jnp.ones((3, 4), jnp.int32))
    with pytest.raises(ValueError, match=r"x1 must have shape \(N, features\)"):
        nnlab.kernel(net, jnp.ones(4))
    with pytest.raises(TypeError, match="net must be an nnlab layer"):
        nnlab.kernel("relu", x1)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        nnlab.kernel(net, x1, batch_size=0)
    with pytest.raises(ValueError, match="Relu: its kernel needs zero-mean Gaussian inputs"):
        nnlab.kernel(nl.serial(nl.Relu(), nl.Dense(1)), x1)
    with pytest.raises(ValueError, match="Dense: out must be a positive int"):
        nl.Dense(0)
    for bad in (2.5, "3", True):  # a wrong type is a TypeError, a bad value a ValueError
        with pytest.raises(TypeError, match="Dense: out must be an int"):
            nl.Dense(bad)
    with pytest.raises(TypeError, match="Conv: out must be an int"):
        nl.Conv(4.0, (3,))
    assert type(nl.Dense(np.int64(3)).out) is int  # numpy ints are accepted, stored as int
    with pytest.raises(ValueError, match="parameterization must be one of"):
        nl.Dense(3, parameterization="mup-ish")
    with pytest.raises(TypeError, match="serial: argument 1 must be a layer"):
        nl.serial(nl.Dense(3), "relu")
    with pytest.raises(ValueError, match="Dense expects inputs of shape"):
        nl.Dense(3).init(jax.random.key(0), (5,))
    with pytest.raises(ValueError, match="ends in several branches"):
        nnlab.kernel(nl.serial(nl.Dense(2), nl.FanOut(2)), x1)


def test_finite_network_shapes():
    net = _mlp()
    out_shape, params = net.init(jax.random.key(0), (7, 6))
    assert out_shape == (7, 1)
    y = net.apply(params, jnp.ones((7, 6)))
    assert y.shape == (7, 1)
    with pytest.raises(ValueError, match="Dense: input has 5 channels"):
        net.apply(params, jnp.ones((7, 5)))


@pytest.mark.slow
def test_sharded_over_four_devices_equals_one_device(tmp_path):
    run_on_host_devices("""
        import jax, jax.numpy as jnp, numpy as np
        jax.config.update("jax_enable_x64", True)
        import nnlab
        from nnlab import layers as nl
        assert len(jax.devices()) == 4, jax.devices()
        net = nl.serial(nl.Dense(8, W_std=1.5, b_std=0.1), nl.Relu(), nl.Dense(1))
        x1 = jax.random.normal(jax.random.key(0), (37, 5))
        x2 = jax.random.normal(jax.random.key(1), (11, 5))
        for a, b in ((x1, x2), (x1, None)):
            one = nnlab.kernel(net, a, b, devices=jax.devices()[:1])
            four = nnlab.kernel(net, a, b, batch_size=8)
            np.testing.assert_allclose(four.ntk, one.ntk, rtol=1e-13)
            np.testing.assert_allclose(four.nngp, one.nngp, rtol=1e-13)
        print("ok")
    """)


def test_row_chunked_forward_equals_one_pass(x64, monkeypatch):
    from nnlab.kernels import _compute

    x1, x2 = _data(n1=23, n2=9)
    net = _mlp()
    ref = nnlab.kernel(net, x1, x2)
    ref_sym = nnlab.kernel(net, x1)
    # Force chunks of MIN_CHUNK_ROWS rows (23 rows -> 6 chunks, the last one padded).
    monkeypatch.setattr(_compute, "CHUNK_ENTRIES", 1)
    _compute._forward_jit.clear_cache()
    try:
        for got, want in ((nnlab.kernel(net, x1, x2), ref), (nnlab.kernel(net, x1), ref_sym)):
            for name in ("nngp", "ntk", "cov1", "cov2"):
                np.testing.assert_allclose(
                    getattr(got, name), getattr(want, name), rtol=1e-13, err_msg=name
                )
    finally:
        _compute._forward_jit.clear_cache()


def test_vectorised_inverse_trig_matches_numpy(x64):
    from nnlab.layers._inverse_trig import arccos, arcsin

    x = np.linspace(-1.0, 1.0, 200001)
    acos, asin = np.asarray(arccos(jnp.asarray(x))), np.asarray(arcsin(jnp.asarray(x)))
    # A 15-term polynomial fitted to the exact series: relative error at machine precision.
    np.testing.assert_allclose(acos, np.arccos(x), rtol=2e-15, atol=0)
    np.testing.assert_allclose(asin, np.arcsin(x), rtol=2e-15, atol=1e-300)
    g = jax.vmap(jax.grad(arccos))(jnp.asarray([-0.9, -0.2, 0.3, 0.99]))
    np.testing.assert_allclose(
        g, -1 / np.sqrt(1 - np.array([-0.9, -0.2, 0.3, 0.99]) ** 2), rtol=1e-14
    )
    x32 = jnp.asarray(x, jnp.float32)
    err32 = np.abs(np.asarray(arccos(x32), np.float64) - np.arccos(np.asarray(x32, np.float64)))
    assert err32.max() < 1e-6  # float32 rounding of the angle (max angle π, eps 1.2e-7)


@pytest.mark.parametrize("v", [1e-20, 1.0, 1e8, 1e30])
def test_erf_diagonal_float32_across_variance_scales(v):
    # On the diagonal E[φ'(u)²] = (4/π) / sqrt(1 + 4v) and E[erf(u)²] = (2/π) arcsin(2v/(1+2v)).
    # A direct evaluation of sqrt((1+2v)² - 4v²) cancels to 0 (inf kernel) from v ~ 1e8 on.
    vv = jnp.float32(v)
    nngp, dot = nl.Erf().kernel_fns(vv, vv, vv, True)
    np.testing.assert_allclose(float(dot), 4 / np.pi / np.sqrt(1 + 4 * v), rtol=1e-5)
    # arcsin near 1 is ill-conditioned: float32 rounding of its argument costs up to
    # sqrt(2 * 6e-8) absolute in the angle.
    np.testing.assert_allclose(
        float(nngp), 2 / np.pi * np.arcsin(2 * v / (1 + 2 * v)), rtol=1e-5, atol=3e-4
    )


def test_large_outputs_use_quarter_blocks_with_the_same_numbers(x64, monkeypatch):
    from nnlab.kernels import _compute

    x1, x2 = _data(n1=37, n2=13)
    net = _mlp()
    want, want_sym = nnlab.kernel(net, x1, x2), nnlab.kernel(net, x1)
    monkeypatch.setattr(_compute, "LARGE_OUTPUT_BYTES", 0)  # every output counts as large
    assert _compute._cap_for_output(None, 37, 13, 8) == 10  # a quarter of 37 rows, rounded up
    for got, ref in ((nnlab.kernel(net, x1, x2), want), (nnlab.kernel(net, x1), want_sym)):
        np.testing.assert_allclose(got.ntk, ref.ntk, rtol=1e-13)
        np.testing.assert_allclose(got.nngp, ref.nngp, rtol=1e-13)
    np.testing.assert_allclose(nnlab.kernel(net, x1, get="ntk"), want_sym.ntk, rtol=1e-13)
    only_ntk = nnlab.kernel(net, x1, get=("ntk",))
    assert only_ntk.nngp is None
    np.testing.assert_allclose(only_ntk.ntk, want_sym.ntk, rtol=1e-13)


def test_get_ntk_does_not_write_the_nngp(x64):
    # XLA's own accounting of the compiled program's outputs: keeping the NNGP adds exactly
    # one n x n float64 array; without it the outputs are the NTK and the two diagonals (plus a
    # few bytes of XLA's output tuple)
    from nnlab.kernels import _compute

    x = _data(n1=64)[0]

    def outputs(keep_nngp):
        lowered = _compute._forward_jit.lower(_mlp(), x, None, True, True, keep_nngp)
        return lowered.compile().memory_analysis().output_size_in_bytes

    assert 8 * 64 * 64 <= outputs(True) - outputs(False) < 8 * 64 * 64 + 64
    assert 8 * (64 * 64 + 2 * 64) <= outputs(False) < 8 * (64 * 64 + 2 * 64) + 64


def test_store_on_device_false_accumulates_in_host_memory(x64):
    x1, x2 = _data(n1=23, n2=9)
    net = _mlp()
    for b in (x2, None):
        want = nnlab.kernel(net, x1, b)
        host = nnlab.kernel(net, x1, b, batch_size=5, store_on_device=False)
        assert isinstance(host.ntk, np.ndarray) and isinstance(host.nngp, np.ndarray)
        np.testing.assert_allclose(host.ntk, want.ntk, rtol=1e-13)
        np.testing.assert_allclose(host.nngp, want.nngp, rtol=1e-13)
    one_block = nnlab.kernel(net, x1, get="nngp", store_on_device=False)
    assert isinstance(one_block, np.ndarray)
    np.testing.assert_allclose(one_block, nnlab.kernel(net, x1, get="nngp"), rtol=1e-13)
    with pytest.raises(ValueError, match="store_on_device=False writes NumPy arrays"):
        jax.jit(lambda a: nnlab.kernel(net, a, get="ntk", store_on_device=False))(x1)
