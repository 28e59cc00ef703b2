"""Saving and loading records: one ``.npz`` per record, written atomically."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import zipfile

import numpy as np

from ._record import Record, record_type

__all__ = ["CorruptRecordError", "load_record", "read_extra", "save_record"]

TMP_MARK = ".tmp-"
_HEADER = "__record__"


class CorruptRecordError(ValueError):
    """A record file that cannot be read (truncated, not an ``.npz``, fields missing)."""


def _jsonable(value):
    """Metadata as JSON: numbers, strings, lists and dicts as they are; a frozen dataclass as
    a dict of its fields (tagged with its class); anything else as its ``repr``."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        if value and all(isinstance(v, tuple) and len(v) == 2 for v in value):
            if all(isinstance(k, str) for k, _ in value):  # a frozen dict
                return {k: _jsonable(v) for k, v in value}
        return [_jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"__class__": type(value).__qualname__, **fields}
    if isinstance(value, np.generic):
        return value.item()
    return repr(value)


def save_record(record: Record, path: str | os.PathLike, *, extra: dict | None = None) -> None:
    """Write ``record`` to ``path`` (``.npz``), atomically; :func:`load_record` reads it back.

    Variables and coordinates are stored as arrays, dims and metadata as a JSON header
    (a config dataclass in the metadata is stored as a dict of its fields). ``extra`` holds
    strings stored beside it (e.g. a sweep fingerprint), read back by :func:`read_extra`.
    The file is written as ``{path}.tmp-{pid}.npz``, flushed and renamed into place, so an
    interrupted write never leaves a partial file where a finished one is expected.

    Example:
      >>> import numpy as np, tempfile, os
      >>> rec = Record({"loss": ("time", np.ones(3))}, coords={"time": np.arange(3)})
      >>> path = os.path.join(tempfile.mkdtemp(), "run.npz")
      >>> save_record(rec, path)
      >>> load_record(path).dims_of("loss")
      ('time',)
    """
    if not isinstance(record, Record):
        raise TypeError(f"record must be an nnlab.Record, got {type(record).__name__}.")
    plain = Record.to_numpy(record)
    arrays = {}
    for name in plain.names:
        arrays[f"var.{name}"] = plain[name]
    for axis, values in plain.coords.items():
        arrays[f"coord.{axis}"] = np.asarray(values)
    cls = type(record)
    header = {
        "type": f"{cls.__module__}.{cls.__qualname__}",
        "dims": {name: list(plain.dims_of(name)) for name in plain.names},
        "meta": _jsonable(record.meta),
        "extra": dict(extra or {}),
    }
    for k, v in header["extra"].items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"extra must map strings to strings, got {k!r}: {type(v).__name__}.")
    arrays[_HEADER] = np.array(json.dumps(header), dtype=str)
    path = os.fspath(path)
    tmp = f"{path}{TMP_MARK}{os.getpid()}.npz"
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, allow_pickle=False, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def _read(path) -> dict:
    path = os.fspath(path)
    with open(path, "rb") as fh:  # own the handle: np.load leaks it on a bad zip
        try:
            with np.load(fh, allow_pickle=False) as f:
                return {name: f[name] for name in f.files}
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
            raise CorruptRecordError(
                f"{path} is not a readable record file ({type(err).__name__}: {err})."
            ) from err


def _header(path, f: dict) -> dict:
    if _HEADER not in f:
        raise CorruptRecordError(f"{os.fspath(path)} has no record header; it is not a record.")
    try:
        return json.loads(str(f[_HEADER][()]))
    except json.JSONDecodeError as err:
        raise CorruptRecordError(f"{os.fspath(path)} has a corrupt record header.") from err


def load_record(path: str | os.PathLike) -> Record:
    """Read a record written by :func:`save_record`, as the type that was saved.

    A truncated or corrupt file raises :class:`CorruptRecordError` (a ``ValueError``) naming
    the file. Metadata comes back as JSON values (a saved config is a dict of its fields).
    """
    f = _read(path)
    head = _header(path, f)
    variables = {}
    for name, dims in head["dims"].items():
        if f"var.{name}" not in f:
            raise CorruptRecordError(f"{os.fspath(path)} has no {name!r} variable.")
        variables[name] = (tuple(dims), f[f"var.{name}"])
    coords = {k[6:]: v for k, v in f.items() if k.startswith("coord.")}
    meta = head["meta"] if isinstance(head["meta"], dict) else {}
    rec = Record(variables, coords, _hashable(meta))
    cls = record_type(head["type"])
    return rec if cls is Record else cls._from_record(rec)


def _hashable(value):
    if isinstance(value, dict):
        return {k: _hashable(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value


def read_extra(path: str | os.PathLike) -> dict[str, str]:
    """The ``extra`` strings stored by :func:`save_record` (``{}`` when there are none)."""
    return dict(_header(path, _read(path)).get("extra", {}))
