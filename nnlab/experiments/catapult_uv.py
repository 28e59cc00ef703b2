"""The catapult phase of the uv model (Lewkowycz et al. 2020): registers ``catapult_uv``.

Measured lazy/catapult/divergent boundaries of the uv model against 2/λ0 and 4/λ0; the
network, NQM and linear-model experiments are in :mod:`nnlab.experiments.catapult`.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from nnlab import quadratic as nq
from nnlab.evaluate import Comparison, ExperimentResult
from nnlab.registry import Experiment, register

from .catapult import _CATAPULT_MAX, _LAZY_MAX, _LEWKOWYCZ

__all__: list[str] = []  # registers its experiment; nothing to import


@dataclasses.dataclass(frozen=True)
class UVConfig:
    """uv model of width ``width``; ``n_ratios`` values of η λ0 on ``ratio_range``."""

    width: int = 512
    ratio_range: tuple[float, float] = (0.5, 6.0)
    n_ratios: int = 111
    seeds: int = 3
    steps: int = 300


def _run_uv(config: UVConfig, seed: int) -> ExperimentResult:
    ratio = np.linspace(*config.ratio_range, config.n_ratios)
    model, key = nq.UVModel(config.width), jax.random.key(seed)
    d = nq.uv_phase_diagram(model, ratio, key=key, seeds=config.seeds, steps=config.steps)
    cat = d.phase == nq.Phase.CATAPULT
    # The claim: measured boundaries within 5% of 2/λ0 and 4/λ0. The grid spacing
    # (ratio_range / n_ratios ~ 0.025-0.05) bounds the midpoint's error by ~1%; finite width
    # shifts the lower edge only through the O(1/n) drift of λ before the spike.
    edges = {
        "lazy_catapult_boundary": (nq.Phase.CATAPULT, _LAZY_MAX, "leaves the lazy phase"),
        "catapult_divergent_boundary": (nq.Phase.DIVERGENT, _CATAPULT_MAX, "starts to diverge"),
    }
    comparisons = [
        Comparison.scalar(
            name, edge, d.boundary(phase), metric="max_rel", tolerance=0.05,
            description=f"Measured η λ0 where the uv model {what} (per seed) vs {edge:g}.",
        )
        for name, (phase, edge, what) in edges.items()
    ]  # fmt: skip
    comparisons += [
        # Every catapult run must end with η λ_final < 2 (Lewkowycz et al. eq. 4: λ falls
        # until the top mode is stable); a count, so the tolerance is 0.
        Comparison.scalar(
            "catapult_ends_below_2_over_eta", 0.0, np.sum(cat & ~(d.eta_lam_final < 2.0)),
            tolerance=0.0, description="Catapult runs whose final η λ is not below 2.",
        ),
        # Lazy phase (η λ0 ≤ 1.8, a 10% band below 2): η λ_T = η λ0, i.e. λ_T/λ0 = 1 +
        # O(f0²/n); summing the λ update over the contracting residual gives |Δλ/λ| ≲ 6 f0²/n
        # ≤ 0.1 at n = 512 for |f0| < 3. max_rel is |mean_seeds(λ_T/λ0) - 1|.
        Comparison.from_records(
            "lazy_lam_constant", d.prediction(band=0.1, phases=[nq.Phase.LAZY]), d,
            "eta_lam_final", metric="max_rel", tolerance=0.1,
            description="η λ_final in the lazy phase (η λ0 ≤ 1.8) vs η λ0: the kernel stays put.",
        ),
        d.phase_check(
            "uv_phase_vs_ratio", band=0.05,
            description="uv-model phase vs the prediction, ±5% bands out.",
        ),
    ]  # fmt: skip
    title = f"uv model, n = {config.width}"
    figures = {
        "uv_phase_diagram": nq.phase_figure({"uv": d}, title),
        "uv_trajectories": nq.trajectory_figure(d, (1.5, 2.5, 3.5, 4.2), f"{title} (seed 0)"),
    }
    peak = float(np.max(d.eta_lam_final[cat], initial=-np.inf))
    notes = f"Largest η λ_final over the catapult runs: {peak:.3f}."
    return ExperimentResult(comparisons, figures, nq.diagram_arrays({"uv": d}), notes)


register(
    Experiment(
        name="catapult_uv",
        reference=_LEWKOWYCZ,
        description=(
            "uv model: loss spike and final NTK vs η λ0; measured lazy/catapult/divergent "
            "boundaries vs 2/λ0 and 4/λ0, and λ_final < 2/η in the catapult phase."
        ),
        run=_run_uv,
        small=UVConfig(),
        large=UVConfig(width=8192, n_ratios=441, seeds=16, steps=600),
    )
)
