"""The catapult phase: uv model, a wide ReLU network, its NQM and its linear model.

Registers ``catapult_uv`` (phase boundaries of the uv model, Lewkowycz et al. 2020),
``catapult_nqm`` (NN vs NQM vs linear model phases) and ``catapult_generalization``
(test loss vs learning rate, Zhu et al. 2022).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import quadratic as nq
from nnlab import train as nt
from nnlab.evaluate import Comparison, ExperimentResult

from ._registry import Experiment, register

__all__: list[str] = []  # registers its experiments; nothing to import

_LEWKOWYCZ = (
    "Lewkowycz, Bahri, Dyer, Sohl-Dickstein & Gur-Ari 2020, The large learning rate phase of "
    "deep learning: the catapult mechanism, arXiv:2003.02218"
)
_ZHU = (
    "Zhu, Liu, Radhakrishnan & Belkin 2022, Quadratic models for understanding neural network "
    "dynamics, arXiv:2205.11787; " + _LEWKOWYCZ
)
_MODEL_LABEL = {"nn": "network", "nqm": "NQM", "linear": "linear model"}
_MODEL_STYLE = {"nn": "C0o-", "nqm": "C1s--", "linear": "C2^:"}


# ----------------------------------------------------------------------------- helpers
def _boundary(ratio: np.ndarray, phase: np.ndarray, level: int) -> np.ndarray:
    """Per seed: midpoint between the last ratio with phase < level and the first with
    phase >= level (NaN if the sweep never crosses)."""
    out = []
    for row in phase:
        above = row >= level
        if not above.any() or above[0]:
            out.append(np.nan)
            continue
        i = int(np.argmax(above))
        out.append(0.5 * (ratio[i - 1] + ratio[i]))
    return np.asarray(out)


def _max_stable(ratio: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Per seed: the largest ratio that did not diverge."""
    ok = phase != nq.Phase.DIVERGENT
    return np.asarray([ratio[row].max() if row.any() else 0.0 for row in ok])


def _theory_phase(ratio, lazy_max=2.0, catapult_max=4.0):
    return np.where(
        ratio < lazy_max,
        nq.Phase.LAZY,
        np.where(ratio < catapult_max, nq.Phase.CATAPULT, nq.Phase.DIVERGENT),
    ).astype(np.float64)


def _away_from(ratio, boundaries, band):
    keep = np.ones(ratio.shape, bool)
    for b in boundaries:
        keep &= np.abs(ratio / b - 1.0) >= band
    return keep


def _phase_comparison(name, model, diag, keep, theory, band, description):
    return Comparison(
        name,
        theory[keep],
        diag.phase[:, keep].astype(np.float64),
        ("eta_lam0",),
        coords={"eta_lam0": diag.ratio[keep]},
        metric="max_abs",
        # Phases are discrete: every seed must agree with the predicted phase at every ratio
        # outside the excluded bands around the boundaries (see the band comments).
        tolerance=0.0,
        description=description,
        xlabel="η λ0",
        ylabel=f"phase of the {_MODEL_LABEL.get(model, model)} (0 lazy, 1 catapult, 2 divergent)",
    )


def _nanmedian(a):
    """Median over seeds ignoring NaN (diverged runs); NaN where every seed diverged."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(a, axis=0)


def _phase_figure(diagrams: Mapping[str, nq.PhaseDiagram], title: str):
    """Loss peak and final sharpness vs η λ0, with the 2/λ0 and 4/λ0 lines."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2))
    ax1, ax2 = fig.subplots(1, 2)
    for name, d in diagrams.items():
        style = _MODEL_STYLE.get(name, "C0o-")
        label = _MODEL_LABEL.get(name, name)
        peak = _nanmedian(np.where(np.isfinite(d.loss_peak), d.loss_peak, np.nan))
        lamr = _nanmedian(d.lam_final / d.lam0[:, None])
        ax1.plot(d.ratio, peak, style, ms=4, label=label)
        div = np.all(d.phase == nq.Phase.DIVERGENT, axis=0)
        if div.any():
            ax1.plot(d.ratio[div], np.full(div.sum(), 1.0), ls="none", marker="x", color=style[:2])
        ax2.plot(d.ratio, lamr, style, ms=4, label=label)
    grid = np.linspace(1.0, max(float(d.ratio.max()) for d in diagrams.values()), 200)
    ax2.plot(grid, 2.0 / grid, "k-", lw=0.8, alpha=0.6, label="λ = 2/η")
    for ax in (ax1, ax2):
        for b, txt in ((2.0, "2/λ0"), (4.0, "4/λ0")):
            ax.axvline(b, color="gray", ls="--", lw=0.8)
            ax.text(b, 1.0, f" {txt}", transform=ax.get_xaxis_transform(), va="top", fontsize=8)
        ax.set_xlabel("η λ0")
        ax.legend(fontsize=8)
    ax1.set_yscale("log")
    ax1.set_ylabel("loss peak  max_t L_t / L_0  (median over seeds)")
    ax1.set_title("loss spike (× at 1: every seed diverged)")
    ax2.set_ylabel("λ_final / λ0  (median over seeds)")
    ax2.set_ylim(0.0, 1.3)
    ax2.set_title("final sharpness")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _trajectory_figure(d: nq.PhaseDiagram, picks, title: str, horizon: int = 100):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.0))
    ax1, ax2 = fig.subplots(1, 2)
    t = np.arange(d.loss.shape[-1])
    for c in picks:
        j = int(np.argmin(np.abs(d.ratio - c)))
        ax1.semilogy(t, d.loss[0, j], label=f"η λ0 = {d.ratio[j]:.2f}")
        ax2.plot(t, d.lam[0, j] * d.lr[0, j], label=f"η λ0 = {d.ratio[j]:.2f}")
    ax2.axhline(2.0, color="k", ls="--", lw=0.8, label="η λ = 2")
    ax2.set_ylim(0.0, 4.5)
    ax1.set_ylim(1e-8, None)
    ax1.set_xlim(0, min(len(t) - 1, horizon))
    ax2.set_xlim(0, min(len(t) - 1, horizon))
    ax1.set_xlabel("step")
    ax1.set_ylabel("training loss")
    ax2.set_xlabel("step")
    ax2.set_ylabel("η λ_t")
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- catapult_uv
def _run_uv(config: Mapping[str, Any], seed: int) -> ExperimentResult:
    n = int(config["width"])
    ratio = np.linspace(*config["ratio_range"], int(config["n_ratios"]))
    d = nq.uv_phase_diagram(
        nq.UVModel(n),
        ratio,
        key=jax.random.key(seed),
        seeds=int(config["seeds"]),
        steps=int(config["steps"]),
    )
    lo = _boundary(d.ratio, d.phase, nq.Phase.CATAPULT)
    hi = _boundary(d.ratio, d.phase, nq.Phase.DIVERGENT)
    cat = d.phase == nq.Phase.CATAPULT
    eta_lam = d.lr * d.lam_final
    violations = float(np.sum(cat & ~(eta_lam < 2.0)))
    lazy = d.ratio <= 1.8
    comparisons = [
        # The claim: measured boundaries within 5% of 2/λ0 and 4/λ0. The grid spacing
        # (ratio_range / n_ratios ~ 0.025-0.05) bounds the midpoint's error by ~1%; finite
        # width shifts the lower edge only through the O(1/n) drift of λ before the spike.
        Comparison.scalar(
            "lazy_catapult_boundary",
            2.0,
            lo,
            metric="max_rel",
            tolerance=0.05,
            description="Measured η λ0 where the uv model leaves the lazy phase (per seed) vs 2.",
            ylabel="η λ0 at the lazy/catapult boundary",
        ),
        Comparison.scalar(
            "catapult_divergent_boundary",
            4.0,
            hi,
            metric="max_rel",
            tolerance=0.05,
            description="Measured η λ0 where the uv model starts to diverge (per seed) vs 4.",
            ylabel="η λ0 at the catapult/divergent boundary",
        ),
        # Every catapult run must end with η λ_final < 2 (Lewkowycz et al. eq. 4: λ falls
        # until the top mode is stable); a count, so the tolerance is 0.
        Comparison.scalar(
            "catapult_ends_below_2_over_eta",
            0.0,
            violations,
            tolerance=0.0,
            description="Number of catapult-phase runs whose final η λ is not below 2.",
            ylabel="violations",
        ),
        # Lazy phase: λ_T/λ0 = 1 + O(f0²/n); summing the λ update over the contracting
        # residual (ηλ ≤ 1.8) gives |Δλ/λ| ≲ 6 f0²/n ≤ 0.1 at n = 512 for |f0| < 3.
        Comparison(
            "lazy_lam_constant",
            np.ones(int(lazy.sum())),
            (d.lam_final / d.lam0[:, None])[:, lazy],
            ("eta_lam0",),
            coords={"eta_lam0": d.ratio[lazy]},
            metric="max_abs",
            tolerance=0.1,
            description="λ_final / λ0 in the lazy phase (η λ0 ≤ 1.8): the kernel stays put.",
            xlabel="η λ0",
            ylabel="λ_final / λ0",
        ),
    ]
    keep = _away_from(d.ratio, (2.0, 4.0), 0.05)
    comparisons.append(
        _phase_comparison(
            "uv_phase_vs_ratio",
            "uv model",
            d,
            keep,
            _theory_phase(d.ratio),
            0.05,
            "Phase of each uv-model run vs the prediction (lazy < 2 < catapult < 4 < divergent "
            "in η λ0), excluding ±5% bands around the boundaries.",
        )
    )
    figures = {
        "uv_phase_diagram": _phase_figure({"uv": d}, f"uv model, n = {n}"),
        "uv_trajectories": _trajectory_figure(
            d, (1.5, 2.5, 3.5, 4.2), f"uv model trajectories (seed 0), n = {n}"
        ),
    }
    notes = (
        f"Measured boundaries (per seed): lazy→catapult {np.round(lo, 3).tolist()}, "
        f"catapult→divergent {np.round(hi, 3).tolist()}; max η λ_final over catapult runs "
        f"{float(np.max(eta_lam[cat])) if cat.any() else float('nan'):.3f}."
    )
    arrays = {
        "ratio": d.ratio,
        "phase": d.phase,
        "loss_peak": d.loss_peak,
        "lam_final": d.lam_final,
        "lam0": d.lam0,
    }
    return ExperimentResult(comparisons, figures=figures, arrays=arrays, notes=notes)


register(
    Experiment(
        name="catapult_uv",
        reference=_LEWKOWYCZ,
        description=(
            "uv model: loss spike and final NTK vs η λ0; measured lazy/catapult/divergent "
            "boundaries vs 2/λ0 and 4/λ0, and λ_final < 2/η in the catapult phase."
        ),
        run=_run_uv,
        small={"width": 512, "ratio_range": (0.5, 6.0), "n_ratios": 111, "seeds": 3, "steps": 300},
        large={
            "width": 8192,
            "ratio_range": (0.5, 6.0),
            "n_ratios": 441,
            "seeds": 16,
            "steps": 600,
        },
    )
)


# ------------------------------------------------------------------ network, NQM, linear
def _two_layer_problem(config: Mapping[str, Any], seed: int):
    """A wide two-layer ReLU net (NTK parameterisation, no biases) on a few sphere points
    with a smooth single-index target."""
    from nnlab import layers as nl

    n, d, width = int(config["n_train"]), int(config["dim"]), int(config["width"])
    kx, kt, kw = jax.random.split(jax.random.key(1000 + seed), 3)

    def sphere(k, m):
        x = jax.random.normal(k, (m, d))
        return x / jnp.linalg.norm(x, axis=1, keepdims=True) * jnp.sqrt(d)

    w = jax.random.normal(kw, (d,))
    x, xt = sphere(kx, n), sphere(kt, int(config["n_test"]))

    def target(z):
        return jnp.sin(z @ w / jnp.sqrt(d))[:, None]

    net = nl.serial(nl.Dense(width, b_std=None), nl.Relu(), nl.Dense(1, b_std=None))
    data = nt.Data(x, target(x), xt, target(xt))
    return net.apply, (lambda k: net.init(k, x.shape)[1]), data


def _diagrams(config, seed, grids: Mapping[str, Any]):
    apply_fn, init_fn, data = _two_layer_problem(config, seed)
    out = {}
    for model, ratios in grids.items():
        out[model] = nq.phase_diagram(
            apply_fn,
            init_fn,
            data,
            np.asarray(ratios, np.float64),
            key=jax.random.key(seed),
            seeds=int(config["seeds"]),
            steps=int(config["steps"]),
            models=(model,),
        )[model]
    return out


def _run_nqm(config: Mapping[str, Any], seed: int) -> ExperimentResult:
    grids = {
        "nn": config["ratios_nn"],
        "nqm": config["ratios_nqm"],
        "linear": config["ratios_linear"],
    }
    ds = _diagrams(config, seed, grids)
    nn, nqm, lin = ds["nn"], ds["nqm"], ds["linear"]
    comparisons = [
        # NQM: Zhu et al. prove lazy < 2/λ0 < catapult < 4/λ0 < divergent. The lower edge
        # moves by the O(1/sqrt(width)) drift of λ during the first steps (measured ~5% at
        # width 512) and the upper edge by the multi-example spread of the top-mode
        # dynamics (seeds diverge between 3.8 and 4.2), so ±10% bands are excluded.
        _phase_comparison(
            "nqm_phase_vs_ratio",
            "nqm",
            nqm,
            _away_from(nqm.ratio, (2.0, 4.0), 0.1),
            _theory_phase(nqm.ratio),
            0.1,
            "NQM phase vs lazy < 2 < catapult < 4 < divergent (η λ0), ±10% bands excluded.",
        ),
        # NN: lazy below 2/λ0 and catapult (not divergence) on (2, 4) λ0⁻¹, same bands; above
        # 4/λ0 its own maximal rate is measured separately.
        _phase_comparison(
            "nn_phase_vs_ratio",
            "nn",
            nn,
            _away_from(nn.ratio, (2.0, 4.0), 0.1) & (nn.ratio < 4.0),
            _theory_phase(nn.ratio),
            0.1,
            "Network phase vs lazy below 2/λ0 and catapult on (2, 4)/λ0, ±10% bands excluded.",
        ),
        # Linear model: GD on a quadratic loss is stable iff η λ_max < 2 exactly, so only a
        # ±5% band (the grid resolution) is excluded; above it the model diverges.
        _phase_comparison(
            "linear_phase_vs_ratio",
            "linear",
            lin,
            _away_from(lin.ratio, (2.0,), 0.05),
            _theory_phase(lin.ratio, 2.0, 2.0),
            0.05,
            "Linear-model phase vs lazy below 2/λ0 and divergent above (no catapult).",
        ),
    ]
    nn_max = _max_stable(nn.ratio, nn.phase)
    nqm_max = _max_stable(nqm.ratio, nqm.phase)
    # Lewkowycz et al. report η_max λ0 above 4 for ReLU networks. One-sided claim, written as
    # the relative shortfall below 4, max(0, 1 - η_max λ0 / 4), per seed; tolerance 0.05 is
    # the grid spacing near 4 (the largest stable grid point underestimates η_max).
    comparisons.append(
        Comparison.scalar(
            "nn_max_stable_above_4",
            0.0,
            np.maximum(0.0, 1.0 - nn_max / 4.0),
            tolerance=0.05,
            description=(
                "Relative shortfall of the network's largest stable η λ0 below 4 (0: it "
                "catapults at least up to 4/λ0, as Lewkowycz et al. report for ReLU nets)."
            ),
            ylabel="max(0, 1 - η_max λ0 / 4)",
        )
    )
    figures = {
        "phase_diagram": _phase_figure(
            ds,
            f"two-layer ReLU net (width {config['width']}, {config['n_train']} points), "
            "its NQM and linear model",
        ),
        "nn_trajectories": _trajectory_figure(
            nn, (1.5, 3.0, 4.4, 6.0), "network trajectories (seed 0)"
        ),
        "nqm_trajectories": _trajectory_figure(nqm, (1.5, 3.0, 3.8), "NQM trajectories (seed 0)"),
    }
    notes = (
        f"Largest stable η λ0 on the grid, per seed: network {nn_max.tolist()}, NQM "
        f"{nqm_max.tolist()}, linear {_max_stable(lin.ratio, lin.phase).tolist()}. "
        f"λ0 per seed: {np.round(nn.lam0, 4).tolist()}."
    )
    arrays = {
        f"{m}_{f}": getattr(d, f)
        for m, d in ds.items()
        for f in ("ratio", "phase", "loss_peak", "lam_final", "lam0")
    }
    return ExperimentResult(comparisons, figures=figures, arrays=arrays, notes=notes)


_NQM_SMALL = {
    "width": 256,
    "dim": 5,
    "n_train": 8,
    "n_test": 64,
    "seeds": 2,
    "steps": 160,
    "ratios_nn": [0.5, 1.5, 1.9, 2.3, 2.8, 3.3, 3.6, 4.4, 5.0, 6.0, 8.0, 10.0],
    "ratios_nqm": [0.5, 1.5, 1.8, 2.3, 2.8, 3.3, 3.6, 4.4, 5.0, 6.0],
    "ratios_linear": [0.5, 1.5, 1.9, 2.1, 2.5, 3.0],
}
register(
    Experiment(
        name="catapult_nqm",
        reference=_ZHU,
        description=(
            "Wide two-layer ReLU net vs its NQM vs its linear model: NN and NQM catapult "
            "above 2/λ0, the linear model diverges; the net's own maximal stable η λ0."
        ),
        run=_run_nqm,
        small=_NQM_SMALL,
        large={
            **_NQM_SMALL,
            "width": 4096,
            "n_train": 16,
            "n_test": 1024,
            "seeds": 8,
            "steps": 600,
            "ratios_nn": list(np.round(np.linspace(0.5, 16.0, 63), 3)),
            "ratios_nqm": list(np.round(np.linspace(0.5, 6.0, 45), 3)),
            "ratios_linear": list(np.round(np.linspace(0.5, 3.0, 26), 3)),
        },
    )
)


# ------------------------------------------------------------------ catapult_generalization
def _linear_test_loss(apply_fn, init_fn, data, key, seeds):
    """Test loss of the linear model trained to convergence (any η < 2/λ0), per seed.

    GD on the linearised network converges to ``f0 + Θ(·, X) Θ(X, X)⁻¹ (y − f0(X))`` (Lee et
    al. 2019, arXiv:1902.06720): eNTK regression on the initial residual, independent of η.
    """
    from nnlab.empirical import empirical_ntk

    out = []
    for k in jax.random.split(key, seeds):
        p0 = init_fn(k)
        x, y, xt, yt = data.x_train, data.y_train, data.x_test, data.y_test
        k_xx = empirical_ntk(apply_fn, p0, x)
        k_tx = empirical_ntk(apply_fn, p0, xt, x)
        resid = y - apply_fn(p0, x)
        ft = apply_fn(p0, xt) + k_tx @ jnp.linalg.solve(k_xx, resid)
        out.append(float(0.5 * jnp.mean(jnp.sum(jnp.square(ft - yt), axis=-1))))
    return np.asarray(out)


def _run_generalization(config: Mapping[str, Any], seed: int) -> ExperimentResult:
    ratios = np.asarray(config["ratios"], np.float64)
    ds = _diagrams(config, seed, {"nn": ratios, "nqm": ratios})
    apply_fn, init_fn, data = _two_layer_problem(config, seed)
    lin = _linear_test_loss(apply_fn, init_fn, data, jax.random.key(seed), int(config["seeds"]))
    nn, nqm = ds["nn"], ds["nqm"]
    ref = int(np.argmin(ratios))
    rho_nn = nn.test_final / nn.test_final[:, ref : ref + 1]
    rho_nqm = nqm.test_final / nqm.test_final[:, ref : ref + 1]
    lazy = ratios <= 1.5
    tracked = ratios <= float(config["max_tracked_ratio"])
    comparisons = [
        # Lazy regime: the network's converged test loss is that of its linear model (eNTK
        # regression from the init), up to the O(1/sqrt(width)) kernel drift: 1/sqrt(256)
        # = 6%; measured <= 3.5% over 9 seeds at width 256, so 10%.
        Comparison(
            "lazy_nn_vs_linear",
            np.mean(lin) * np.ones(int(lazy.sum())),
            nn.test_final[:, lazy] / lin[:, None] * np.mean(lin),
            ("eta_lam0",),
            coords={"eta_lam0": ratios[lazy]},
            metric="max_rel",
            tolerance=0.1,
            description=(
                "Lazy regime (η λ0 ≤ 1.5): the network's test loss, per seed rescaled by its "
                "linear model's converged test loss (η-independent), against the latter."
            ),
            xlabel="η λ0",
            ylabel="test loss (rescaled per seed)",
        ),
        # Zhu et al.: the NQM parallels the network through the catapult regime. Claim on the
        # shape of the curve, test loss relative to its value at the smallest η, averaged over
        # seeds, up to max_tracked_ratio (closer to 4/λ0 the NQM's own divergence edge makes
        # single runs erratic). The NQM drops the cubic and higher Taylor terms, which the
        # catapult (an O(1) change of the kernel) excites: measured rel_l2 3-9% over 9
        # seeds, so 0.15.
        Comparison(
            "nqm_tracks_nn_test_loss",
            np.mean(rho_nn[:, tracked], axis=0),
            rho_nqm[:, tracked],
            ("eta_lam0",),
            coords={"eta_lam0": ratios[tracked]},
            metric="rel_l2",
            tolerance=0.15,
            description=(
                "Test loss relative to its lazy value vs η λ0: NQM (points, per seed) against "
                "the network (line, seed mean), lazy and catapult regimes."
            ),
            xlabel="η λ0",
            ylabel="test loss / test loss at smallest η",
        ),
    ]
    figures = {"test_loss_vs_lr": _test_figure(ratios, nn, nqm, lin)}
    cat = ratios > 2.2
    notes = (
        f"Mean relative test loss in the catapult regime (η λ0 > 2.2, seeds x ratios): "
        f"network {np.nanmean(rho_nn[:, cat]):.3f}, NQM {np.nanmean(rho_nqm[:, cat]):.3f}; the "
        "linear model has no catapult regime (it diverges above 2/λ0, see catapult_nqm) and "
        f"its converged test loss is η-independent: {np.round(lin, 4).tolist()} per seed."
    )
    arrays = {
        "ratio": ratios,
        "nn_test": nn.test_final,
        "nqm_test": nqm.test_final,
        "linear_test": lin,
        "nn_phase": nn.phase,
        "nqm_phase": nqm.phase,
    }
    return ExperimentResult(comparisons, figures=figures, arrays=arrays, notes=notes)


def _test_figure(ratios, nn, nqm, lin):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4.2))
    ax = fig.subplots()
    for name, d in (("nn", nn), ("nqm", nqm)):
        m = np.nanmean(d.test_final, axis=0)
        se = np.nanstd(d.test_final, axis=0, ddof=1) / np.sqrt(d.test_final.shape[0])
        ax.plot(ratios, m, _MODEL_STYLE[name], ms=4, label=_MODEL_LABEL[name])
        ax.fill_between(ratios, m - se, m + se, color=_MODEL_STYLE[name][:2], alpha=0.2)
    ax.plot(
        [ratios.min(), 2.0],
        [np.mean(lin)] * 2,
        "C2-",
        lw=2,
        label="linear model (η < 2/λ0; diverges above)",
    )
    ax.axvline(2.0, color="gray", ls="--", lw=0.8)
    ax.text(2.0, 1.0, " 2/λ0", transform=ax.get_xaxis_transform(), va="top", fontsize=8)
    ax.set_xlabel("η λ0")
    ax.set_ylabel("final test loss (mean ± SE over seeds)")
    ax.set_title("generalisation vs learning rate")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


register(
    Experiment(
        name="catapult_generalization",
        reference=_ZHU,
        description=(
            "Test loss vs η λ0 for a two-layer ReLU net, its NQM and its linear model: lazy "
            "regime = linear model; the NQM parallels the network through the catapult regime."
        ),
        run=_run_generalization,
        small={
            **_NQM_SMALL,
            "seeds": 3,
            "ratios": [0.5, 1.0, 1.5, 1.9, 2.3, 2.6, 3.0, 3.4],
            "max_tracked_ratio": 3.0,
        },
        large={
            **_NQM_SMALL,
            "width": 4096,
            "n_train": 16,
            "n_test": 1024,
            "seeds": 16,
            "steps": 600,
            "ratios": list(np.round(np.linspace(0.5, 3.8, 23), 3)),
            "max_tracked_ratio": 3.4,
        },
    )
)
