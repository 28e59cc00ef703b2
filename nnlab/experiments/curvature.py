"""Curvature experiments: the edge of stability (Cohen et al. 2021) and the Hessian's
bulk-plus-outliers spectrum (Sagun et al. 2017; Papyan 2019).

Registers ``edge_of_stability`` and ``hessian_spectrum``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnlab import curvature as cv
from nnlab.evaluate import Comparison, ExperimentResult
from nnlab.train import Data, train, train_ensemble

from ._registry import Experiment, register

__all__: list[str] = []  # registers its experiments; nothing to import


def _mlp_init(key, sizes):
    params = []
    for d_in, d_out in itertools.pairwise(sizes):
        key, k = jax.random.split(key)
        params.append({"w": jax.random.normal(k, (d_in, d_out)), "b": jnp.zeros((d_out,))})
    return params


def _mlp_apply(params, x):
    """tanh MLP in the NTK parameterisation: ``h = W x / sqrt(fan_in) + b``."""
    for i, layer in enumerate(params):
        x = x @ layer["w"] / np.sqrt(layer["w"].shape[0]) + layer["b"][None]
        if i < len(params) - 1:
            x = jnp.tanh(x)
    return x


# ----------------------------------------------------------------------- edge_of_stability
def _eos_data(key, n, d):
    """Regression targets from a random tanh teacher on inputs of scale 3 (a hard target)."""
    kx, kt = jax.random.split(key)
    x = jax.random.normal(kx, (n, d))
    y = _mlp_apply(_mlp_init(kt, (d, 64, 1)), 3.0 * x)
    return x, y / jnp.std(y)


def _run_eos(config: Mapping[str, Any], seed: int) -> ExperimentResult:
    key = jax.random.key(seed)
    kd, kp = jax.random.split(key)
    x, y = _eos_data(kd, int(config["n"]), int(config["d"]))
    w = int(config["width"])
    sizes = (int(config["d"]), w, w, 1)
    # Learning rates relative to the initial sharpness λ₀ (which varies with the data seed):
    # 2/η = factor · λ₀, so every EoS run starts below its threshold and has to sharpen.
    op0 = cv.hessian_operator(
        _mlp_apply, _mlp_init(jax.random.split(kp, int(config["n_seeds"]))[0], sizes), x, y
    )
    lam0 = float(cv.top_eigenpairs(op0, kd, 1, num_iters=30).eigenvalues[0])
    lrs = 2.0 / (lam0 * np.asarray(config["threshold_factors"], np.float64))
    control = 2.0 / (lam0 * np.asarray(config["control_factors"], np.float64))
    all_lrs = np.concatenate([lrs, control])
    steps, n_logs = int(config["steps"]), int(config["n_logs"])
    rec = train_ensemble(
        _mlp_apply,
        lambda k: _mlp_init(k, sizes),
        Data(x, y),
        optimizer=lambda lr: optax.sgd(lr),
        seeds=int(config["n_seeds"]),
        key=kp,
        hyperparams={"lr": all_lrs},
        steps=steps,
        log_every=steps // n_logs,
        observables={"sharpness": cv.sharpness(num_iters=int(config["lanczos_iters"]))},
    ).to_numpy()
    sharp = np.asarray(rec.observables["sharpness"], np.float64)  # (seed, lr, time)
    loss = np.asarray(rec.train_loss, np.float64)
    step = np.asarray(rec.step)
    eos, ctl = sharp[:, : len(lrs)], sharp[:, len(lrs) :]
    threshold = 2.0 / lrs
    s0 = eos[:, :, 0]
    ratio = eos * lrs[None, :, None] / 2.0  # λ_max / (2/η)
    # The edge-of-stability phase starts at the first log where the sharpness reaches 97% of
    # 2/η; it must start before 3/4 of the run (else the run never got there: NaN, FAIL).
    reached = ratio >= 0.97
    first = np.where(reached.any(-1), np.argmax(reached, axis=-1), len(step))
    phase = np.arange(len(step))[None, None, :] >= first[..., None]
    phase &= (first <= 0.75 * len(step))[..., None]
    count = phase.sum(-1)
    late_mean = np.where(
        count > 0, np.where(phase, eos, 0.0).sum(-1) / np.maximum(count, 1), np.nan
    )
    deviation = np.asarray(
        [
            np.percentile(np.abs(r[m] - 1.0), 90) if m.any() else np.inf
            for r, m in zip(ratio.reshape(-1, len(step)), phase.reshape(-1, len(step)), strict=True)
        ]
    )
    comparisons = [
        # Tolerance 10%: the claim of the issue (Cohen et al. report the sharpness "hovering
        # just above 2/η"). Measured 0.15-0.5% on seeds 0-2 (mean over the phase); the
        # 90th-percentile deviation below measured ~2%. The 20-step Lanczos estimate is
        # converged far below that (tests check it against the dense Hessian).
        Comparison(
            "sharpness_at_eos",
            threshold,
            late_mean,
            ("learning_rate",),
            coords={"learning_rate": lrs},
            metric="max_rel",
            tolerance=0.1,
            description=(
                "Mean sharpness λ_max(∇²L) of full-batch GD from the first time it reaches 97% "
                "of 2/η to the end, against the stability threshold 2/η (edge of stability)."
            ),
            xlabel="learning rate η",
            ylabel="sharpness λ_max",
        ),
        Comparison.scalar(
            "eos_max_deviation",
            theory=0.0,
            simulation=float(deviation.max()),
            tolerance=0.1,
            description=(
                "90th percentile over the edge-of-stability phase of |λ_max η/2 − 1|, worst "
                "EoS η and seed: the sharpness hovers within 10% of 2/η (the brief catapult "
                "spikes when it first crosses are the top 10%)."
            ),
            ylabel="90th percentile of |λ_max η/2 − 1|",
        ),
        # Progressive sharpening: the sharpness starts at λ₀ = 2/(factor η) < 2/η and must
        # climb; the fraction of the initial gap closed is 1 at the edge of stability
        # (measured within 0.012 of 1 on seeds 0-2). Tolerance 0.5: a run that stalls halfway
        # fails.
        Comparison.scalar(
            "progressive_sharpening",
            theory=1.0,
            simulation=float(np.min((late_mean - s0) / (threshold[None] - s0))),
            tolerance=0.5,
            description=(
                "Smallest fraction (λ_late − λ_0)/(2/η − λ_0) of the initial gap to 2/η "
                "closed by progressive sharpening, over EoS learning rates and seeds."
            ),
            ylabel="fraction of gap closed",
        ),
        # Negative control: at small η the threshold 2/η is far above anything the sharpness
        # reaches; claim: it stays below half of 2/η (measured ~0.1).
        Comparison.scalar(
            "control_below_threshold",
            theory=0.0,
            simulation=float(np.max(ctl * control[None, :, None] / 2.0)),
            tolerance=0.5,
            description=(
                "Control runs with small η: max over time of λ_max / (2/η); it stays far "
                "below 1 (here below 0.5)."
            ),
            ylabel="max λ_max η / 2",
        ),
    ]
    figures = {"sharpness_trajectories": _eos_figure(step, sharp, loss, all_lrs, len(lrs))}
    arrays = {"step": step, "sharpness": sharp, "train_loss": loss, "learning_rates": all_lrs}
    notes = (
        f"Full-batch GD with MSE on {config['n']} points (tanh teacher), tanh MLP {sizes} in the "
        "NTK parameterisation. Sharpness logged every "
        f"{steps // n_logs} steps by a {config['lanczos_iters']}-step Lanczos run inside the "
        f"compiled training loop. Initial sharpness {np.round(s0.mean(0), 3).tolist()}, "
        f"thresholds 2/η = {np.round(threshold, 3).tolist()}."
    )
    return ExperimentResult(comparisons, figures=figures, arrays=arrays, notes=notes)


def _eos_figure(step, sharp, loss, lrs, n_eos):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11.0, 4.0), layout="constrained")
    ax_s, ax_l = fig.subplots(1, 2)
    for i, lr in enumerate(lrs):
        color = f"C{i}"
        label = f"η = {lr:.3g}, 2/η = {2 / lr:.3g}" + ("" if i < n_eos else " (control, off scale)")
        t = step
        ax_s.plot(t, sharp[:, i].T, color=color, lw=1.2, label=[label] + [None] * (len(sharp) - 1))
        ax_s.axhline(2.0 / lr, color=color, ls="--", lw=0.9)
        ax_l.plot(t, loss[:, i].T, color=color, lw=1.0, label=[label] + [None] * (len(loss) - 1))
    top = 1.3 * 2.0 / lrs[:n_eos].min()
    ax_s.set_ylim(0.0, top)
    ax_s.set_xlabel("GD step")
    ax_s.set_ylabel("sharpness λ_max(∇²L)")
    ax_s.set_title("sharpness (solid) and 2/η (dashed)")
    ax_s.legend(fontsize="small")
    ax_l.set_yscale("log")
    ax_l.set_xlabel("GD step")
    ax_l.set_ylabel("training loss")
    ax_l.set_title("training loss (non-monotone at the edge of stability)")
    fig.suptitle("Edge of stability (Cohen et al. 2021): full-batch GD, tanh MLP, MSE")
    return fig


register(
    Experiment(
        name="edge_of_stability",
        reference=(
            "Cohen, Kaur, Li, Kolter & Talwalkar 2021, Gradient descent on neural networks "
            "typically occurs at the edge of stability, arXiv:2103.00065"
        ),
        description=(
            "Full-batch GD on a tanh MLP at several learning rates: the sharpness rises "
            "(progressive sharpening) and hovers at 2/η; a small-η control stays far below."
        ),
        run=_run_eos,
        small={
            "n": 200,
            "d": 10,
            "width": 32,
            "threshold_factors": [1.2, 1.35, 1.5],
            "control_factors": [10.0],
            "steps": 4000,
            "n_logs": 100,
            "lanczos_iters": 20,
            "n_seeds": 1,
        },
        large={
            "n": 1000,
            "d": 20,
            "width": 128,
            "threshold_factors": [1.2, 1.4, 1.6, 1.8, 2.0],
            "control_factors": [10.0, 20.0],
            "steps": 20000,
            "n_logs": 400,
            "lanczos_iters": 30,
            "n_seeds": 4,
        },
    )
)


# ----------------------------------------------------------------------- hessian_spectrum
def _mixture(key, n_classes, per_class, d, separation):
    km, kx = jax.random.split(key)
    means = separation * jax.random.normal(km, (n_classes, d))
    labels = jnp.arange(n_classes * per_class) % n_classes
    x = means[labels] + jax.random.normal(kx, (n_classes * per_class, d))
    return x, labels


def _count_outliers(eigenvalues):
    """Outliers = eigenvalues above the largest ratio gap ``λ_i/λ_{i+1}`` of the top ones."""
    ev = np.sort(np.asarray(eigenvalues))[::-1]
    ev = ev[ev > 0]
    return int(np.argmax(np.log(ev[:-1] / ev[1:])) + 1)


def _run_spectrum(config: Mapping[str, Any], seed: int) -> ExperimentResult:
    d, h = int(config["d"]), int(config["width"])
    classes = [int(c) for c in config["classes"]]
    counts, tops, densities = [], {}, {}
    comparisons = []
    for c in classes:
        key = jax.random.fold_in(jax.random.key(seed), c)
        kd, kp, kl, kt = jax.random.split(key, 4)
        x, labels = _mixture(kd, c, int(config["per_class"]), d, float(config["separation"]))
        rec = train(
            _mlp_apply,
            _mlp_init(kp, (d, h, c)),
            Data(x, labels),
            optimizer=optax.adam(float(config["adam_lr"])),
            steps=int(config["steps"]),
            log_every=int(config["steps"]),
            loss="xent",
        )
        op = cv.hessian_operator(_mlp_apply, rec.params, x, labels, loss="xent")
        k = 3 * c + 5
        iters = min(op.dim, k + int(config["extra_lanczos_iters"]))
        top_fn = jax.jit(
            lambda op=op, kl=kl, k=k, m=iters: cv.top_eigenpairs(op, kl, k, num_iters=m)
        )
        top = np.asarray(top_fn().eigenvalues)
        tops[c] = top
        counts.append(_count_outliers(top))
        if c == classes[0]:
            checks, densities[c] = _dense_checks(op, top, kt, config)
            comparisons += checks
    counts = np.asarray(counts, np.float64)
    # The outliers come from the class-mean part of the Gauss-Newton term (Papyan 2019,
    # arXiv:1901.08244): C − 1 of them, since the softmax Hessian diag(p) − ppᵀ annihilates
    # the all-ones logit direction; Sagun et al. (2017) report "about C". The count is an
    # integer from a gap criterion: measured exactly C − 1 for C = 2, 4, 8 on seeds 0-2, but
    # for C = 2 a second, weaker eigenvalue sits ~2x above the bulk edge, and for C = 8 the
    # largest gap can be nearly matched by one inside the outliers. Tolerance 1 accepts C − 1
    # or C (the two readings in the literature) and rejects anything else.
    comparisons.insert(
        0,
        Comparison(
            "outliers_vs_classes",
            np.asarray(classes, np.float64) - 1.0,
            counts,
            ("classes",),
            coords={"classes": np.asarray(classes)},
            metric="max_abs",
            tolerance=1.0,
            description=(
                "Number of Hessian eigenvalues above the bulk (largest ratio gap among the top "
                "3C + 5 Lanczos eigenvalues) of a trained classifier vs number of classes C, "
                "against C − 1."
            ),
            xlabel="number of classes C",
            ylabel="number of outliers",
        ),
    )
    figures = {"spectrum": _spectrum_figure(tops, densities)}
    arrays = {f"top_eigenvalues_C{c}": v for c, v in tops.items()}
    notes = (
        f"Gaussian mixture with C classes in d = {d} (means of scale {config['separation']}), "
        f"{config['per_class']} points per class; tanh MLP d → {h} → C trained with Adam on "
        f"cross-entropy for {config['steps']} steps. Outlier counts {counts.astype(int).tolist()} "
        f"for C = {classes}."
    )
    return ExperimentResult(comparisons, figures=figures, arrays=arrays, notes=notes)


def _dense_checks(op, top, key, config):
    """Lanczos top eigenvalues, Hutchinson trace and SLQ density against the dense Hessian."""
    h = np.asarray(jax.jit(lambda: cv.dense(op))(), np.float64)
    h = 0.5 * (h + h.T)
    lam = np.linalg.eigvalsh(h)[::-1]
    k1, k2 = jax.random.split(key)
    est = jax.jit(lambda: cv.hutchinson_trace(op, k1, int(config["probes"])))()
    span = lam[0] - lam[-1]
    sigma = float(config["sigma_fraction"]) * span
    grid = np.linspace(lam[-1] - 5 * sigma, lam[0] + 5 * sigma, 400)
    dens = jax.jit(
        lambda: (
            cv.spectral_density(
                op,
                k2,
                grid,
                sigma=sigma,
                num_iters=int(config["slq_iters"]),
                num_probes=int(config["probes"]) // 10,
            ).density
        )
    )()
    exact = np.exp(-0.5 * ((grid[:, None] - lam[None]) / sigma) ** 2).mean(1)
    exact /= sigma * np.sqrt(2 * np.pi)
    checks = [
        # float32 HVPs against a float32 dense Hessian: the top Ritz values agree to ~1e-6
        # relative (measured 5e-7 to 1e-6 on seeds 0-2; rounding of the products); 1e-4
        # leaves a margin of ~100.
        Comparison(
            "top_eigenvalues_vs_dense",
            lam[: len(top)],
            top,
            ("index",),
            metric="max_rel",
            tolerance=1e-4,
            description="Top Lanczos eigenvalues vs numpy eigh of the dense Hessian (first C).",
            xlabel="eigenvalue index",
            ylabel="eigenvalue",
            yscale="log",
        ),
        # Hutchinson: unbiased, per-probe values i.i.d.; 4 SE bounds a false alarm by 6e-5.
        Comparison.scalar(
            "hutchinson_trace",
            theory=float(np.trace(h)),
            simulation=np.asarray(est.samples, np.float64),
            metric="max_z",
            tolerance=4.0,
            description="Hutchinson trace (Rademacher probes) vs the dense trace, in SE.",
            ylabel="tr H",
        ),
        # SLQ with 10 probes: each probe samples the measure Σ_j (vᵀu_j)² δ_{λ_j}, whose
        # smoothed density fluctuates by ~ sqrt(2/(n_v P)) ≈ 2% pointwise (P ≈ 740); the
        # rel_l2 over the grid measured 0.4-0.5% on seeds 0-2; tolerance 3%.
        Comparison(
            "slq_density_vs_dense",
            exact,
            np.asarray(dens, np.float64),
            ("eigenvalue",),
            coords={"eigenvalue": grid},
            metric="rel_l2",
            tolerance=0.03,
            description=(
                "Stochastic Lanczos quadrature density (Gaussian broadening σ) vs the dense "
                "eigenvalues smoothed by the same Gaussian (first C)."
            ),
            xlabel="eigenvalue λ",
            ylabel="spectral density",
        ),
    ]
    return checks, (grid, np.asarray(dens), lam)


def _spectrum_figure(tops, densities):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11.0, 4.0), layout="constrained")
    ax_d, ax_t = fig.subplots(1, 2)
    ((c, (grid, dens, lam)),) = densities.items()
    ax_d.hist(lam, bins=80, density=True, color="0.8", label="dense eigenvalues (histogram)")
    ax_d.plot(grid, np.maximum(dens, 1e-6), color="C0", label="SLQ density")
    ax_d.set_yscale("log")
    ax_d.set_ylim(1e-3, None)
    ax_d.set_xlabel("eigenvalue λ")
    ax_d.set_ylabel("density")
    ax_d.set_title(f"Hessian spectrum, C = {c}: bulk near 0 and outliers")
    ax_d.legend(fontsize="small")
    for i, (cc, top) in enumerate(tops.items()):
        ax_t.semilogy(
            np.arange(1, len(top) + 1),
            np.sort(top)[::-1],
            "o-",
            ms=3,
            color=f"C{i}",
            label=f"C = {cc}",
        )
        ax_t.axvline(cc - 0.5, color=f"C{i}", ls="--", lw=0.8)
    ax_t.set_xlabel("eigenvalue rank i")
    ax_t.set_ylabel("λ_i")
    ax_t.set_title("top eigenvalues; dashed: C − 1 outliers expected")
    ax_t.legend(fontsize="small")
    fig.suptitle("Bulk + outliers of a trained classifier's Hessian (Sagun et al. 2017)")
    return fig


register(
    Experiment(
        name="hessian_spectrum",
        reference=(
            "Sagun, Evci, Güney, Dauphin & Bottou 2017, Empirical analysis of the Hessian of "
            "over-parametrized neural networks, arXiv:1706.04454; Papyan 2019, arXiv:1901.08244"
        ),
        description=(
            "Hessian of a classifier trained on a C-class Gaussian mixture: C − 1 outliers "
            "above the bulk for several C; Lanczos, Hutchinson and SLQ vs the dense Hessian."
        ),
        run=_run_spectrum,
        small={
            "d": 20,
            "width": 32,
            "classes": [2, 4, 8],
            "per_class": 100,
            "separation": 1.0,
            "steps": 300,
            "adam_lr": 0.01,
            "extra_lanczos_iters": 40,
            "probes": 100,
            "slq_iters": 60,
            "sigma_fraction": 0.01,
        },
        large={
            "d": 50,
            "width": 256,
            "classes": [2, 5, 10, 20],
            "per_class": 500,
            "separation": 1.0,
            "steps": 2000,
            "adam_lr": 0.003,
            "extra_lanczos_iters": 80,
            "probes": 200,
            "slq_iters": 100,
            "sigma_fraction": 0.005,
        },
    )
)
