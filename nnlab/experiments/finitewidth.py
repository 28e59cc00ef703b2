"""Finite-width experiments: criticality and the 1/n kurtosis of preactivations.

Roberts, Yaida & Hanin (2021), arXiv:2106.10165, ch. 4-5; Antognini (2019),
arXiv:1908.10030. Theory from :mod:`nnlab.finitewidth`, simulation from ensembles
of finite networks (batch means over independent batches of networks).

Tolerances: ``max_z`` uses the batch-means standard error with ``B`` batches, so
each z is close to Student-t with ``B-1`` degrees of freedom; with ``B = 64``
``P(|t_63| > 4) = 1.7e-4`` and ``P(|t_63| > 4.5) = 3e-5``, so over ~50-100
(positively correlated) points a correct theory fails < 1% of the time.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

from nnlab import finitewidth as fw
from nnlab.evaluate import Comparison, ExperimentResult, scaling_fit

from ._registry import Experiment, register

__all__ = ["run_criticality", "run_finite_width_kurtosis"]


def _relu(z):
    return jnp.maximum(z, 0.0)


_ACTIVATIONS = {"relu": _relu, "tanh": jnp.tanh}


@functools.lru_cache(maxsize=32)
def _sampler(act, depth, width, input_dim, n_networks, method):
    """One compiled ensemble sampler per shape; C_W and C_b are traced (no recompiles)."""
    x = jnp.ones((input_dim,))  # |x|²/n_0 = 1, so K^(1) = C_b + C_W

    def sample(key, c_w, c_b):
        return fw.sample_preactivations(
            key, _ACTIVATIONS[act], x, depth, width, c_w, c_b, n_networks=n_networks, method=method
        )

    return jax.jit(sample)


def _moments(key, act, depth, width, c_w, c_b, config):
    fn = _sampler(act, depth, width, config["input_dim"], config["n_networks"], config["method"])
    return fn(key, c_w, c_b)


# ----------------------------------------------------------------------------- criticality
def run_criticality(config, seed):
    depth, width, nb = config["depth"], config["width"], config["n_batches"]
    ells = np.arange(1, depth + 1)
    key = jax.random.key(seed)
    comparisons, arrays = [], {}
    for act, c_ws in (("relu", config["relu_c_w"]), ("tanh", config["tanh_c_w"])):
        point = fw.criticality(_ACTIVATIONS[act])
        c_w_arr = jnp.asarray(c_ws, dtype=float)
        th = fw.finite_width_recursion(_ACTIVATIONS[act], c_w_arr, depth, c_w_arr, 0.0)
        theory = np.asarray(th.second_moment(width)).T  # (depth, c_w); K^(1) = C_W |x|²/n_0
        sims = []
        for c_w in c_ws:
            key, sub = jax.random.split(key)
            mom = _moments(sub, act, depth, width, c_w, 0.0, config)
            sims.append(np.asarray(fw.second_moment_estimate(mom.m2, nb).batches))
        sims = np.stack(sims, -1)  # (B, depth, c_w)
        arrays[f"{act}_critical_c_w"] = np.array(point.c_w)
        # max_z over depth x C_W points; theory = K + G^{1}/n (NLO metric, zero for ReLU), so
        # the remaining O(1/n²) bias is below 0.3 SE here (checked against width 4x larger).
        comparisons.append(
            Comparison(
                f"{act}_kernel_vs_depth",
                theory,
                sims,
                ("layer", "C_W"),
                coords={"layer": ells, "C_W": np.asarray(c_ws, dtype=float)},
                metric="max_z",
                tolerance=4.5,
                description=(
                    f"E[z²] vs depth for {act}, C_b=0, width {width}: on (C_W={point.c_w:g}) and "
                    "off criticality; theory K + G^{1}/n, Monte Carlo over networks."
                ),
                xlabel="layer ℓ",
                ylabel="E[(z^(ℓ))²]",
                yscale="log",
            )
        )
        if act == "tanh":
            crit = int(np.argmin(np.abs(np.asarray(c_ws) - point.c_w)))
            tail = ells >= depth // 3
            sim_mean = sims[:, :, crit].mean(0)
            fit_sim = scaling_fit(ells[tail], sim_mean[tail])
            fit_inf = scaling_fit(ells[tail], theory[tail, crit])
            # K ~ 1/(-a1 ℓ) up to O(log ℓ/ℓ) corrections: the fitted exponent of the finite-width
            # theory over this window differs from -1 by |fit_inf + 1|; allow that plus 0.05 for
            # Monte Carlo noise in the slope (its stderr is < 0.01 here).
            tol = abs(fit_inf.exponent + 1.0) + 0.05
            comparisons.append(
                Comparison.scalar(
                    "tanh_critical_power_law",
                    theory=-1.0,
                    simulation=fit_sim.exponent,
                    tolerance=tol,
                    description=(
                        "log-log slope of E[z²] vs ℓ for critical tanh (K ~ 1/(2ℓ), a1=-2), "
                        f"fitted on ℓ >= {depth // 3}."
                    ),
                    ylabel="exponent",
                )
            )
            arrays["tanh_critical_asymptote"] = point.kernel_asymptote(ells)
    figures = {"susceptibilities": _susceptibility_figure()}
    return ExperimentResult(comparisons, figures=figures, arrays=arrays)


def _susceptibility_figure():
    fig = Figure(figsize=(9, 3.5))
    axes = fig.subplots(1, 2)
    k = jnp.geomspace(1e-3, 10.0, 200)
    for ax, act in zip(axes, ("relu", "tanh")):
        point = fw.criticality(_ACTIVATIONS[act])
        c_ws = (0.8 * point.c_w, point.c_w, 1.2 * point.c_w)
        par, perp = fw.susceptibilities(_ACTIVATIONS[act], k[:, None], jnp.asarray(c_ws)[None])
        for i, c_w in enumerate(c_ws):
            (line,) = ax.plot(k, par[:, i], label=f"χ_∥, C_W={c_w:.2g}")
            ax.plot(k, perp[:, i], "--", color=line.get_color(), label=f"χ_⊥, C_W={c_w:.2g}")
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("K")
        ax.set_ylabel("susceptibility")
        ax.set_title(f"{act}: critical C_W={point.c_w:g}, C_b={point.c_b:g}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


register(
    Experiment(
        name="criticality",
        reference="Roberts, Yaida & Hanin 2021, The Principles of Deep Learning Theory, "
        "arXiv:2106.10165, ch. 5",
        description="E[z²] vs depth on and off criticality (ReLU C_W=2, tanh C_W=1), kernel "
        "recursion with its 1/n metric correction vs finite-network Monte Carlo.",
        run=run_criticality,
        small={
            "depth": 24,
            "width": 64,
            "input_dim": 4,
            "relu_c_w": (1.8, 2.0, 2.2),
            "tanh_c_w": (0.8, 1.0, 1.5),
            "n_networks": 4096,
            "n_batches": 64,
            "method": "projected",
        },
        large={
            "depth": 64,
            "width": 256,
            "input_dim": 16,
            "relu_c_w": (1.8, 1.9, 2.0, 2.1, 2.2),
            "tanh_c_w": (0.8, 0.9, 1.0, 1.2, 1.5),
            "n_networks": 32768,
            "n_batches": 64,
            "method": "dense",
        },
    )
)


# ------------------------------------------------------------------------ kurtosis
def run_finite_width_kurtosis(config, seed):
    depth, widths, nb = config["depth"], tuple(config["widths"]), config["n_batches"]
    ells = np.arange(2, depth + 1)  # layer 1 is exactly Gaussian
    key = jax.random.key(seed)
    w_arr = np.asarray(widths, dtype=float)
    comparisons, arrays = [], {}
    tanh_th = fw.finite_width_recursion(jnp.tanh, 1.0, depth, 1.0, 0.0)
    k_tanh = np.asarray(tanh_th.kernel)
    sims = {"relu": [], "tanh": []}
    for act, c_w in (("relu", 2.0), ("tanh", 1.0)):
        for n in widths:
            key, sub = jax.random.split(key)
            mom = _moments(sub, act, depth, n, c_w, 0.0, config)
            kappa = np.asarray(fw.fourth_cumulant_estimate(mom.m2, mom.m4, nb).batches)
            # Normalise by the deterministic theory K² (not the sample E[z²]², which would bias).
            k2 = (c_w * 1.0) ** 2 if act == "relu" else k_tanh**2
            sims[act].append(kappa / k2)
    relu_sim = np.stack(sims["relu"], 1)[..., 1:]  # (B, width, layer)
    tanh_sim = np.stack(sims["tanh"], 1)[..., 1:]
    relu_exact = np.asarray(fw.scale_invariant_kurtosis(depth, w_arr))[:, 1:]
    comparisons.append(
        Comparison(
            "relu_kurtosis_exact",
            relu_exact,
            relu_sim,
            ("width", "layer"),
            coords={"width": w_arr, "layer": ells},
            metric="max_z",
            tolerance=4.0,  # exact at every width: only Monte Carlo noise (module docstring)
            description="critical ReLU: excess kurtosis E[z⁴]/K² - 3 of preactivations vs the "
            "exact product form 3[(1+5/n)^(ℓ-1) - 1].",
            xlabel="width n",
            ylabel="excess kurtosis",
            xscale="log",
            yscale="log",
        )
    )
    # Leading order 3V/(nK²) from the quadrature recursion: its O(ℓ²/n²) remainder is below the
    # Monte Carlo noise only once depth/width is small, so this claim uses widths >= min_width_lo.
    lo = w_arr >= config["min_width_lo"]
    v_over_k2 = np.asarray(tanh_th.vertex / tanh_th.kernel**2)
    tanh_lo = (3.0 * v_over_k2[None, :] / w_arr[:, None])[:, 1:]  # 3V/(nK²)
    comparisons.append(
        Comparison(
            "tanh_kurtosis_leading_order",
            tanh_lo[lo],
            tanh_sim[:, lo],
            ("width", "layer"),
            coords={"width": w_arr[lo], "layer": ells},
            metric="max_z",
            tolerance=4.0,
            description="critical tanh: excess kurtosis vs the leading-order vertex recursion "
            "3V/(nK²) (Gauss quadrature), widths with depth/width small.",
            xlabel="width n",
            ylabel="excess kurtosis",
            xscale="log",
            yscale="log",
        )
    )
    # 1/n scaling at the last layer: exponent of the Monte Carlo kurtosis against that of the
    # exact theory over the same widths (leading order would give exactly -1); 0.1 covers the
    # slope's Monte Carlo error (stderr ~0.02) at 4-5 SE.
    fit_th = scaling_fit(w_arr, relu_exact[:, -1])
    fit_mc = scaling_fit(w_arr, relu_sim.mean(0)[:, -1])
    comparisons.append(
        Comparison.scalar(
            "relu_kurtosis_width_exponent",
            theory=fit_th.exponent,
            simulation=fit_mc.exponent,
            tolerance=0.1,
            description=f"log-log slope of the excess kurtosis vs width at layer {depth} "
            "(theory: fit of the exact product form; -1 at leading order).",
            ylabel="exponent",
        )
    )
    comparisons.append(_density_comparison(jax.random.fold_in(key, 7), config))
    arrays["relu_leading_order"] = 15.0 * (ells[None, :] - 1) / w_arr[:, None]
    figures = {
        "kurtosis_vs_depth_over_width": _collapse_figure(w_arr, ells, relu_sim, tanh_sim, tanh_th)
    }
    return ExperimentResult(comparisons, figures=figures, arrays=arrays)


def _density_comparison(key, config):
    """One hidden ReLU layer: histogram of outputs minus the NNGP Gaussian vs the 1/n term."""
    n, nb = config["density_width"], config["n_batches"]
    mom = _moments(key, "relu", 2, n, 2.0, 0.0, config)
    k = 2.0  # K^(2) = C_W K^(1)/2 with K^(1) = C_W = 2
    kappa4 = 3.0 * 5.0 * k**2 / n  # 3 V^(2)/n, V^(2) = 5 K² (exact at this depth)
    edges = np.linspace(-3.0, 3.0, 25) * np.sqrt(k)
    centers = 0.5 * (edges[1:] + edges[:-1])
    fine = np.linspace(edges[0], edges[-1], 24 * 64 + 1)
    gauss = np.asarray(fw.output_density(fine, k, 0.0))
    corrected = np.asarray(fw.output_density(fine, k, kappa4))

    def bin_average(p):  # exact bin averages of the densities (Simpson would do as well)
        return np.array([np.mean(p[i * 64 : (i + 1) * 64 + 1]) for i in range(24)])

    theory = bin_average(corrected) - bin_average(gauss)
    vals = np.asarray(mom.last).reshape(nb, -1)
    width_bin = edges[1] - edges[0]
    hist = np.stack([np.histogram(v, edges)[0] / (v.size * width_bin) for v in vals])
    # max_z over 24 bins with B=64 batches: P(max |t_63| > 4) < 0.5% for a correct theory.
    return Comparison(
        "one_hidden_layer_density_correction",
        theory,
        hist - bin_average(gauss)[None],
        ("f",),
        coords={"f": centers},
        metric="max_z",
        tolerance=4.0,
        description=f"one-hidden-layer ReLU net, width {n}: output density minus the NNGP "
        "Gaussian vs the Edgeworth 1/n term κ₄/(24K²) He₄ (Antognini 2019).",
        xlabel="output f",
        ylabel="p(f) - N(f; 0, K)",
    )


def _collapse_figure(w_arr, ells, relu_sim, tanh_sim, tanh_th):
    fig = Figure(figsize=(9, 3.8))
    axes = fig.subplots(1, 2)
    r = np.linspace(0, (ells[-1]) / w_arr.min(), 100)
    for ax, sim, name in ((axes[0], relu_sim, "ReLU"), (axes[1], tanh_sim, "tanh")):
        for i, n in enumerate(w_arr):
            mean = sim[:, i].mean(0)
            se = sim[:, i].std(0, ddof=1) / np.sqrt(sim.shape[0])
            ax.errorbar(ells / n, mean, yerr=se, fmt="o", ms=3, label=f"MC n={int(n)}")
        if name == "ReLU":
            ax.plot(r, 15 * r, "k-", label="leading order 15(ℓ-1)/n ≈ 15 ℓ/n")
            for n in w_arr:
                ax.plot(ells / n, 3 * ((1 + 5 / n) ** (ells - 1) - 1), "k:", lw=0.8)
        else:
            v_over_k2 = np.asarray(tanh_th.vertex / tanh_th.kernel**2)[1:]
            for n in w_arr:
                ax.plot(ells / n, 3 * v_over_k2 / n, "k-", lw=0.8)
        ax.set_xlabel("depth / width  ℓ/n")
        ax.set_ylabel("excess kurtosis E[z⁴]/K² - 3")
        ax.set_title(f"critical {name}: theory (lines), Monte Carlo ± SE")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


register(
    Experiment(
        name="finite_width_kurtosis",
        reference="Roberts, Yaida & Hanin 2021, arXiv:2106.10165, ch. 4-5; Antognini 2019, "
        "arXiv:1908.10030",
        description="Excess kurtosis of preactivations vs depth and width (exact ReLU product "
        "form, tanh vertex recursion) and the 1/n output-density correction, vs Monte Carlo.",
        run=run_finite_width_kurtosis,
        small={
            # depth/width <= 1/8: at n = 32 (ℓ/n = 1/4) the per-batch estimates of 128 networks
            # are visibly skewed (heavy-tailed ∏ R_ℓ), so the small config starts at n = 64.
            "depth": 8,
            "widths": (64, 128, 256, 512),
            "min_width_lo": 128,
            "density_width": 64,
            "input_dim": 4,
            "n_networks": 8192,
            "n_batches": 64,
            "method": "projected",
        },
        large={
            "depth": 10,
            "widths": (32, 64, 128, 256, 512),
            "min_width_lo": 128,
            "density_width": 64,
            "input_dim": 16,
            "n_networks": 65536,
            "n_batches": 64,
            "method": "dense",
        },
    )
)
