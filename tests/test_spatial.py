"""Spatial layers (Conv, AvgPool, GlobalAvgPool, Flatten, LayerNorm): kernels vs independent
computations — neural-tangents reference values, explicit linear operators, exact Jacobians of
finite linear layers, and Monte Carlo over finite networks."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from finite_networks import assert_kernel_matches_monte_carlo, flat_jacobian

import nnlab
from nnlab import layers as nl
from nnlab.kernels import Kernel

# neural-tangents 0.6.5 values (see tests/data/neural_tangents/README.md)
REFERENCE = Path(__file__).resolve().parent / "data" / "neural_tangents"


def _images(n, spatial=(5, 5), channels=2, seed=0):
    return jax.random.normal(jax.random.key(seed), (n, *spatial, channels), jnp.float64)


def _layer_kernel(lyr, k):
    """``lyr.kernel(k)`` compiled as one computation (layers and kernels are pytrees)."""
    return jax.jit(type(lyr).kernel)(lyr, k)


# ---------------------------------------------------------------- neural-tangents reference


REFERENCE_NETS = {
    "cnn_relu_flatten": lambda: nl.serial(
        nl.Conv(8, (2, 2), padding="VALID", W_std=1.2, b_std=0.1),
        nl.Relu(),
        nl.Flatten(),
        nl.Dense(1, W_std=1.0, b_std=0.0),
    ),
    "cnn_erf_gap": lambda: nl.serial(
        nl.Conv(8, (3, 3), padding="SAME", W_std=1.6, b_std=0.0),
        nl.Erf(),
        nl.GlobalAvgPool(),
        nl.Dense(1, W_std=1.0, b_std=0.0),
    ),
}


@pytest.mark.parametrize("name", sorted(REFERENCE_NETS))
def test_matches_neural_tangents_reference(x64, name):
    path = REFERENCE / "neural_tangents_kernels.npz"
    ref = np.load(path)
    net = REFERENCE_NETS[name]()
    img1, img2 = jnp.asarray(ref["img1"]), jnp.asarray(ref["img2"])
    for suffix, k in (("12", nnlab.kernel(net, img1, img2)), ("11", nnlab.kernel(net, img1))):
        for get in ("nngp", "ntk"):
            expected = ref[f"{name}/{get}{suffix}"]
            # Both are float64 closed forms; the ReLU layer clips correlations a machine
            # epsilon inside ±1, which moves arccos by ~sqrt(eps) on the diagonal: 1e-9.
            np.testing.assert_allclose(
                getattr(k, get), expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max()
            )


# ---------------------------------------------------------------- explicit linear operators


def _conv_operators(size, filt, stride, padding):
    """A_d[t, s] = 1 where output t at filter offset d reads input s (zero rows = padding)."""
    if padding == "VALID":
        n_out, lo = (size - filt) // stride + 1, 0
    else:
        n_out = math.ceil(size / stride)
        lo = max((n_out - 1) * stride + filt - size, 0) // 2
    ops = np.zeros((filt, n_out, size))
    for d, t in itertools.product(range(filt), range(n_out)):
        j = t * stride + d - lo
        if padding == "CIRCULAR":
            ops[d, t, j % size] = 1.0
        elif 0 <= j < size:
            ops[d, t, j] = 1.0
    return ops


def _fake_kernel(n1, n2, spatial, seed=1, channels=3):
    """A full-layout Kernel with generic (not input-derived) random nngp, ntk and covariances."""
    r = np.random.default_rng(seed)
    pairs = [s for s in spatial for _ in range(2)]
    return Kernel(
        nngp=jnp.asarray(r.normal(size=(n1, n2, *pairs))),
        ntk=jnp.asarray(r.normal(size=(n1, n2, *pairs))),
        cov1=jnp.asarray(r.normal(size=(n1, *pairs))),
        cov2=jnp.asarray(r.normal(size=(n2, *pairs))),
        spatial_ndim=len(spatial),
        diagonal_spatial=False,
        channels=channels,
        is_gaussian=True,
    )


def _diag_of(k):
    """The same kernel in the diagonal layout (equal positions only)."""

    def diag(a, b):
        for _ in range(k.spatial_ndim):
            a = jnp.diagonal(a, axis1=b, axis2=b + 1)  # appended last: S_1, ..., S_d in order
        return a

    return k.replace(
        nngp=diag(k.nngp, 2),
        ntk=diag(k.ntk, 2),
        cov1=diag(k.cov1, 1),
        cov2=diag(k.cov2, 1),
        diagonal_spatial=True,
    )


def _map_pairs(a, nb, fns):
    """Apply ``fns[i]`` to the (S_i, S_i') axis pair of a full-layout array with nb batch axes."""
    for i, fn in enumerate(fns):
        ax = nb + 2 * i
        a = jnp.moveaxis(fn(jnp.moveaxis(a, (ax, ax + 1), (-2, -1))), (-2, -1), (ax, ax + 1))
    return a


CONV_CASES = [
    ((7,), (3,), (1,), "SAME"),
    ((7,), (3,), (2,), "SAME"),
    ((8,), (4,), (3,), "SAME"),
    ((7,), (3,), (2,), "VALID"),
    ((6,), (3,), (1,), "CIRCULAR"),
    ((7,), (4,), (2,), "CIRCULAR"),
    ((5, 4), (3, 2), (1, 2), "SAME"),
    ((5, 4), (2, 3), (2, 1), "VALID"),
    ((4, 5), (3, 3), (1, 1), "CIRCULAR"),
]


@pytest.mark.parametrize("spatial,filt,strides,padding", CONV_CASES)
@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_conv_kernel_equals_explicit_operator(
    x64, spatial, filt, strides, padding, parameterization
):
    W_std, b_std = 1.3, 0.4
    k = _fake_kernel(2, 3, spatial)
    conv = nl.Conv(5, filt, strides, padding, W_std, b_std, parameterization)
    ops = [_conv_operators(s, f, st, padding) for s, f, st in zip(spatial, filt, strides)]

    def apply_ops(a, nb):  # (1/k) Σ_d A_d K A_dᵀ on each dimension's pair of position axes
        fns = [
            lambda m, op=op: jnp.einsum("dts,dur,...sr->...tu", op, op, m) / len(op) for op in ops
        ]
        return _map_pairs(a, nb, fns)

    out = _layer_kernel(conv, k)
    mapped = apply_ops(k.nngp, 2)
    np.testing.assert_allclose(out.nngp, W_std**2 * mapped + b_std**2, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out.cov1, W_std**2 * apply_ops(k.cov1, 1) + b_std**2, atol=1e-12)
    fan_in = k.channels * math.prod(filt)
    back = W_std**2 * apply_ops(k.ntk, 2)
    if parameterization == "ntk":
        ntk = W_std**2 * mapped + b_std**2 + back
    else:
        ntk = fan_in * mapped + 1.0 + back
    np.testing.assert_allclose(out.ntk, ntk, rtol=1e-12, atol=1e-12)
    assert out.channels == 5 and out.is_gaussian
    # The diagonal layout must give exactly the diagonal of the full result.
    diag_out = _layer_kernel(conv, _diag_of(k))
    np.testing.assert_allclose(diag_out.nngp, _diag_of(out).nngp, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(diag_out.ntk, _diag_of(out).ntk, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "spatial,window,strides,padding",
    [((7,), (3,), None, "VALID"), ((7,), (2,), (2,), "SAME"), ((5, 6), (2, 3), (2, 1), "SAME")],
)
def test_avg_pool_kernel_equals_p_k_pt(x64, spatial, window, strides, padding):
    k = _fake_kernel(2, 3, spatial)
    pool = nl.AvgPool(window, strides, padding)
    ops = [
        _conv_operators(s, w, st, padding).sum(0) / w
        for s, w, st in zip(spatial, window, strides or (1,) * len(window))
    ]

    def ptp(a, nb):
        return _map_pairs(
            a, nb, [lambda m, p=p: jnp.einsum("ts,ur,...sr->...tu", p, p, m) for p in ops]
        )

    out = _layer_kernel(pool, k)
    np.testing.assert_allclose(out.nngp, ptp(k.nngp, 2), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out.ntk, ptp(k.ntk, 2), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out.cov2, ptp(k.cov2, 1), rtol=1e-12, atol=1e-12)
    gap = _layer_kernel(nl.GlobalAvgPool(), k)
    np.testing.assert_allclose(gap.nngp, k.nngp.mean(axis=tuple(range(2, k.nngp.ndim))))
    flat = _layer_kernel(nl.Flatten(), k)
    np.testing.assert_allclose(flat.nngp, _diag_of(k).nngp.reshape(2, 3, -1).mean(-1))
    assert flat.channels == k.channels * math.prod(spatial) and gap.channels == k.channels


# ---------------------------------------------------------------- exact Jacobians of linear nets


LINEAR_HEADS = {
    "none": None,
    "avgpool": lambda d: nl.AvgPool((2,) * d, (2,) * d, "SAME"),
    "gap": lambda d: nl.GlobalAvgPool(),
    "flatten": lambda d: nl.Flatten(),
}


JACOBIAN_CASES = [  # each padding, stride, dimension, head and parameterization appears
    ((7,), (3,), (2,), "SAME", "none", "ntk"),
    ((7,), (4,), (2,), "CIRCULAR", "flatten", "standard"),
    ((7,), (3,), (2,), "VALID", "avgpool", "ntk"),
    ((6,), (3,), (1,), "CIRCULAR", "gap", "ntk"),
    ((5, 4), (3, 2), (1, 2), "SAME", "gap", "standard"),
    ((5, 4), (2, 3), (2, 1), "VALID", "flatten", "ntk"),
    ((4, 5), (3, 3), (1, 1), "CIRCULAR", "avgpool", "standard"),
    ((5, 4), (3, 2), (1, 2), "SAME", "none", "ntk"),
]


@pytest.mark.parametrize("spatial,filt,strides,padding,head,parameterization", JACOBIAN_CASES)
def test_finite_conv_jacobian_equals_kernel(
    x64, key, spatial, filt, strides, padding, head, parameterization
):
    """A conv followed by linear readouts is linear in its parameters, so J Jᵀ of one output
    channel is its NTK exactly at any width (and, in the 'ntk' parameterization where the
    parameters are standard normal, also its NNGP E[y yᵀ] = J Jᵀ)."""
    d = len(spatial)
    layers = [
        nl.Conv(4, filt, strides, padding, W_std=1.3, b_std=0.4, parameterization=parameterization)
    ]
    if LINEAR_HEADS[head] is not None:
        layers.append(LINEAR_HEADS[head](d))
    net = nl.serial(*layers)
    x = _images(3, spatial, channels=2)
    out_shape, params = net.init(key, x.shape)
    y = net.apply(params, x)
    assert y.shape == out_shape
    k = nnlab.kernel(net, x, diagonal_spatial=False)
    if head == "flatten":  # units of conv channel 0; the kernel is their mean over positions
        units = lambda p: net.apply(p, x)[:, :: layers[0].out].reshape(-1)  # noqa: E731
        n_pos = y.shape[1] // layers[0].out
    else:
        units = lambda p: net.apply(p, x)[..., 0].reshape(-1)  # noqa: E731
        n_pos = math.prod(y.shape[1:-1])
    flat = flat_jacobian(units, params, 3 * n_pos)
    emp = (flat @ flat.T).reshape(3, n_pos, 3, n_pos).transpose(0, 2, 1, 3)
    if head == "flatten":
        emp = jnp.diagonal(emp, axis1=2, axis2=3).mean(-1)
        theory_ntk, theory_nngp = k.ntk, k.nngp
    else:
        theory_ntk, theory_nngp = (
            _full_as_matrix(k.ntk, 3, n_pos),
            _full_as_matrix(k.nngp, 3, n_pos),
        )
    # Exact identities evaluated in float64: only roundoff separates the two sides.
    np.testing.assert_allclose(emp, theory_ntk, rtol=1e-11, atol=1e-11)
    if parameterization == "ntk":
        np.testing.assert_allclose(emp, theory_nngp, rtol=1e-11, atol=1e-11)


def _full_as_matrix(a, n, n_pos):
    """(N, N, S1, S1', ...) -> (N, N, |S|, |S'|) with positions in row-major order."""
    d = (a.ndim - 2) // 2
    order = [0, 1] + [2 + 2 * i for i in range(d)] + [3 + 2 * i for i in range(d)]
    return jnp.transpose(a, order).reshape(n, n, n_pos, n_pos)


# ---------------------------------------------------------------- Monte Carlo, finite networks


MC_NETS = {
    # One hidden layer: the empirical kernels are unbiased at any width (channels are iid).
    "conv_relu_gap": lambda: nl.serial(
        nl.Conv(256, (3, 3), padding="SAME", W_std=1.5, b_std=0.2),
        nl.Relu(),
        nl.GlobalAvgPool(),
        nl.Dense(16, W_std=1.2, b_std=0.1),
    ),
    "conv1d_strided_circular_flatten": lambda: nl.serial(
        nl.Conv(256, (3,), strides=(2,), padding="CIRCULAR", W_std=1.3, b_std=0.3),
        nl.Relu(),
        nl.Flatten(),
        nl.Dense(16),
    ),
    # Two hidden layers (the second conv and the pooling act on non-input covariances):
    # finite-width bias O(1/channels) = O(0.3%), well below 4 SE at this sample size.
    "conv_relu_avgpool_conv_relu_gap": lambda: nl.serial(
        nl.Conv(256, (2, 2), padding="SAME", W_std=1.4, b_std=0.1),
        nl.Relu(),
        nl.AvgPool((2, 2), padding="SAME"),
        nl.Conv(256, (2, 2), strides=(2, 1), padding="SAME", W_std=1.4, b_std=0.1),
        nl.Relu(),
        nl.GlobalAvgPool(),
        nl.Dense(16),
    ),
    "conv_layernorm_relu_gap": lambda: nl.serial(
        nl.Conv(256, (3, 3), padding="SAME", W_std=1.3, b_std=0.5),
        nl.LayerNorm(),
        nl.Relu(),
        nl.GlobalAvgPool(),
        nl.Dense(16),
    ),
    "conv_erf_flatten_standard": lambda: nl.serial(
        nl.Conv(256, (2, 2), padding="VALID", W_std=1.4, b_std=0.2, parameterization="standard"),
        nl.Erf(),
        nl.Flatten(),
        nl.Dense(16, W_std=1.1, b_std=0.1, parameterization="standard"),
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MC_NETS))
def test_monte_carlo_finite_cnns_match(x64, key, name):
    net = MC_NETS[name]()
    spatial = (6,) if "conv1d" in name else (4, 4)
    x = _images(4, spatial, channels=3, seed=2)
    assert_kernel_matches_monte_carlo(net, x, key)


@pytest.mark.slow
def test_monte_carlo_layernorm_mlp(x64, key):
    # LayerNorm's finite-width effects (the channel mean and variance it estimates) are
    # O(1/width); at width 1024 they stay below the 4-SE band of 32 seeds.
    net = nl.serial(
        nl.Dense(1024, W_std=1.2, b_std=0.6),
        nl.LayerNorm(),
        nl.Erf(),
        nl.Dense(16, W_std=1.0, b_std=0.1),
    )
    x = jax.random.normal(jax.random.key(3), (4, 5), jnp.float64) * 2.0
    assert_kernel_matches_monte_carlo(net, x, key)


# ---------------------------------------------------------------- layouts, blocks, transforms


def _flatten_cnn():
    return nl.serial(
        nl.Conv(8, (3, 3), strides=(2, 1), padding="SAME", W_std=1.4, b_std=0.2),
        nl.Relu(),
        nl.Conv(8, (2, 3), padding="CIRCULAR", W_std=1.2, b_std=0.1),
        nl.LayerNorm(),
        nl.Erf(),
        nl.Conv(8, (2, 2), padding="VALID", W_std=1.1, b_std=0.0),
        nl.Relu(),
        nl.Flatten(),
        nl.Dense(1, W_std=1.0, b_std=0.1),
    )


def _pooling_cnn():
    return nl.serial(
        nl.Conv(8, (3, 3), padding="SAME", W_std=1.4, b_std=0.2),
        nl.Relu(),
        nl.AvgPool((2, 2), strides=(2, 2), padding="SAME"),
        nl.Conv(8, (2, 2), padding="VALID", W_std=1.3, b_std=0.1),
        nl.Erf(),
        nl.GlobalAvgPool(),
        nl.Dense(1),
    )


@pytest.mark.slow
def test_diagonal_and_full_layouts_agree_for_flatten(x64):
    net = _flatten_cnn()
    x1, x2 = _images(3, (6, 5), seed=4), _images(2, (6, 5), seed=5)
    diag = nnlab.kernel(net, x1, x2, diagonal_spatial=True)
    full = nnlab.kernel(net, x1, x2, diagonal_spatial=False)
    # Same closed forms on the same numbers; the full layout only adds unused entries.
    np.testing.assert_allclose(diag.nngp, full.nngp, rtol=1e-12)
    np.testing.assert_allclose(diag.ntk, full.ntk, rtol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("make_net", [_flatten_cnn, _pooling_cnn])
@pytest.mark.parametrize("symmetric", [True, False])
def test_blocked_equals_unblocked_cnn(x64, make_net, symmetric):
    net = make_net()
    x1 = _images(5, (4, 4), seed=6)
    x2 = None if symmetric else _images(3, (4, 4), seed=7)
    whole = nnlab.kernel(net, x1, x2)
    blocked = nnlab.kernel(net, x1, x2, batch_size=2)
    # Each entry is computed by the same formulas from the same pair: roundoff only.
    np.testing.assert_allclose(blocked.nngp, whole.nngp, rtol=1e-12)
    np.testing.assert_allclose(blocked.ntk, whole.ntk, rtol=1e-12)


@pytest.mark.slow
def test_jit_and_vmap_of_kernel_on_cnn(x64):
    net = nl.serial(nl.Conv(4, (2, 2), padding="SAME"), nl.Relu(), nl.GlobalAvgPool(), nl.Dense(1))
    xs = _images(6, (3, 3), seed=8).reshape(2, 3, 3, 3, 2)
    x2 = _images(2, (3, 3), seed=9)
    eager = [nnlab.kernel(net, x, x2, get="ntk") for x in xs]
    jitted = jax.jit(lambda x: nnlab.kernel(net, x, x2, get="ntk"))(xs[0])
    mapped = jax.vmap(lambda x: nnlab.kernel(net, x, x2, get="ntk"))(xs)
    np.testing.assert_allclose(jitted, eager[0], rtol=1e-12)
    np.testing.assert_allclose(mapped, np.stack(eager), rtol=1e-12)


def test_one_dimensional_conv_shapes_and_kernel_layout(key):
    net = nl.serial(nl.Conv(6, (3,), strides=(2,), padding="SAME"), nl.Relu())
    x = jax.random.normal(key, (2, 7, 3))
    out_shape, params = net.init(key, x.shape)
    assert out_shape == (2, 4, 6) == net.apply(params, x).shape
    k = nnlab.kernel(net, x, diagonal_spatial=False)
    assert k.nngp.shape == (2, 2, 4, 4) and k.channels == 6 and k.spatial_ndim == 1


# ---------------------------------------------------------------- errors


def test_errors_are_named():
    x_img = jnp.ones((2, 4, 4, 3))
    with pytest.raises(
        ValueError, match=r"Conv with a 2-D filter expects inputs of shape \(N, H, W, C\)"
    ):
        nl.Conv(4, (3, 3)).init(jax.random.key(0), (2, 5))
    with pytest.raises(ValueError, match=r"Conv with a 1-D filter expects .*\(N, W, C\)"):
        nl.Conv(4, (3,)).apply({"W": jnp.ones((3, 3, 4)), "b": None}, x_img)
    with pytest.raises(ValueError, match=r"Conv with a 2-D filter expects .*\(N, H, W, C\)"):
        nnlab.kernel(nl.Conv(4, (3, 3)), jnp.ones((2, 5)))
    with pytest.raises(ValueError, match="padding must be one of"):
        nl.Conv(4, (3, 3), padding="REFLECT")
    with pytest.raises(ValueError, match="padding must be one of"):
        nl.AvgPool((2, 2), padding="CIRCULAR")
    with pytest.raises(ValueError, match="filter_shape"):
        nl.Conv(4, (3, 0))
    with pytest.raises(ValueError, match="strides"):
        nl.Conv(4, (3, 3), strides=(1,))
    with pytest.raises(ValueError, match=r"'VALID'.*at least the window"):
        nnlab.kernel(nl.Conv(4, (5, 5), padding="VALID"), x_img)
    with pytest.raises(ValueError, match="GlobalAvgPool needs spatial inputs"):
        nnlab.kernel(nl.serial(nl.Dense(4), nl.GlobalAvgPool()), jnp.ones((2, 5)))
    with pytest.raises(ValueError, match="GlobalAvgPool expects inputs of shape"):
        nl.GlobalAvgPool().init(jax.random.key(0), (2, 5))
    with pytest.raises(ValueError, match="diagonal_spatial=True is impossible"):
        nnlab.kernel(
            nl.serial(nl.Conv(4, (3, 3)), nl.AvgPool((2, 2))), x_img, diagonal_spatial=True
        )
    with pytest.raises(ValueError, match="AvgPool needs covariances between different positions"):
        nl.AvgPool((2, 2)).kernel(nnlab.kernels.input_kernel(x_img))
    with pytest.raises(ValueError, match=r"LayerNorm.*zero-mean Gaussian.*mean of the features"):
        nnlab.kernel(nl.serial(nl.Dense(4), nl.Relu(), nl.LayerNorm()), jnp.ones((2, 5)))
    with pytest.raises(ValueError, match="LayerNorm: axis must be -1"):
        nl.LayerNorm(axis=1)
    with pytest.raises(TypeError, match="FanInSum or FanInConcat"):
        nl.Conv(4, (3, 3)).init(jax.random.key(0), [(2, 4, 4, 3)] * 2)
