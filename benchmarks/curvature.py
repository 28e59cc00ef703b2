"""Benchmark: Hessian-vector products against gradients (issue 11).

A tanh MLP 64 -> 768 -> 768 -> 512 -> 1 (about 1.03M parameters) on 2048 points, MSE,
float32. Reports the time of one gradient, of one Hessian-vector product (forward-over-reverse,
whole batch and in chunks of 512) and of the top-5 eigenvalues by Lanczos (30 products), with
the ratio HVP / gradient (goal: <= 3). Times: median of several runs after a warm-up call, with
``block_until_ready``.

Run: ``python benchmarks/curvature.py [--quick]``.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from nnlab import curvature as cv


def mlp_init(key, sizes):
    params = []
    for d_in, d_out in itertools.pairwise(sizes):
        key, k = jax.random.split(key)
        params.append({"w": jax.random.normal(k, (d_in, d_out)), "b": jnp.zeros((d_out,))})
    return params


def mlp_apply(params, x):
    for i, layer in enumerate(params):
        x = x @ layer["w"] / jnp.sqrt(x.shape[-1]) + layer["b"][None]
        if i < len(params) - 1:
            x = jnp.tanh(x)
    return x


def timeit(fn, *args, repeats):
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    args = ap.parse_args()
    repeats = 3 if args.quick else 10
    sizes = (64, 768, 768, 512, 1)
    params = mlp_init(jax.random.key(0), sizes)
    kx, ky, kv = jax.random.split(jax.random.key(1), 3)
    x = jax.random.normal(kx, (2048, sizes[0]))
    y = jax.random.normal(ky, (2048, 1))
    flat, unravel = ravel_pytree(params)
    n_params = flat.size

    def loss(q):
        return 0.5 * jnp.mean(jnp.square(mlp_apply(unravel(q), x) - y))

    grad = jax.jit(jax.grad(loss))
    v = jax.random.normal(kv, (n_params,))
    hvp_full = jax.jit(lambda p, v: cv.hessian_operator(mlp_apply, p, x, y).matvec(v))
    hvp_chunk = jax.jit(
        lambda p, v: cv.hessian_operator(mlp_apply, p, x, y, batch_size=512).matvec(v)
    )
    top5 = jax.jit(
        lambda p: (
            cv.top_eigenpairs(
                cv.hessian_operator(mlp_apply, p, x, y), jax.random.key(2), 5, num_iters=30
            ).eigenvalues
        )
    )
    t_grad = timeit(grad, flat, repeats=repeats)
    t_hvp = timeit(hvp_full, params, v, repeats=repeats)
    t_chunk = timeit(hvp_chunk, params, v, repeats=repeats)
    t_top = timeit(top5, params, repeats=max(1, repeats // 3))
    print(f"devices: {jax.devices()}; parameters: {n_params:,}; points: {x.shape[0]}")
    print("| quantity | time (ms) | ratio to one gradient |")
    print("|---|---|---|")
    print(f"| gradient | {1e3 * t_grad:.2f} | 1.00 |")
    print(f"| HVP (whole batch) | {1e3 * t_hvp:.2f} | {t_hvp / t_grad:.2f} |")
    print(f"| HVP (4 chunks of 512) | {1e3 * t_chunk:.2f} | {t_chunk / t_grad:.2f} |")
    print(f"| top-5 Lanczos, 30 HVPs | {1e3 * t_top:.1f} | {t_top / t_grad:.1f} |")
    print(f"| top-5 Lanczos per HVP | {1e3 * t_top / 30:.2f} | {t_top / 30 / t_grad:.2f} |")
    print(f"top-5 eigenvalues: {top5(params)}")
    print(f"goal HVP / gradient <= 3: {'met' if t_hvp / t_grad <= 3 else 'NOT met'}")


if __name__ == "__main__":
    main()
