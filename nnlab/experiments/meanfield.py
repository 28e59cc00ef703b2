"""Mean-field experiment: finite-N fluctuations of mean-field networks.

* ``meanfield_fluctuations``: the mean-field two-layer ReLU network trained by ``nnlab.train``
  (:func:`nnlab.meanfield.particle_gradient_flow`) on a fixed data set; across seeds the
  output std scales as ``N^{-1/2}`` (std·√N exact at ``t = 0``) and so does the distance to a
  large-N reference (Mei, Montanari & Nguyen 2018; Rotskoff & Vanden-Eijnden 2018).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import data
from nnlab import meanfield as mf
from nnlab.evaluate import Comparison, ExperimentResult, power_law_comparisons
from nnlab.record import Record
from nnlab.registry import Experiment, register

__all__ = ["run_meanfield_fluctuations"]


# --------------------------------------------------------------------------- fluctuations


@dataclasses.dataclass(frozen=True)
class FluctuationsConfig:
    """``meanfield_fluctuations``: widths N, seeds per width, a large-N reference."""

    dim: int = 4  # input dimension d
    n_train: int = 64
    n_test: int = 16  # probe points whose outputs are recorded
    widths: tuple[int, ...] = (64, 128, 256, 512, 1024)
    n_seeds: int = 16
    n_init_seeds: int = 256  # untrained initialisations for the exact t = 0 check
    n_reference: int = 16384
    n_ref_seeds: int = 2
    lr: float = 0.2  # mean-field time step dt: t = lr · steps
    n_steps: int = 100
    n_records: int = 11
    W_std: float = 1.0  # input-layer scale: w_i ~ N(0, W_std²/d I)


def _teacher(x):
    """Target of the fluctuation study: a fixed smooth single-index function."""
    return jnp.tanh(x[:, 0] + 0.5 * x[:, 1])


def run_meanfield_fluctuations(config: FluctuationsConfig, seed: int) -> ExperimentResult:
    kx, kt, kref, kinit, krun = jax.random.split(jax.random.key(seed), 5)
    train = data.gaussian(kx, config.n_train, config.dim, target=_teacher)
    x_test = data.gaussian(kt, config.n_test, config.dim).x
    flow = functools.partial(
        mf.particle_gradient_flow,
        x=train.x,
        y=train.y,
        lr=config.lr,
        n_steps=config.n_steps,
        n_records=config.n_records,
        x_probe=x_test,
        W_std=config.W_std,
    )
    ref = flow(kref, n_particles=config.n_reference, seeds=config.n_ref_seeds)
    sim = flow(krun, n_particles=config.widths, seeds=config.n_seeds)
    spread = mf.seed_fluctuations(sim, ref)  # std (width, time), distance (width, seed, time)
    final, t_final = spread.isel(time=-1), float(sim.time[-1])
    init = mf.sample_init_output_std(
        kinit, x_test, config.widths, n_seeds=config.n_init_seeds, W_std=config.W_std
    )
    # Exact: Var f_N(x) = E[a²] E[relu(w·x)²] / N (the NNGP / N), RMS over the test points.
    exact = np.sqrt(np.mean(np.asarray(mf.init_output_variance(x_test, 1, W_std=config.W_std))))
    widths = np.asarray(config.widths, np.float64)
    sqrt_n = np.sqrt(widths)
    # std·√N is constant to within the sampling error of an RMS std over S = 16 seeds:
    # 1/sqrt(2(S-1)) = 18% in the worst case (test points fully correlated); 0.4 is ~2 SE.
    # The issue's claim for the exponents: in [-0.6, -0.4]; the fits' own standard errors are
    # ~0.02-0.04 (notes), and 0.1 also covers the O(N/N_ref) bias of the distance (<= 6%).
    law = {"exponent": -0.5, "tolerances": (0.4, 0.1), "metric": "max_rel"}
    plot = {"xlabel": "N (particles)", "xscale": "log", "yscale": "log"}
    ref_at = f"the N = {config.n_reference} reference at t = {t_final:g}"
    fit_std, std_claims = power_law_comparisons(
        "std_vs_N_trained",
        final,
        "std",
        **law,
        **plot,
        description=f"std across seeds at t = {t_final:g} vs c N^(-1/2)",
    )
    fit_dist, dist_claims = power_law_comparisons(
        "distance_to_reference", final, "distance", **law, **plot,
        description=f"RMS distance to {ref_at} vs c N^(-1/2)",
    )  # fmt: skip
    # std·√N at t = 0 against the exact value: the RMS of a sample std over S seeds has
    # relative standard error <= 1/sqrt(2(S-1)) (fully correlated test points, the worst
    # case); with S = n_init_seeds = 256 that is 4.4%, so 15% is > 3 SE at every width.
    init_claim = Comparison.from_records(
        "init_std_times_sqrtN",
        Record({"std_sqrtN": ("width", np.full(len(sqrt_n), exact))}, init.coords),
        Record({"std_sqrtN": ("width", np.asarray(init["std"]) * sqrt_n)}, init.coords),
        "std_sqrtN",
        metric="max_rel",
        tolerance=0.15,
        xlabel="N (particles)",
        xscale="log",
        description="std of f_N(x) across seeds times sqrt(N) at t = 0 vs the exact "
        "sqrt(E[a^2] E[relu(w.x)^2]) (RMS over test points)",
    )
    net = mf.meanfield_network(config.n_reference, W_std=config.W_std)
    start = net.init(jax.random.split(kref, config.n_ref_seeds)[0], train.x.shape)[1]
    density = mf.particle_density_figure(
        [mf.particles(start, W_std=config.W_std), (ref.a[0], ref.w[0])],
        ["t = 0", f"t = {t_final:g}, N = {config.n_reference}"],
    )
    notes = (
        f"Fits: std exponent {fit_std.exponent:.3f} (95% CI [{fit_std.ci_low:.3f}, "
        f"{fit_std.ci_high:.3f}], stderr {fit_std.stderr:.3f}); distance exponent "
        f"{fit_dist.exponent:.3f} (95% CI [{fit_dist.ci_low:.3f}, {fit_dist.ci_high:.3f}], "
        f"stderr {fit_dist.stderr:.3f}). Reference: N = {config.n_reference}, "
        f"{config.n_ref_seeds} seeds averaged. Dense(parameterization='meanfield') layers "
        f"trained at rates lr · N (lr_multipliers), lr = dt = {config.lr}.\n"
    )
    arrays = {"times": np.asarray(sim.time), "std_t": spread.std, "widths": widths}
    return ExperimentResult(
        [init_claim, *std_claims, *dist_claims],
        figures={
            "fluctuations": mf.fluctuations_figure(sim, spread, ref),
            "particle_density": density,
        },
        arrays={**arrays, "distance": final.distance},
        notes=notes,
    )


register(
    Experiment(
        name="meanfield_fluctuations",
        reference=(
            "Mei, Montanari & Nguyen 2018 (arXiv:1804.06561); Rotskoff & Vanden-Eijnden 2018 "
            "(arXiv:1805.00915); Chizat & Bach 2018 (arXiv:1805.09545)"
        ),
        description=(
            "Mean-field two-layer ReLU network (particle flow): output std across seeds and "
            "distance to a large-N reference scale as N^-1/2"
        ),
        run=run_meanfield_fluctuations,
        small=FluctuationsConfig(),
        large=FluctuationsConfig(dim=16, n_train=1024, n_test=64,
            widths=(256, 1024, 4096, 16384, 65536), n_seeds=32, n_init_seeds=512,
            n_reference=1048576, n_steps=500),
    )
)  # fmt: skip
