"""Figures of the mean-field records: fluctuations, particle densities, committee overlaps."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nnlab.record import Record

from ._particles import ParticleTrajectory, particle_density
from ._saad_solla import OrderParameters

__all__ = ["fluctuations_figure", "order_parameters_figure", "particle_density_figure"]


def _figure(n_panels: int, width: float, height: float = 3.6):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * n_panels, height), layout="constrained")
    return fig, fig.subplots(1, n_panels, squeeze=False)[0]


def fluctuations_figure(sim: ParticleTrajectory, spread: Record, reference=None):
    r"""``std · √N`` across seeds against time, and the seed-mean training loss per width.

    ``sim`` is a :func:`particle_gradient_flow` record over ``('width', 'seed', 'time')``,
    ``spread`` its :func:`seed_fluctuations` (``std`` over ``('width', 'time')``);
    ``reference`` (a one-width trajectory over ``('seed', 'time')``) adds its loss as a dashed
    line. Flat curves in the left panel are the :math:`N^{-1/2}` law. Returns a
    :class:`matplotlib.figure.Figure`.
    """
    widths = np.asarray(sim.coord("width"), np.float64)
    fig, (ax_std, ax_loss) = _figure(2, width=4.0)
    labels = [f"N={n:g}" for n in widths]
    std = np.asarray(spread["std"]) * np.sqrt(widths)[:, None]
    ax_std.plot(sim.time, std.T, marker="o", label=labels)
    ax_loss.plot(sim.time, np.asarray(sim.loss).mean(axis=1).T, label=labels)
    if reference is not None:
        ax_loss.plot(reference.time, np.asarray(reference.loss).mean(axis=0), "k--", label="ref")
    ax_std.set(xlabel="mean-field time t = lr · steps", ylabel="std across seeds x sqrt(N)")
    ax_loss.set(xlabel="t", ylabel="training loss (seed mean)", yscale="log")
    ax_std.legend(fontsize=7)
    return fig


def particle_density_figure(snapshots: Sequence[tuple], titles: Sequence[str], *, bins=50):
    """One :func:`particle_density` panel in ``(a, |w|)`` per ``(a, w)`` snapshot.

    All panels share the ranges (the 0.2%-99.8% quantiles of ``a`` and ``|w|`` over all
    snapshots), so the panels show how the density moves. Returns a
    :class:`matplotlib.figure.Figure`.
    """
    if len(snapshots) != len(titles) or not snapshots:
        raise ValueError(
            f"pass one title per snapshot (at least one); got {len(snapshots)} snapshots and "
            f"{len(titles)} titles."
        )
    a_all = np.concatenate([np.asarray(a) for a, _ in snapshots])
    r_all = np.concatenate([np.linalg.norm(np.asarray(w), axis=1) for _, w in snapshots])
    ranges = {
        "a_range": tuple(float(q) for q in np.quantile(a_all, [0.002, 0.998])),
        "w_range": (0.0, float(np.quantile(r_all, 0.998))),
    }
    fig, axes = _figure(len(snapshots), width=4.0)
    for ax, (a, w), title in zip(axes, snapshots, titles):
        h, a_edges, r_edges = particle_density(a, w, bins=bins, **ranges)
        ax.pcolormesh(np.asarray(a_edges), np.asarray(r_edges), np.asarray(h).T, cmap="viridis")
        ax.set(title=title, xlabel="a (output weight)", ylabel="|w| (input weight norm)")
    return fig


def order_parameters_figure(sim: OrderParameters, theory: Record, plateau: float, escape: float):
    r"""Online SGD (per seed) and the Saad-Solla ODEs: ``ε_g(α)`` and ``R`` of seed 0.

    ``sim`` and ``theory`` are over ``('seed', 'time')`` (``theory`` from each seed's
    initial overlaps, :func:`saad_solla_from_overlaps`); ``plateau`` is the fixed point's
    ``ε_g`` (dotted) and ``escape`` the α where the comparison window ends (dash-dotted).
    Returns a :class:`matplotlib.figure.Figure`.
    """
    alpha = np.asarray(sim.coord("time"))
    fig, (ax_eg, ax_r) = _figure(2, width=5.5)
    ax_eg.plot(alpha, np.asarray(sim["eg"]).T, color="C0", alpha=0.35, lw=1)
    ax_eg.plot(alpha, np.asarray(theory["eg"]).T, color="C3", ls="--", lw=1)
    ax_eg.axhline(plateau, color="k", ls=":")
    ax_eg.axvline(escape, color="gray", ls="-.", lw=1)
    ax_eg.set(xlabel="alpha = steps / D", yscale="log", ylabel="eg: SGD (blue), ODE (red)")
    r_sim = np.asarray(sim["r"])[0].reshape(len(alpha), -1).T
    r_ode = np.asarray(theory["r"])[0].reshape(len(alpha), -1).T
    for i, (rs, ro) in enumerate(zip(r_sim, r_ode)):
        ax_r.plot(alpha, rs, color=f"C{i}", lw=1)
        ax_r.plot(alpha, ro, color=f"C{i}", ls="--", lw=1.5)
    ax_r.set(xlabel="alpha = steps / D", ylabel="R_in (seed 0): solid SGD, dashed ODE")
    return fig
