"""Power-law fits of an error against a size (width, samples, step size, ...)."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np


class ScalingFit(NamedTuple):
    """Result of :func:`scaling_fit`: ``error ~= prefactor * x ** exponent``.

    Attributes:
      exponent: fitted log-log slope.
      prefactor: ``exp(intercept)`` of the log-log fit.
      ci_low, ci_high: two-sided confidence interval for the exponent.
      stderr: standard error of the exponent.
      r2: coefficient of determination of the log-log fit (NaN if the errors
        are all equal).
    """

    exponent: float
    prefactor: float
    ci_low: float
    ci_high: float
    stderr: float
    r2: float

    def predict(self, xs: Any) -> np.ndarray:
        """The fitted power law ``prefactor * xs ** exponent``."""
        return self.prefactor * np.asarray(xs, dtype=np.float64) ** self.exponent

    def contains(self, exponent: float) -> bool:
        """Whether ``exponent`` lies in the confidence interval."""
        return bool(self.ci_low <= exponent <= self.ci_high)


def _positive_1d(value: Any, argname: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{argname} must hold real numbers, got dtype {arr.dtype}.")
    arr = arr.astype(np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{argname} must be 1-D, got shape {arr.shape}.")
    bad = ~(np.isfinite(arr) & (arr > 0))
    if np.any(bad):
        raise ValueError(
            f"{argname} must be finite and positive for a log-log fit; got {arr[bad][:5].tolist()} "
            f"at positions {np.flatnonzero(bad)[:5].tolist()}."
        )
    return arr


def scaling_fit(xs: Any, errors: Any, *, confidence: float = 0.95) -> ScalingFit:
    r"""Fit ``errors ~= prefactor * xs ** exponent`` by least squares in log-log space.

    With :math:`u_i = \log x_i`, :math:`v_i = \log e_i`, ordinary least squares
    gives the slope :math:`b = S_{uv}/S_{uu}`, intercept :math:`a = \bar v - b\bar u`,
    residual variance :math:`s^2 = \sum_i (v_i - a - b u_i)^2/(n-2)` and
    :math:`\mathrm{SE}(b) = s/\sqrt{S_{uu}}`. The interval is
    :math:`b \pm t_{(1+c)/2,\,n-2}\,\mathrm{SE}(b)` with Student's t quantile,
    exact when the log-errors scatter as independent Gaussians around the line.

    This is the convergence-order test of numerical analysis, used here to
    check e.g. that the empirical NTK approaches the analytic one as
    ``width ** -0.5`` (Jacot, Gabriel & Hongler 2018, arXiv:1806.07572).

    Args:
      xs: 1-D positive sizes (at least 3, not all equal).
      errors: 1-D positive errors, same length.
      confidence: level of the two-sided interval, in (0, 1).

    Returns:
      A :class:`ScalingFit`.

    Example:
      >>> fit = scaling_fit([1, 2, 4, 8], [1.0, 0.5, 0.25, 0.125])
      >>> round(fit.exponent, 6), round(fit.prefactor, 6)
      (-1.0, 1.0)
    """
    from scipy import stats

    x = _positive_1d(xs, "xs")
    e = _positive_1d(errors, "errors")
    if x.shape != e.shape:
        raise ValueError(
            f"xs and errors must have the same length, got {x.size} and {e.size} values."
        )
    n = x.size
    if n < 3:
        raise ValueError(
            f"scaling_fit needs at least 3 points to estimate a slope and its error, got {n}."
        )
    if isinstance(confidence, bool) or not isinstance(
        confidence, int | float | np.floating | np.integer
    ):
        raise TypeError(
            f"confidence must be a number in (0, 1), e.g. 0.95, got {type(confidence).__name__} "
            f"{confidence!r}."
        )
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}.")
    u = np.log(x)
    v = np.log(e)
    du = u - u.mean()
    dv = v - v.mean()
    suu = float(du @ du)
    if suu == 0.0:
        raise ValueError(f"xs must contain at least two distinct values, got {x.tolist()}.")
    slope = float(du @ dv) / suu
    intercept = float(v.mean()) - slope * float(u.mean())
    resid = v - intercept - slope * u
    ssr = float(resid @ resid)
    sst = float(dv @ dv)
    stderr = math.sqrt(ssr / (n - 2) / suu)
    half = float(stats.t.ppf(0.5 * (1.0 + confidence), n - 2)) * stderr
    r2 = 1.0 - ssr / sst if sst > 0.0 else math.nan
    return ScalingFit(
        exponent=slope,
        prefactor=math.exp(intercept),
        ci_low=slope - half,
        ci_high=slope + half,
        stderr=stderr,
        r2=r2,
    )
