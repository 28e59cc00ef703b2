"""Benchmark nnlab.train: a vmapped ensemble versus Python loops over members.

Workload (the issue's): 64 members, 3-hidden-layer ReLU MLPs of width 1024 (4096 on GPU),
full batch of 512 points (d = 32), 200 SGD steps. On CPU that is far too slow for 2 cores,
so the CPU default is scaled down (width 128, 40 steps, stated in the table); the metric is
the ratio of the ensemble to the loops. On a GPU the script also reports achieved TFLOP/s
against the H100 dense matmul ceiling of the chosen precision (f32 'highest' 49.8, TF32
'default' 343 TFLOP/s). FLOPs count the matmuls only: ``6 N P`` per training step (forward,
two backward products) plus ``2 N P`` per logged loss, ``P`` the weight count.

Times exclude compilation: after a warm-up call, each configuration is timed at ``steps``
and at ``steps // 10`` and the difference is divided by the step difference (compile time cancels).

Usage: ``python benchmarks/train.py [--width W] [--steps S] [--members M] [--precision
highest|default] [--skip-loops] [--python-loop-only]``.

On CPU the ensemble's per-step cost is about that of a Python loop of a jitted step (the
matmuls are already compute-bound on 2 cores); its gain there is one compile instead of one
per member. On GPU the batched matmuls reach the hardware ceilings (see docs/train.md).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import optax

from nnlab import layers as nl
from nnlab import train as T

CEILINGS = {"highest": 49.8, "default": 343.0, "high": 343.0}  # H100 SXM dense TFLOP/s


def model(width, depth):
    layers = []
    for _ in range(depth):
        layers += [nl.Dense(width), nl.Relu()]
    return nl.serial(*layers, nl.Dense(1))


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    jax.block_until_ready(jax.tree_util.tree_leaves(out))
    return time.perf_counter() - t0


def per_step(run, steps):
    """Seconds per step with compilation cancelled: (t(steps) - t(steps/10)) / (0.9 steps).

    A first untimed call absorbs one-off start-up costs (GPU context, autotuning).
    """
    short = max(1, steps // 10)
    timed(lambda: run(short))
    t_short = timed(lambda: run(short))
    t_long = timed(lambda: run(steps))
    return (t_long - t_short) / (steps - short), t_long


def main():
    on_gpu = jax.default_backend() == "gpu"
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=64)
    ap.add_argument("--width", type=int, default=4096 if on_gpu else 128)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--d", type=int, default=32)
    ap.add_argument("--steps", type=int, default=200 if on_gpu else 40)
    ap.add_argument("--precision", choices=("highest", "default"), default="highest")
    ap.add_argument("--skip-loops", action="store_true", help="time the ensemble only")
    ap.add_argument("--python-loop-only", action="store_true", help="skip the train() loop")
    a = ap.parse_args()

    x = jax.random.normal(jax.random.key(1), (a.n, a.d))
    y = jnp.sin(x[:, :1])
    data = T.Data(x, y)
    net = model(a.width, a.depth)
    init = lambda k: net.init(k, x.shape)[1]  # noqa: E731
    lrs = jnp.full((a.members,), 0.05)
    keys = jax.random.split(jax.random.key(0), a.members)

    def ensemble(steps):
        return T.train_ensemble(
            net.apply,
            init,
            data,
            optimizer=lambda lr: optax.sgd(lr),
            seeds=keys[:1],
            hyperparams={"lr": lrs},
            steps=steps,
            log_every=steps,
            precision=a.precision,
        ).train_loss

    p_count = a.d * a.width + (a.depth - 1) * a.width**2 + a.width
    flops_step = 6 * a.n * p_count * a.members
    print(f"backend={jax.default_backend()} devices={len(jax.devices())} precision={a.precision}")
    print(
        f"workload: {a.members} members x {a.depth}-hidden-layer width-{a.width} MLP, "
        f"{a.n} points, {a.steps} steps (timed as the difference of {a.steps} and "
        f"{max(1, a.steps // 10)} steps)"
    )
    s_ens, t_ens = per_step(ensemble, a.steps)
    rows = [("ensemble (jit+vmap+scan)", s_ens, t_ens)]

    if not a.skip_loops:
        grad = jax.jit(
            jax.value_and_grad(lambda p: 0.5 * jnp.mean(jnp.sum((net.apply(p, x) - y) ** 2, -1)))
        )

        def python_loop(steps):  # the conventional loop: per member, per step, a jitted grad
            out = []
            for k in keys:
                p = init(k)
                opt = optax.sgd(0.05)
                st = opt.init(p)
                for _ in range(steps):
                    _, g = grad(p)
                    u, st = opt.update(g, st, p)
                    p = optax.apply_updates(p, u)
                out.append(grad(p)[0])
            return out

        def train_loop(steps):  # a compiled train() per member, one after another
            return [
                T.train(
                    net.apply,
                    init(k),
                    data,
                    optimizer=optax.sgd(0.05),
                    steps=steps,
                    log_every=steps,
                    precision=a.precision,
                ).train_loss
                for k in keys
            ]

        loops = [("python loop over members and steps", python_loop)]
        if not a.python_loop_only:
            loops.append(("loop over members of compiled train()", train_loop))
        for name, fn in loops:
            s, t = per_step(fn, a.steps)
            rows.append((name, s, t))

    print(
        f"\n| method | s/step (all members) | total s ({a.steps} steps, incl. compile) "
        "| ensemble speed-up | TFLOP/s |"
    )
    print("|---|---|---|---|---|")
    for name, s, t in rows:
        print(f"| {name} | {s:.4g} | {t:.3g} | {s / s_ens:.2f}x | {flops_step / s / 1e12:.3g} |")
    if on_gpu:
        ceil = CEILINGS[a.precision]
        print(
            f"\nensemble: {flops_step / s_ens / 1e12:.1f} TFLOP/s = "
            f"{100 * flops_step / s_ens / 1e12 / ceil:.0f}% of the H100 {a.precision} "
            f"ceiling ({ceil} TFLOP/s)"
        )


if __name__ == "__main__":
    main()
