"""Drawing a :class:`~nnlab.evaluate.Comparison` with matplotlib (no pyplot state)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ._comparison import Comparison

_SE_ALPHA = 0.25
_MAX_LEGEND_ENTRIES = 12


def new_axes(figsize: tuple[float, float] = (6.0, 4.0)):
    """A fresh Axes on a ``matplotlib.figure.Figure`` (not registered with pyplot)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained").add_subplot()


def _numeric_x(values: np.ndarray) -> tuple[np.ndarray, list[str] | None]:
    """Numeric x positions for coordinate ``values``, plus tick labels if they are not numbers."""
    if values.dtype.kind in "biuf":
        return values.astype(np.float64), None
    return np.arange(values.size, dtype=np.float64), [str(v) for v in values]


def plot_comparison(c: Comparison, ax=None, *, kind: str = "auto"):
    """See :meth:`Comparison.plot`."""
    if kind not in ("auto", "lines", "parity"):
        raise ValueError(f"kind must be 'auto', 'lines' or 'parity', got {kind!r}.")
    if ax is None:
        ax = new_axes()
    ndim = c.theory.ndim
    if kind == "lines" and ndim > 2:
        raise ValueError(
            f"kind='lines' draws 1-D or 2-D comparisons; {c.name!r} has axes {c.axes!r}. "
            "Use kind='parity' or slice the arrays first."
        )
    if ndim == 0 and kind != "parity":
        _plot_scalar(c, ax)
    elif ndim in (1, 2) and kind != "parity":
        _plot_lines(c, ax)
    else:
        _plot_parity(c, ax)
    verdict = "PASS" if c.passed else "FAIL"
    ax.set_title(f"{c.name}  [{verdict}: {c.metric} = {c.value:.3g}, tol {c.tolerance:.3g}]")
    return ax


def _plot_lines(c: Comparison, ax) -> None:
    x, ticklabels = _numeric_x(c.coords[c.axes[0]])
    theory = c.theory.reshape(c.theory.shape[0], -1)
    mean = c.sim_mean.reshape(theory.shape)
    se = c.sim_se
    se = None if se is None else se.reshape(theory.shape)
    second = c.coords[c.axes[1]] if c.theory.ndim == 2 else None
    n_curves = theory.shape[1]
    sim_label = f"simulation (mean ± 1 SE, {c.n_seeds} seeds)" if se is not None else "simulation"
    for j in range(n_curves):
        color = f"C{j % 10}"
        label = "theory" if second is None else f"theory, {c.axes[1]} = {second[j]}"
        if j >= _MAX_LEGEND_ENTRIES:
            label = None
        ax.plot(x, theory[:, j], color=color, lw=1.8, label=label)
        ax.plot(
            x,
            mean[:, j],
            color=color,
            lw=0.8,
            ls="--",
            marker="o",
            ms=3,
            label=sim_label if j == 0 else None,
        )
        if se is not None:
            ax.fill_between(
                x, mean[:, j] - se[:, j], mean[:, j] + se[:, j], color=color, alpha=_SE_ALPHA, lw=0
            )
    if ticklabels is not None:
        ax.set_xticks(x, ticklabels)
    ax.set_xscale(c.xscale)
    ax.set_yscale(c.yscale)
    ax.set_xlabel(c.xlabel or c.axes[0])
    ax.set_ylabel(c.ylabel or c.name)
    ax.legend(fontsize="small")


def _plot_scalar(c: Comparison, ax) -> None:
    theory = float(c.theory)
    ax.axhline(theory, color="C0", lw=1.8, label="theory")
    if c.metric == "max_abs":
        ax.axhspan(
            theory - c.tolerance, theory + c.tolerance, color="C0", alpha=0.15, label="tolerance"
        )
    se = c.sim_se
    yerr = None if se is None else float(se)
    ax.errorbar(
        [0.0],
        [float(c.sim_mean)],
        yerr=yerr,
        fmt="o",
        color="C1",
        capsize=4,
        label="simulation" + (" (mean ± 1 SE)" if yerr is not None else ""),
    )
    if c._has_seed:
        ax.plot(np.zeros(c.n_seeds), c.simulation, "x", color="C1", alpha=0.5, ms=4)
    ax.set_xticks([])
    ax.set_xlim(-1.0, 1.0)
    ax.set_yscale(c.yscale)
    ax.set_ylabel(c.ylabel or c.name)
    ax.legend(fontsize="small")


def _plot_parity(c: Comparison, ax) -> None:
    theory = c.theory.reshape(-1)
    mean = c.sim_mean.reshape(-1)
    se = c.sim_se
    yerr = None if se is None else se.reshape(-1)
    ax.errorbar(theory, mean, yerr=yerr, fmt="o", ms=3, color="C1", label="simulation")
    finite = np.concatenate([theory, mean[np.isfinite(mean)]])
    lo, hi = float(finite.min()), float(finite.max())
    ax.plot([lo, hi], [lo, hi], color="C0", lw=1.2, label="theory = simulation")
    ax.set_xscale(c.xscale)
    ax.set_yscale(c.yscale)
    ax.set_xlabel(f"theory ({c.ylabel or c.name})")
    ax.set_ylabel("simulation mean")
    ax.legend(fontsize="small")
