"""Mean-field experiments: finite-N fluctuations of mean-field networks, Saad-Solla ODEs.

* ``meanfield_fluctuations``: the mean-field two-layer ReLU network trained by ``nnlab.train``
  (:func:`nnlab.meanfield.particle_gradient_flow`) on a fixed data set; across seeds the
  output std scales as ``N^{-1/2}`` (std·√N exact at ``t = 0``) and so does the distance to a
  large-N reference (Mei, Montanari & Nguyen 2018; Rotskoff & Vanden-Eijnden 2018).
* ``saad_solla``: online SGD of an erf soft committee machine at input dimension D against the
  exact order-parameter ODEs from each seed's initial overlaps (Saad & Solla 1995; Goldt et
  al. 2019), including the height of the specialisation plateau.
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

from ._registry import Experiment, register

__all__ = ["run_meanfield_fluctuations", "run_saad_solla"]


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
        large=FluctuationsConfig(
            dim=16,
            n_train=1024,
            n_test=64,
            widths=(256, 1024, 4096, 16384, 65536),
            n_seeds=32,
            n_init_seeds=512,
            n_reference=1048576,
            n_steps=500,
        ),
    )
)


# --------------------------------------------------------------------------- Saad-Solla


@dataclasses.dataclass(frozen=True)
class SaadSollaConfig:
    """``saad_solla``: K students learn from M teachers at input dimension D."""

    dim: int = 1000  # input dimension D
    k_student: int = 2
    m_teacher: int = 2
    lr: float = 2.0  # SGD step η of w <- w + (η/√D) δ x
    alpha_max: float = 80.0  # run length in α = steps / D
    n_seeds: int = 6
    n_records: int = 81
    W_std: float = 1.0  # initial student weights ~ N(0, W_std²)
    plateau_alpha: float = 200.0  # ODE time from the symmetric start to the fixed point


def run_saad_solla(config: SaadSollaConfig, seed: int) -> ExperimentResult:
    dim, k, m, lr = config.dim, config.k_student, config.m_teacher, config.lr
    n_steps = round(config.alpha_max * dim / (config.n_records - 1)) * (config.n_records - 1)
    kv, ks = jax.random.split(jax.random.key(seed))
    v = jax.random.normal(kv, (m, dim))  # one teacher, T = v vᵀ/D ≈ I
    sim = mf.committee_online_sgd(
        ks,
        lambda key: config.W_std * jax.random.normal(key, (k, dim)),
        v,
        lr=lr,
        n_steps=n_steps,
        n_records=config.n_records,
        seeds=config.n_seeds,
    )
    alpha = np.asarray(sim.alpha)
    ode = mf.saad_solla_from_overlaps(sim, lr=lr)  # float64, from each seed's start
    with jax.enable_x64(True):
        plateau = float(mf.saad_solla_plateau(np.eye(m), k, lr=lr, alpha_max=config.plateau_alpha))
    # The escape from the plateau is triggered by O(D^-1/2) asymmetries, from the initial
    # overlaps (which the ODE sees) and from the SGD noise (which it does not), so its timing is
    # random at every D: the curves are compared up to the seed-averaged ODE's escape, and the
    # plateau height over the window where that mean lies within 5% of the fixed point.
    mean_ode = ode["eg"].mean(axis=0)
    i_escape, near = mf.plateau_window(alpha, mean_ode, plateau)
    if near.size == 0:
        raise RuntimeError(
            "the ODE never comes within 5% of the plateau before escaping; choose a larger "
            f"dim or a smaller lr (dim = {dim}, lr = {lr})."
        )
    window = slice(1, i_escape + 1)  # alpha = 0 left out (equal by construction)
    seed_mean = Record({"eg": ("time", mean_ode[window])}, {"time": alpha[window]}, sim.meta)
    comparisons = [
        # The claim: ODE vs seed-averaged simulation within 5% at D >= 1000. The
        # finite-D corrections are O(D^-1/2) ~ 3% per seed at D = 1000, but the escape from
        # the plateau amplifies them; averaging over seeds (each with its own ODE start)
        # keeps the mismatch of the mean curve at ~1-2% in our runs up to the escape.
        Comparison.from_records(
            "generalisation_error",
            seed_mean,
            sim,
            "eg",
            tolerance=0.05,
            yscale="log",
            description=f"eg(alpha): online SGD at D = {dim} (K = {k}, M = {m}, lr = {lr}) vs "
            "the Saad-Solla ODEs from each seed's initial overlaps, averaged over seeds, up to "
            f"the escape from the plateau (alpha <= {alpha[i_escape]:g})",
        ),
        # The window is where the ODE is within 5% of the fixed point, and the simulation
        # tracks the ODE there to ~1-2% (O(D^-1/2) noise averaged over seeds): 5% in all.
        Comparison.scalar(
            "plateau_height",
            theory=plateau,
            simulation=np.asarray(sim.eg)[:, near].mean(1),
            metric="max_rel",
            tolerance=0.05,
            ylabel="plateau eg",
            description="height of the specialisation plateau: symmetric fixed point of the "
            f"ODEs vs the simulation mean over alpha in [{alpha[near[0]]:g}, {alpha[near[-1]]:g}]",
        ),
    ]
    fig = mf.order_parameters_figure(sim, ode, plateau, escape=alpha[i_escape])
    notes = (
        f"Convention: w_k <- w_k + (lr/sqrt(D)) g'(lambda_k)(y - yhat) x, g = erf(./sqrt(2)), "
        f"alpha = steps/D (committee_network trained by nnlab.train on a Stream). D = {dim}, "
        f"K = {k}, M = {m}, lr = {lr}, {config.n_seeds} seeds, {n_steps} steps. Plateau fixed "
        f"point eg* = {plateau:.5f}.\n"
    )
    arrays = {"alpha": alpha, "eg_sim": np.asarray(sim.eg), "eg_ode": ode["eg"]}
    return ExperimentResult(
        comparisons, figures={"order_parameters": fig}, arrays=arrays, notes=notes
    )


register(
    Experiment(
        name="saad_solla",
        reference=(
            "Saad & Solla 1995 (Phys. Rev. E 52, 4225); Goldt, Advani, Saxe, Krzakala & "
            "Zdeborova 2019 (arXiv:1906.08632)"
        ),
        description=(
            "Soft committee machine (erf): exact order-parameter ODEs vs online SGD at input "
            "dimension D, generalisation error curve and specialisation plateau"
        ),
        run=run_saad_solla,
        small=SaadSollaConfig(),
        large=SaadSollaConfig(
            dim=10000,
            k_student=3,
            m_teacher=3,
            lr=1.0,
            alpha_max=300.0,
            n_seeds=16,
            n_records=301,
            plateau_alpha=400.0,
        ),
    )
)
