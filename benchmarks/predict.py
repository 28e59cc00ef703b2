"""Benchmark: infinite-ensemble NTK prediction with covariance (issue 5).

1000 train / 500 test points in dimension 100, a 3-hidden-layer ReLU MLP, one time t, float32
on the CPU, analytic kernel computation included (``nnlab.kernel``). Reference: neural-tangents
0.6.5 ``gradient_descent_mse_ensemble`` took 11.65 s on a 2-core machine of this kind. Warm-up
(compilation) is excluded from the steady-state time and reported separately.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

import nnlab
from nnlab import layers as nl
from nnlab import predict

NT_SECONDS = 11.65
N_TRAIN, N_TEST, DIM, T = 1000, 500, 100, 10.0


def _network():
    hidden = [nl.Dense(512, W_std=2.0**0.5, b_std=0.1), nl.Relu()]
    return nl.serial(*hidden, *hidden, *hidden, nl.Dense(1, W_std=1.0, b_std=0.1))


def _ensemble(net, x_train, y_train, x_test):
    k_train = nnlab.kernel(net, x_train, get=("nngp", "ntk"))
    k_test = nnlab.kernel(net, x_test, x_train, get=("nngp", "ntk"))
    nngp_test = nnlab.kernel(net, x_test, get="nngp")
    out = predict.ensemble_mse(
        k_train, y_train, T, k_test, nngp_test, lr=1.0, loss_normalization="sum"
    )
    return jax.block_until_ready(out)


def _time(fn, repeats=3):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    x_train = jax.random.normal(k1, (N_TRAIN, DIM), jnp.float32)
    x_test = jax.random.normal(k2, (N_TEST, DIM), jnp.float32)
    y_train = jax.random.normal(k3, (N_TRAIN, 1), jnp.float32)
    net = _network()

    start = time.perf_counter()
    _ensemble(net, x_train, y_train, x_test)
    first = time.perf_counter() - start
    total = _time(lambda: _ensemble(net, x_train, y_train, x_test))

    k_train = nnlab.kernel(net, x_train, get=("nngp", "ntk"))
    k_test = nnlab.kernel(net, x_test, x_train, get=("nngp", "ntk"))
    nngp_test = nnlab.kernel(net, x_test, get="nngp")
    predictor = _time(
        lambda: jax.block_until_ready(
            predict.ensemble_mse(
                k_train, y_train, T, k_test, nngp_test, lr=1.0, loss_normalization="sum"
            )
        )
    )

    print(
        f"device: {jax.devices()[0].platform}, float32, {N_TRAIN} train / {N_TEST} test, dim {DIM}"
    )
    print("what | nnlab (s) | neural-tangents 0.6.5 (s) | ratio")
    print("--- | --- | --- | ---")
    print(
        f"ensemble NTK mean+cov, kernels included | {total:.2f} | {NT_SECONDS:.2f} | "
        f"{NT_SECONDS / total:.1f}x faster"
    )
    print(f"  of which ensemble_mse alone | {predictor:.2f} | - | -")
    print(f"  first call (compile + run) | {first:.2f} | - | -")
    print(f"goal: under 1.2 s -> {'met' if total < 1.2 else 'NOT met'}")
    if jax.default_backend() == "gpu":
        _large_gpu(net)


def _large_gpu(net, n_train=20000, n_test=2000) -> None:
    """Train size 20000 on a GPU: kernels in blocks, then the ensemble mean and variances."""
    k1, k2, k3 = jax.random.split(jax.random.key(1), 3)
    x_train = jax.random.normal(k1, (n_train, DIM), jnp.float32)
    x_test = jax.random.normal(k2, (n_test, DIM), jnp.float32)
    y_train = jax.random.normal(k3, (n_train, 1), jnp.float32)

    def run():
        k_train = nnlab.kernel(net, x_train, get=("nngp", "ntk"))
        k_test = nnlab.kernel(net, x_test, x_train, get=("nngp", "ntk"))
        var_test = jnp.diagonal(nnlab.kernel(net, x_test, get="nngp"))
        out = predict.ensemble_mse(
            k_train, y_train, T, k_test, var_test, lr=1.0, loss_normalization="sum"
        )
        return jax.block_until_ready(out)

    start = time.perf_counter()
    out = run()
    first = time.perf_counter() - start
    start = time.perf_counter()
    out = run()
    again = time.perf_counter() - start
    finite = bool(jnp.all(jnp.isfinite(out.mean)) and jnp.all(jnp.isfinite(out.covariance)))
    print(
        f"GPU, {n_train} train / {n_test} test: ensemble mean + test variances, kernels "
        f"included: {again:.2f} s (first call {first:.2f} s); finite: {finite}"
    )


if __name__ == "__main__":
    main()
