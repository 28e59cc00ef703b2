"""Kernel methods at scale: memory-exact kernels, Nyström-preconditioned CG, mnist1d regression.

Each workload runs in its own Python process, so its peak resident memory (``ru_maxrss``) is its
own. Rows (issue 17's table):

* ``kernel``: ``nnlab.kernel`` NTK of a 3-hidden-layer ReLU MLP (float32, 40 features) at
  N = 11,500, 12,000 and 20,000; time (warm) and peak memory against ``(N/11,500)^2`` times the
  N = 11,500 figures (goal: within 1.3x), and the peak over the output size.
* ``iterations``: CG iterations to a relative residual of 1e-6 with and without a rank-500
  Nyström preconditioner (goal: at most 1/5), float64 stored NTK of mnist1d.
* ``regression``: NTK kernel regression on mnist1d (float32, stored kernel, Nyström CG):
  time, peak memory and test error; the same problem on a subset solved by Cholesky in
  float64 gives the reference test error.
* ``matrix_free``: matrix-free Nyström CG (``nnlab.kernel_operator``) on N points, run
  with ``--n`` (the issue's rows are N = 10^5 on a 2-core CPU and N = 10^6 on one GPU).

Run ``python benchmarks/scale.py`` for the CPU rows (``kernel``, ``iterations``,
``regression`` at N = 50,000), or ``python benchmarks/scale.py WORKLOAD [--n N]`` for one.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

RIDGE = 1e-3  # times the mean diagonal of the kernel


def _mlp():
    from nnlab import layers as nl

    layers = []
    for _ in range(3):
        layers += [nl.Dense(1024, W_std=2**0.5, b_std=0.1), nl.Relu()]
    return nl.serial(*layers, nl.Dense(1, W_std=2**0.5, b_std=0.1))


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(fn):
    start = time.perf_counter()
    out = jax.block_until_ready(fn())
    return out, time.perf_counter() - start


def _mnist(n_train, n_test, dtype):
    from nnlab import data

    d = data.mnist1d(jax.random.key(0), n_train + n_test, dtype=dtype)
    return d.x[:n_train], d.y[:n_train], d.x[n_train:], d.y[n_train:]


def _error(pred, y):
    return float(np.mean(np.argmax(np.asarray(pred), 1) != np.argmax(np.asarray(y), 1)))


def workload_kernel(n):
    import nnlab

    x = jax.random.normal(jax.random.key(0), (n, 40), jnp.float32)
    net = _mlp()
    jax.block_until_ready(nnlab.kernel(net, x[:2000], get="ntk"))  # the runtime, compiled
    baseline = _peak_mib()
    k, seconds = _timed(lambda: nnlab.kernel(net, x, get="ntk"))
    return {
        "n": n, "seconds": seconds, "peak_mib": _peak_mib(), "baseline_mib": baseline,
        "output_mib": k.nbytes / 2**20,
    }  # fmt: skip


def workload_iterations(n):
    jax.config.update("jax_enable_x64", True)
    import nnlab
    from nnlab import predict

    x, y, _, _ = _mnist(n, 0, jnp.float64)
    k = nnlab.kernel(_mlp(), x, get="ntk")
    ridge = RIDGE * float(jnp.mean(jnp.diag(k)))
    out = {"n": n}
    for name, solver in (
        ("plain", predict.CG(rtol=1e-6, preconditioner=None, max_iter=20000)),
        ("nystrom", predict.CG(rtol=1e-6, rank=500)),
    ):
        s, seconds = _timed(
            lambda solver=solver: predict.solve_kernel_system(k, y, ridge=ridge, solver=solver)
        )
        out[name] = {
            "iterations": int(s.iterations),
            "converged": bool(s.converged),
            "seconds": seconds,
        }
    return out


def workload_regression(n, subset=10_000, n_test=10_000):
    import nnlab
    from nnlab import predict

    x, y, xt, yt = _mnist(n, n_test, jnp.float32)
    net = _mlp()
    start = time.perf_counter()
    k = jax.block_until_ready(nnlab.kernel(net, x, get="ntk"))
    kt = jax.block_until_ready(nnlab.kernel(net, xt, x, get="ntk"))
    kernel_s = time.perf_counter() - start
    ridge = RIDGE * float(jnp.mean(jnp.diag(k)))
    start = time.perf_counter()
    s = jax.block_until_ready(
        predict.solve_kernel_system(k, y, ridge=ridge, solver=predict.CG(rank=500))
    )
    solve_s = time.perf_counter() - start
    pred = kt @ s.coef
    out = {
        "n": n, "kernel_s": kernel_s, "solve_s": solve_s, "iterations": int(s.iterations),
        "converged": bool(s.converged), "test_error": _error(pred, yt), "peak_mib": _peak_mib(),
    }  # fmt: skip
    print(json.dumps(out), file=sys.stderr, flush=True)  # the main row, before the subset check
    del k, kt
    # the subset check: the same pipeline (float32 CG) and float64 Cholesky on `subset` points
    with jax.enable_x64(True):
        x64, y64, xt64 = (jnp.asarray(a, jnp.float64) for a in (x[:subset], y[:subset], xt))
        k64, kt64 = nnlab.kernel(net, x64, get="ntk"), nnlab.kernel(net, xt64, x64, get="ntk")
        r64 = RIDGE * float(jnp.mean(jnp.diag(k64)))
        chol = np.asarray(predict.kernel_regression(k64, y64, kt64, ridge=r64, solver="cholesky"))
        k32, kt32 = (jnp.asarray(np.asarray(a), jnp.float32) for a in (k64, kt64))
    cg = predict.kernel_regression(k32, y[:subset], kt32, ridge=r64, solver=predict.CG(rank=500))
    out["subset"] = {
        "n": subset, "cholesky_f64_test_error": _error(chol, yt),
        "cg_f32_test_error": _error(cg, yt),
        "max_prediction_difference": float(np.max(np.abs(np.asarray(cg) - chol))),
    }  # fmt: skip
    return out


def workload_matrix_free(n, n_test=10_000):
    import nnlab
    from nnlab import predict

    x, y, xt, yt = _mnist(n, n_test, jnp.float32)
    net = _mlp()
    op = nnlab.kernel_operator(net, x)
    ridge = RIDGE * float(jnp.mean(op.diagonal()))
    solver = predict.CG(rank=200, max_iter=200)
    s, solve_s = _timed(lambda: predict.solve_kernel_system(op, y, ridge=ridge, solver=solver))
    pred, predict_s = _timed(lambda: nnlab.kernel_operator(net, xt, x) @ s.coef)
    return {
        "n": n, "solve_s": solve_s, "predict_s": predict_s, "iterations": int(s.iterations),
        "converged": bool(s.converged), "test_error": _error(pred, yt), "peak_mib": _peak_mib(),
        "device": jax.devices()[0].device_kind,
    }  # fmt: skip


WORKLOADS = {
    "kernel": workload_kernel,
    "iterations": workload_iterations,
    "regression": workload_regression,
    "matrix_free": workload_matrix_free,
}


def _child(workload: str, n: int) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, workload, "--n", str(n), "--json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"{workload} N={n} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main_table():
    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()})")
    base = _child("kernel", 11_500)
    print(
        "\n| N | seconds | peak MiB | output MiB | peak/output | (peak - baseline)/output |", end=""
    )
    print(" time / scaled N=11500 | peak / scaled |\n|---|---|---|---|---|---|---|---|")
    for n in (11_500, 12_000, 20_000):
        r = base if n == 11_500 else _child("kernel", n)
        scale = (n / 11_500) ** 2
        print(
            f"| {n} | {r['seconds']:.2f} | {r['peak_mib']:.0f} | {r['output_mib']:.0f} | "
            f"{r['peak_mib'] / r['output_mib']:.2f} | "
            f"{(r['peak_mib'] - r['baseline_mib']) / r['output_mib']:.2f} | "
            f"{r['seconds'] / (scale * base['seconds']):.2f} | "
            f"{r['peak_mib'] / (scale * base['peak_mib']):.2f} |"
        )
    it = _child("iterations", 10_000)
    ratio = it["nystrom"]["iterations"] / it["plain"]["iterations"]
    print(f"\nCG iterations to 1e-6 (mnist1d NTK, N = {it['n']}, float64): {json.dumps(it)}")
    print(f"preconditioned / plain = {ratio:.3f} (goal <= 0.2)")
    reg = _child("regression", 50_000)
    print(f"\nNTK regression, mnist1d N = 50,000: {json.dumps(reg)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", nargs="?", choices=sorted(WORKLOADS))
    parser.add_argument("--n", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON line (for the table)")
    args = parser.parse_args()
    if args.workload is None:
        main_table()
    else:
        default_n = {
            "kernel": 11_500,
            "iterations": 10_000,
            "regression": 50_000,
            "matrix_free": 100_000,
        }
        result = WORKLOADS[args.workload](args.n or default_n[args.workload])
        print(json.dumps(result))
