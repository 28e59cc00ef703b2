""":class:`Record`: every nnlab result, as named arrays over named axes with coordinates.

A record holds *variables* (name -> array), the *dims* of each variable (one axis name per
array axis), *coordinates* (axis name -> 1-D values) and *metadata* (units, the config).
Time is always the axis named ``'time'``: the number of optimizer updates for discrete runs
(``meta['time_unit'] == 'step'``), continuous time for flows (``'time'``), or examples per
input dimension for online learning (``'alpha'``). Theory and simulation records that share
axis names are lined up by :meth:`nnlab.evaluate.Comparison.from_records` without naming
axes by hand.

A record is a pytree (variables and coordinates are its leaves; dims and metadata are
static), so a function returning one can be ``jit``-ed. Under ``vmap`` every leaf gains the
mapped axis while the dims do not; :meth:`Record.with_leading_axis` names it afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
from jax.tree_util import DictKey, GetAttrKey

__all__ = ["TIME", "Record"]

TIME = "time"
_RECORD_TYPES: dict[str, type] = {}


def _freeze(value: Any, where: str) -> Any:
    """A hashable copy of a metadata value (dicts -> sorted item tuples, lists -> tuples)."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _freeze(v, where)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v, where) for v in value)
    if isinstance(value, np.ndarray | jax.Array):
        raise TypeError(
            f"Record meta[{where!r}] is an array; metadata holds small static values (strings, "
            "numbers, tuples, frozen configs). Put arrays in the variables or coordinates."
        )
    try:
        hash(value)
    except TypeError as err:
        raise TypeError(
            f"Record meta[{where!r}] = {value!r} is not hashable; metadata must be static "
            "(strings, numbers, tuples, frozen dataclasses)."
        ) from err
    return value


def _dims(value, name: str) -> tuple[str, ...]:
    dims = (value,) if isinstance(value, str) else tuple(value)
    if not all(isinstance(d, str) and d for d in dims):
        raise TypeError(f"Record: the dims of {name!r} must be axis names (str), got {value!r}.")
    if len(set(dims)) != len(dims):
        raise ValueError(f"Record: the dims of {name!r} repeat an axis name: {dims!r}.")
    return dims


class Record:
    """Named arrays over named axes, with coordinates and metadata.

    Args:
      variables: name -> ``(dims, values)``, where ``dims`` names every axis of ``values``
        (a string for one axis). ``None`` values are dropped (a field that was not logged).
      coords: axis name -> 1-D values along that axis (optional per axis; an axis without
        coordinates is indexed ``0, 1, ...``).
      meta: static metadata, e.g. ``{'time_unit': 'step', 'config': cfg}``; values must be
        hashable (strings, numbers, tuples, frozen dataclasses).

    Variables are read as ``rec['loss']`` or ``rec.loss``; ``rec.dims_of('loss')`` gives their
    axis names and ``rec.coords['time']`` (or ``rec.time``) the coordinates.

    Example:
      >>> import numpy as np
      >>> t = np.arange(4.0)
      >>> rec = Record({"loss": ("time", np.exp(-t))}, coords={"time": t},
      ...              meta={"time_unit": "time"})
      >>> rec.dims_of("loss"), rec.time_unit, float(rec.loss[-1].round(4))
      (('time',), 'time', 0.0498)
    """

    def __init__(self, variables: Mapping, coords: Mapping | None = None, meta=None):
        if not isinstance(variables, Mapping):
            raise TypeError(
                f"variables must be a dict name -> (dims, values), got {type(variables).__name__}."
            )
        data, dims = {}, {}
        for name, entry in variables.items():
            if not isinstance(name, str) or not name:
                raise TypeError(f"Record: variable names must be non-empty strings, got {name!r}.")
            if not (isinstance(entry, tuple) and len(entry) == 2):
                raise TypeError(
                    f"Record: variable {name!r} must be a pair (dims, values), got "
                    f"{type(entry).__name__}; write {{{name!r}: (('time',), values)}}."
                )
            d, value = entry
            if value is None:
                continue
            d = _dims(d, name)
            if not hasattr(value, "shape"):
                value = np.asarray(value)
            if len(value.shape) != len(d):
                raise ValueError(
                    f"Record: variable {name!r} has shape {tuple(value.shape)} "
                    f"({len(value.shape)} axes) but dims {d!r} name {len(d)}; name every axis."
                )
            data[name], dims[name] = value, d
        self._data, self._dims = data, dims
        self.coords = {}
        for axis, values in (coords or {}).items():
            if not isinstance(axis, str):
                raise TypeError(f"Record: coordinate names must be strings, got {axis!r}.")
            if not hasattr(values, "shape"):
                values = np.asarray(values)
            if len(values.shape) != 1:
                raise ValueError(
                    f"Record: coords[{axis!r}] must be 1-D, got shape {tuple(values.shape)}."
                )
            self.coords[axis] = values
        self._meta = _freeze(dict(meta or {}), "meta")
        self._check_sizes()

    # ---- the storage protocol (subclasses with their own fields override these) ----------

    def _record_variables(self) -> dict[str, tuple[tuple[str, ...], Any]]:
        """name -> (dims, values) of every variable that is present."""
        return {n: (self._dims[n], v) for n, v in self._data.items()}

    def _record_coords(self) -> dict:
        """axis name -> coordinates, for every axis that has them (``'time'`` included)."""
        return self.coords

    @property
    def meta(self) -> dict:
        return {k: v for k, v in self._meta}

    # ---- reading -------------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._record_variables())

    def __getitem__(self, name: str):
        variables = self._record_variables()
        if name not in variables:
            raise KeyError(
                f"{type(self).__name__} has no variable {name!r}; it has {sorted(variables)}."
            )
        return variables[name][1]

    def __getattr__(self, name: str):
        if name.startswith("_") or name in ("coords",):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__} has no attribute or variable {name!r}."
            ) from None

    def __contains__(self, name: str) -> bool:
        return name in self._record_variables()

    def dims_of(self, name: str) -> tuple[str, ...]:
        """The axis names of variable ``name``."""
        variables = self._record_variables()
        if name not in variables:
            raise KeyError(
                f"{type(self).__name__} has no variable {name!r}; it has {sorted(variables)}."
            )
        return variables[name][0]

    @property
    def sizes(self) -> dict[str, int]:
        """Axis name -> length, over all variables."""
        out = {}
        for dims, value in self._record_variables().values():
            out.update(zip(dims, value.shape, strict=True))
        return out

    @property
    def time(self):
        """The coordinates of the ``'time'`` axis."""
        coords = self._record_coords()
        if TIME not in coords:
            raise ValueError(f"this {type(self).__name__} has no '{TIME}' axis coordinates.")
        return coords[TIME]

    @property
    def time_unit(self) -> str | None:
        return self.meta.get("time_unit")

    def coord(self, axis: str):
        """Coordinates of ``axis`` (``0, 1, ...`` when none were given)."""
        coords = self._record_coords()
        if axis in coords:
            return coords[axis]
        sizes = self.sizes
        if axis not in sizes:
            raise KeyError(f"{type(self).__name__} has no axis {axis!r}; axes: {sorted(sizes)}.")
        return np.arange(sizes[axis])

    def _check_sizes(self) -> None:
        sizes: dict[str, tuple[int, str]] = {}
        for name, (dims, value) in self._record_variables().items():
            for axis, n in zip(dims, value.shape, strict=True):
                if axis in sizes and sizes[axis][0] != n:
                    raise ValueError(
                        f"Record: axis {axis!r} has length {n} in {name!r} but "
                        f"{sizes[axis][0]} in {sizes[axis][1]!r}."
                    )
                sizes[axis] = (n, name)
        for axis, values in self._record_coords().items():
            if axis in sizes and values.shape[0] != sizes[axis][0]:
                raise ValueError(
                    f"Record: coords[{axis!r}] has {values.shape[0]} values but axis {axis!r} "
                    f"has length {sizes[axis][0]} (in {sizes[axis][1]!r})."
                )

    # ---- new records ---------------------------------------------------------------------

    def as_record(self) -> Record:
        """This record as a plain :class:`Record` (the same arrays)."""
        return Record(self._record_variables(), self._record_coords(), self.meta)

    def to_numpy(self) -> Record:
        """A plain :class:`Record` of host NumPy arrays."""
        rec = jax.device_get(self.as_record())
        return jax.tree_util.tree_map(np.asarray, rec)

    def isel(self, **indices: int) -> Record:
        """Take index ``i`` along each named axis (the axis is dropped)."""
        return self._take({a: int(i) for a, i in indices.items()})

    def sel(self, **values) -> Record:
        """Take the position whose coordinate equals ``value`` (to 1e-9 relative) per axis."""
        idx = {}
        for axis, value in values.items():
            c = np.asarray(self.coord(axis), dtype=float)
            hit = np.flatnonzero(np.isclose(c, float(value), rtol=1e-9, atol=0.0))
            if hit.size != 1:
                raise ValueError(
                    f"sel: axis {axis!r} has no single coordinate equal to {value!r} "
                    f"(coordinates {c.tolist()})."
                )
            idx[axis] = int(hit[0])
        return self._take(idx)

    def _take(self, idx: dict[str, int]) -> Record:
        sizes = self.sizes
        for axis, i in idx.items():
            if axis not in sizes:
                raise ValueError(f"axis {axis!r} is not in this record; axes: {sorted(sizes)}.")
            if not -sizes[axis] <= i < sizes[axis]:
                raise IndexError(f"index {i} out of range for axis {axis!r} of {sizes[axis]}.")
        out = {}
        for name, (dims, value) in self._record_variables().items():
            key = tuple(idx.get(a, slice(None)) for a in dims)
            out[name] = (tuple(a for a in dims if a not in idx), value[key])
        coords = {a: c for a, c in self._record_coords().items() if a not in idx}
        return Record(out, coords, self.meta)

    def with_leading_axis(self, axis: str, coords=None) -> Record:
        """Name the leading axis that ``jax.vmap`` added to every variable.

        ``vmap`` of a function returning a record gives each leaf (the coordinates too) an
        extra leading axis; this prepends ``axis`` to every variable's dims, keeps one copy of
        the old coordinates (they do not depend on the mapped input) and sets ``coords`` for
        the new axis.
        """
        out = {n: ((axis, *d), v) for n, (d, v) in self._record_variables().items()}
        old = {a: c[0] if len(c.shape) == 2 else c for a, c in self._record_coords().items()}
        if coords is not None:
            old = {axis: coords, **old}
        return Record(out, old, self.meta)

    def replace(self, **variables) -> Record:
        """A record with some variables replaced (``name=(dims, values)`` or just ``values``)."""
        out = dict(self._record_variables())
        for name, value in variables.items():
            out[name] = value if isinstance(value, tuple) else (out[name][0], value)
        return Record(out, self._record_coords(), self.meta)

    def __repr__(self) -> str:
        rows = [f"{type(self).__name__}("]
        for name, (dims, value) in self._record_variables().items():
            dt = getattr(value, "dtype", "")
            rows.append(f"  {name}: {dict(zip(dims, value.shape, strict=True))} {dt}")
        rows.append(f"  coords: {sorted(self._record_coords())}, meta: {sorted(self.meta)})")
        return "\n".join(rows)

    # ---- pytree --------------------------------------------------------------------------

    def __init_subclass__(cls, pytree: bool = True, **kwargs):
        super().__init_subclass__(**kwargs)
        _RECORD_TYPES[f"{cls.__module__}.{cls.__qualname__}"] = cls
        if pytree:
            _register(cls)

    @classmethod
    def _from_record(cls, rec: Record) -> Record:
        """Rebuild this type from a plain record (used by :func:`load_record`)."""
        obj = object.__new__(cls)
        obj.__dict__.update(rec.__dict__)
        return obj


def _register(cls: type) -> None:
    def flatten_with_keys(rec):
        names = tuple(rec._data)
        axes = tuple(rec.coords)
        children = [(DictKey(n), rec._data[n]) for n in names]
        children += [(GetAttrKey(f"coords.{a}"), rec.coords[a]) for a in axes]
        aux = (names, tuple(rec._dims[n] for n in names), axes, rec._meta)
        return children, aux

    def flatten(rec):
        children, aux = flatten_with_keys(rec)
        return [c for _, c in children], aux

    def unflatten(aux, children):
        names, dims, axes, meta = aux
        obj = object.__new__(cls)
        obj._data = dict(zip(names, children[: len(names)], strict=True))
        obj._dims = dict(zip(names, dims, strict=True))
        obj.coords = dict(zip(axes, children[len(names) :], strict=True))
        obj._meta = meta
        return obj

    jax.tree_util.register_pytree_with_keys(cls, flatten_with_keys, unflatten, flatten)


_register(Record)
_RECORD_TYPES["nnlab.record._record.Record"] = Record


def record_type(name: str) -> type:
    """The Record subclass registered under its qualified ``name`` (for loading files)."""
    return _RECORD_TYPES.get(name, Record)


def stack(records, axis: str, coords=None) -> Record:
    """Stack records of equal layout along a new leading axis named ``axis``."""
    records = [Record.to_numpy(r) for r in records]
    if not records:
        raise ValueError("stack needs at least one record, got none.")
    first = records[0]
    for r in records[1:]:
        if r.names != first.names or any(r.dims_of(n) != first.dims_of(n) for n in r.names):
            raise ValueError("stack: records differ in their variables or dims.")
        for a, c in first.coords.items():
            if a not in r.coords or not np.array_equal(r.coords[a], c):
                raise ValueError(f"stack: records differ in their coordinates of {a!r}.")
    out = {n: ((axis, *first.dims_of(n)), np.stack([r[n] for r in records])) for n in first.names}
    new = {} if coords is None else {axis: np.asarray(coords)}
    return Record(out, {**new, **first.coords}, first.meta)
