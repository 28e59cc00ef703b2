"""Two processes on this machine (``jax.distributed`` with a coordinator on 127.0.0.1 and CPU
collectives) compute a sharded kernel-vector product and a CG solve; process 0 saves them and
this test compares them with one process computing the same on one device (1e-6 relative, the
issue's bar; the operations are the same float64 sums in another order, so ~1e-12 in fact).
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
from _helpers import run_processes

import nnlab
from nnlab import layers as nl
from nnlab import predict

SCRIPT = """
    import os, sys
    import jax, numpy as np
    jax.config.update("jax_enable_x64", True)
    jax.distributed.initialize(os.environ["COORDINATOR"], int(os.environ["PROCESS_COUNT"]),
                               int(os.environ["PROCESS_ID"]))
    import nnlab
    from nnlab import layers as nl, predict
    sys.path.insert(0, {tests!r})
    from test_multihost import problem
    assert jax.process_count() == 2 and len(jax.devices()) == 4, jax.devices()
    net, x, xt, y, v = problem()
    op = nnlab.kernel_operator(net, x, block_rows=16)  # 203 rows: 4 blocks per device
    kv = op @ v
    pred = predict.kernel_regression(op, y, nnlab.kernel_operator(net, xt, x), ridge=1e-3,
                                     solver=predict.CG(rank=64))
    if jax.process_index() == 0:
        np.savez({out!r}, kv=np.asarray(kv), pred=np.asarray(pred))
    print("ok")
"""


def problem():
    net = nl.serial(nl.Dense(1, W_std=1.4, b_std=0.1), nl.Relu(), nl.Dense(1))
    rng = np.random.default_rng(0)
    x, xt = rng.normal(size=(203, 5)), rng.normal(size=(17, 5))
    return net, x, xt, np.sin(2 * x[:, :1]), rng.normal(size=(203, 2))


def test_two_processes_match_one(x64, tmp_path):
    out = tmp_path / "two.npz"
    run_processes(SCRIPT.format(tests=str(Path(__file__).parent), out=str(out)))
    two = np.load(out)
    net, x, xt, y, v = problem()
    one_device = jax.devices()[:1]
    op = nnlab.kernel_operator(net, x, devices=one_device)
    np.testing.assert_allclose(two["kv"], op @ v, rtol=1e-6)
    want = predict.kernel_regression(
        nnlab.kernel(net, x, get="ntk"), y, nnlab.kernel(net, xt, x, get="ntk"), ridge=1e-3,
        solver="cholesky",
    )  # fmt: skip
    np.testing.assert_allclose(two["pred"], want, rtol=1e-6, atol=1e-6 * np.max(np.abs(want)))
