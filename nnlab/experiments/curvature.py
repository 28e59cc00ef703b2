"""Curvature experiments: ``edge_of_stability`` (Cohen et al. 2021: sharpness records from
:func:`~nnlab.curvature.sharpness_trajectories` read by
:func:`~nnlab.curvature.edge_of_stability` against ``2/η``) and ``hessian_spectrum`` (Sagun
et al. 2017; Papyan 2019: Lanczos / SLQ records against the dense references of
:func:`~nnlab.curvature.spectrum_vs_dense`)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnlab import curvature as cv
from nnlab import data as nd
from nnlab.evaluate import Comparison, ExperimentResult
from nnlab.parameterization import mlp
from nnlab.record import Record
from nnlab.train import Data, train

from ._registry import Experiment, register

__all__: list[str] = []  # registers its experiments; nothing to import


def _scalars(rows, metric: str = "max_abs") -> list[Comparison]:
    """``Comparison.scalar`` for rows ``(name, theory, simulation, tolerance, description)``."""
    return [
        Comparison.scalar(n, t, s, tolerance=tol, description=d, metric=metric)
        for n, t, s, tol, d in rows
    ]


def _from_records(rows) -> list[Comparison]:
    """``Comparison.from_records`` for rows ``(name, theory, simulation, field, metric,
    tolerance, description)``."""
    return [
        Comparison.from_records(n, t, s, f, metric=m, tolerance=tol, description=d)
        for n, t, s, f, m, tol, d in rows
    ]


# ----------------------------------------------------------------------- edge_of_stability
@dataclasses.dataclass(frozen=True)
class EdgeOfStabilityConfig:
    """``edge_of_stability``: full-batch GD at rates set by the initial sharpness ``λ0``."""

    n: int = 200  # training points, x ~ N(0, I_d)
    d: int = 10
    width: int = 32  # student d → width → width → 1
    W_std: float = 1.0  # Dense (NTK parameterisation), student and teacher
    b_std: float | None = 1.0  # None: no biases
    teacher_width: int = 64  # target: tanh teacher d → teacher_width → 1 on input_scale · x,
    input_scale: float = 3.0  # scaled to unit std (a hard target)
    threshold_factors: tuple[float, ...] = (1.2, 1.35, 1.5)  # 2/η = factor · λ0: must sharpen
    control_factors: tuple[float, ...] = (10.0,)  # small-η controls
    steps: int = 4000
    n_logs: int = 100
    lanczos_iters: int = 20  # Hessian-vector products per logged sharpness
    n_seeds: int = 1


def _run_eos(config: EdgeOfStabilityConfig, seed: int) -> ExperimentResult:
    kd, kp = jax.random.split(jax.random.key(seed))
    kx, kt = jax.random.split(kd)
    teacher = mlp(config.teacher_width, 1, 1, "tanh", config.W_std, config.b_std, "ntk")
    _, p_teacher = teacher.init(kt, (1, config.d))
    target = lambda x: teacher.apply(p_teacher, config.input_scale * x)  # noqa: E731
    xy = nd.gaussian(kx, config.n, config.d, target=target)
    data = Data(xy.x, xy.y / jnp.std(xy.y))
    net = mlp(config.width, 2, 1, "tanh", config.W_std, config.b_std, "ntk")  # d → w → w → 1
    init = lambda k: net.init(k, xy.x.shape)[1]  # noqa: E731
    # Rates relative to the first seed's initial sharpness λ0: 2/η = factor · λ0 > λ0.
    params0 = init(jax.random.split(kp, config.n_seeds)[0])
    op0 = cv.hessian_operator(net.apply, params0, data.x_train, data.y_train)
    lam0 = float(cv.top_eigenvalue(op0, kd, num_iters=30))
    lrs, controls = (
        cv.threshold_learning_rates(lam0, f)
        for f in (config.threshold_factors, config.control_factors)
    )
    log_every, n = config.steps // config.n_logs, config.lanczos_iters
    rec = cv.sharpness_trajectories(
        net.apply, init, data, np.concatenate([lrs, controls]), key=kp, seeds=config.n_seeds,
        steps=config.steps, log_every=log_every, num_iters=n,
    )  # fmt: skip
    eos = cv.edge_of_stability(rec)
    # Tolerance 10%: the claim (Cohen et al.: the sharpness "hovering just above 2/η").
    # Measured 0.15-0.4% on seeds 0-2 (mean over the phase); the 20-step Lanczos estimate is
    # converged far below that (tests check it against the dense Hessian).
    comparisons = _from_records(
        [
            ("sharpness_at_eos", cv.stability_threshold(lrs), eos, "sharpness", "max_rel", 0.1,
             "Mean sharpness λ_max(∇²L) over the phase (from the first time it reaches 97% of "
             "2/η to the end) against the stability threshold 2/η."),
        ]
    )  # fmt: skip
    # Deviation measured 1.5-2.2% (the catapult spikes at the first crossing are the top
    # 10%). Progressive sharpening closes the gap from λ0 to 2/η (measured within 0.006 of 1;
    # a run that stalls halfway fails). Controls peak at 0.13-0.16 of their 2/η (< 0.5).
    comparisons += _scalars(
        [
            ("eos_max_deviation", 0.0, float(np.max(eos.at_lr("deviation", lrs))), 0.1,
             "90th percentile over the phase of |λ_max η/2 − 1|, worst EoS η and seed."),
            ("progressive_sharpening", 1.0, float(np.min(eos.at_lr("gap_closed", lrs))), 0.5,
             "Smallest fraction (λ_late − λ_0)/(2/η − λ_0) of the initial gap closed."),
            ("control_below_threshold", 0.0, float(np.max(eos.at_lr("peak_ratio", controls))),
             0.5, "Control runs with small η: max over time of λ_max / (2/η)."),
        ]
    )  # fmt: skip
    title = "Edge of stability (Cohen et al. 2021): full-batch GD, tanh MLP, MSE"
    figure = cv.sharpness_figure(rec, controls=controls, title=title)
    arrays = {"step": rec.time, "sharpness": rec["obs.sharpness"], "train_loss": rec.train_loss}
    notes = (
        f"λ0 = {lam0:.4g}; 2/η = {np.round(2 / lrs, 3).tolist()}, controls "
        f"{np.round(2 / controls, 3).tolist()}; sharpness by a {n}-step "
        f"Lanczos run every {log_every} GD steps, in the compiled loop."
    )
    return ExperimentResult(comparisons, {"sharpness_trajectories": figure}, arrays, notes)


register(
    Experiment(
        name="edge_of_stability",
        reference="Cohen, Kaur, Li, Kolter & Talwalkar 2021, Gradient descent on neural "
        "networks typically occurs at the edge of stability, arXiv:2103.00065",
        description="Full-batch GD on a tanh MLP at several learning rates: the sharpness rises "
        "(progressive sharpening) and hovers at 2/η; a small-η control stays far below.",
        run=_run_eos,
        small=EdgeOfStabilityConfig(),
        large=EdgeOfStabilityConfig(
            n=1000, d=20, width=128, threshold_factors=(1.2, 1.4, 1.6, 1.8, 2.0),
            control_factors=(10.0, 20.0), steps=20000, n_logs=400, lanczos_iters=30, n_seeds=4,
        ),
    )
)  # fmt: skip


# ----------------------------------------------------------------------- hessian_spectrum
@dataclasses.dataclass(frozen=True)
class HessianSpectrumConfig:
    """``hessian_spectrum``: a tanh classifier d → width → C per number of classes C."""

    d: int = 20
    width: int = 32
    W_std: float = 1.0  # Dense hyperparameters (NTK parameterisation)
    b_std: float | None = 1.0
    classes: tuple[int, ...] = (2, 4, 8)
    per_class: int = 100  # points per class of the Gaussian mixture
    separation: float = 1.0  # scale of the class means
    steps: int = 300  # Adam steps on the cross-entropy
    adam_lr: float = 0.01
    extra_lanczos_iters: int = 40  # Lanczos steps beyond the 3C + 5 eigenpairs wanted
    probes: int = 100  # Hutchinson probes (SLQ uses a tenth of them)
    slq_iters: int = 60
    sigma_fraction: float = 0.01  # SLQ broadening, relative to the spectral width


def _trained_hessian(config: HessianSpectrumConfig, n_classes: int, key):
    """The cross-entropy Hessian operator of a classifier trained on a Gaussian mixture."""
    kd, kp = jax.random.split(key)
    n, sep = n_classes * config.per_class, config.separation
    mix = nd.gaussian_mixture(kd, n, config.d, n_classes=n_classes, separation=sep)
    net = mlp(config.width, 1, n_classes, "tanh", config.W_std, config.b_std, "ntk")
    params = net.init(kp, mix.x.shape)[1]
    tx = optax.adam(config.adam_lr)
    rec = train(net.apply, params, mix.to_train_data(), optimizer=tx, steps=config.steps,
                log_every=config.steps, loss="xent")  # fmt: skip
    return cv.hessian_operator(net.apply, rec.params, mix.x, mix.y, loss="xent")


def _run_spectrum(config: HessianSpectrumConfig, seed: int) -> ExperimentResult:
    tops, counts = {}, {}
    for c in config.classes:
        kh, kl, kt = jax.random.split(jax.random.fold_in(jax.random.key(seed), c), 3)
        op = _trained_hessian(config, c, kh)
        k, m = 3 * c + 5, min(op.dim, 3 * c + 5 + config.extra_lanczos_iters)
        tops[c] = jax.jit(
            lambda op=op, k=k, m=m, kl=kl: cv.top_eigenpairs(op, kl, k, num_iters=m)
        )()
        counts[c] = cv.count_outliers(tops[c].eigenvalues)
        if c == config.classes[0]:
            dense, trace, slq, exact = cv.spectrum_vs_dense(
                op, kt, num_probes=config.probes, slq_iters=config.slq_iters,
                slq_probes=config.probes // 10, sigma_fraction=config.sigma_fraction,
            )  # fmt: skip
    classes = np.asarray(config.classes)
    per_c = lambda v: Record({"outliers": ("n_classes", v)}, {"n_classes": classes})  # noqa: E731
    found = np.asarray(list(counts.values()), np.float64)
    comparisons = _from_records(
        [
            # C − 1 outliers from the class-mean part of the Gauss-Newton term (Papyan 2019):
            # the softmax Hessian diag(p) − ppᵀ annihilates the all-ones logit direction;
            # Sagun et al. (2017) report "about C". Measured exactly C − 1 for C = 2, 4, 8 on
            # seeds 0-1; on seed 2 the third outlier of C = 4 sits only 1.2x above the bulk
            # edge and the largest gap gives 2. Tolerance 1 accepts C − 1 ± 1 (a weak outlier
            # read either way; Sagun's "about C") and rejects anything further off.
            ("outliers_vs_classes", per_c(classes - 1.0), per_c(found), "outliers", "max_abs",
             1.0, "Hessian eigenvalues above the bulk (largest ratio gap among the top 3C + 5) "
             "of a trained classifier vs the number of classes C, against C − 1."),
            # float32 HVPs against the float32 dense Hessian: measured 5e-7 to 1.2e-6 relative
            # on seeds 0-2 (rounding of the products); 1e-4 leaves a margin of ~100.
            ("top_eigenvalues_vs_dense", dense, tops[config.classes[0]], "eigenvalues",
             "max_rel", 1e-4, "Top Lanczos eigenvalues vs eigh of the dense Hessian (first C)."),
            # SLQ with 10 probes: each probe's smoothed density fluctuates by ~ sqrt(2/(n_v P))
            # ≈ 2% pointwise (P ≈ 740); rel_l2 over the grid measured 0.3-1.2%; tolerance 3%.
            ("slq_density_vs_dense", exact, slq, "density", "rel_l2", 0.03, "SLQ density vs "
             "the dense eigenvalues smoothed by the same Gaussian (first C)."),
        ]
    )  # fmt: skip
    # Hutchinson: unbiased, per-probe values i.i.d.; 4 SE bounds a false alarm by 6e-5.
    trace_row = ("hutchinson_trace", float(np.sum(dense.eigenvalues)), trace.samples, 4.0,
                 "Hutchinson trace (Rademacher probes) vs the dense trace, in SE.")  # fmt: skip
    comparisons += _scalars([trace_row], metric="max_z")
    figure = cv.spectrum_figure(
        slq,
        {f"C = {c}": v for c, v in tops.items()},
        eigenvalues=dense.eigenvalues,
        outliers={f"C = {c}": c - 1 for c in config.classes},
        title="Bulk + outliers of a trained classifier's Hessian (Sagun et al. 2017)",
    )
    notes = (
        f"{config.per_class} points per class of a Gaussian mixture in d = {config.d}; tanh MLP "
        f"d → {config.width} → C, {config.steps} Adam steps on the cross-entropy. Outliers "
        f"{list(counts.values())} for C = {list(config.classes)}."
    )
    arrays = {f"top_eigenvalues_C{c}": np.asarray(v.eigenvalues) for c, v in tops.items()}
    return ExperimentResult(comparisons, {"spectrum": figure}, arrays, notes)


register(
    Experiment(
        name="hessian_spectrum",
        reference="Sagun, Evci, Güney, Dauphin & Bottou 2017, Empirical analysis of the "
        "Hessian of over-parametrized neural networks, arXiv:1706.04454; Papyan 2019, "
        "arXiv:1901.08244",
        description="Hessian of a classifier trained on a C-class Gaussian mixture: C − 1 "
        "outliers above the bulk for several C; Lanczos, Hutchinson and SLQ vs the dense "
        "Hessian.",
        run=_run_spectrum,
        small=HessianSpectrumConfig(),
        large=HessianSpectrumConfig(
            d=50, width=256, classes=(2, 5, 10, 20), per_class=500, steps=2000, adam_lr=0.003,
            extra_lanczos_iters=80, probes=200, slq_iters=100, sigma_fraction=0.005,
        ),
    )
)  # fmt: skip
