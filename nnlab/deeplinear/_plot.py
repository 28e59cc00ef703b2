"""The stage-learning figure: mode strengths against time, theory as lines, simulation as dots."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._theory import ModeTrajectory


def stages_figure(panels: Sequence[tuple[str, ModeTrajectory, ModeTrajectory]]):
    """One panel per ``(title, theory, simulation)``: one curve per distinct mode strength.

    ``theory`` and ``simulation`` are :class:`ModeTrajectory` records on the same ``time``
    coordinate; the simulation is averaged over its member axes (seeds). Each distinct
    singular value :math:`s` (the hierarchy's levels) gets one colour, its target
    :math:`u = s` a dotted line. Returns a :class:`matplotlib.figure.Figure`.
    """
    from matplotlib.figure import Figure

    if not panels:
        raise ValueError("panels is empty; pass at least one (title, theory, simulation).")
    fig = Figure(figsize=(5.0 * len(panels), 4.0), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, theory, sim) in zip(axes, panels, strict=True):
        s = np.asarray(theory["s"], np.float64)
        time = np.asarray(theory.time)
        u_theory = np.asarray(theory["mode_strength"])
        u_sim = np.asarray(sim["mode_strength"])
        u_sim = u_sim.reshape(-1, *u_sim.shape[-2:]).mean(axis=0)
        levels = np.unique(np.round(s, 4), return_index=True)[1]
        levels = sorted((int(i) for i in levels), key=lambda i: -s[i])
        every = max(1, len(time) // 40)
        for j, i in enumerate(levels):
            color = f"C{j}"
            ax.plot(time, u_theory[:, i], color=color, lw=1.8, label=f"theory, s = {s[i]:.3f}")
            ax.plot(time[::every], u_sim[::every, i], "o", color=color, ms=3.5, mfc="none")
            ax.axhline(s[i], color=color, lw=0.6, ls=":")
        ax.plot([], [], "o", color="k", ms=3.5, mfc="none", label="gradient descent")
        ax.set_title(title)
        ax.set_xlabel("t (steps)" if theory.time_unit == "step" else "t")
        ax.set_ylabel("mode strength u_α(t)")
        ax.set_ylim(-0.05 * s.max(), 1.5 * s.max())
        ax.legend(fontsize="small", loc="upper center", ncol=2)
    fig.suptitle("Stage-like learning (Saxe et al. 2014): one curve per level of the hierarchy")
    return fig
