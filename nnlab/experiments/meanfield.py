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
from nnlab.evaluate import Comparison, ExperimentResult, fixed_exponent_fit, scaling_fit
from nnlab.record import Record

from ._registry import Experiment, register

__all__ = ["run_meanfield_fluctuations", "run_saad_solla"]


def _figure(n_panels, width=5.5, height=3.6):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * n_panels, height), layout="constrained")
    return fig, fig.subplots(1, n_panels, squeeze=False)[0]


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


def _init_std(key, n, x, config):
    """RMS over ``x`` of the std of f_N(x) across ``n_init_seeds`` untrained networks."""
    net = mf.meanfield_network(n, W_std=config.W_std)
    keys = jax.random.split(key, config.n_init_seeds)
    f0 = jax.jit(jax.vmap(lambda k: net.apply(net.init(k, x.shape)[1], x)[:, 0]))(keys)
    return float(np.sqrt(np.mean(np.var(np.asarray(f0), axis=0, ddof=1))))


def _inverse_sqrt_law(name, final, field, what):
    """``field`` (over 'width', maybe 'seed') against ``c N^{-1/2}`` (c fitted with the
    exponent fixed, :func:`fixed_exponent_fit`) and its fitted exponent against -1/2."""
    widths = np.asarray(final.coord("width"), np.float64)
    mean = final[field].mean(axis=-1) if final[field].ndim == 2 else final[field]
    law = Record({"law": ("width", fixed_exponent_fit(widths, mean, -0.5)[1])}, final.coords)
    fit = scaling_fit(widths, mean)
    plot = {"xlabel": "N (particles)", "xscale": "log", "yscale": "log"}
    # std·√N is constant to within the sampling error of an RMS std over S = 16 seeds:
    # 1/sqrt(2(S-1)) = 18% in the worst case (test points fully correlated); 0.4 is ~2 SE.
    # The issue's claim for the exponents: in [-0.6, -0.4]; the fits' own standard errors are
    # ~0.02-0.04 (notes), and 0.1 also covers the O(N/N_ref) bias of the distance (<= 6%).
    return fit, [
        Comparison.from_records(
            name,
            law,
            final,
            ("law", field),
            metric="max_rel",
            tolerance=0.4,
            description=f"{what} vs c N^(-1/2)",
            **plot,
        ),
        Comparison.scalar(
            f"{field}_exponent",
            theory=-0.5,
            simulation=fit.exponent,
            tolerance=0.1,
            description=f"fitted exponent of the {what} vs N",
        ),
    ]


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
    widths = np.asarray(config.widths, np.float64)
    keys = jax.random.split(kinit, len(widths))
    std0 = np.array([_init_std(k, n, x_test, config) for k, n in zip(keys, config.widths)])
    # Exact: Var f_N(x) = E[a²] E[relu(w·x)²] / N (the NNGP / N), RMS over the test points.
    exact = np.sqrt(np.mean(np.asarray(mf.init_output_variance(x_test, 1, W_std=config.W_std))))
    fit_std, std_claims = _inverse_sqrt_law(
        "std_vs_N_trained", final, "std", f"std across seeds at t = {t_final:g}"
    )
    fit_dist, dist_claims = _inverse_sqrt_law(
        "distance_to_reference",
        final,
        "distance",
        f"RMS distance to the N = {config.n_reference} reference at t = {t_final:g}",
    )
    # std·√N at t = 0 against the exact value: the RMS of a sample std over S seeds has
    # relative standard error <= 1/sqrt(2(S-1)) (fully correlated test points, the worst
    # case); with S = n_init_seeds = 256 that is 4.4%, so 15% is > 3 SE at every width.
    init = Comparison.from_records(
        "init_std_times_sqrtN",
        Record({"std_sqrtN": ("width", np.full(len(widths), exact))}, final.coords),
        Record({"std_sqrtN": ("width", std0 * np.sqrt(widths))}, final.coords),
        "std_sqrtN",
        metric="max_rel",
        tolerance=0.15,
        xlabel="N (particles)",
        xscale="log",
        description="std of f_N(x) across seeds times sqrt(N) at t = 0 vs the exact "
        "sqrt(E[a^2] E[relu(w.x)^2]) (RMS over test points)",
    )
    fig, (ax_std, ax_loss) = _figure(2, width=4.0)
    density_fig, (ax_0, ax_t) = _figure(2, width=4.0)
    labels = [f"N={n}" for n in config.widths]
    ax_std.plot(sim.time, (spread.std * np.sqrt(widths)[:, None]).T, marker="o", label=labels)
    ax_loss.plot(sim.time, np.asarray(sim.loss).mean(axis=1).T, label=labels)
    ax_loss.plot(ref.time, np.asarray(ref.loss).mean(axis=0), "k--", label="reference")
    ax_std.set(xlabel="mean-field time t = lr · steps", ylabel="std across seeds x sqrt(N)")
    ax_loss.set(xlabel="t", ylabel="training loss (seed mean)", yscale="log")
    ax_std.legend(fontsize=7)
    net = mf.meanfield_network(config.n_reference, W_std=config.W_std)
    start = net.init(jax.random.split(kref, config.n_ref_seeds)[0], train.x.shape)[1]
    _density((ax_0, ax_t), [mf.particles(start, W_std=config.W_std), (ref.a[0], ref.w[0])])
    ax_t.set_title(f"t = {t_final:g}, N = {config.n_reference}")
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
        [init, *std_claims, *dist_claims],
        figures={"fluctuations": fig, "particle_density": density_fig},
        arrays={**arrays, "distance": final.distance},
        notes=notes,
    )


def _density(axes, snapshots):
    """Particle densities in (a, |w|) of ``snapshots`` [(a, w), ...] on shared ranges."""
    a_all = np.concatenate([np.asarray(a) for a, _ in snapshots])
    r_all = np.concatenate([np.linalg.norm(np.asarray(w), axis=1) for _, w in snapshots])
    ranges = {"a_range": tuple(np.quantile(a_all, [0.002, 0.998]))}
    ranges["w_range"] = (0.0, float(np.quantile(r_all, 0.998)))
    for ax, (a, w), when in zip(axes, snapshots, ("t = 0", "final")):
        h, ae, re = mf.particle_density(a, w, bins=50, **ranges)
        ax.pcolormesh(np.asarray(ae), np.asarray(re), np.asarray(h).T, cmap="viridis")
        ax.set(title=when, xlabel="a (output weight)", ylabel="|w| (input weight norm)")


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
    with jax.enable_x64(True):  # the theory in float64, from each seed's initial overlaps
        q0, r0 = np.asarray(sim.q[:, 0], np.float64), np.asarray(sim.r[:, 0], np.float64)
        t = np.asarray(sim.t, np.float64)
        solve = functools.partial(mf.saad_solla_ode, t=t, lr=lr, n_records=config.n_records)
        ode = jax.vmap(lambda q, r: solve(q, r, alpha_max=alpha[-1]))(q0, r0)
        ode = ode.with_leading_axis("seed").to_numpy()
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
    fig, (ax_eg, ax_r) = _figure(2)
    ax_eg.plot(alpha, np.asarray(sim.eg).T, color="C0", alpha=0.35, lw=1)
    ax_eg.plot(alpha, ode["eg"].T, color="C3", ls="--", lw=1)
    ax_eg.axhline(plateau, color="k", ls=":")
    ax_eg.axvline(alpha[i_escape], color="gray", ls="-.", lw=1)
    ax_eg.set(xlabel="alpha = steps / D", yscale="log", ylabel="eg: SGD (blue), ODE (red)")
    for i, (rs, ro) in enumerate(
        zip(sim.r[0].reshape(len(alpha), -1).T, ode["r"][0].reshape(len(alpha), -1).T)
    ):
        ax_r.plot(alpha, rs, color=f"C{i}", lw=1)
        ax_r.plot(alpha, ro, color=f"C{i}", ls="--", lw=1.5)
    ax_r.set(xlabel="alpha = steps / D", ylabel="R_in (seed 0): solid SGD, dashed ODE")
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
