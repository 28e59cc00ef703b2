"""FanInConcat before a nonlinearity (channels of several kinds, ``Kernel.branches``) and 3-D
convolutions (NDHWC): kernels vs Monte Carlo over finite networks, hand-mixed branch kernels,
exact Jacobians of linear 3-D convs, and 3-D nets with a size-1 axis vs their 2-D twins."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import test_spatial as ts
from finite_networks import assert_kernel_matches_monte_carlo, assert_within_se, mc_kernels

import nnlab
from nnlab import layers as nl


def _antipodal(n_half, shape, seed=1):
    """Inputs x and -x: odd branches (no bias) see correlation -1, biased ones close to +1,
    which is where mixing the branch kernels before a nonlinearity goes most wrong."""
    x = jax.random.normal(jax.random.key(seed), (n_half, *shape), jnp.float64)
    return jnp.concatenate([x, -x])


def _branch_a(width):  # odd in x: its outputs at x and -x have correlation -1
    return nl.serial(
        nl.Dense(width, W_std=1.5, b_std=None), nl.Erf(), nl.Dense(width, W_std=1.4, b_std=None)
    )


def _branch_b(width):  # big bias: correlation close to +1
    return nl.Dense(width, W_std=0.4, b_std=1.2)


# ---------------------------------------------------------------- concat then a nonlinearity


@pytest.mark.parametrize("act", [nl.Relu, nl.Erf])
def test_concat_then_activation_mixes_after_the_activation(x64, act):
    """serial(FanOut, parallel(A, B), FanInConcat, φ, Dense(1, W, b)) has, with channel
    fractions w_A, w_B, NNGP Σ w_i W² T_φ(K_i) + b² and NTK Σ w_i W²(T_φ(K_i) + Θ_i Ṫ_φ(K_i))
    + b²: the weighted sum of the one-branch nets serial(i, φ, Dense(1, W, no bias)) plus b²."""
    ca, cb, W, b = 300, 100, 1.3, 0.4
    x1 = _antipodal(2, (5,))
    x2 = jax.random.normal(jax.random.key(7), (3, 5), jnp.float64)
    net = nl.serial(
        nl.FanOut(2),
        nl.parallel(_branch_a(ca), _branch_b(cb)),
        nl.FanInConcat(),
        act(),
        nl.Dense(1, W_std=W, b_std=b),
    )
    head = nl.Dense(1, W_std=W, b_std=None)
    ka = nnlab.kernel(nl.serial(_branch_a(ca), act(), head), x1, x2)
    kb = nnlab.kernel(nl.serial(_branch_b(cb), act(), head), x1, x2)
    k = nnlab.kernel(net, x1, x2)
    wa, wb = ca / (ca + cb), cb / (ca + cb)
    np.testing.assert_allclose(k.nngp, wa * ka.nngp + wb * kb.nngp + b**2, rtol=1e-12)
    np.testing.assert_allclose(k.ntk, wa * ka.ntk + wb * kb.ntk + b**2, rtol=1e-12)
    assert k.branches is None  # the Dense mixed them


def test_nested_concat_equals_flat_concat(x64):
    x = _antipodal(2, (4,))
    a, b, c = _branch_a(50), _branch_b(30), nl.Dense(20, W_std=0.9, b_std=0.1)
    tail = (nl.Relu(), nl.Dense(1, W_std=1.1, b_std=0.2))
    flat = nl.serial(nl.FanOut(3), nl.parallel(a, b, c), nl.FanInConcat(), *tail)
    nested = nl.serial(
        nl.FanOut(2),
        nl.parallel(nl.serial(nl.FanOut(2), nl.parallel(a, b), nl.FanInConcat()), c),
        nl.FanInConcat(),
        *tail,
    )
    kf, kn = nnlab.kernel(flat, x), nnlab.kernel(nested, x)
    np.testing.assert_allclose(kn.nngp, kf.nngp, rtol=1e-12)
    np.testing.assert_allclose(kn.ntk, kf.ntk, rtol=1e-12)


def test_layernorm_after_concat_divides_each_kind_by_the_mixed_variance(x64):
    """LayerNorm normalises over all channels: at infinite width every kind is divided by
    sqrt(v(x) v(x')) with v the channel-weighted mean variance, then φ maps each kind."""
    ca, cb = 300, 100
    x = _antipodal(2, (5,))
    net = nl.serial(
        nl.FanOut(2),
        nl.parallel(_branch_a(ca), _branch_b(cb)),
        nl.FanInConcat(),
        nl.LayerNorm(),
        nl.Relu(),
        nl.Dense(1, b_std=None),
    )
    k = nnlab.kernel(net, x, get="nngp")
    ka = nnlab.kernel(_branch_a(ca), x, get="nngp")
    kb = nnlab.kernel(_branch_b(cb), x, get="nngp")
    wa, wb = ca / (ca + cb), cb / (ca + cb)
    v = wa * jnp.diag(ka) + wb * jnp.diag(kb)
    scale = 1.0 / jnp.sqrt(v[:, None] * v[None, :])

    def relu_t(c):  # T for unit-variance inputs after the normalisation (Cho & Saul 2009)
        va, vb = (jnp.diag(c)[:, None], jnp.diag(c)[None, :])
        rho = jnp.clip(c / jnp.sqrt(va * vb), -1.0, 1.0)
        th = jnp.arccos(rho)
        return jnp.sqrt(va * vb) * (jnp.sqrt(1 - rho**2) + (jnp.pi - th) * rho) / (2 * jnp.pi)

    expected = wa * relu_t(ka * scale) + wb * relu_t(kb * scale)
    np.testing.assert_allclose(k, expected, rtol=1e-9, atol=1e-12)


def test_fan_in_sum_of_concatenations_adds_block_by_block(x64):
    """sum(concat[A(a), B(b)], concat[C(b), D(a)]) with a != b has three channel blocks,
    kinds A+C, A+D and B+D, of sizes b, a-b and b (for a > b); a Relu maps each."""
    a, b = 60, 20
    x = _antipodal(2, (4,))
    A, B = _branch_a, _branch_b

    def C(w):
        return nl.Dense(w, W_std=1.2, b_std=0.0)

    def D(w):
        return nl.Dense(w, W_std=0.7, b_std=0.5)

    tail = (nl.Relu(), nl.Dense(1, W_std=1.2, b_std=None))
    net = nl.serial(
        nl.FanOut(2),
        nl.parallel(
            nl.serial(nl.FanOut(2), nl.parallel(A(a), B(b)), nl.FanInConcat()),
            nl.serial(nl.FanOut(2), nl.parallel(C(b), D(a)), nl.FanInConcat()),
        ),
        nl.FanInSum(),
        *tail,
    )

    def block(p, q):  # one kind: the sum of two independent branches, then the tail
        net = nl.serial(nl.FanOut(2), nl.parallel(p(8), q(8)), nl.FanInSum(), *tail)
        return nnlab.kernel(net, x)

    parts = [(b, block(A, C)), (a - b, block(A, D)), (b, block(B, D))]
    k = nnlab.kernel(net, x)
    for field in ("nngp", "ntk"):
        expected = sum(n * getattr(kp, field) for n, kp in parts) / (a + b)
        np.testing.assert_allclose(getattr(k, field), expected, rtol=1e-12)


@pytest.mark.slow
def test_concat_kernel_under_jit_vmap_and_row_chunks(x64):
    net = nl.serial(
        nl.FanOut(2), nl.parallel(_branch_a(30), _branch_b(10)), nl.FanInConcat(), nl.Relu()
    )
    xs = jax.random.normal(jax.random.key(3), (2, 3, 4), jnp.float64)
    batched = jax.vmap(lambda x: nnlab.kernel(net, x, get="ntk"))(xs)
    for i in range(2):
        np.testing.assert_allclose(batched[i], nnlab.kernel(net, xs[i], get="ntk"), rtol=1e-12)
    # Enough rows that the CPU path maps over row chunks: the mixture is still exact.
    x = jax.random.normal(jax.random.key(4), (400, 4), jnp.float64)
    k = nnlab.kernel(net, x, get="nngp")
    ka = nnlab.kernel(nl.serial(_branch_a(30), nl.Relu()), x, get="nngp")
    kb = nnlab.kernel(nl.serial(_branch_b(10), nl.Relu()), x, get="nngp")
    np.testing.assert_allclose(k, 0.75 * ka + 0.25 * kb, rtol=1e-12)


def test_concat_of_raw_inputs_then_nonlinearity_still_raises():
    x = jnp.ones((2, 3))
    net = nl.serial(
        nl.FanOut(2), nl.parallel(nl.Identity(), nl.Dense(4)), nl.FanInConcat(), nl.Relu()
    )
    with pytest.raises(ValueError, match="zero-mean Gaussian"):
        nnlab.kernel(net, x)


def _mlp_branches():
    """Two MLP branches concatenated: widths 192 (after a hidden Erf layer) and 64."""
    return [
        nl.FanOut(2),
        nl.parallel(
            nl.serial(
                nl.Dense(256, W_std=1.5, b_std=None), nl.Erf(), nl.Dense(192, W_std=1.4, b_std=None)
            ),
            nl.Dense(64, W_std=0.4, b_std=1.2),
        ),
        nl.FanInConcat(),
    ]


CONCAT_MC_NETS = {
    # Branch widths 256 -> 192 and 64: unequal fractions 3/4, 1/4. Two hidden layers in one
    # branch: bias O(1/width) = O(0.5%), far below 4 SE at 32 seeds.
    "mlp_relu": lambda: nl.serial(*_mlp_branches(), nl.Relu(), nl.Dense(16)),
    # CNN: the concatenation is pooled before the nonlinearity (AvgPool maps each kind).
    "cnn1d_avgpool_relu_gap": lambda: nl.serial(
        nl.FanOut(2),
        nl.parallel(
            nl.serial(
                nl.Conv(192, (3,), W_std=1.5, b_std=None),
                nl.Erf(),
                nl.Conv(192, (3,), padding="CIRCULAR", W_std=1.4, b_std=None),
            ),
            nl.Conv(64, (2,), W_std=0.4, b_std=1.2),
        ),
        nl.FanInConcat(),
        nl.AvgPool((2,), padding="SAME"),
        nl.Relu(),
        nl.GlobalAvgPool(),
        nl.Dense(16),
    ),
    "mlp_layernorm_erf": lambda: nl.serial(
        *_mlp_branches(), nl.LayerNorm(), nl.Erf(), nl.Dense(16)
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CONCAT_MC_NETS))
def test_monte_carlo_concat_then_nonlinearity(x64, key, name):
    net = CONCAT_MC_NETS[name]()
    x = _antipodal(2, (5, 2) if "cnn" in name else (5,))
    assert_kernel_matches_monte_carlo(net, x, key)


# ---------------------------------------------------------------- 3-D convolutions


def test_input_kernel_3d_both_layouts(x64):
    x1 = jax.random.normal(jax.random.key(0), (2, 2, 3, 2, 4), jnp.float64)
    x2 = jax.random.normal(jax.random.key(1), (3, 2, 3, 2, 4), jnp.float64)
    a, b = x1.reshape(2, 12, 4), x2.reshape(3, 12, 4)
    full = np.einsum("nsc,mtc->nmst", a, b) / 4  # positions in row-major order
    k = nnlab.kernels.input_kernel(x1, x2, diagonal_spatial=False)
    order = [0, 1, 2, 4, 6, 3, 5, 7]  # (N1, N2, S1, S1', S2, S2', S3, S3') -> rows, columns
    nngp = jnp.transpose(k.nngp, order).reshape(2, 3, 12, 12)
    np.testing.assert_allclose(nngp, full, rtol=1e-12)
    kd = nnlab.kernels.input_kernel(x1, x2, diagonal_spatial=True)
    diag = np.einsum("nmss->nms", full).reshape(2, 3, 2, 3, 2)
    np.testing.assert_allclose(kd.nngp, diag, rtol=1e-12)
    np.testing.assert_allclose(kd.cov1, np.einsum("nsc,nsc->ns", a, a).reshape(2, 2, 3, 2) / 4)
    assert k.spatial_shape == kd.spatial_shape == (2, 3, 2)


CONV3D_CASES = [
    ((3, 4, 3), (2, 3, 2), (1, 2, 1), "SAME"),
    pytest.param((3, 4, 4), (2, 2, 3), (1, 1, 2), "VALID", marks=pytest.mark.slow),
    pytest.param((3, 3, 4), (3, 2, 2), (1, 1, 1), "CIRCULAR", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("spatial,filt,strides,padding", CONV3D_CASES)
def test_conv3d_kernel_equals_explicit_operator(x64, spatial, filt, strides, padding):
    ts.test_conv_kernel_equals_explicit_operator(None, spatial, filt, strides, padding, "ntk")


def test_avgpool3d_kernel_equals_p_k_pt(x64):
    ts.test_avg_pool_kernel_equals_p_k_pt(None, (3, 4, 3), (2, 2, 2), (1, 2, 1), "SAME")


@pytest.mark.parametrize(
    "head,parameterization",
    [
        ("flatten", "ntk"),
        pytest.param("gap", "standard", marks=pytest.mark.slow),
        pytest.param("avgpool", "ntk", marks=pytest.mark.slow),
    ],
)
def test_linear_conv3d_jacobian_equals_kernel(x64, key, head, parameterization):
    """A linear 3-D conv + readout: J Jᵀ is the NTK exactly at any width (independent check)."""
    ts.test_finite_conv_jacobian_equals_kernel(
        None, key, (3, 4, 3), (2, 3, 2), (1, 2, 1), "SAME", head, parameterization
    )


def _twin_nets(head, axis):
    """A 2-D net and the 3-D net that equals it on inputs with a size-1 axis ``axis``."""

    def lift(t, one=1):
        t = list(t)
        t.insert(axis, one)
        return tuple(t)

    def net(d3):
        f = lift if d3 else (lambda t: t)
        heads = {
            "flatten": [nl.Flatten()],
            "gap": [nl.GlobalAvgPool()],
            "avgpool": [nl.AvgPool(f((2, 2)), f((2, 1)), "SAME"), nl.Flatten()],
        }
        return nl.serial(
            nl.Conv(8, f((3, 2)), f((1, 2)), "SAME", W_std=1.4, b_std=0.2),
            nl.Relu(),
            nl.Conv(8, f((2, 2)), padding="CIRCULAR", W_std=1.2, b_std=0.1),
            nl.Erf(),
            *heads[head],
            nl.Dense(1, W_std=1.1, b_std=0.3),
        )

    return net(False), net(True)


@pytest.mark.parametrize(
    "head,axis",
    [("flatten", 0), ("gap", 1), ("avgpool", 2)]
    + [
        pytest.param(h, a, marks=pytest.mark.slow)
        for h, a in [("flatten", 1), ("flatten", 2), ("gap", 0), ("gap", 2), ("avgpool", 0)]
    ],
)
def test_conv3d_with_a_size_one_axis_equals_conv2d(x64, head, axis):
    x2d = jax.random.normal(jax.random.key(5), (3, 5, 4, 2), jnp.float64)
    x3d = jnp.expand_dims(x2d, 1 + axis)
    net2, net3 = _twin_nets(head, axis)
    layouts = [False, True] if head == "flatten" else [False]
    for diag in layouts:
        k2 = nnlab.kernel(net2, x2d, diagonal_spatial=diag)
        k3 = nnlab.kernel(net3, x3d, diagonal_spatial=diag)
        np.testing.assert_allclose(k3.nngp, k2.nngp, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(k3.ntk, k2.ntk, rtol=1e-12, atol=1e-14)
    # The finite nets agree too: same key, and the weights differ only by the size-1 axis.
    _, p3 = net3.init(jax.random.key(2), x3d.shape)
    _, p2 = net2.init(jax.random.key(2), x2d.shape)
    np.testing.assert_allclose(net3.apply(p3, x3d), net2.apply(p2, x2d), rtol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("head", ["flatten", "gap"])
def test_monte_carlo_conv3d(x64, key, head):
    """One hidden 3-D conv layer: the empirical kernels are unbiased at any width."""
    net = nl.serial(
        nl.Conv(128, (2, 2, 2), padding="SAME", W_std=1.5, b_std=0.2),
        nl.Relu(),
        nl.Flatten() if head == "flatten" else nl.GlobalAvgPool(),
        nl.Dense(16, W_std=1.2, b_std=0.1),
    )
    x = jax.random.normal(jax.random.key(2), (4, 3, 3, 2, 2), jnp.float64)
    nngp_s, ntk_s = mc_kernels(net, x, 32, key)
    for diag in [True, False] if head == "flatten" else [False]:
        k = nnlab.kernel(net, x, diagonal_spatial=diag)
        assert_within_se(nngp_s, k.nngp)
        assert_within_se(ntk_s, k.ntk)


def test_conv3d_float32_runs_and_matches_float64():
    net = nl.serial(nl.Conv(4, (2, 2, 2)), nl.Relu(), nl.GlobalAvgPool(), nl.Dense(1))
    x = jax.random.normal(jax.random.key(0), (2, 3, 3, 3, 2))
    k32 = nnlab.kernel(net, x, get="ntk")
    assert k32.dtype == jnp.float32
    with jax.enable_x64(True):
        k64 = nnlab.kernel(net, x.astype(jnp.float64), get="ntk")
    np.testing.assert_allclose(k32, k64, rtol=1e-5)
