"""Benchmark: empirical NTK methods against neural-tangents 0.6.5 (issue 4).

MLP of 3 hidden Dense(1024)+ReLU layers, scalar output, x1 and x2 of 256 inputs of
dimension 100, float32. Reference timings (neural-tangents 0.6.5, 2-core CPU) are
quoted in the issue. Times: median of several runs after a warm-up call, with
``block_until_ready``; compile time (first call minus median) is reported apart.

Run: ``python benchmarks/empirical.py [--quick]``. On a GPU it also reports the
TFLOP/s of the jacobian path on a larger case against a measured matmul ceiling.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

from nnlab.empirical import empirical_ntk

NT_SECONDS = {"jacobian": 20.4, "ntk_vp": 11.7, "structured": 0.115}


def mlp(widths):
    def init(key, d_in):
        params = []
        for w in widths:
            key, k = jax.random.split(key)
            params.append({"w": jax.random.normal(k, (d_in, w)), "b": jnp.zeros((w,))})
            d_in = w
        return params

    def apply(params, x):
        for i, layer in enumerate(params):
            x = (x @ layer["w"]) / jnp.sqrt(x.shape[-1]) + layer["b"][None]
            if i < len(params) - 1:
                x = jax.nn.relu(x)
        return x

    return init, apply


def timeit(fn, *args, repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return med, max(first - med, 0.0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    args = ap.parse_args()
    init, apply = mlp([1024, 1024, 1024, 1])
    key = jax.random.key(0)
    params = init(key, 100)
    k1, k2 = jax.random.split(jax.random.key(1))
    x1 = jax.random.normal(k1, (256, 100))
    x2 = jax.random.normal(k2, (256, 100))
    print(f"devices: {jax.devices()}")
    print("| method | nnlab time (s) | compile (s) | neural-tangents 0.6.5 (s) | ratio nnlab/NT |")
    print("|---|---|---|---|---|")
    results = {}
    for method in ("structured", "ntk_vp", "jacobian", "auto"):
        fn = jax.jit(lambda p, a, b, m=method: empirical_ntk(apply, p, a, b, method=m))
        repeats = 2 if method in ("jacobian", "ntk_vp") or args.quick else 7
        med, comp = timeit(fn, params, x1, x2, repeats=repeats)
        results[method] = fn(params, x1, x2)
        ref = NT_SECONDS.get(method, NT_SECONDS["structured"])
        ref_name = method if method in NT_SECONDS else "structured (best)"
        print(f"| {method} | {med:.4f} | {comp:.2f} | {ref} ({ref_name}) | {med / ref:.3f} |")
    base = results["jacobian"]
    for m, k in results.items():
        rel = float(jnp.max(jnp.abs(k - base)) / jnp.max(jnp.abs(base)))
        print(f"max relative difference {m} vs jacobian: {rel:.2e}")
    if any(d.platform == "gpu" for d in jax.devices()):
        gpu_report(apply, init)


def gpu_report(apply, init):
    n, d = 8192, 8192
    a = jax.random.normal(jax.random.key(0), (n, d))
    mm = jax.jit(lambda a: a @ a)
    t, _ = timeit(mm, a, repeats=5)
    ceiling = 2 * n**3 / t / 1e12
    params = init(jax.random.key(0), 100)
    x = jax.random.normal(jax.random.key(2), (1024, 100))
    fn = jax.jit(lambda p, a: empirical_ntk(apply, p, a, a, method="jacobian"))
    t, _ = timeit(fn, params, x, repeats=3)
    p = sum(l.size for l in jax.tree_util.tree_leaves(params))
    flops = 2.0 * 1024 * 1024 * p  # the contraction alone
    print(f"GPU float32 matmul ceiling: {ceiling:.1f} TFLOP/s")
    print(
        f"jacobian path, 1024x1024: {t:.3f} s, {flops / t / 1e12:.1f} TFLOP/s "
        f"({100 * flops / t / 1e12 / ceiling:.0f}% of ceiling, contraction FLOPs only)"
    )


if __name__ == "__main__":
    main()
