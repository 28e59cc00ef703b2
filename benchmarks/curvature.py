"""Benchmark: curvature products and top eigenvalues against gradients (issue 11).

A tanh network ``serial(Dense(768), Tanh(), Dense(768), Tanh(), Dense(512), Tanh(), Dense(1))``
(NTK parameterisation, about 1.03M parameters) on 2048 points, MSE, float32. Reports the
time of one gradient, of one Hessian-vector product (forward-over-reverse, whole batch and in
chunks of 512), of the top-5 eigenvalues by Lanczos (30 products) and of the top eigenvalue
of the Hessian, the Gauss-Newton matrix and the empirical NTK by the one routine
``nnlab.curvature.top_eigenvalue`` (10 products each), with ratios to one gradient (goal for
an HVP: <= 3). Times: median of several runs after a warm-up call, with ``block_until_ready``.

Run: ``python benchmarks/curvature.py [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from nnlab import curvature as cv
from nnlab import layers as nl

TOP_ITERS = 10  # products per top-eigenvalue row


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
    widths = (768, 768, 512)
    hidden = [layer for w in widths for layer in (nl.Dense(w, b_std=0.1), nl.Tanh())]
    net = nl.serial(*hidden, nl.Dense(1, b_std=0.1))
    kx, ky, kv = jax.random.split(jax.random.key(1), 3)
    x = jax.random.normal(kx, (2048, 64))
    y = jax.random.normal(ky, (2048, 1))
    _, params = net.init(jax.random.key(0), x.shape)
    flat, unravel = ravel_pytree(params)

    def loss(q):
        return 0.5 * jnp.mean(jnp.square(net.apply(unravel(q), x) - y))

    grad = jax.jit(jax.grad(loss))
    v = jax.random.normal(kv, (flat.size,))
    hessian = lambda p, **kw: cv.hessian_operator(net.apply, p, x, y, **kw)  # noqa: E731
    hvp_full = jax.jit(lambda p, v: hessian(p).matvec(v))
    hvp_chunk = jax.jit(lambda p, v: hessian(p, batch_size=512).matvec(v))
    key = jax.random.key(2)
    top5 = jax.jit(lambda p: cv.top_eigenpairs(hessian(p), key, 5, num_iters=30).eigenvalues)
    operators = {
        "Hessian": hessian,
        "Gauss-Newton": lambda p: cv.gauss_newton_operator(net.apply, p, x, y),
        "eNTK (2048 outputs)": lambda p: cv.ntk_operator(net.apply, p, x),
    }
    tops = {
        name: jax.jit(lambda p, make=make: cv.top_eigenvalue(make(p), key, num_iters=TOP_ITERS))
        for name, make in operators.items()
    }
    t_grad = timeit(grad, flat, repeats=repeats)
    t_hvp = timeit(hvp_full, params, v, repeats=repeats)
    t_chunk = timeit(hvp_chunk, params, v, repeats=repeats)
    t_top = timeit(top5, params, repeats=max(1, repeats // 3))
    t_tops = {name: timeit(fn, params, repeats=max(1, repeats // 3)) for name, fn in tops.items()}
    print(f"devices: {jax.devices()}; parameters: {flat.size:,}; points: {x.shape[0]}")
    print("| quantity | time (ms) | ratio to one gradient |")
    print("|---|---|---|")
    print(f"| gradient | {1e3 * t_grad:.2f} | 1.00 |")
    print(f"| HVP (whole batch) | {1e3 * t_hvp:.2f} | {t_hvp / t_grad:.2f} |")
    print(f"| HVP (4 chunks of 512) | {1e3 * t_chunk:.2f} | {t_chunk / t_grad:.2f} |")
    print(f"| top-5 Lanczos, 30 HVPs | {1e3 * t_top:.1f} | {t_top / t_grad:.1f} |")
    print(f"| top-5 Lanczos per HVP | {1e3 * t_top / 30:.2f} | {t_top / 30 / t_grad:.2f} |")
    for name, t in t_tops.items():
        per = t / TOP_ITERS
        print(f"| top_eigenvalue, {name}, per product | {1e3 * per:.2f} | {per / t_grad:.2f} |")
    print(f"top-5 Hessian eigenvalues: {top5(params)}")
    print(
        f"top eigenvalues ({TOP_ITERS} products): "
        + ", ".join(f"{name} {float(fn(params)):.5g}" for name, fn in tops.items())
    )
    print(f"goal HVP / gradient <= 3: {'met' if t_hvp / t_grad <= 3 else 'NOT met'}")


if __name__ == "__main__":
    main()
