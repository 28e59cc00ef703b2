"""A power law checked twice: the curve against ``c x^p``, the fitted exponent against ``p``."""

from __future__ import annotations

import numpy as np

from nnlab import _checks
from nnlab.record import Record

from ._comparison import Comparison, Metric
from ._curves import fixed_exponent_fit
from ._scaling import ScalingFit, scaling_fit

__all__ = ["power_law_comparisons"]


def power_law_comparisons(
    name: str,
    record,
    field: str,
    *,
    exponent: float,
    tolerances: tuple[float, float],
    axis: str = "width",
    metric: Metric = "rel_l2",
    exponent_name: str | None = None,
    seed_axis: str = "seed",
    description: str = "",
    **plot,
) -> tuple[ScalingFit, list[Comparison]]:
    r"""Check ``record[field] ∝ x^p`` over the axis ``axis`` (coordinates ``x``): two comparisons.

    Finite-width theory often fixes an exponent but not the prefactor (fluctuations of order
    :math:`N^{-1/2}`). With ``m(x)`` the field (its mean over ``seed_axis`` when it has one):

    1. ``name``: the curve against :math:`c\,x^p`, ``c`` fitted with the exponent held at ``p``
       (:func:`fixed_exponent_fit`, the geometric mean of :math:`m/x^p`), by
       :meth:`Comparison.from_records` (seeds kept for the standard error) with ``metric`` and
       tolerance ``tolerances[0]``;
    2. ``exponent_name`` (default ``f"{field}_exponent"``): the free log-log slope
       (:func:`scaling_fit`, ordinary least squares) against ``p``, ``max_abs`` within
       ``tolerances[1]``.

    Args:
      name: name of the curve comparison.
      record: a :class:`nnlab.Record` whose ``field`` has the axis ``axis`` (and maybe
        ``seed_axis``), with positive values and coordinates.
      field: the field to check.
      exponent: the theory's exponent ``p``.
      tolerances: ``(curve, exponent)`` tolerances.
      axis: the axis of the law's variable.
      metric: metric of the curve comparison.
      exponent_name: name of the exponent comparison.
      seed_axis: axis averaged before fitting (absent: no average).
      description: description of the curve comparison.
      **plot: ``xlabel``, ``ylabel``, ``xscale``, ``yscale`` for the curve comparison.

    Returns:
      ``(fit, [curve, exponent])``: the :class:`ScalingFit` (exponent, confidence interval,
      standard error) and the two comparisons.

    Example:
      >>> from nnlab.record import Record
      >>> n = np.array([64.0, 256.0, 1024.0])
      >>> rec = Record({"err": ("width", 3.0 / np.sqrt(n))}, {"width": n})
      >>> fit, (curve, slope) = power_law_comparisons(
      ...     "err_vs_width", rec, "err", exponent=-0.5, tolerances=(0.05, 0.05))
      >>> round(fit.exponent, 6), bool(curve.passed and slope.passed)
      (-0.5, True)
    """
    p = _checks.real(exponent, "exponent")
    if not (isinstance(tolerances, (tuple, list)) and len(tolerances) == 2):
        raise ValueError(
            f"tolerances must be a (curve, exponent) pair of numbers, got {tolerances!r}."
        )
    dims = record.dims_of(field)
    if axis not in dims:
        raise ValueError(
            f"record[{field!r}] has axes {dims}, not {axis!r}: pass axis= the law's variable."
        )
    values = np.asarray(record[field], np.float64)
    if seed_axis in dims:
        values = values.mean(axis=dims.index(seed_axis))
    if values.ndim != 1:
        raise ValueError(
            f"record[{field!r}] must have only the axes {axis!r} and {seed_axis!r}, got {dims}."
        )
    x = np.asarray(record.coord(axis), np.float64)
    law = Record({field: (axis, fixed_exponent_fit(x, values, p)[1])}, {axis: x})
    fit = scaling_fit(x, values)
    slope = (
        f"log-log slope of {field} vs {axis} (95% CI [{fit.ci_low:.3f}, {fit.ci_high:.3f}], "
        f"stderr {fit.stderr:.3f}); theory {p:g}"
    )
    return fit, [
        Comparison.from_records(
            name,
            law,
            record,
            field,
            metric=metric,
            tolerance=tolerances[0],
            seed_axis=seed_axis,
            description=description,
            **plot,
        ),
        Comparison.scalar(
            exponent_name or f"{field}_exponent",
            theory=p,
            simulation=fit.exponent,
            tolerance=tolerances[1],
            description=slope,
        ),
    ]
