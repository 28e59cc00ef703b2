"""Finite-width experiments: criticality and the 1/n kurtosis of preactivations.

Roberts, Yaida & Hanin (2021), arXiv:2106.10165, ch. 4-5; Antognini (2019), arXiv:1908.10030.
One :func:`nnlab.finitewidth.critical_mlp` per setting (``C_W = W_std²``, ``C_b = 0``,
input all ones so ``K^(1) = W_std²``) gives the theory
(:func:`nnlab.finitewidth.finite_width_theory`) and the Monte Carlo over its
initialisations (:func:`nnlab.finitewidth.sweep_moments`); figures and fits are the
family's too.

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

from nnlab import finitewidth as fw
from nnlab.evaluate import Comparison, ExperimentResult, scaling_fit
from nnlab.registry import Experiment, register

__all__ = ["CriticalityConfig", "KurtosisConfig", "run_criticality", "run_finite_width_kurtosis"]
_ACTS = {"relu": jax.nn.relu, "tanh": jnp.tanh}


def _roots(*c_w: float) -> tuple[float, ...]:
    return tuple(math.sqrt(c) for c in c_w)


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
    for i, (act, fn) in enumerate(_ACTS.items()):
        critical = fw.criticality(fn).W_std  # √2 for ReLU, 1 for tanh (C_b = 0)
        make = functools.partial(fw.critical_mlp, act, config.depth, config.width)  # (W_std)
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
                f"width {config.width}, on (W_std={critical:.4g}) and off criticality.",
            )
        )
    # Critical tanh: K ~ 1/(-a1 ℓ) up to O(log ℓ/ℓ): the theory's own fitted exponent on this
    # window differs from -1 by |fit_th + 1|; allow that plus 0.05 for the Monte Carlo slope
    # noise (stderr < 0.01 here).
    tanh = (r.sel(W_std=fw.criticality(jnp.tanh).W_std) for r in recs["tanh"])
    fit_th, fit_mc = (fw.depth_exponent(r, "second_moment", config.depth // 3) for r in tanh)
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
    figure = fw.susceptibility_figure(_ACTS, factors=(0.8, 1.0, 1.2), title="C_b = 0")
    return ExperimentResult(comparisons, {"susceptibilities": figure})


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


def run_finite_width_kurtosis(config: KurtosisConfig, seed: int) -> ExperimentResult:
    x, key, sims, theories = jnp.ones(config.input_dim), jax.random.key(seed), {}, {}
    for i, act in enumerate(_ACTS):
        make = functools.partial(fw.critical_mlp, act, config.depth)  # make(width)
        sims[act] = config.sweep(jax.random.fold_in(key, i), make, config.widths, "width")
        theories[act] = fw.finite_width_theory(make(config.widths[0]), x)  # K, V: width-free
    exact = fw.scale_invariant_kurtosis(config.depth, config.widths, kernel=theories["relu"].kernel)
    tanh_lo = theories["tanh"].at_width([n for n in config.widths if n >= config.min_width_lo])
    claims = {
        "relu_kurtosis_exact": "critical ReLU: κ₄ = E[z⁴] - 3E[z²]² vs the exact product form "
        "K² 3[(1+5/n)^(ℓ-1) - 1] (only Monte Carlo noise).",
        "tanh_kurtosis_leading_order": "critical tanh: κ₄ vs the leading-order vertex "
        "recursion 3V/n.",
    }
    # Layers 2..L: layer 1 is exactly Gaussian (κ₄ = 0: pure noise on a log plot).
    kw = dict(metric="max_z", tolerance=4.0, xscale="log", yscale="log")
    comparisons = [
        Comparison.from_records(
            name, fw.from_layer(theory, 2), sims[act], "fourth_cumulant", **kw, description=what
        )
        for (name, what), act, theory in zip(claims.items(), _ACTS, (exact, tanh_lo), strict=True)
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
    n, mc = config.density_width, dict(n_networks=config.n_networks, method=config.method)
    net, k7 = fw.critical_mlp("relu", 2, n), jax.random.fold_in(key, 7)
    theory, sim = fw.density_correction(k7, net, x, n_bins=24, n_batches=config.n_batches, **mc)
    comparisons.append(
        Comparison.from_records(
            "one_hidden_layer_density_correction",
            metric="max_z",
            tolerance=4.0,
            theory=theory,
            simulation=sim,
            field="density",
            description=f"one-hidden-layer ReLU net, width {n}: output density minus the NNGP "
            "Gaussian vs the Edgeworth term κ₄/(24K²) He₄ (Antognini 2019).",
        )
    )
    title = "critical ReLU and tanh (C_b = 0)"
    figure = fw.kurtosis_figure(theories, sims, exact={"relu": exact}, title=title)
    return ExperimentResult(comparisons, figures={"kurtosis_vs_depth_over_width": figure})


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
