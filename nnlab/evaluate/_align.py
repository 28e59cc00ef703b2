"""Lining up a theory record and a simulation record by axis name (for ``from_records``)."""

from __future__ import annotations

import numpy as np

__all__ = ["align"]

_RTOL = 1e-9  # coordinates are equal when they agree to this relative tolerance


def _field(record, field: str, role: str):
    from nnlab.record import Record

    if not isinstance(record, Record):
        raise TypeError(f"{role} must be an nnlab.Record, got {type(record).__name__}.")
    if field not in record:
        raise ValueError(
            f"{role} ({type(record).__name__}) has no variable {field!r}; it has "
            f"{sorted(record.names)}. Pass field=(theory_field, simulation_field) when the "
            "names differ."
        )
    values = np.asarray(record[field])
    dims = record.dims_of(field)
    coords = {a: np.asarray(record.coord(a)) for a in dims}
    return values, dims, coords


def _match(axis: str, tc: np.ndarray, sc: np.ndarray):
    """Index arrays ``(ti, si)`` selecting the common coordinates of one axis."""
    if tc.shape == sc.shape and np.allclose(tc, sc, rtol=_RTOL, atol=0.0):
        return np.arange(tc.size), np.arange(sc.size)
    tf, sf = tc.astype(float), sc.astype(float)

    def positions(small, large):
        close = np.isclose(small[:, None], large[None, :], rtol=_RTOL, atol=1e-300)
        if not np.all(close.any(axis=1)):
            return None
        return np.argmax(close, axis=1)

    si = positions(tf, sf)
    if si is not None:  # every theory coordinate is a simulation coordinate
        return np.arange(tf.size), si
    ti = positions(sf, tf)
    if ti is not None:  # every simulation coordinate is a theory coordinate
        return ti, np.arange(sf.size)
    raise ValueError(
        f"axis {axis!r}: the theory and simulation coordinates do not line up (theory "
        f"{tf.size} values in [{tf.min():.6g}, {tf.max():.6g}], simulation {sf.size} values in "
        f"[{sf.min():.6g}, {sf.max():.6g}]); neither set contains the other. Evaluate the theory "
        "at the simulation's coordinates (e.g. its logged steps)."
    )


def align(theory, simulation, field, seed_axis: str = "seed"):
    """``(theory_values, simulation_values, axes, coords)`` lined up by axis name.

    The simulation's axes must be the theory's, in any order, plus optionally
    ``seed_axis`` (independent repetitions, moved to the front). Along every shared axis the
    coordinates must agree, or one side's must all be found among the other's (then the
    other side is restricted to them, e.g. a theory on a fine time grid against logged steps).
    """
    t_field, s_field = (field, field) if isinstance(field, str) else tuple(field)
    tv, td, tc = _field(theory, t_field, "theory")
    sv, sd, sc = _field(simulation, s_field, "simulation")
    if seed_axis in td:
        raise ValueError(
            f"the theory's {t_field!r} has a {seed_axis!r} axis; a theory is one prediction. "
            "Average it first or pass a different seed_axis."
        )
    extra = [a for a in sd if a not in td and a != seed_axis]
    missing = [a for a in td if a not in sd]
    if extra or missing:
        raise ValueError(
            f"the axes do not match: theory {t_field!r} has {td}, simulation {s_field!r} has "
            f"{sd}"
            + (f"; the simulation has extra axes {extra}" if extra else "")
            + (f"; the simulation lacks {missing}" if missing else "")
            + ". Select along extra axes with record.sel(axis=value) or .isel(axis=i) first."
        )
    order = ([sd.index(seed_axis)] if seed_axis in sd else []) + [sd.index(a) for a in td]
    sv = np.transpose(sv, order)
    off = 1 if seed_axis in sd else 0
    coords = {}
    for i, axis in enumerate(td):
        ti, si = _match(axis, tc[axis], sc[axis])
        tv = np.take(tv, ti, axis=i)
        sv = np.take(sv, si, axis=i + off)
        coords[axis] = tc[axis][ti]
    return tv, sv, td, coords
