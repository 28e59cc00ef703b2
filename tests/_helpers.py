"""Helpers shared by several test files: the small training problem and a multi-device run.

``mlp`` and ``toy_regression`` are the network and data of the nnlab.train tests;
``run_on_host_devices`` runs a script in a fresh Python with several XLA host devices (the
device count is fixed when JAX starts, so sharding tests cannot set it in this process).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import layers as nl


def mlp(width, depth=1):
    """``depth`` hidden ReLU layers of ``width`` (W_std 1.4, b_std 0.1), then one output."""
    layers = []
    for _ in range(depth):
        layers += [nl.Dense(width, W_std=1.4, b_std=0.1), nl.Relu()]
    return nl.serial(*layers, nl.Dense(1))


def toy_regression(n=8, d=3, seed=1):
    """``n`` Gaussian inputs in ``d`` dimensions and the targets ``sin(2 x_0)``, shape (n, 1)."""
    x = jax.random.normal(jax.random.key(seed), (n, d))
    return x, jnp.sin(2.0 * x[:, :1])


def run_on_host_devices(script: str, devices: int = 4) -> None:
    """Run ``script`` (dedented) with ``devices`` CPU devices; it must exit 0 and print ``ok``.

    ``XLA_FLAGS`` is replaced, not extended: the child compiles at XLA's default optimisation
    level, whatever the suite's conftest set for this process.
    """
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]


def assert_member_matches_run(member_loss, member_distance, run) -> None:
    """An ensemble member's ``train_loss`` and ``weight_distance`` equal a single run's.

    vmap vs a single run: the same float64 operations, whose reduction order may differ
    (~1e-15), so 1e-10 relative (1e-13 absolute for the distance, which starts at 0).
    """
    np.testing.assert_allclose(member_loss, run.train_loss, rtol=1e-10)
    np.testing.assert_allclose(
        member_distance, run.observables["weight_distance"], rtol=1e-10, atol=1e-13
    )


def run_processes(script: str, processes: int = 2, devices: int = 2) -> None:
    """Run ``script`` (dedented) in ``processes`` Pythons joined by ``jax.distributed``.

    Each process has ``devices`` CPU devices and gets ``PROCESS_ID``, ``PROCESS_COUNT`` and
    ``COORDINATOR`` (``127.0.0.1:<free port>``) in its environment; the script calls
    ``jax.distributed.initialize`` with them. Every process must exit 0 and print ``ok``.
    """
    import socket

    with socket.socket() as s:  # a free port for the coordinator
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for pid in range(processes):
        env = dict(
            os.environ,
            XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
            PROCESS_ID=str(pid),
            PROCESS_COUNT=str(processes),
            COORDINATOR=f"127.0.0.1:{port}",
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", textwrap.dedent(script)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=300)
            outputs.append((p.returncode, out, err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for pid, (code, out, err) in enumerate(outputs):
        assert code == 0 and "ok" in out, f"process {pid} (exit {code}):\n{err[-3000:]}"
