"""Finite-width experiments: criticality and the 1/n kurtosis of preactivations.

Roberts, Yaida & Hanin (2021), arXiv:2106.10165, ch. 4-5; Antognini (2019), arXiv:1908.10030.
One ``nnlab.parameterization.mlp`` per setting (``C_W = W_std²``, ``C_b = 0``, input all ones
so ``K^(1) = W_std²``) gives the theory (:func:`nnlab.finitewidth.finite_width_theory`) and
the Monte Carlo over its initialisations (:func:`nnlab.finitewidth.sweep_moments`).

Tolerances: ``max_z`` uses the batch-means standard error over ``B = 64`` batches of networks
(the records' ``'seed'`` axis), so each z is close to Student-t with 63 degrees of freedom:
``P(|t_63| > 4) = 1.7e-4``, ``P(|t_63| > 4.5) = 3e-5``; over ~50-100 (positively correlated)
points a correct theory fails < 1% of the time.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

from nnlab import finitewidth as fw
from nnlab.evaluate import Comparison, ExperimentResult, scaling_fit
from nnlab.parameterization import mlp
from nnlab.record import Record

from ._registry import Experiment, register

__all__ = ["CriticalityConfig", "KurtosisConfig", "run_criticality", "run_finite_width_kurtosis"]
_ACTS = {"relu": jax.nn.relu, "tanh": jnp.tanh}


@functools.cache
def _critical(act: str) -> float:
    """``W_std`` at criticality (``C_b = 0``): √2 for ReLU, 1 for tanh (RYH 2021, §5.2-5.3)."""
    return math.sqrt(fw.criticality(_ACTS[act]).c_w)


def _roots(*c_w: float) -> tuple[float, ...]:
    return tuple(math.sqrt(c) for c in c_w)


def _net(act: str, depth: int, width: int, W_std: float):
    """``depth`` Dense layers of width ``width`` (the last one too) with ``act`` between."""
    return mlp(width, depth - 1, width, act, W_std, 0.0, "standard")


@dataclasses.dataclass(frozen=True)
class _Ensemble:
    """Input dimension ``n_0`` (all-ones input), networks, batch-means batches, sampler."""

    input_dim: int = 4
    n_networks: int = 4096
    n_batches: int = 64
    method: str = "projected"  # or 'dense' (the same law)

    def sweep(self, key, make_network, values, axis):
        mc = dict(n_networks=self.n_networks, n_batches=self.n_batches, method=self.method)
        return fw.sweep_moments(key, make_network, values, axis, jnp.ones(self.input_dim), **mc)


def _panels(draw, height):
    """A ReLU | tanh figure, ``draw(ax, act)`` per panel."""
    fig = Figure(figsize=(9, height))
    for ax, act in zip(fig.subplots(1, 2), _ACTS):
        draw(ax, act)
        ax.legend(fontsize=7)
    return fig


@dataclasses.dataclass(frozen=True)
class CriticalityConfig(_Ensemble):
    """Layers, width, and the swept ``W_std`` per activation (``C_W = W_std²``; each sweep
    holds the critical value)."""

    depth: int = 24
    width: int = 64
    relu_W_std: tuple[float, ...] = _roots(1.8, 2.0, 2.2)
    tanh_W_std: tuple[float, ...] = _roots(0.8, 1.0, 1.5)


def run_criticality(config: CriticalityConfig, seed: int) -> ExperimentResult:
    x, key, comparisons, recs = jnp.ones(config.input_dim), jax.random.key(seed), [], {}
    for i, act in enumerate(_ACTS):
        make = functools.partial(_net, act, config.depth, config.width)  # make(W_std)
        w_stds = getattr(config, f"{act}_W_std")
        theory = fw.sweep_theory(make, w_stds, "W_std", x, config.width)
        recs[act] = theory, config.sweep(jax.random.fold_in(key, i), make, w_stds, "W_std")
        # theory K + G^{1}/n (NLO metric, zero for ReLU): the remaining O(1/n²) bias is below
        # 0.3 SE here (checked against a width 4x larger).
        comparisons.append(
            Comparison.from_records(
                f"{act}_kernel_vs_depth",
                *recs[act],
                "second_moment",
                metric="max_z",
                tolerance=4.5,
                yscale="log",
                description=f"E[z²] vs depth for {act}, C_b=0, "
                f"width {config.width}, on (W_std={_critical(act):.4g}) and off criticality.",
            )
        )
    # Critical tanh: K ~ 1/(-a1 ℓ) up to O(log ℓ/ℓ): the theory's own fitted exponent on this
    # window differs from -1 by |fit_th + 1|; allow that plus 0.05 for the Monte Carlo slope
    # noise (stderr < 0.01 here).
    theory, sim = (r.sel(W_std=_critical("tanh")) for r in recs["tanh"])
    ells = np.asarray(theory.coord("layer"))
    tail = ells >= config.depth // 3
    fit_th, fit_mc = (
        scaling_fit(ells[tail], v[tail]) for v in (theory.second_moment, sim.second_moment.mean(0))
    )
    comparisons.append(
        Comparison.scalar(
            "tanh_critical_power_law",
            theory=-1.0,
            simulation=fit_mc.exponent,
            ylabel="exponent",
            tolerance=abs(fit_th.exponent + 1.0) + 0.05,
            description="log-log slope of E[z²] vs ℓ "
            f"for critical tanh (K ~ 1/(2ℓ), a1=-2), fitted on ℓ >= {config.depth // 3}.",
        )
    )
    k = jnp.geomspace(1e-3, 10.0, 200)

    def susceptibilities(ax, act):
        c_ws = _critical(act) ** 2 * jnp.array([0.8, 1.0, 1.2])  # C_W = W_std²
        for i, chi in enumerate(fw.susceptibilities(_ACTS[act], k[:, None], c_ws[None])):
            for j, c_w in enumerate(c_ws.tolist()):
                label = f"{('χ_∥', 'χ_⊥')[i]}, W_std²={c_w:.2g}"
                ax.plot(k, chi[:, j], ("-", "--")[i], color=f"C{j}", label=label)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set(xscale="log", xlabel="K", ylabel="susceptibility", title=f"{act}, b_std = 0")

    return ExperimentResult(comparisons, {"susceptibilities": _panels(susceptibilities, 3.5)})


register(
    Experiment(
        name="criticality",
        reference="Roberts, Yaida & Hanin 2021, The Principles of Deep Learning Theory, "
        "arXiv:2106.10165, ch. 5",
        description="E[z²] vs depth on and off criticality (ReLU C_W=2, tanh C_W=1), kernel "
        "recursion with its 1/n metric correction vs finite-network Monte Carlo.",
        run=run_criticality,
        small=CriticalityConfig(),
        large=CriticalityConfig(
            input_dim=16,
            n_networks=32768,
            method="dense",
            depth=64,
            width=256,
            relu_W_std=_roots(1.8, 1.9, 2.0, 2.1, 2.2),
            tanh_W_std=_roots(0.8, 0.9, 1.0, 1.2, 1.5),
        ),
    )
)


@dataclasses.dataclass(frozen=True)
class KurtosisConfig(_Ensemble):
    """Layers, widths, the smallest width of the leading-order tanh claim (its O(ℓ²/n²)
    remainder is below the noise only for small depth/width) and the width of the
    one-hidden-layer density claim."""

    n_networks: int = 8192
    # depth/width <= 1/8: at n = 32 (ℓ/n = 1/4) the per-batch estimates of 128 networks are
    # visibly skewed (heavy-tailed ∏ R_ℓ), so the small config starts at n = 64.
    depth: int = 8
    widths: tuple[int, ...] = (64, 128, 256, 512)
    min_width_lo: int = 128
    density_width: int = 64


def _deep(rec):
    """Layers 2..L (layer 1 is exactly Gaussian, κ₄ = 0: pure noise on a log plot)."""
    out = {n: (rec.dims_of(n), rec[n][..., 1:]) for n in rec.names}
    return Record(out, {**rec.coords, "layer": rec.coord("layer")[1:]}, rec.meta)


def run_finite_width_kurtosis(config: KurtosisConfig, seed: int) -> ExperimentResult:
    x, key, sims, theories = jnp.ones(config.input_dim), jax.random.key(seed), {}, {}
    for i, act in enumerate(_ACTS):
        make = functools.partial(_net, act, config.depth, W_std=_critical(act))  # make(width)
        sims[act] = config.sweep(jax.random.fold_in(key, i), make, config.widths, "width")
        theories[act] = fw.finite_width_theory(make(config.widths[0]), x)  # K, V: width-free
    exact = fw.scale_invariant_kurtosis(config.depth, config.widths, kernel=theories["relu"].kernel)
    tanh_lo = theories["tanh"].at_width([n for n in config.widths if n >= config.min_width_lo])
    kw = dict(metric="max_z", tolerance=4.0, xscale="log", yscale="log")
    comparisons = [
        Comparison.from_records(
            "relu_kurtosis_exact",
            _deep(exact),
            sims["relu"],
            "fourth_cumulant",
            **kw,
            description="critical ReLU: κ₄ = E[z⁴] - 3E[z²]² vs the exact product form "
            "K² 3[(1+5/n)^(ℓ-1) - 1] (only Monte Carlo noise).",
        ),
        Comparison.from_records(
            "tanh_kurtosis_leading_order",
            _deep(tanh_lo),
            sims["tanh"],
            "fourth_cumulant",
            **kw,
            description="critical tanh: κ₄ vs the leading-order vertex recursion 3V/n.",
        ),
    ]
    # 1/n scaling at the last layer: exponent of the Monte Carlo κ₄ against that of the exact
    # theory over the same widths (-1 at leading order); 0.1 covers the slope's Monte Carlo
    # error (stderr ~0.02) at 4-5 SE.
    fit_th, fit_mc = (
        scaling_fit(config.widths, v[:, -1])
        for v in (exact.fourth_cumulant, sims["relu"].estimate("fourth_cumulant").mean)
    )
    comparisons.append(
        Comparison.scalar(
            "relu_kurtosis_width_exponent",
            theory=fit_th.exponent,
            simulation=fit_mc.exponent,
            tolerance=0.1,
            ylabel="exponent",
            description=f"log-log slope of κ₄ vs width at layer "
            f"{config.depth} (theory: fit of the exact product form; -1 at leading order).",
        )
    )
    # One hidden ReLU layer: K^(2) = 2 and κ₄ = 3V^(2)/n exact; output density minus the NNGP
    # Gaussian (bin averages) vs the Edgeworth term. max_z over 24 bins with B=64 batches:
    # P(max |t_63| > 4) < 0.5% for a correct theory.
    n, net = config.density_width, _net("relu", 2, config.density_width, _critical("relu"))
    th = fw.finite_width_theory(net, x)
    edges = np.linspace(-3.0, 3.0, 25) * np.sqrt(th.kernel[-1])
    theory = fw.output_density_bins(edges, th.kernel[-1], th.fourth_cumulant(n)[-1])
    mom = fw.sample_preactivations(
        jax.random.fold_in(key, 7), net, x, n_networks=config.n_networks, method=config.method
    )
    sim = fw.output_histogram(mom.last, edges, config.n_batches)
    comparisons.append(
        Comparison.from_records(
            "one_hidden_layer_density_correction",
            metric="max_z",
            tolerance=4.0,
            theory=theory.replace(density=theory.density - theory.nngp),
            simulation=sim.replace(density=sim.density - theory.nngp[None]),
            field="density",
            description=f"one-hidden-layer ReLU net, width {n}: output density minus the NNGP "
            "Gaussian vs the Edgeworth term κ₄/(24K²) He₄ (Antognini 2019).",
        )
    )

    def collapse(ax, act):
        th, est = theories[act], sims[act].estimate("fourth_cumulant")
        ells, k2 = np.asarray(th.coord("layer")), np.asarray(th.kernel) ** 2
        for i, n in enumerate(np.asarray(sims[act].coord("width"))):
            ax.errorbar(
                ells / n,
                est.mean[i] / k2,
                est.standard_error[i] / k2,
                fmt="o",
                ms=3,
                label=f"MC n={int(n)}",
            )
            ax.plot(ells / n, th.excess_kurtosis(float(n)), "k-", lw=0.8)
            if act == "relu":
                ax.plot(ells / n, exact.excess_kurtosis[i], "k:", lw=0.8)
        ax.set(
            xlabel="depth / width  ℓ/n",
            ylabel="excess kurtosis κ₄/K²",
            title=f"critical {act}: 3V/(nK²) (—), exact (⋯), MC ± SE",
        )

    figures = {"kurtosis_vs_depth_over_width": _panels(collapse, 3.8)}
    return ExperimentResult(comparisons, figures=figures)


register(
    Experiment(
        name="finite_width_kurtosis",
        reference="Roberts, Yaida & Hanin 2021, arXiv:2106.10165, ch. 4-5; Antognini 2019, "
        "arXiv:1908.10030",
        description="Excess kurtosis of preactivations vs depth and width (exact ReLU product "
        "form, tanh vertex recursion) and the 1/n output-density correction, vs Monte Carlo.",
        run=run_finite_width_kurtosis,
        small=KurtosisConfig(),
        large=KurtosisConfig(
            input_dim=16, n_networks=65536, method="dense", depth=10, widths=(32, 64, 128, 256, 512)
        ),
    )
)
