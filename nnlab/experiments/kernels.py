"""Kernel experiments: NTK convergence with width, eigenlearning learning curves.

* ``ntk_convergence``: the empirical NTK of a width-n network approaches the analytic NTK
  with fluctuations of order n^(-1/2) (Jacot, Gabriel & Hongler 2018, arXiv:1806.07572;
  Hanin & Nica 2019, arXiv:1909.05989).
* ``learning_curves``: the test error of kernel ridge regression against the number of
  samples, predicted from the kernel's eigenvalues alone (Simon et al. 2021,
  arXiv:2110.03922; Bordelon, Canatar & Pehlevan 2020, arXiv:2002.02561).
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

import nnlab
from nnlab import data as nd
from nnlab import layers as nl
from nnlab import spectral
from nnlab.empirical import empirical_ntk
from nnlab.evaluate import Comparison, power_law_comparisons
from nnlab.record import Record, stack
from nnlab.registry import Experiment, register

__all__: list[str] = []  # registers its experiments; nothing to import

_LOG = {"xscale": "log", "yscale": "log"}


def _relu_net(width: int):
    """Two hidden ReLU layers, C_W = W_std² = 2 (critical), b_std = 0.1, a linear readout."""
    hidden = [(nl.Dense(width, W_std=2**0.5, b_std=0.1), nl.Relu()) for _ in range(2)]
    return nl.serial(*hidden[0], *hidden[1], nl.Dense(1, W_std=1.0, b_std=0.1))


# ----------------------------------------------------------------------- ntk_convergence
@dataclasses.dataclass(frozen=True)
class NTKConvergenceConfig:
    """``ntk_convergence``: eNTKs of ``seeds`` networks per width on ``n_points`` inputs."""

    widths: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048)
    seeds: int = 12  # at 6, one seed in five (seed 2) drew a curve 18% off c/sqrt(n)
    n_points: int = 12  # inputs on the sphere of radius sqrt(dim)
    dim: int = 4


def _entk_draws(x, width: int, keys):
    """Empirical NTKs ``(seeds, N, N)`` of ``_relu_net(width)`` at the inits ``keys``."""
    net = _relu_net(width)

    def one(key):
        return empirical_ntk(net.apply, net.init(key, x.shape)[1], x, method="structured")

    return jax.jit(lambda keys: jax.lax.map(one, keys))(keys)


def _ntk_convergence(config: NTKConvergenceConfig, seed: int):
    kx, kp = jax.random.split(jax.random.key(seed))
    x = nd.sphere(kx, config.n_points, config.dim).x
    analytic = np.asarray(nnlab.kernel(_relu_net(1), x, get="ntk"))
    iu = np.triu_indices(x.shape[0])
    errors, draws = [], None
    for width in config.widths:  # a loop: each width is its own network (no training to sweep)
        keys = jax.random.split(jax.random.fold_in(kp, width), config.seeds)
        draws = np.asarray(_entk_draws(x, width, keys))
        diff = np.linalg.norm(draws - analytic, axis=(1, 2)) / np.linalg.norm(analytic)
        errors.append(Record({"ntk_error": ("seed", diff)}))
    sim = stack(errors, "width", config.widths)
    entries = Record({"ntk": (("seed", "entry"), draws[:, iu[0], iu[1]])})
    what = "relative Frobenius error of the empirical NTK vs the analytic NTK; theory c/sqrt(n)"
    widest = f"entries of the width-{config.widths[-1]} eNTK (mean over seeds) vs the analytic NTK"
    # Per-seed errors fluctuate by ~1/sqrt(2 n_points^2) relative; with these seeds the mean
    # curve deviates from an exact power law by a few percent. 15% allows that and still fails
    # for a slope off by 0.2 over a 32x width range (a 2x deviation). The exponent: the CLT
    # gives -1/2; the fit's 95% CI half-width at these sizes is ~0.05-0.1.
    return [
        *power_law_comparisons(
            "ntk_error_vs_width", sim, "ntk_error", exponent=-0.5, tolerances=(0.15, 0.1),
            exponent_name="fitted_exponent", description=what, xlabel="width n",
            ylabel="||Θ_n - Θ_∞||_F / ||Θ_∞||_F", **_LOG,
        )[1],
        Comparison.from_records(
            "ntk_entries_widest", Record({"ntk": ("entry", analytic[iu])}), entries, "ntk",
            # The seed-mean at width n has relative error ~ c/sqrt(n * seeds) ≈ 0.02 here.
            tolerance=0.06, description=widest, xlabel="entry (upper triangle)", ylabel="NTK",
        ),
    ]  # fmt: skip


# ----------------------------------------------------------------------- learning_curves
@dataclasses.dataclass(frozen=True)
class LearningCurvesConfig:
    """``learning_curves``: spectrum λ_i = i^-alpha, target power v_i² = i^-beta."""

    modes: int = 400
    alpha: float = 1.5
    beta: float = 1.5
    ns: tuple[int, ...] = (8, 16, 32, 64, 128)  # training-set sizes
    seeds: int = 96
    ridge: float = 1e-3
    noise: float = 0.0  # label-noise variance


def _learning_curves(config: LearningCurvesConfig, seed: int):
    idx = np.arange(1, config.modes + 1, dtype=np.float64)
    lam, coef = idx**-config.alpha, idx ** (-config.beta / 2)
    kw = {"ridge": config.ridge, "noise": config.noise}
    curve = spectral.learning_curve(
        jax.random.key(seed), lam, coef, config.ns, seeds=config.seeds, **kw
    )
    sim = Record({"test_mse": (("n", "seed"), curve.test_mse)}, coords={"n": np.asarray(config.ns)})
    labels = {"metric": "max_rel", "xlabel": "training samples n", "ylabel": "test MSE", **_LOG}

    def claim(name, ns, tolerance, what):  # eigenlearning's test MSE at the sizes ns
        mse = np.asarray([spectral.eigenlearning(lam, coef, n, **kw).test_mse for n in ns])
        theory = Record({"test_mse": ("n", mse)}, coords={"n": np.asarray(ns)})
        return Comparison.from_records(
            name, theory, sim, "test_mse", tolerance=tolerance, description=what, **labels
        )

    return [
        # Eigenlearning is exact as n, M -> infinity; at n >= 8 its finite-n bias is a few
        # percent, and the seed-mean has a ~2% standard error here.
        claim("test_mse_vs_n", config.ns, 0.1, "kernel ridge regression test MSE: eigenlearning "
              "prediction vs the mean over seeds"),
        claim("test_mse_n_ge_50", [n for n in config.ns if n >= 50], 0.05,  # the claim
              "the same for n >= 50 (claim: within 5%)"),
    ]  # fmt: skip


register(
    Experiment(
        name="ntk_convergence",
        reference="Jacot, Gabriel & Hongler 2018 (arXiv:1806.07572); Hanin & Nica 2019 "
        "(arXiv:1909.05989)",
        description="empirical NTK of finite ReLU nets vs the analytic NTK: error ~ width^-1/2",
        run=_ntk_convergence,
        small=NTKConvergenceConfig(),
        large=NTKConvergenceConfig(
            widths=(64, 128, 256, 512, 1024, 2048, 4096, 8192), seeds=16, n_points=32, dim=16
        ),
    )
)

register(
    Experiment(
        name="learning_curves",
        reference="Simon et al. 2021 (arXiv:2110.03922); Bordelon, Canatar & Pehlevan 2020 "
        "(arXiv:2002.02561)",
        description="eigenlearning prediction of kernel regression test MSE vs empirical, over n",
        run=_learning_curves,
        small=LearningCurvesConfig(),
        large=LearningCurvesConfig(modes=4000, ns=(8, 16, 32, 64, 128, 256, 512, 1024), seeds=256),
    )
)
