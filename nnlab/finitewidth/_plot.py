"""Figures of criticality and finite-width kurtosis (matplotlib ``Figure`` objects, no pyplot).

One panel per activation, side by side: :func:`susceptibility_figure` draws ``χ_∥`` and
``χ_⊥`` against ``K`` around the critical ``C_W``; :func:`kurtosis_figure` the excess
kurtosis against depth/width ``ℓ/n``, theory lines over Monte Carlo markers (Roberts,
Yaida & Hanin 2021, arXiv:2106.10165, ch. 4-5).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax.numpy as jnp
import numpy as np

from nnlab.record import Record

from ._criticality import criticality, susceptibilities


def _panels(labels, draw, height: float, title: str):
    """A figure with one panel per label, ``draw(ax, label)`` on each, with legends."""
    from matplotlib.figure import Figure

    labels = list(labels)
    fig = Figure(figsize=(4.5 * len(labels), height), layout="constrained")
    axes = fig.subplots(1, len(labels), squeeze=False)[0]
    for ax, label in zip(axes, labels, strict=True):
        draw(ax, label)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return fig


def susceptibility_figure(
    activations: Mapping[str, Callable], k=None, factors=(0.8, 1.0, 1.2), *, title: str = ""
):
    """``χ_∥`` (solid) and ``χ_⊥`` (dashed) against ``K`` at ``C_W = factor · C_W*``.

    ``C_W*`` is the critical weight variance of :func:`criticality`; :func:`susceptibilities`
    gives ``χ_∥ = C_W⟨σ'² + σσ''⟩_K`` and ``χ_⊥ = C_W⟨σ'²⟩_K`` (RYH 2021, eqs. 5.10, 5.50),
    which cross the line ``χ = 1`` at a critical ``K*``. One colour per ``C_W``.

    Args:
      activations: panel label -> activation (a function or an ``nnlab.layers`` activation).
      k: kernel values ``K`` (default 200 log-spaced in ``[1e-3, 10]``, a log axis).
      factors: multiples of ``C_W*`` drawn.
      title: the figure's title.

    Example:
      >>> import jax.numpy as jnp
      >>> fig = susceptibility_figure({"tanh": jnp.tanh}, k=jnp.geomspace(0.01, 1.0, 5))
      >>> [line.get_label() for line in fig.axes[0].lines[:2]]
      ['χ_∥, W_std²=0.8', 'χ_∥, W_std²=1']
    """
    k = jnp.geomspace(1e-3, 10.0, 200) if k is None else jnp.asarray(k)

    def draw(ax, label):
        fn = activations[label]
        c_ws = criticality(fn).c_w * jnp.asarray(factors)
        for i, chi in enumerate(susceptibilities(fn, k[:, None], c_ws[None])):
            for j, c_w in enumerate(c_ws.tolist()):
                name = f"{('χ_∥', 'χ_⊥')[i]}, W_std²={c_w:.2g}"
                ax.plot(k, chi[:, j], ("-", "--")[i], color=f"C{j}", label=name)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set(xscale="log", xlabel="K", ylabel="susceptibility", title=label)

    return _panels(activations, draw, 3.5, title)


def kurtosis_figure(
    theories: Mapping[str, Record],
    simulations: Mapping[str, Record],
    exact: Mapping[str, Record] | None = None,
    *,
    title: str = "",
):
    """Excess kurtosis ``κ_4/K²`` against depth/width ``ℓ/n``: theory lines, Monte Carlo ± SE.

    At leading order the excess kurtosis is ``3V^{(ℓ)}/(n K²)`` (black line, the theory's
    :meth:`~FiniteWidthTheory.excess_kurtosis`), a function of ``ℓ/n`` for ReLU-like
    activations (``15(ℓ-1)/n``); ``exact`` adds a dotted line per width, e.g. the product
    form ``3[(1 + 5/n)^{ℓ-1} - 1]`` of :func:`scale_invariant_kurtosis`.

    Args:
      theories: panel label -> :class:`FiniteWidthTheory`.
      simulations: panel label -> :class:`BatchMoments` over ``('width', 'seed', 'layer')``
        (:func:`sweep_moments` over ``'width'``).
      exact: panel label -> a record with ``excess_kurtosis`` over ``('width', 'layer')`` at
        the same widths, for the panels that have one.
      title: the figure's title.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from nnlab import finitewidth as fw
      >>> net = lambda n: fw.critical_mlp("relu", 3, n)
      >>> sims = {"relu": fw.sweep_moments(jax.random.key(0), net, [8, 16], "width",
      ...                                  jnp.ones(2), n_networks=64, n_batches=4)}
      >>> th = {"relu": fw.finite_width_theory(net(8), jnp.ones(2))}
      >>> fig = fw.kurtosis_figure(th, sims)
      >>> fig.axes[0].lines[0].get_xdata().tolist()    # ℓ/n at n = 8
      [0.125, 0.25, 0.375]
    """
    exact = {} if exact is None else exact

    def draw(ax, label):
        th, est = theories[label], simulations[label].estimate("fourth_cumulant")
        ells, k2 = np.asarray(th.coord("layer")), np.asarray(th.kernel) ** 2
        for i, n in enumerate(np.asarray(simulations[label].coord("width"))):
            mean, se = np.asarray(est.mean[i]) / k2, np.asarray(est.standard_error[i]) / k2
            ax.errorbar(ells / n, mean, se, fmt="o", ms=3, label=f"MC n={int(n)}")
            ax.plot(ells / n, np.asarray(th.excess_kurtosis(float(n))), "k-", lw=0.8)
            if label in exact:
                ax.plot(ells / n, np.asarray(exact[label].excess_kurtosis[i]), "k:", lw=0.8)
        lines = "3V/(nK²) (—), exact (⋯)" if label in exact else "3V/(nK²) (—)"
        ax.set(
            xlabel="depth / width  ℓ/n",
            ylabel="excess kurtosis κ₄/K²",
            title=f"{label}: {lines}, MC ± SE",
        )

    return _panels(theories, draw, 3.8, title)
