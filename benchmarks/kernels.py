"""Analytic NNGP+NTK timings against neural-tangents 0.6.5 (issue 3's reference workloads).

float32, CPU unless a GPU is present. Compile time is excluded (one warm-up
call) and reported separately; times are medians over repeats with
``block_until_ready``. On a GPU also times an N=20000 MLP kernel and compares
it with the time to write its output at the elementwise-copy bandwidth.
"""

from __future__ import annotations

import statistics
import time

import jax

import nnlab
from nnlab import layers as nl

# neural-tangents 0.6.5 on a 2-core CPU machine of this kind (seconds), from the issue.
NT_SECONDS = {"mlp_relu": 0.18, "mlp_erf": 0.13, "cnn_relu_gap": 3.97}
GPU_COPY_BYTES_PER_S = 2.1e12  # measured elementwise-copy bandwidth of an H100 via JAX


def _mlp(act):
    layers = []
    for _ in range(3):
        layers += [nl.Dense(1024, W_std=2**0.5, b_std=0.1), act]
    return nl.serial(*layers, nl.Dense(1, W_std=2**0.5, b_std=0.1))


def _cnn():
    return nl.serial(
        nl.Conv(64, (3, 3), padding="SAME", W_std=2**0.5, b_std=0.1),
        nl.Relu(),
        nl.Conv(64, (3, 3), padding="SAME", W_std=2**0.5, b_std=0.1),
        nl.Relu(),
        nl.GlobalAvgPool(),
        nl.Dense(1, W_std=2**0.5, b_std=0.1),
    )


def time_kernel(net, x1, x2=None, repeats=7, **kw):
    fn = jax.jit(lambda a, b: nnlab.kernel(net, a, b, **kw))
    start = time.perf_counter()
    jax.block_until_ready(fn(x1, x2))
    compile_s = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(x1, x2))
        times.append(time.perf_counter() - start)
    return statistics.median(times), compile_s


def main():
    key1, key2 = jax.random.split(jax.random.key(0))
    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), float32")
    rows = []
    x1 = jax.random.normal(key1, (2000, 100))
    x2 = jax.random.normal(key2, (2000, 100))
    for name, act in (("mlp_relu", nl.Relu()), ("mlp_erf", nl.Erf())):
        rows.append((name, "2000x2000, dim 100, 3 hidden", *time_kernel(_mlp(act), x1, x2)))
    imgs = jax.random.normal(key1, (64, 8, 8, 3))
    rows.append(("cnn_relu_gap", "64x64 images 8x8x3, 2 conv", *time_kernel(_cnn(), imgs)))

    print(
        f"{'workload':<14} {'shape':<30} {'nnlab (s)':>10} {'compile (s)':>12} "
        f"{'NT 0.6.5 (s)':>13} {'nnlab/NT':>9}"
    )
    for name, shape, t, c in rows:
        print(
            f"{name:<14} {shape:<30} {t:>10.4f} {c:>12.2f} {NT_SECONDS[name]:>13.2f} "
            f"{t / NT_SECONDS[name]:>9.3f}"
        )
    print("goal: nnlab/NT <= 0.5 (neural-tangents timings measured on 2 CPU cores)")

    if jax.default_backend() == "gpu":
        n = 20000
        xa = jax.random.normal(key1, (n, 100))
        t, c = time_kernel(_mlp(nl.Relu()), xa, None, repeats=3)
        out_bytes = 2 * n * n * 4  # nngp + ntk, float32
        floor = out_bytes / GPU_COPY_BYTES_PER_S
        print(
            f"\nGPU N={n} ReLU MLP NNGP+NTK (x1 with itself): {t:.3f} s (compile {c:.1f} s); "
            f"writing the two outputs at copy bandwidth takes {floor * 1e3:.1f} ms, "
            f"ratio {t / floor:.1f}x the memory-bandwidth floor"
        )


if __name__ == "__main__":
    main()
