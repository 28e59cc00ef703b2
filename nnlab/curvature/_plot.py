"""Figures of sharpness trajectories and spectra (matplotlib ``Figure`` objects, no pyplot)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from nnlab.record import Record

from ._density import SpectralDensity


def _legend(ax) -> None:
    """A legend with one entry per label (a label repeated over seeds is shown once)."""
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), fontsize="small")


def sharpness_figure(record: Record, field: str = "obs.sharpness", *, controls=(), title: str = ""):
    """Sharpness against ``2/η`` (dashed) and the training loss, per learning rate.

    ``record`` is a training record over ``("seed", "lr", "time")`` with ``field`` and
    ``train_loss`` (``train_ensemble`` with ``hyperparams={"lr": ...}``); the learning
    rates in ``controls`` are labelled as controls and left out of the sharpness axis range.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11.0, 4.0), layout="constrained")
    ax_s, ax_l = fig.subplots(1, 2)
    lrs = np.asarray(record.coord("lr"), np.float64)
    control = np.isin(lrs, np.asarray(controls, np.float64))
    for i, lr in enumerate(lrs):
        label = f"η = {lr:.3g}, 2/η = {2 / lr:.3g}" + (" (control)" if control[i] else "")
        run = record.sel(lr=lr)
        ax_s.plot(record.time, np.asarray(run[field]).T, color=f"C{i}", lw=1.2, label=label)
        ax_s.axhline(2.0 / lr, color=f"C{i}", ls="--", lw=0.9)
        ax_l.plot(record.time, np.asarray(run["train_loss"]).T, color=f"C{i}", lw=1.0, label=label)
    top = 2.0 / lrs[~control].min() if (~control).any() else 2.0 / lrs.min()
    ax_s.set(ylim=(0.0, 1.3 * top), xlabel="GD step", ylabel="sharpness λ_max(∇²L)")
    ax_s.set_title("sharpness (solid) and 2/η (dashed)")
    ax_l.set(yscale="log", xlabel="GD step", ylabel="training loss")
    ax_l.set_title("training loss")
    _legend(ax_s)
    _legend(ax_l)
    fig.suptitle(title)
    return fig


def spectrum_figure(
    density: SpectralDensity,
    tops: Mapping[int, Record],
    *,
    eigenvalues=None,
    outliers: Mapping[int, int] | None = None,
    title: str = "",
):
    """A spectral density (with a histogram of ``eigenvalues``) and ranked top eigenvalues.

    ``tops`` maps a label (e.g. the number of classes) to an :class:`Eigenpairs` record;
    ``outliers`` to the expected number of outliers, drawn as a dashed line.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11.0, 4.0), layout="constrained")
    ax_d, ax_t = fig.subplots(1, 2)
    if eigenvalues is not None:
        ax_d.hist(np.asarray(eigenvalues), bins=80, density=True, color="0.8", label="dense")
    ax_d.plot(density.grid, np.maximum(density.density, 1e-6), color="C0", label="SLQ density")
    ax_d.set(yscale="log", ylim=(1e-3, None), xlabel="eigenvalue λ", ylabel="density")
    ax_d.legend(fontsize="small")
    for i, (label, pairs) in enumerate(tops.items()):
        ev = np.asarray(pairs.eigenvalues)
        ax_t.semilogy(np.arange(1, ev.size + 1), ev, "o-", ms=3, color=f"C{i}", label=f"{label}")
        if outliers is not None and label in outliers:
            ax_t.axvline(outliers[label] + 0.5, color=f"C{i}", ls="--", lw=0.8)
    ax_t.set(xlabel="eigenvalue rank i", ylabel="λ_i")
    ax_t.set_title("top eigenvalues (dashed: expected outliers)")
    ax_t.legend(fontsize="small")
    fig.suptitle(title)
    return fig
