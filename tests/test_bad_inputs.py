"""The bad-input sweep over nnlab's public API: every bad call is a clear error, never garbage.

Each case is ``(id, call, error, match)``: ``call()`` must raise ``error`` (``TypeError`` for
the wrong kind, ``ValueError`` for a bad value) with a message matching ``match`` (the
argument's name). This file covers layers, ``kernel``, ``empirical``, ``taylor``, ``train``
and ``parameterization``; ``tests/test_theory_inputs.py`` covers the theory modules in the
same format. Run ``python tests/test_bad_inputs.py`` for the counts over both files:

* clear: the expected error type, naming the argument;
* accepted: a valid call (NumPy integers, legacy keys) that returns a finite result;
* cryptic: another exception, or a message that does not name the argument;
* silent: no error where one was due.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnlab
from nnlab import empirical, taylor
from nnlab import layers as nl
from nnlab import parameterization as pz
from nnlab import train as tr

NAN, INF = float("nan"), float("inf")
KEY = jax.random.key(0)
I64 = np.int64
X = jnp.array([[1.0, 0.3], [-0.4, 0.9], [0.2, -1.1]])
X_NAN = X.at[0, 0].set(NAN)
X_INF = X.at[1, 1].set(INF)
X_EMPTY = jnp.zeros((0, 2))
X_INT = jnp.ones((3, 2), jnp.int32)
NET = nl.serial(nl.Dense(4, W_std=1.3, b_std=0.2), nl.Relu(), nl.Dense(1))
_, PARAMS = NET.init(KEY, X.shape)
Y = jnp.ones((3, 1))


def _apply(p, x):
    return NET.apply(p, x)


def _init(k):
    return NET.init(k, X.shape)[1]


SGD = optax.sgd(0.1)
DATA = tr.Data(X, Y)


def _layer_cases():
    cases = []
    float_fields = {
        "Dense": (lambda **kw: nl.Dense(4, **kw), ["W_std", "b_std"]),
        "Conv": (lambda **kw: nl.Conv(4, (2, 2), **kw), ["W_std", "b_std"]),
        "Erf": (nl.Erf, ["a", "b", "c"]),
        "Sin": (nl.Sin, ["a", "b"]),
        "Cos": (nl.Cos, ["a", "b", "c"]),
        "Gaussian": (nl.Gaussian, ["a", "width"]),
        "Rbf": (nl.Rbf, ["gamma"]),
        "LeakyRelu": (nl.LeakyRelu, ["alpha"]),
        "ABRelu": (nl.ABRelu, ["a", "b"]),
    }
    for cls, (make, fields) in float_fields.items():
        for field in fields:
            for label, value, error in (
                ("str", "big", TypeError),
                ("nan", NAN, ValueError),
                ("inf", INF, ValueError),
                ("list", [1.0, 2.0], TypeError),
            ):
                cases.append(
                    (
                        f"{cls}-{field}-{label}",
                        lambda make=make, field=field, value=value: make(**{field: value}),
                        error,
                        rf"{cls}: {field}\b",
                    )
                )
    int_fields = [
        ("Dense-out-0", lambda: nl.Dense(0), ValueError, r"\bout\b"),
        ("Dense-out-float", lambda: nl.Dense(2.5), TypeError, r"\bout\b"),
        ("Dense-out-str", lambda: nl.Dense("4"), TypeError, r"\bout\b"),
        ("Conv-out-0", lambda: nl.Conv(0, (2, 2)), ValueError, r"\bout\b"),
        ("Conv-padding", lambda: nl.Conv(2, (2, 2), padding="FULL"), ValueError, r"padding"),
        (
            "Dense-parameterization",
            lambda: nl.Dense(2, parameterization="x"),
            ValueError,
            "parameterization",
        ),
        ("FanOut-0", lambda: nl.FanOut(0), ValueError, r"\bnum\b"),
        ("Monomial-negative", lambda: nl.Monomial(-1), ValueError, r"degree"),
        ("Tanh-degree-1", lambda: nl.Tanh(degree=1), ValueError, r"degree"),
        ("Tanh-degree-float", lambda: nl.Tanh(degree=2.5), TypeError, r"degree"),
        ("repeat-0", lambda: nl.repeat(nl.Relu(), 0), ValueError, r"\bn\b"),
        ("serial-str", lambda: nl.serial(nl.Dense(2), "relu"), TypeError, "argument 1"),
        ("parallel-int", lambda: nl.parallel(3), TypeError, "argument 0"),
        ("Elementwise-fn", lambda: nl.Elementwise(3), TypeError, r"\bfn\b"),
    ]
    cases += int_fields
    dense = nl.Dense(3)
    cases += [
        ("init-key-int", lambda: dense.init(0, (3, 2)), TypeError, r"\bkey\b"),
        ("init-key-str", lambda: dense.init("k", (3, 2)), TypeError, r"\bkey\b"),
        ("init-shape-negative", lambda: dense.init(KEY, (6, -4)), ValueError, "input_shape"),
        ("init-shape-zero", lambda: dense.init(KEY, (0, 4)), ValueError, "input_shape"),
        ("init-shape-float", lambda: dense.init(KEY, (3, 2.0)), TypeError, "input_shape"),
        ("init-shape-int", lambda: dense.init(KEY, 3), TypeError, "input_shape"),
        ("init-rank", lambda: dense.init(KEY, (5,)), ValueError, "Dense expects inputs"),
        ("serial-init-shape", lambda: NET.init(KEY, (3, -2)), ValueError, "input_shape"),
        ("apply-list", lambda: NET.apply(PARAMS, [[1.0, 2.0]]), TypeError, r"\bx\b"),
        ("apply-scalar", lambda: NET.apply(PARAMS, 1.0), TypeError, r"\bx\b"),
        ("apply-channels", lambda: NET.apply(PARAMS, jnp.ones((3, 5))), ValueError, "channels"),
        ("apply-params", lambda: NET.apply(PARAMS[:2], X), ValueError, "params"),
    ]
    return cases


def _kernel_cases():
    k = nnlab.kernel
    return [
        ("kernel-net-str", lambda: k("relu", X), TypeError, r"\bnet\b"),
        ("kernel-x1-list", lambda: k(NET, [[1.0, 2.0]]), TypeError, r"\bx1\b"),
        ("kernel-x1-int", lambda: k(NET, X_INT), TypeError, r"\bx1\b"),
        ("kernel-x1-rank1", lambda: k(NET, jnp.ones(3)), ValueError, r"\bx1\b"),
        ("kernel-x1-rank6", lambda: k(NET, jnp.ones((1,) * 6)), ValueError, r"\bx1\b"),
        ("kernel-x1-empty", lambda: k(NET, X_EMPTY), ValueError, r"\bx1\b"),
        ("kernel-x1-nan", lambda: k(NET, X_NAN), ValueError, r"\bx1\b"),
        ("kernel-x1-inf", lambda: k(NET, X_INF), ValueError, r"\bx1\b"),
        ("kernel-x2-nan", lambda: k(NET, X, X_NAN), ValueError, r"\bx2\b"),
        ("kernel-x2-empty", lambda: k(NET, X, X_EMPTY), ValueError, r"\bx2\b"),
        ("kernel-x2-shape", lambda: k(NET, X, jnp.ones((2, 3))), ValueError, r"\bx2\b"),
        ("kernel-get", lambda: k(NET, X, get="cov"), ValueError, r"\bget\b"),
        ("kernel-get-empty", lambda: k(NET, X, get=()), ValueError, r"\bget\b"),
        ("kernel-batch-0", lambda: k(NET, X, batch_size=0), ValueError, "batch_size"),
        ("kernel-batch-float", lambda: k(NET, X, batch_size=2.5), TypeError, "batch_size"),
        ("kernel-devices-empty", lambda: k(NET, X, devices=[]), ValueError, r"\bdevices\b"),
        ("kernel-devices-str", lambda: k(NET, X, devices=["cpu"]), TypeError, r"\bdevices\b"),
        (
            "kernel-diag-str",
            lambda: k(NET, X, diagonal_spatial="yes"),
            TypeError,
            "diagonal_spatial",
        ),
        ("kernel-raw-relu", lambda: k(nl.serial(nl.Relu(), nl.Dense(1)), X), ValueError, "Relu"),
        (
            "kernel-branches",
            lambda: k(nl.serial(nl.Dense(2), nl.FanOut(2)), X),
            ValueError,
            "branches",
        ),
    ]


def _empirical_cases():
    e, g, p = empirical.empirical_ntk, empirical.empirical_nngp, empirical.pseudo_ntk
    mc = empirical.monte_carlo_kernel
    cases = []
    for name, fn in (("ntk", e), ("nngp", g), ("pseudo", p)):
        cases += [
            (f"{name}-apply-int", lambda fn=fn: fn(3, PARAMS, X), TypeError, "apply_fn"),
            (f"{name}-x1-empty", lambda fn=fn: fn(_apply, PARAMS, X_EMPTY), ValueError, r"\bx1\b"),
            (f"{name}-x1-nan", lambda fn=fn: fn(_apply, PARAMS, X_NAN), ValueError, r"\bx1\b"),
            (f"{name}-x1-inf", lambda fn=fn: fn(_apply, PARAMS, X_INF), ValueError, r"\bx1\b"),
            (f"{name}-x1-list", lambda fn=fn: fn(_apply, PARAMS, [[1.0]]), TypeError, r"\bx1\b"),
            (f"{name}-x2-nan", lambda fn=fn: fn(_apply, PARAMS, X, X_NAN), ValueError, r"\bx2\b"),
        ]
    cases += [
        (
            "ntk-ignores-params",
            lambda: e(lambda p, x: NET.apply(PARAMS, x), PARAMS, X),
            ValueError,
            "ignores params",
        ),
        ("ntk-method", lambda: e(_apply, PARAMS, X, method="fast"), ValueError, r"\bmethod\b"),
        ("ntk-trace-axes", lambda: e(_apply, PARAMS, X, trace_axes=(5,)), ValueError, "trace_axes"),
        (
            "ntk-int-params",
            lambda: e(_apply, jax.tree.map(lambda a: a.astype(jnp.int32), PARAMS), X),
            TypeError,
            r"params",
        ),
        ("ntk-empty-params", lambda: e(lambda p, x: x, {}, X), ValueError, r"params"),
        ("nngp-features", lambda: g(_apply, PARAMS, X, features="weights"), ValueError, "features"),
        ("mc-key-int", lambda: mc(NET, 0, X, n_samples=2), TypeError, r"\bkey\b"),
        ("mc-key-str", lambda: mc(NET, "k", X, n_samples=2), TypeError, r"\bkey\b"),
        (
            "mc-key-batch",
            lambda: mc(NET, jax.random.split(KEY, 2), X, n_samples=2),
            ValueError,
            r"\bkey\b",
        ),
        ("mc-n-0", lambda: mc(NET, KEY, X, n_samples=0), ValueError, "n_samples"),
        ("mc-n-float", lambda: mc(NET, KEY, X, n_samples=2.5), TypeError, "n_samples"),
        ("mc-net", lambda: mc("net", KEY, X, n_samples=2), TypeError, r"\bnet\b"),
        ("mc-x1-nan", lambda: mc(NET, KEY, X_NAN, n_samples=2), ValueError, r"\bx1\b"),
        ("mc-get", lambda: mc(NET, KEY, X, n_samples=2, get="cov"), ValueError, r"\bget\b"),
        ("linearize-apply", lambda: taylor.linearize(3, PARAMS), TypeError, "apply_fn"),
        ("expand-apply", lambda: taylor.expand("f", PARAMS, 2), TypeError, "apply_fn"),
        ("expand-order-neg", lambda: taylor.expand(_apply, PARAMS, -1), ValueError, r"\border\b"),
        (
            "expand-order-str",
            lambda: taylor.expand(_apply, PARAMS, "2"),
            (TypeError, ValueError),
            r"\border\b",
        ),
    ]
    return cases


def _train_cases():
    t, te = tr.train, tr.train_ensemble

    def run(**kw):
        args = dict(optimizer=SGD, steps=2)
        args.update(kw)
        data = args.pop("data", DATA)
        return t(_apply, PARAMS, data, **args)

    def ens(**kw):
        args = dict(optimizer=SGD, seeds=2, steps=2, key=KEY)
        args.update(kw)
        data = args.pop("data", DATA)
        return te(_apply, _init, data, **args)

    return [
        ("train-apply", lambda: t(3, PARAMS, DATA, optimizer=SGD, steps=2), TypeError, "apply_fn"),
        (
            "train-data-type",
            lambda: run(data=[X, Y, 1, 2, 3, 4]),
            (TypeError, ValueError),
            r"\bdata\b",
        ),
        ("train-data-str", lambda: run(data="xy"), TypeError, r"\bdata\b"),
        (
            "train-x-empty",
            lambda: run(data=tr.Data(X_EMPTY, jnp.zeros((0, 1)))),
            ValueError,
            "x_train",
        ),
        ("train-x-nan", lambda: run(data=tr.Data(X_NAN, Y)), ValueError, "x_train"),
        ("train-y-inf", lambda: run(data=tr.Data(X, Y.at[0, 0].set(INF))), ValueError, "y_train"),
        ("train-y-rows", lambda: run(data=tr.Data(X, jnp.ones((2, 1)))), ValueError, "y_train"),
        (
            "train-y-broadcast",
            lambda: run(data=tr.Data(X, jnp.ones((3, 3)))),
            ValueError,
            "y_train",
        ),
        ("train-test-missing", lambda: run(data=tr.Data(X, Y, X)), ValueError, "y_test"),
        (
            "train-test-shape",
            lambda: run(data=tr.Data(X, Y, X, jnp.ones((3, 2)))),
            ValueError,
            "y_test",
        ),
        ("train-steps-0", lambda: run(steps=0), ValueError, r"\bsteps\b"),
        ("train-steps-neg", lambda: run(steps=-3), ValueError, r"\bsteps\b"),
        ("train-steps-float", lambda: run(steps=2.5), TypeError, r"\bsteps\b"),
        ("train-steps-nan", lambda: run(steps=NAN), TypeError, r"\bsteps\b"),
        ("train-log_every-0", lambda: run(log_every=0), ValueError, "log_every"),
        ("train-log_every-divides", lambda: run(steps=3, log_every=2), ValueError, "log_every"),
        ("train-loss", lambda: run(loss="l1"), ValueError, r"\bloss\b"),
        (
            "train-normalization",
            lambda: run(loss_normalization="avg"),
            ValueError,
            "loss_normalization",
        ),
        (
            "train-threshold-neg",
            lambda: run(divergence_threshold=-1),
            ValueError,
            "divergence_threshold",
        ),
        (
            "train-threshold-nan",
            lambda: run(divergence_threshold=NAN),
            ValueError,
            "divergence_threshold",
        ),
        (
            "train-threshold-str",
            lambda: run(divergence_threshold="big"),
            TypeError,
            "divergence_threshold",
        ),
        ("train-factor-0", lambda: run(divergence_factor=0.0), ValueError, "divergence_factor"),
        ("train-batch-0", lambda: run(batch_size=0, key=KEY), ValueError, "batch_size"),
        ("train-batch-big", lambda: run(batch_size=10, key=KEY), ValueError, "batch_size"),
        ("train-key-int", lambda: run(batch_size=2, key=3), TypeError, r"\bkey\b"),
        ("train-optimizer", lambda: run(optimizer="sgd"), TypeError, "optimizer"),
        ("train-optimizer-nan", lambda: run(optimizer=optax.sgd(NAN)), ValueError, "optimizer"),
        ("train-precision", lambda: run(precision="ultra"), ValueError, "precision"),
        ("train-progress", lambda: run(progress="yes"), TypeError, "progress"),
        (
            "ensemble-init",
            lambda: te(_apply, 3, DATA, optimizer=SGD, seeds=2, steps=2),
            TypeError,
            "init_fn",
        ),
        ("ensemble-seeds-0", lambda: ens(seeds=0), ValueError, r"\bseeds\b"),
        ("ensemble-seeds-float", lambda: ens(seeds=1.5), TypeError, r"\bseeds\b"),
        (
            "ensemble-lr-neg",
            lambda: ens(optimizer=optax.sgd, hyperparams={"learning_rate": jnp.array([-0.1])}),
            ValueError,
            "learning_rate",
        ),
        (
            "ensemble-hp-nan",
            lambda: ens(optimizer=optax.sgd, hyperparams={"learning_rate": jnp.array([NAN])}),
            ValueError,
            "learning_rate",
        ),
        ("ensemble-steps-0", lambda: ens(steps=0), ValueError, r"\bsteps\b"),
        ("ensemble-x-nan", lambda: ens(data=tr.Data(X_NAN, Y)), ValueError, "x_train"),
        ("sweep-run_point", lambda: tr.sweep(3, [1, 2]), TypeError, "run_point"),
        (
            "width_sweep-make_model",
            lambda: tr.width_sweep(3, [4], DATA, optimizer=SGD, seeds=1, steps=1),
            TypeError,
            "make_model",
        ),
        ("make_loss-loss", lambda: tr.make_loss("hinge", "mean"), ValueError, r"\bloss\b"),
        (
            "make_loss-normalization",
            lambda: tr.make_loss("mse", "median"),
            ValueError,
            "normalization",
        ),
    ]


def _parameterization_cases():
    return [
        ("MLP-width-0", lambda: pz.MLP(0), ValueError, r"\bwidth\b"),
        ("MLP-depth-0", lambda: pz.MLP(4, depth=0), ValueError, r"\bdepth\b"),
        ("MLP-activation", lambda: pz.MLP(4, activation="swishy"), ValueError, "activation"),
        (
            "MLP-parameterization",
            lambda: pz.MLP(4, parameterization="sp"),
            ValueError,
            "parameterization",
        ),
        ("MLP-W_std-nan", lambda: pz.MLP(4, W_std=NAN), ValueError, r"W_std"),
        ("MLP-W_std-str", lambda: pz.MLP(4, W_std="one"), TypeError, r"W_std"),
        ("abc-parameterization", lambda: pz.abc("sp", "hidden"), ValueError, "parameterization"),
        ("abc-role", lambda: pz.abc("mup", "middle"), ValueError, r"\brole\b"),
    ]


CASES = (
    _layer_cases()
    + _kernel_cases()
    + _empirical_cases()
    + _train_cases()
    + _parameterization_cases()
)

ACCEPTED = [
    ("Dense-np-int", lambda: nnlab.kernel(nl.serial(nl.Dense(I64(3)), nl.Relu(), nl.Dense(1)), X)),
    ("init-np-shape", lambda: nl.Dense(3).init(KEY, (I64(3), I64(2)))),
    ("init-legacy-key", lambda: NET.init(jax.random.PRNGKey(0), X.shape)),
    ("kernel-np-batch", lambda: nnlab.kernel(NET, X, batch_size=I64(2))),
    ("kernel-f64-x2-f32", lambda: nnlab.kernel(NET, X, X[:2])),
    ("FanOut-np-int", lambda: nl.FanOut(I64(2))),
    ("Conv-np-shape", lambda: nl.Conv(I64(2), (I64(2), I64(2)))),
    ("ntk-np-batch", lambda: empirical.empirical_ntk(_apply, PARAMS, X, batch_size=I64(2))),
    ("mc-np-samples", lambda: empirical.monte_carlo_kernel(NET, KEY, X, n_samples=I64(2))),
    (
        "mc-legacy-key",
        lambda: empirical.monte_carlo_kernel(NET, jax.random.PRNGKey(1), X, n_samples=2),
    ),
    (
        "train-np-steps",
        lambda: tr.train(_apply, PARAMS, DATA, optimizer=SGD, steps=I64(2), log_every=I64(1)),
    ),
    (
        "train-vector-targets",
        lambda: tr.train(_apply, PARAMS, tr.Data(X, jnp.ones(3)), optimizer=SGD, steps=1),
    ),
    (
        "ensemble-np-seeds",
        lambda: tr.train_ensemble(
            _apply, _init, DATA, optimizer=SGD, seeds=I64(2), steps=1, key=KEY
        ),
    ),
    ("MLP-np-width", lambda: pz.MLP(I64(4), depth=I64(2))),
]


def classify_error(call, error, match) -> str:
    """'clear', 'cryptic' or 'silent' for a call that must raise ``error`` matching ``match``."""
    import re

    try:
        call()
    except error as exc:
        return "clear" if re.search(match, str(exc)) else "cryptic"
    except Exception:
        return "cryptic"
    return "silent"


def classify_accept(call, require_finite: bool = True) -> str:
    try:
        out = call()
    except Exception:
        return "cryptic"
    leaves = [np.asarray(v) for v in jax.tree.leaves(out) if hasattr(v, "dtype")]
    finite = all(np.all(np.isfinite(v)) for v in leaves if np.issubdtype(v.dtype, np.inexact))
    return "accepted" if finite or not require_finite else "silent"


@pytest.mark.parametrize(
    ("call", "error", "match"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("call", [c[1] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_valid_variants_are_accepted(call):
    assert classify_accept(call) == "accepted"


def test_case_ids_are_unique():
    ids = [c[0] for c in CASES] + [c[0] for c in ACCEPTED]
    assert len(ids) == len(set(ids))


def _sweep_counts():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    import test_theory_inputs as theory

    counts = {"clear": 0, "accepted": 0, "cryptic": 0, "silent": 0}
    bad = []
    all_errors = list(CASES) + list(theory.CASES)
    # theory results may hold documented NaN placeholders (e.g. no test set): no error is the bar
    all_accepts = [(*c, True) for c in ACCEPTED] + [(*c, False) for c in theory.ACCEPTS_NUMPY_INTS]
    for name, call, error, match in all_errors:
        verdict = classify_error(call, error, match)
        counts[verdict] += 1
        if verdict != "clear":
            bad.append((name, verdict))
    for name, call, require_finite in all_accepts:
        verdict = classify_accept(call, require_finite)
        counts[verdict] += 1
        if verdict != "accepted":
            bad.append((name, verdict))
    return counts, bad


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore")
    counts, bad = _sweep_counts()
    total = sum(counts.values())
    print(f"{total} calls: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    for name, verdict in bad:
        print(f"  {verdict}: {name}")
    assert math.isfinite(total)
