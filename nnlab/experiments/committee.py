"""Online learning of soft committee machines: Saad-Solla ODEs against SGD (``saad_solla``).

Online SGD of an erf soft committee machine at input dimension D against the exact
order-parameter ODEs from each seed's initial overlaps (Saad & Solla 1995; Goldt et al. 2019),
including the height of the specialisation plateau.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from nnlab import meanfield as mf
from nnlab.evaluate import Comparison, ExperimentResult
from nnlab.record import Record
from nnlab.registry import Experiment, register

__all__ = ["run_saad_solla"]


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
        large=SaadSollaConfig(dim=10000, k_student=3, m_teacher=3, lr=1.0, alpha_max=300.0,
            n_seeds=16, n_records=301, plateau_alpha=400.0),
    )
)  # fmt: skip
