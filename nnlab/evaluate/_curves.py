"""Reading numbers off curves: first crossings, fixed-exponent laws and threshold checks."""

from __future__ import annotations

import numpy as np

from nnlab import _checks

__all__ = ["first_crossing", "fixed_exponent_fit", "threshold_crossing"]


def first_crossing(time, values, level, *, axis: int = -1) -> np.ndarray:
    r"""The first time each curve in ``values`` reaches ``level`` from below.

    Along ``axis`` (the time axis, with coordinates ``time``), find the first index ``i > 0``
    with ``values[i] >= level`` and interpolate linearly between ``time[i-1]`` and
    ``time[i]``: :math:`t^* = t_{i-1} + (\ell - v_{i-1}) (t_i - t_{i-1}) / (v_i - v_{i-1})`.
    A curve that starts at or above ``level`` or never reaches it gives NaN, so a run that
    learns too slowly fails its comparison instead of passing silently. ``level``
    broadcasts against ``values`` with the time axis removed.

    Example:
      >>> t = np.arange(5.0)
      >>> float(first_crossing(t, t**2, 2.0))  # between t=1 (1) and t=2 (4)
      1.3333333333333333
    """
    t = np.asarray(time, dtype=float)
    v = np.moveaxis(np.asarray(values, dtype=float), axis, -1)
    if t.ndim != 1 or t.shape[0] != v.shape[-1]:
        raise ValueError(
            f"time must be 1-D with one entry per point of values along axis {axis}; got "
            f"time {t.shape} and values {np.shape(values)}."
        )
    lvl = np.asarray(level, dtype=float)[..., None]
    above = v >= lvl
    first = np.argmax(above, axis=-1)
    crossed = above.any(axis=-1) & (first > 0)
    i1 = np.maximum(first, 1)
    after = np.take_along_axis(v, i1[..., None], axis=-1)[..., 0]
    before = np.take_along_axis(v, (i1 - 1)[..., None], axis=-1)[..., 0]
    lvl = lvl[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(after > before, (lvl - before) / (after - before), 0.0)
    out = t[i1 - 1] + frac * (t[i1] - t[i1 - 1])
    return np.where(crossed, out, np.nan)


def threshold_crossing(coords, values, level) -> float:
    r"""Where a monotone-in-trend 1-D curve first exceeds ``level``, by linear interpolation.

    For a sweep over a control parameter (a learning rate, a width), the critical value is
    the midpoint estimate between the last coordinate below ``level`` and the first at or
    above it, interpolated linearly. NaN when the curve never crosses.
    """
    c = np.asarray(coords, dtype=float)
    v = np.asarray(values, dtype=float)
    if c.ndim != 1 or v.shape != c.shape:
        raise ValueError(f"coords and values must be 1-D of one length, got {c.shape}, {v.shape}.")
    return float(first_crossing(c, v, level))


def fixed_exponent_fit(xs, values, exponent: float) -> tuple[float, np.ndarray]:
    r"""Fit ``values ≈ c · xs**exponent`` with the exponent fixed; returns ``(c, c·xs**p)``.

    The least-squares fit in log space, :math:`\log c = \mathrm{mean}(\log v_i - p \log x_i)`
    (the geometric mean of ``values / xs**p``): the estimator for laws such as the
    :math:`c/\sqrt N` finite-width fluctuations whose exponent theory fixes (test the
    exponent itself with :func:`nnlab.evaluate.scaling_fit`). Values must be positive.

    Example:
      >>> c, fit = fixed_exponent_fit([100, 400], [0.2, 0.1], -0.5)
      >>> round(c, 6)
      2.0
    """
    x = np.asarray(xs, dtype=float)
    v = np.asarray(values, dtype=float)
    p = _checks.real(exponent, "exponent")
    if x.ndim != 1 or v.shape != x.shape or x.size == 0:
        raise ValueError(f"xs and values must be 1-D of one length, got {x.shape}, {v.shape}.")
    if not (np.all(x > 0) and np.all(v > 0) and np.all(np.isfinite(v))):
        raise ValueError(
            "fixed_exponent_fit needs positive xs and positive, finite values (a log-space "
            f"fit); got xs={x.tolist()}, values={v.tolist()}."
        )
    c = float(np.exp(np.mean(np.log(v) - p * np.log(x))))
    return c, c * x**p
