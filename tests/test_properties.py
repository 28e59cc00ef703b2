"""Property-based checks over random architectures (hypothesis).

For random depths, widths, activations, W_std/b_std and readouts (MLPs and CNNs with
pooling), the analytic kernels must be

* finite and positive semi-definite (min eigenvalue >= -1e-10 x max in float64, and
  >= -1e-5 x max in float32: roundoff of N = 5 entries each accurate to ~10 eps32);
* the same in float32 and float64 up to float32 roundoff accumulated over the layers
  (entries, scaled by sqrt(K_ii K_jj), within 2e-4: ~10^3 eps32 for <= 4 layers whose
  correlation maps have slope <= ~W_std^2 <= 6.25);
* the same with and without ``jax.jit`` (1e-12 relative in float64: only XLA's operation
  fusion and reassociation differ).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import nnlab
from nnlab import layers as nl

ACTIVATIONS = {
    "relu": nl.Relu,
    "abs": nl.Abs,
    "leaky_relu": lambda: nl.LeakyRelu(0.2),
    "erf": nl.Erf,
    "gelu": nl.Gelu,
    "sin": nl.Sin,
    "cos": nl.Cos,
    "gaussian": nl.Gaussian,
    "tanh": nl.Tanh,
    "step": nl.Step,
}

SETTINGS = settings(
    max_examples=5,
    deadline=None,
    derandomize=True,  # a fixed set of examples: reproducible on every machine
    phases=[Phase.explicit, Phase.generate],  # no shrinking: each example compiles anew
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def architectures(draw, spatial: bool):
    depth = draw(st.integers(1, 4))
    layers = []
    size = 4  # spatial size of the inputs; VALID 2x2 filters shrink it by one
    for _ in range(depth):
        w = draw(st.floats(0.3, 2.5))
        b = draw(st.floats(0.0, 1.0))
        width = draw(st.integers(1, 64))
        if spatial:
            padding = draw(st.sampled_from(["SAME", "VALID"])) if size > 2 else "SAME"
            size -= padding == "VALID"
            layers.append(
                nl.Conv(
                    width,
                    (2, 2),
                    padding=padding,
                    W_std=w,
                    b_std=b,
                )
            )
        else:
            layers.append(nl.Dense(width, W_std=w, b_std=b))
        act = draw(st.sampled_from(sorted(ACTIVATIONS)))
        layers.append(ACTIVATIONS[act]())
    if spatial:
        layers.append(draw(st.sampled_from([nl.GlobalAvgPool(), nl.Flatten()])))
    layers.append(nl.Dense(1, W_std=draw(st.floats(0.3, 2.5)), b_std=draw(st.floats(0.0, 1.0))))
    return nl.serial(*layers)


def _inputs(spatial: bool, dtype):
    shape = (5, 4, 4, 2) if spatial else (5, 3)
    return jax.random.normal(jax.random.key(7), shape, dtype)


def _check_psd(k, rel):
    k = np.asarray(k, np.float64)
    assert np.all(np.isfinite(k))
    # symmetric up to roundoff of the largest entry (rel is ~100 eps of the dtype)
    np.testing.assert_allclose(k, k.T, rtol=0, atol=rel * np.abs(k).max())
    eig = np.linalg.eigvalsh(0.5 * (k + k.T))
    assert eig.min() >= -rel * max(eig.max(), 1e-300), (eig.min(), eig.max())


def _scaled_error(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = np.sqrt(np.outer(np.diag(b), np.diag(b)))
    return np.max(np.abs(a - b) / scale)


@pytest.mark.parametrize("spatial", [False, True], ids=["mlp", "cnn"])
@SETTINGS
@given(data=st.data())
def test_random_architectures_psd_precision_and_jit(spatial, data):
    # The eager (no-jit) reference of a CNN costs ~10 s an example: slow test only.
    _check_architecture(data.draw(architectures(spatial)), spatial, eager=not spatial)


@pytest.mark.slow
@pytest.mark.parametrize("spatial", [False, True], ids=["mlp", "cnn"])
@settings(SETTINGS, max_examples=40)
@given(data=st.data())
def test_many_random_architectures(spatial, data):
    _check_architecture(data.draw(architectures(spatial)), spatial)


def _check_architecture(net, spatial, eager=True):
    with jax.enable_x64(True):
        x64 = _inputs(spatial, jnp.float64)
        x32 = x64.astype(jnp.float32)
        k64 = jax.jit(lambda n, x: nnlab.kernel(n, x))(net, x64)
        unjitted = None
        if eager:
            with jax.disable_jit():
                unjitted = nnlab.kernel(net, x64)
        for name in ("nngp", "ntk"):
            ref = getattr(k64, name)
            _check_psd(ref, 1e-10)
            if unjitted is not None:
                np.testing.assert_allclose(
                    getattr(unjitted, name), ref, rtol=1e-12, atol=1e-12 * float(jnp.abs(ref).max())
                )
    k32 = nnlab.kernel(net, x32)
    assert k32.nngp.dtype == jnp.float32
    for name in ("nngp", "ntk"):
        _check_psd(getattr(k32, name), 1e-5)
        assert _scaled_error(getattr(k32, name), getattr(k64, name)) <= 2e-4, name
