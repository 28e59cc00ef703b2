"""Figures of phase diagrams (matplotlib ``Figure`` objects, no pyplot state)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np

from ._phase_diagram import PhaseDiagram
from ._phases import Phase, catapult_thresholds

_LABEL = {"nn": "network", "nqm": "NQM", "linear": "linear model", "uv": "uv model"}
_STYLE = {"nn": "C0o-", "nqm": "C1s--", "linear": "C2^:", "uv": "C0o-"}


def _nanmedian(a):
    """Median over seeds ignoring NaN (diverged runs); NaN where every seed diverged."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(a, axis=0)


def _boundaries(ax):
    lazy_max, catapult_max = (float(t) for t in catapult_thresholds(1.0))
    for b, txt in ((lazy_max, "2/λ0"), (catapult_max, "4/λ0")):
        ax.axvline(b, color="gray", ls="--", lw=0.8)
        ax.text(b, 1.0, f" {txt}", transform=ax.get_xaxis_transform(), va="top", fontsize=8)


def phase_figure(diagrams: Mapping[str, PhaseDiagram], title: str):
    """Loss peak and final sharpness against ``η λ0`` (medians over seeds), with the
    ``2/λ0``, ``4/λ0`` lines and the curve ``λ = 2/η``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    for name, d in diagrams.items():
        style, label = _STYLE.get(name, "C0o-"), _LABEL.get(name, name)
        peak = _nanmedian(np.where(np.isfinite(d.loss_peak), d.loss_peak, np.nan))
        ax1.plot(d.ratio, peak, style, ms=4, label=label)
        div = np.all(d.phase == Phase.DIVERGENT, axis=0)
        if div.any():
            ax1.plot(d.ratio[div], np.ones(div.sum()), ls="none", marker="x", color=style[:2])
        ax2.plot(d.ratio, _nanmedian(d.lam_final / d.lam0[:, None]), style, ms=4, label=label)
    grid = np.linspace(1.0, max(float(d.ratio.max()) for d in diagrams.values()), 200)
    ax2.plot(grid, 2.0 / grid, "k-", lw=0.8, alpha=0.6, label="λ = 2/η")
    for ax in (ax1, ax2):
        _boundaries(ax)
        ax.set_xlabel("η λ0")
        ax.legend(fontsize=8)
    ax1.set_yscale("log")
    ax1.set_ylabel("loss peak  max_t L_t / L_0  (median over seeds)")
    ax1.set_title("loss spike (× at 1: every seed diverged)")
    ax2.set_ylabel("λ_final / λ0  (median over seeds)")
    ax2.set_ylim(0.0, 1.3)
    ax2.set_title("final sharpness")
    fig.suptitle(title)
    return fig


def trajectory_figure(d: PhaseDiagram, ratios, title: str, horizon: int = 100):
    """Training loss and ``η λ_t`` over steps (seed 0) at the swept ratios nearest ``ratios``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.0), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    t = np.asarray(d.time)
    for c in ratios:
        j = int(np.argmin(np.abs(d.ratio - c)))
        ax1.semilogy(t, d.loss[0, j], label=f"η λ0 = {d.ratio[j]:.2f}")
        ax2.plot(t, d.lam[0, j] * d.lr[0, j], label=f"η λ0 = {d.ratio[j]:.2f}")
    ax2.axhline(2.0, color="k", ls="--", lw=0.8, label="η λ = 2")
    ax2.set_ylim(0.0, 4.5)
    ax1.set_ylim(1e-8, None)
    for ax, ylabel in ((ax1, "training loss"), (ax2, "η λ_t")):
        ax.set_xlim(0, min(t[-1], horizon))
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return fig


def generalization_figure(diagrams: Mapping[str, PhaseDiagram], linear=None):
    """Final test loss (mean ± SE over seeds) against ``η λ0``; ``linear`` (a
    :func:`linear_limit` record) is drawn as the linear model's converged level."""
    from matplotlib.figure import Figure

    ax = Figure(figsize=(6.5, 4.2), layout="constrained").add_subplot()
    for name, d in diagrams.items():
        v = d.test_final
        m, se = np.nanmean(v, axis=0), np.nanstd(v, axis=0, ddof=1) / np.sqrt(v.shape[0])
        ax.plot(d.ratio, m, _STYLE.get(name, "C0o-"), ms=4, label=_LABEL.get(name, name))
        ax.fill_between(d.ratio, m - se, m + se, color=_STYLE.get(name, "C0")[:2], alpha=0.2)
    if linear is not None:
        r = np.asarray(linear.coord("eta_lam0"))
        level = float(np.mean(linear["test_final"]))
        ax.plot([r.min(), 2.0], [level] * 2, "C2-", lw=2, label="linear model (diverges above 2)")
    _boundaries(ax)
    ax.set_xlabel("η λ0")
    ax.set_ylabel("final test loss (mean ± SE over seeds)")
    ax.set_title("generalisation vs learning rate")
    ax.legend(fontsize=8)
    return ax.figure
