r"""Deep-linear results as :class:`nnlab.Record` s: mode trajectories and learning times.

The theory functions :func:`mode_trajectory` and :func:`learning_times` wrap
:func:`~nnlab.deeplinear.mode_dynamics` and :func:`~nnlab.deeplinear.learning_time` (Saxe,
McClelland & Ganguli 2014, arXiv:1312.6120) and return the same record types as the
simulator :func:`~nnlab.deeplinear.simulate`, so theory and simulation line up by axis name
in :meth:`nnlab.evaluate.Comparison.from_records`.
"""

from __future__ import annotations

import warnings

import jax.numpy as jnp
import numpy as np

from nnlab import _checks
from nnlab.evaluate import first_crossing
from nnlab.record import Record

from ._dynamics import learning_time, mode_dynamics

_TIME_UNITS = ("time", "step")


class ModeTrajectory(Record):
    r"""Mode strengths :math:`u_\alpha(t) = u_\alpha^\top W_D\cdots W_1 v_\alpha` over time.

    Variables (``*lead`` are the member axes of a simulation, e.g. ``('seed',)`` or
    ``('seed', 'lr')``; a theory has none):

    * ``mode_strength``: ``(*lead, 'time', 'mode')``;
    * ``s``: ``('mode',)``, the strengths :math:`s_\alpha` of the modes projected on;
    * simulation only: ``loss`` ``(*lead, 'time')`` (the training loss
      :math:`\frac1{2P}\sum_\mu\lVert y_\mu - f(x_\mu)\rVert^2`), ``weight_product``
      ``(*lead, 'out', 'in')`` (the final :math:`W_D\cdots W_1`) and ``diverged``
      ``(*lead,)``.

    Coordinates: ``time`` (steps for gradient descent, ``meta['time_unit'] == 'step'``, or
    continuous time, ``'time'``), ``mode`` (the index :math:`\alpha = 0, 1, \dots`, modes
    sorted by decreasing :math:`s`) and the member axes. :func:`crossing_times` reads
    learning times off it.
    """


class LearningTimes(Record):
    r"""Time for each mode to reach a given strength: ``learning_time`` ``(*lead, 'mode')``.

    In units of ``meta['time_unit']`` (steps or continuous time), with ``mode`` coordinates
    the mode indices.
    """


def _time_unit(time_unit: str) -> str:
    return _checks.choice(time_unit, "time_unit", _TIME_UNITS)


def _modes_1d(s) -> jnp.ndarray:
    s = jnp.asarray(s)
    if s.ndim != 1:
        raise ValueError(f"s must be 1-D (one strength per mode), got shape {s.shape}.")
    return s


def mode_trajectory(
    s, u0, time, *, depth: int = 2, tau=1.0, time_unit: str = "time"
) -> ModeTrajectory:
    r"""The exact balanced solution :math:`u_\alpha(t)` of every mode, as a record.

    :math:`\tau\,du_\alpha/dt = D\,u_\alpha^{2-2/D}(s_\alpha - u_\alpha)`,
    :math:`u_\alpha(0) = u_0` (Saxe, McClelland & Ganguli 2014, arXiv:1312.6120; see
    :func:`~nnlab.deeplinear.mode_dynamics`). For full-batch gradient descent at learning
    rate :math:`\eta` on :math:`L = \frac1{2P}\sum_\mu\lVert y_\mu - W_D\cdots W_1x_\mu\rVert^2`
    (nnlab.train's ``'mse'`` loss with ``'mean'`` normalisation, whitened inputs) pass
    ``tau = 1/lr``, the logged steps as ``time`` and ``time_unit='step'``.

    Args:
      s: mode strengths :math:`s_\alpha > 0`, shape ``(r,)``.
      u0: initial strengths :math:`u_0 > 0`, a scalar or ``(r,)``.
      time: times :math:`\ge 0`, shape ``(T,)``.
      depth: number of weight matrices :math:`D \ge 1`.
      tau: time constant :math:`\tau > 0`.
      time_unit: ``'time'`` (continuous time) or ``'step'``.

    Returns:
      :class:`ModeTrajectory` with ``mode_strength`` ``('time', 'mode')`` and ``s``.

    Example:
      >>> import jax.numpy as jnp
      >>> rec = mode_trajectory(jnp.array([2.0, 1.0]), 1e-3, jnp.arange(0.0, 60.0, 10.0))
      >>> rec.dims_of("mode_strength"), rec.sizes["time"]
      (('time', 'mode'), 6)
      >>> [round(float(v), 3) for v in rec.mode_strength[-1]]
      [2.0, 1.0]
    """
    time_unit = _time_unit(time_unit)
    s = _modes_1d(s)
    time = jnp.asarray(time)
    if time.ndim != 1:
        raise ValueError(f"time must be 1-D, got shape {time.shape}.")
    u = mode_dynamics(s[None, :], u0, time[:, None], tau=tau, depth=depth)
    return ModeTrajectory(
        {"mode_strength": (("time", "mode"), u), "s": ("mode", s)},
        coords={"time": time, "mode": jnp.arange(s.shape[0])},
        meta={"time_unit": time_unit},
    )


def learning_times(
    s, u0, u_f, *, depth: int = 2, tau=1.0, time_unit: str = "time"
) -> LearningTimes:
    r"""Time for each balanced mode to go from :math:`u_0` to :math:`u_f`, as a record.

    :math:`t_\alpha = \tau\int_{u_0}^{u_f} du/(D\,u^{2-2/D}(s_\alpha - u))` (Saxe et al.
    2014, arXiv:1312.6120, eq. 8 for :math:`D = 2`; see
    :func:`~nnlab.deeplinear.learning_time`). With ``tau = 1/lr`` and ``time_unit='step'``
    it is the step count at which gradient descent crosses :math:`u_f`, the theory of
    :func:`crossing_times`.

    Args:
      s: mode strengths, shape ``(r,)``.
      u0: initial strengths (scalar or ``(r,)``).
      u_f: target strengths between ``u0`` and ``s`` (scalar or ``(r,)``).
      depth, tau, time_unit: as in :func:`mode_trajectory`.

    Returns:
      :class:`LearningTimes` with ``learning_time`` ``('mode',)``.

    Example:
      >>> import math, jax.numpy as jnp
      >>> rec = learning_times(jnp.array([1.0]), 1e-3, 0.5)
      >>> math.isclose(float(rec.learning_time[0]), 0.5 * math.log(999.0), rel_tol=1e-5)
      True
    """
    time_unit = _time_unit(time_unit)
    s = _modes_1d(s)
    t = learning_time(s, u0, u_f, tau=tau, depth=depth)
    return LearningTimes(
        {"learning_time": ("mode", t)},
        coords={"mode": jnp.arange(s.shape[0])},
        meta={"time_unit": time_unit},
    )


def crossing_times(trajectory: Record, level) -> LearningTimes:
    r"""The first time each mode strength of ``trajectory`` reaches ``level``.

    Read off the logged curve ``mode_strength`` by linear interpolation between the two
    logged times around the crossing (:func:`nnlab.evaluate.first_crossing`); NaN where a
    mode never gets there (or starts above), so a run that learns too slowly fails its
    comparison. The measured counterpart of :func:`learning_times`.

    Args:
      trajectory: a :class:`ModeTrajectory` (or any record with ``mode_strength`` over
        ``'time'`` and ``'mode'``, e.g. one selected with ``.sel(lr=...)``).
      level: the strength to reach, per mode ``(r,)`` or one number.

    Returns:
      :class:`LearningTimes` with ``learning_time`` ``(*lead, 'mode')`` in the trajectory's
      time unit.

    Example:
      >>> import jax.numpy as jnp
      >>> rec = mode_trajectory(jnp.array([1.0]), 1e-3, jnp.linspace(0.0, 8.0, 801))
      >>> t = crossing_times(rec, 0.5).learning_time[0]
      >>> bool(abs(t - learning_times(jnp.array([1.0]), 1e-3, 0.5).learning_time[0]) < 1e-3)
      True
    """
    if not isinstance(trajectory, Record) or "mode_strength" not in trajectory:
        raise TypeError(
            "trajectory must be a record with a 'mode_strength' variable (a ModeTrajectory "
            f"from simulate or mode_trajectory), got {type(trajectory).__name__}."
        )
    dims = trajectory.dims_of("mode_strength")
    values = np.asarray(trajectory["mode_strength"])
    time = np.asarray(trajectory.time)
    t = first_crossing(time, values, np.asarray(level), axis=dims.index("time"))
    kept = tuple(a for a in dims if a != "time")
    coords = {a: np.asarray(trajectory.coord(a)) for a in kept}
    return LearningTimes({"learning_time": (kept, t)}, coords, trajectory.meta)


def stage_order_violations(times: Record, s, *, rtol: float = 1e-3) -> int:
    r"""How many mode pairs are learnt out of the order of their strengths.

    Stage-like learning (Saxe et al. 2014, arXiv:1312.6120): a mode with a larger
    :math:`s_\alpha` reaches its target strictly earlier. Counts the pairs
    :math:`(\alpha, \beta)` with :math:`s_\alpha > (1 + \mathrm{rtol})\, s_\beta` whose
    learning times (averaged over every axis but ``'mode'``, NaN-aware) are not
    :math:`t_\alpha < t_\beta`; ``rtol`` keeps degenerate modes (equal :math:`s`) out. A mode
    that never got there (NaN) counts as out of order.

    Args:
      times: a :class:`LearningTimes` (e.g. from :func:`crossing_times`).
      s: the mode strengths, shape ``(r,)``.

    Example:
      >>> import jax.numpy as jnp
      >>> stage_order_violations(learning_times(jnp.array([2.0, 1.0]), 1e-3, 0.4), [2.0, 1.0])
      0
    """
    dims = times.dims_of("learning_time")
    t = np.asarray(times["learning_time"], dtype=float)
    other = tuple(i for i, a in enumerate(dims) if a != "mode")
    if other:
        with warnings.catch_warnings():  # an all-NaN mode stays NaN (and counts as late)
            warnings.simplefilter("ignore", RuntimeWarning)
            t = np.nanmean(t, axis=other)
    s = np.asarray(s, dtype=float)
    if s.shape != t.shape:
        raise ValueError(f"s must have one entry per mode, shape {t.shape}, got {s.shape}.")
    stronger = s[:, None] > s[None, :] * (1.0 + rtol)
    return int(np.sum(stronger & ~(t[:, None] < t[None, :])))
