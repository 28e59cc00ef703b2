"""Wide networks train like their linearisation (Lee et al. 2019, arXiv:1902.06720).

``linearized_training`` trains ensembles of two-hidden-layer ReLU networks in the
NTK parameterization by full-batch gradient descent on
``L = ½ (1/n) Σ_i (f(x_i) - y_i)²`` and compares their test outputs over time with

* the infinite-width ensemble mean ``μ_k = Θ(x, X) Θ⁻¹ (I - (I - ηΘ/n)^k) Y`` (the
  mean of the linearised network over initialisations, E f0 = 0), and
* the linearised network with the analytic NTK started from each member's own
  ``f0``; the gap to it shrinks like width^(-1/2) (the NTK's own fluctuations).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

import nnlab
from nnlab.evaluate import Comparison, scaling_fit
from nnlab.predict import gradient_descent_mse
from nnlab.train import Data, train_ensemble

from ._registry import Experiment, register
from .kernels import _relu_net

__all__: list[str] = []  # registers its experiments; nothing to import


def _data(config, key):
    kx, kt, ky = jax.random.split(key, 3)
    d = config["dim"]
    x = jax.random.normal(kx, (config["n_train"], d))
    xt = jax.random.normal(kt, (config["n_test"], d))
    w = jax.random.normal(ky, (d,))
    y = jnp.sin(x @ w / jnp.sqrt(d))[:, None]
    yt = jnp.sin(xt @ w / jnp.sqrt(d))[:, None]
    return Data(x, y, xt, yt, x_probe=jnp.concatenate([x, xt]))


def _linearized_training(config, seed):
    key = jax.random.key(seed)
    kdata, kinit = jax.random.split(key)
    data = _data(config, kdata)
    n, m = config["n_train"], config["n_test"]
    k = nnlab.kernel(_relu_net(1), data.x_probe)
    ntk_train, ntk_test_train = k.ntk[:n, :n], k.ntk[n:, :n]
    lam_max = float(jnp.linalg.eigvalsh(ntk_train)[-1])
    # Learning rate as a fraction of the stability edge 2n/λ_max (mean-normalised loss).
    lr = config["lr_fraction"] * 2.0 * n / lam_max
    steps, log_every = config["steps"], config["log_every"]
    widths = list(config["widths"])
    gaps, widest = [], None
    for width in widths:
        net = _relu_net(width)
        rec = train_ensemble(
            net.apply,
            lambda kk, net=net: net.init(kk, data.x_train.shape)[1],
            data,
            optimizer=optax.sgd(lr),
            seeds=config["seeds"],
            steps=steps,
            key=jax.random.fold_in(kinit, width),
            log_every=log_every,
        )
        out = np.asarray(rec.probe_outputs)[..., 0]  # (seed, T, n + m)
        f0 = out[:, 0]
        steps_logged = np.asarray(rec.step)
        lin = jax.vmap(
            lambda f0s, logged: gradient_descent_mse(
                ntk_train,
                data.y_train[:, 0],
                logged,
                ntk_test_train,
                lr=lr,
                f0_train=f0s[:n],
                f0_test=f0s[n:],
                loss_normalization="mean",
            ),
            in_axes=(0, None),
        )(jnp.asarray(f0), jnp.asarray(steps_logged))
        lin_test = np.asarray(lin.test)  # (seed, T, m)
        gaps.append(np.sqrt(np.mean((out[:, :, n:] - lin_test) ** 2, axis=(1, 2))))
        widest = out[:, :, n:]
    gaps = np.stack(gaps, axis=1)  # (seed, width)
    mean_theory = np.asarray(
        gradient_descent_mse(
            ntk_train,
            data.y_train[:, 0],
            jnp.asarray(steps_logged),
            ntk_test_train,
            lr=lr,
            f0_train=jnp.zeros(n),
            f0_test=jnp.zeros(m),
            loss_normalization="mean",
        ).test
    )
    fit = scaling_fit(np.asarray(widths, float), gaps.mean(0))
    inv_sqrt = np.asarray(widths, float) ** -0.5
    c = float(np.dot(inv_sqrt, gaps.mean(0)) / np.dot(inv_sqrt, inv_sqrt))
    seeds = config["seeds"]
    return [
        Comparison(
            "ensemble_mean_test_outputs",
            mean_theory,
            widest,
            ("step", "test_point"),
            coords={"step": steps_logged, "test_point": np.arange(m)},
            metric="max_z",
            # max over (steps x test points) of |mean - theory| / SE with Student-t tails
            # (seeds - 1 dof): P(|t_15| > 4.5) ~ 4e-4 per point, ~1% for 30 points. The
            # finite-width bias of the mean, O(1/width), is far below one SE here.
            tolerance=4.5,
            description=f"test outputs of width-{widths[-1]} networks over training (mean ± SE "
            f"over {seeds} seeds) vs the infinite-width ensemble mean",
            xlabel="GD step",
            ylabel="f(x_test)",
        ),
        Comparison(
            "gap_to_linearised_vs_width",
            c * inv_sqrt,
            gaps,
            ("width",),
            coords={"width": np.asarray(widths)},
            metric="rel_l2",
            # The gap is dominated by the O(width^-1/2) fluctuation of the empirical NTK; 20%
            # allows seed noise with this many seeds, and fails for a slope off by > ~0.25.
            tolerance=0.2,
            description="RMS gap (over steps and test points) between the trained network and "
            "the linearised network with the analytic NTK and the same f0; "
            "theory c/sqrt(width)",
            xlabel="width",
            ylabel="RMS gap",
            xscale="log",
            yscale="log",
        ),
        Comparison.scalar(
            "gap_exponent",
            -0.5,
            fit.exponent,
            metric="max_abs",
            tolerance=0.15,
            description=f"log-log slope of the gap vs width (95% CI [{fit.ci_low:.2f}, "
            f"{fit.ci_high:.2f}]); theory -1/2",
        ),
    ]


register(
    Experiment(
        name="linearized_training",
        reference="Lee et al. 2019, 'Wide neural networks of any depth evolve as linear models "
        "under gradient descent' (arXiv:1902.06720)",
        description="trained wide ReLU nets vs their linearisation and the infinite-width ensemble",
        run=_linearized_training,
        small={
            "widths": [64, 128, 256, 512],
            "seeds": 16,
            "n_train": 8,
            "n_test": 6,
            "dim": 4,
            "lr_fraction": 0.25,
            "steps": 60,
            "log_every": 12,
        },
        large={
            "widths": [64, 128, 256, 512, 1024, 2048, 4096],
            "seeds": 64,
            "n_train": 64,
            "n_test": 32,
            "dim": 16,
            "lr_fraction": 0.25,
            "steps": 1000,
            "log_every": 50,
        },
    )
)
