"""The :class:`Comparison` record: a theory array next to a simulation array.

A comparison holds host-side NumPy arrays (it is built after the JAX work is
done, so it is not a pytree and is never traced). The simulation either has the
theory's shape or one extra leading axis named ``'seed'`` of independent
repetitions, over which the mean and its standard error are taken.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

Metric = Literal["rel_l2", "max_abs", "max_rel", "max_z"]
METRICS: tuple[str, ...] = ("rel_l2", "max_abs", "max_rel", "max_z")
_SCALES = ("linear", "log", "symlog", "logit")


def _as_float_array(value: Any, argname: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except Exception as err:  # e.g. a ragged list
        raise TypeError(f"{argname} must be array-like, got {type(value).__name__}.") from err
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{argname} must hold real numbers, got an array of dtype {arr.dtype}; "
            "take the real part or magnitude first."
        )
    arr = np.array(arr, dtype=np.float64)  # a private copy
    arr.setflags(write=False)
    return arr


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den elementwise with 0/0 -> 0 and x/0 -> inf (for x != 0); NaN propagates."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.abs(num) / np.abs(den)
    both_zero = (num == 0) & (den == 0)
    return np.where(both_zero, 0.0, out)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Comparison:
    r"""A theory prediction next to a simulation, with metrics and pass/fail.

    Let :math:`T` be the theory array, :math:`S_s` the simulation of seed
    :math:`s = 1..n`, :math:`\bar S = \frac1n\sum_s S_s` its mean and
    :math:`\mathrm{SE} = \mathrm{std}_{ddof=1}(S)/\sqrt n` its standard error
    (pointwise). The metrics are

    * ``rel_l2``  :math:`\|\bar S - T\|_2 / \|T\|_2` (over all points),
    * ``max_abs`` :math:`\max |\bar S - T|`,
    * ``max_rel`` :math:`\max |\bar S - T| / |T|`,
    * ``max_z``   :math:`\max |\bar S - T| / \mathrm{SE}` (needs >= 2 seeds),
    * ``correlation``: Pearson correlation of :math:`\bar S` and :math:`T`
      (reported, not a pass/fail metric).

    With :math:`n` seeds each pointwise z-score is Student-t with :math:`n-1`
    degrees of freedom, so set a ``max_z`` tolerance from
    ``n_points * P(|t_{n-1}| > tol)`` (few seeds have heavy tails).

    Zero denominators give ``inf`` (``0/0`` gives 0). A simulation containing
    NaN or inf (a diverged run) is allowed: the metrics become NaN/inf and
    ``passed`` is False at every tolerance (also ``inf``). Empty arrays are a
    ``ValueError``: an empty comparison has nothing to pass.

    Args:
      name: short identifier; also the figure's file name in reports.
      theory: finite array over ``axes``.
      simulation: array of the theory's shape, or with one extra leading axis
        of independent seeds.
      axes: one name per theory axis, e.g. ``('time',)`` or ``('time', 'width')``.
      metric: the metric that decides pass/fail (``'rel_l2'`` by default).
      tolerance: pass when ``value <= tolerance``; justify it where you set it.
      coords: optional coordinate values per axis name (1-D, matching length);
        axes without coordinates get ``0, 1, 2, ...``.
      description: one sentence for reports.
      xlabel, ylabel: plot labels (default: the first axis name, the name).
      xscale, yscale: matplotlib axis scales (``'linear'``, ``'log'``, ...).

    Example:
      >>> import numpy as np
      >>> t = np.linspace(0.0, 1.0, 5)
      >>> sim = np.exp(-t) + np.array([[0.01], [-0.01]])  # two seeds
      >>> c = Comparison("decay", np.exp(-t), sim, ("time",), coords={"time": t},
      ...                metric="max_abs", tolerance=0.05)
      >>> bool(c.passed), round(c.value, 6)
      (True, 0.0)
    """

    name: str
    theory: np.ndarray
    simulation: np.ndarray
    axes: tuple[str, ...]
    _: dataclasses.KW_ONLY
    tolerance: float
    metric: Metric = "rel_l2"
    coords: Mapping[str, np.ndarray] | None = None
    description: str = ""
    xlabel: str | None = None
    ylabel: str | None = None
    xscale: str = "linear"
    yscale: str = "linear"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"name must be a non-empty string, got {self.name!r}.")
        theory = _as_float_array(self.theory, "theory")
        sim = _as_float_array(self.simulation, "simulation")
        if not np.all(np.isfinite(theory)):
            bad = int(np.sum(~np.isfinite(theory)))
            raise ValueError(
                f"theory must be finite, but {bad} of its {theory.size} entries are NaN or inf "
                f"(comparison {self.name!r}); a theory that diverges is a bug to fix first."
            )
        if isinstance(self.axes, str):
            raise TypeError(
                f"axes must be a tuple of names, got the string {self.axes!r}; "
                f"write ({self.axes!r},) for one axis."
            )
        axes = tuple(self.axes)
        if not all(isinstance(a, str) for a in axes):
            raise TypeError(f"axes must be names (str), got {axes!r}.")
        if len(axes) != theory.ndim:
            raise ValueError(
                f"axes must name every theory axis: got {len(axes)} names {axes!r} for a theory "
                f"of shape {theory.shape} ({theory.ndim} axes)."
            )
        if theory.size == 0:
            raise ValueError(
                f"theory is empty (shape {theory.shape}, comparison {self.name!r}): there is "
                "nothing to compare, and an empty comparison must not PASS; check the sweep "
                "that produced it."
            )
        if sim.shape == theory.shape:
            has_seed = False
        elif sim.ndim == theory.ndim + 1 and sim.shape[1:] == theory.shape:
            has_seed = True
            if sim.shape[0] < 1:
                raise ValueError(
                    f"simulation has an empty seed axis (0 repetitions, shape {sim.shape}); "
                    "run at least one seed."
                )
        else:
            raise ValueError(
                f"simulation must have the theory's shape {theory.shape} or a leading seed axis, "
                f"(n_seeds, *{theory.shape}); got shape {sim.shape}."
            )
        all_axes = ("seed", *axes) if has_seed else axes
        if len(set(all_axes)) != len(all_axes):
            raise ValueError(
                f"axis names must be distinct (the simulation's extra leading axis is 'seed'), "
                f"got {all_axes!r}."
            )
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {self.metric!r}.")
        tol = self.tolerance
        if isinstance(tol, bool) or not isinstance(tol, (int, float, np.floating, np.integer)):
            raise TypeError(f"tolerance must be a number, got {type(tol).__name__}.")
        if math.isnan(float(tol)) or float(tol) < 0:
            raise ValueError(f"tolerance must be a non-negative number, got {tol!r}.")
        n_seeds = sim.shape[0] if has_seed else 1
        if self.metric == "max_z" and n_seeds < 2:
            raise ValueError(
                "metric='max_z' needs a standard error, so simulation needs a leading seed axis "
                f"with at least 2 repetitions; got simulation shape {sim.shape} for theory shape "
                f"{theory.shape}."
            )
        coords = self._checked_coords(self.coords, axes, theory.shape)
        for argname in ("xscale", "yscale"):
            if getattr(self, argname) not in _SCALES:
                raise ValueError(
                    f"{argname} must be one of {_SCALES}, got {getattr(self, argname)!r}."
                )
        if not isinstance(self.description, str):
            raise TypeError(f"description must be a str, got {type(self.description).__name__}.")
        set_ = functools.partial(object.__setattr__, self)
        set_("theory", theory)
        set_("simulation", sim)
        set_("axes", axes)
        set_("coords", coords)
        set_("tolerance", float(tol))
        set_("_has_seed", has_seed)

    @staticmethod
    def _checked_coords(coords, axes, shape) -> dict[str, np.ndarray]:
        if coords is None:
            coords = {}
        if not isinstance(coords, Mapping):
            raise TypeError(f"coords must be a mapping axis name -> values, got {type(coords)}.")
        unknown = sorted(set(coords) - set(axes))
        if unknown:
            raise ValueError(f"coords has entries {unknown} that are not in axes {axes!r}.")
        out = {}
        for axis, size in zip(axes, shape):
            if axis in coords:
                values = np.array(coords[axis])
                if values.shape != (size,):
                    raise ValueError(
                        f"coords[{axis!r}] must be 1-D of length {size} (the theory's size along "
                        f"{axis!r}), got shape {values.shape}."
                    )
            else:
                values = np.arange(size)
            values.setflags(write=False)
            out[axis] = values
        return out

    # ----------------------------------------------------------------- constructors
    @classmethod
    def from_records(
        cls,
        name: str,
        theory,
        simulation,
        field: str | tuple[str, str],
        *,
        seed_axis: str | None = "seed",
        **kwargs,
    ) -> Comparison:
        """Compare variable ``field`` of two :class:`nnlab.Record` s, lined up by axis name.

        The simulation's axes are the theory's (in any order) plus optionally ``seed_axis``
        (independent runs, the mean and standard error are taken over it). Along each axis
        the coordinates must agree, or one side's must all appear among the other's (then
        the comparison is made on those, e.g. a theory on a fine time grid against logged
        steps); otherwise a ``ValueError`` says which axis disagrees. ``field`` is one name
        or ``(theory_field, simulation_field)``. ``seed_axis=None`` compares seed by seed
        when both records carry the same ``'seed'`` axis (a paired comparison, e.g. a network
        against its own linearisation from the same initialisation). Other keywords
        (``tolerance``, ``metric``, labels) go to :class:`Comparison`; ``xlabel`` defaults to
        the first axis name with the time unit, e.g. ``'time [step]'``.

        Example:
          >>> import numpy as np
          >>> from nnlab.record import Record
          >>> t = np.arange(0.0, 5.0)
          >>> theory = Record({"loss": ("time", np.exp(-t))}, coords={"time": t})
          >>> sim = Record({"loss": (("seed", "time"), np.exp(-t) * [[1.0], [1.01]])},
          ...              coords={"time": t})
          >>> c = Comparison.from_records("decay", theory, sim, "loss", tolerance=0.02)
          >>> c.axes, bool(c.passed)
          (('time',), True)
        """
        from ._align import align

        tv, sv, axes, coords = align(theory, simulation, field, seed_axis=seed_axis)
        if "xlabel" not in kwargs and axes and axes[0] == "time":
            unit = theory.meta.get("time_unit") or simulation.meta.get("time_unit")
            if unit and unit != "time":
                kwargs["xlabel"] = f"time [{unit}]"
        return cls(name, tv, sv, axes, coords=coords, **kwargs)

    @classmethod
    def scalar(
        cls,
        name: str,
        theory: float,
        simulation: Any,
        *,
        tolerance: float,
        metric: Metric = "max_abs",
        description: str = "",
        ylabel: str | None = None,
    ) -> Comparison:
        """A scalar claim, e.g. "the fitted slope is -0.5 +- 0.1".

        ``simulation`` is a number or a 1-D array of per-seed values. With the
        default ``metric='max_abs'`` the claim passes when
        ``|mean(simulation) - theory| <= tolerance``, i.e. the measured value
        lies in ``[theory - tolerance, theory + tolerance]``.

        Example:
          >>> c = Comparison.scalar("slope", theory=-0.5, simulation=-0.47, tolerance=0.1)
          >>> bool(c.passed)
          True
        """
        t = np.asarray(theory)
        if t.ndim != 0:
            raise ValueError(f"theory must be a scalar, got shape {t.shape}.")
        s = np.asarray(simulation)
        if s.ndim > 1:
            raise ValueError(
                f"simulation must be a scalar or a 1-D array of seeds, got shape {s.shape}."
            )
        return cls(
            name,
            t,
            s,
            (),
            tolerance=tolerance,
            metric=metric,
            description=description,
            ylabel=ylabel,
        )

    # ---------------------------------------------------------------- statistics
    @property
    def n_seeds(self) -> int:
        """Number of independent repetitions (1 without a seed axis)."""
        return int(self.simulation.shape[0]) if self._has_seed else 1

    @functools.cached_property
    def sim_mean(self) -> np.ndarray:
        """Simulation mean over seeds (the simulation itself without a seed axis)."""
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf seeds: NaN, a failure
            return self.simulation.mean(axis=0) if self._has_seed else self.simulation

    @functools.cached_property
    def sim_se(self) -> np.ndarray | None:
        """Standard error of the mean, ``std(ddof=1)/sqrt(n)``; None with fewer than 2 seeds."""
        if self.n_seeds < 2:
            return None
        with np.errstate(invalid="ignore", over="ignore"):  # inf seeds give NaN: a failure
            return self.simulation.std(axis=0, ddof=1) / np.sqrt(self.n_seeds)

    @functools.cached_property
    def _metrics(self) -> dict[str, float]:
        with np.errstate(invalid="ignore", over="ignore"):
            return self._compute_metrics()

    def _compute_metrics(self) -> dict[str, float]:
        diff = self.sim_mean - self.theory
        abs_diff = np.abs(diff)
        n_points = int(self.theory.size)
        rel_l2 = float(_safe_ratio(np.linalg.norm(diff), np.linalg.norm(self.theory)))
        max_abs = float(np.max(abs_diff)) if n_points else 0.0
        max_rel = float(np.max(_safe_ratio(diff, self.theory))) if n_points else 0.0
        if self.sim_se is None:
            max_z = math.nan
        else:
            max_z = float(np.max(_safe_ratio(diff, self.sim_se))) if n_points else 0.0
        return {
            "rel_l2": rel_l2,
            "max_abs": max_abs,
            "max_rel": max_rel,
            "max_z": max_z,
            "correlation": _pearson(self.sim_mean, self.theory),
            "n_seeds": self.n_seeds,
            "n_points": n_points,
            "n_nonfinite": int(np.sum(~np.isfinite(self.simulation))),
        }

    def metrics(self) -> dict[str, float]:
        """All metrics as a fresh dict of Python numbers (``max_z`` is NaN without seeds)."""
        return dict(self._metrics)

    @property
    def value(self) -> float:
        """The value of the chosen ``metric``."""
        return self._metrics[self.metric]

    @property
    def passed(self) -> bool:
        """``value <= tolerance`` with a finite value and a finite simulation (False when the
        value is NaN or inf or any simulated entry is, e.g. a diverged run)."""
        return self.passes(self.tolerance)

    def passes(self, tolerance: float) -> bool:
        """Whether the chosen metric is within ``tolerance``.

        Written as ``finite(value) and value <= tolerance`` over a simulation without NaN/inf,
        so NaN or inf never passes, whatever the tolerance.
        """
        if isinstance(tolerance, bool) or not isinstance(
            tolerance, int | float | np.floating | np.integer
        ):
            raise TypeError(f"tolerance must be a number, got {type(tolerance).__name__}.")
        if math.isnan(float(tolerance)) or float(tolerance) < 0:
            raise ValueError(f"tolerance must be a non-negative number, got {tolerance!r}.")
        value = self.value
        if self._metrics["n_nonfinite"] or not math.isfinite(value):
            return False
        return bool(value <= tolerance)

    # ------------------------------------------------------------------ views
    def to_dataframe(self):
        """Long-format ``pandas.DataFrame``: one row per point.

        Columns: one per axis (its coordinate values), then ``theory``,
        ``sim_mean`` and ``sim_se`` (NaN with fewer than 2 seeds).
        """
        try:
            import pandas as pd
        except ImportError as err:  # pragma: no cover - pandas is a test extra
            raise ImportError(
                "Comparison.to_dataframe needs pandas; install it with `pip install pandas` "
                "(or `pip install nnlab[test]`)."
            ) from err
        shape = self.theory.shape
        columns: dict[str, np.ndarray] = {}
        grids = np.meshgrid(*(self.coords[a] for a in self.axes), indexing="ij")
        for axis, grid in zip(self.axes, grids):
            columns[axis] = grid.reshape(-1)
        se = self.sim_se if self.sim_se is not None else np.full(shape, np.nan)
        columns["theory"] = self.theory.reshape(-1)
        columns["sim_mean"] = self.sim_mean.reshape(-1)
        columns["sim_se"] = se.reshape(-1)
        return pd.DataFrame(columns)

    def plot(self, ax=None, *, kind: Literal["auto", "lines", "parity"] = "auto"):
        """Draw theory lines over the simulation mean with a +-1 SE band; return the Axes.

        1-D: one theory line. 2-D: one theory line per value of the second
        axis. 0-D: the theory value as a horizontal line and the measured mean.
        Higher dimensions (or ``kind='parity'``): simulation mean against theory.
        Without ``ax`` a new ``matplotlib.figure.Figure`` is made (no pyplot
        state); show it in a notebook with ``ax.figure``.
        """
        from ._plot import plot_comparison

        return plot_comparison(self, ax, kind=kind)

    def summary_line(self) -> str:
        """``name: metric = value (<= tolerance) PASS/FAIL`` in one line."""
        op = "<=" if self.passed else ">"
        verdict = "PASS" if self.passed else "FAIL"
        return (
            f"{self.name}: {self.metric} = {_fmt(self.value)} {op} {_fmt(self.tolerance)} {verdict}"
        )

    def __repr__(self) -> str:
        return (
            f"Comparison({self.name!r}, {self.metric}={_fmt(self.value)}, "
            f"tolerance={_fmt(self.tolerance)}, passed={self.passed}, axes={self.axes!r}, "
            f"shape={self.theory.shape}, n_seeds={self.n_seeds})"
        )

    def _repr_html_(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        color = "#1a7f37" if self.passed else "#cf222e"
        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{html.escape(_fmt(v))}</td></tr>"
            for k, v in self._metrics.items()
        )
        desc = f"<p>{html.escape(self.description)}</p>" if self.description else ""
        return (
            f"<div><b>{html.escape(self.name)}</b> "
            f"<span style='color:{color};font-weight:bold'>{verdict}</span>: "
            f"{self.metric} = {html.escape(_fmt(self.value))} "
            f"(tolerance {html.escape(_fmt(self.tolerance))}); axes {html.escape(str(self.axes))}, "
            f"shape {self.theory.shape}{desc}"
            f"<table><tr><th>metric</th><th>value</th></tr>{rows}</table></div>"
        )


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two arrays (flattened); NaN if undefined."""
    a = a.reshape(-1)
    b = b.reshape(-1)
    if a.size < 2 or not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return math.nan
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))
    if den == 0.0:
        return math.nan
    return float(np.dot(a, b)) / den


def _fmt(x: float) -> str:
    """Compact number formatting for reports (4 significant digits)."""
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return str(int(x))
    x = float(x)
    if math.isnan(x) or math.isinf(x):
        return str(x)
    return f"{x:.4g}"
