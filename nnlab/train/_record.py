"""The training record: arrays indexed by member axes, then by logged step."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import zipfile
from typing import Any

import jax
import numpy as np

from nnlab._pytree import register_dataclass


@dataclasses.dataclass(frozen=True)
class TrainRecord:
    """What a training run logged, as arrays with named leading axes.

    Axis order: the member axes named in ``axes`` (e.g. ``('seed', 'lr')`` for an ensemble,
    ``('width', 'seed', 'lr')`` for a width sweep, ``()`` for a single run), then the logged
    ``step`` axis, then each quantity's own axes.

    Attributes:
      step: ``(T,)`` number of optimizer updates applied before each log (``0, log_every,
        ..., steps``).
      train_loss: ``(*members, T)`` loss on the full training set.
      test_loss: ``(*members, T)`` loss on the test set, or ``None`` without test data.
      probe_outputs: ``(*members, T, n_probe, *out)`` outputs on the probe inputs, or ``None``.
      observables: name -> ``(*members, T, ...)``.
      diverged: ``(*members,)`` bool: the member hit a non-finite (or over-threshold) loss
        or update and was frozen; its logs after that step are NaN.
      diverged_step: ``(*members,)`` the step at which it diverged, ``-1`` if it did not.
      params: final parameters (leaves ``(*members, ...)``), ``None`` in sweeps and on disk.
      axes: names of the member axes.
      coords: axis name -> coordinate values (e.g. the learning rates).
    """

    step: Any
    train_loss: Any
    test_loss: Any
    probe_outputs: Any
    observables: dict
    diverged: Any
    diverged_step: Any
    params: Any = None
    axes: tuple[str, ...] = ()
    coords: dict = dataclasses.field(default_factory=dict)

    def to_numpy(self) -> TrainRecord:
        """The same record with host NumPy arrays (for :class:`nnlab.evaluate.Comparison`)."""
        return jax.tree_util.tree_map(np.asarray, jax.device_get(self))

    def replace(self, **kwargs) -> TrainRecord:
        return dataclasses.replace(self, **kwargs)


register_dataclass(
    TrainRecord,
    data_fields=[
        "step",
        "train_loss",
        "test_loss",
        "probe_outputs",
        "observables",
        "diverged",
        "diverged_step",
        "params",
        "coords",
    ],
    meta_fields=["axes"],
)

_ARRAY_FIELDS = (
    "step",
    "train_loss",
    "test_loss",
    "probe_outputs",
    "diverged",
    "diverged_step",
)


class CorruptRecordError(ValueError):
    """A record file that cannot be read (truncated, not an ``.npz``, fields missing)."""


def save_record(
    record: TrainRecord, path: str | os.PathLike, *, fingerprint: str | None = None
) -> None:
    """Write ``record`` (without ``params``) to ``path`` as ``.npz``, atomically.

    The file is written next to its destination as ``{path}.tmp-{pid}.npz``, flushed to disk
    and renamed into place, so an interrupted write never leaves a partial file where a
    finished one is expected; if the write fails the temporary file is removed.
    ``fingerprint`` (a JSON string, see :mod:`nnlab.train._fingerprint`) is stored with it
    and read back by :func:`read_fingerprint`.
    """
    record = record.to_numpy()
    arrays = {"axes": np.array(record.axes, dtype=str)}
    for name in _ARRAY_FIELDS:
        value = getattr(record, name)
        if value is not None:
            arrays[name] = value
    for name, value in record.observables.items():
        arrays[f"obs.{name}"] = value
    for name, value in record.coords.items():
        arrays[f"coord.{name}"] = np.asarray(value)
    if fingerprint is not None:
        arrays["fingerprint"] = np.array(fingerprint, dtype=str)
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


TMP_MARK = ".tmp-"


def _read(path) -> dict:
    """All arrays of the ``.npz`` at ``path``; ``CorruptRecordError`` if it cannot be read."""
    path = os.fspath(path)
    with open(path, "rb") as fh:  # own the handle: np.load leaks it on a bad zip
        try:
            with np.load(fh, allow_pickle=False) as f:
                return {name: f[name] for name in f.files}
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
            raise CorruptRecordError(
                f"{path} is not a readable record file ({type(err).__name__}: {err})."
            ) from err


def load_record(path: str | os.PathLike) -> TrainRecord:
    """Read a record written by :func:`save_record` (``params`` is ``None``).

    A truncated or corrupt file raises ``ValueError`` naming the file.
    """
    f = _read(path)
    for name in ("axes", "step", "train_loss", "diverged", "diverged_step"):
        if name not in f:
            raise CorruptRecordError(f"{os.fspath(path)} has no {name!r} field.")
    fields = {name: f.get(name) for name in _ARRAY_FIELDS}
    obs = {k[4:]: v for k, v in f.items() if k.startswith("obs.")}
    coords = {k[6:]: v for k, v in f.items() if k.startswith("coord.")}
    axes = tuple(str(a) for a in f["axes"])
    return TrainRecord(**fields, observables=obs, params=None, axes=axes, coords=coords)


def read_fingerprint(path: str | os.PathLike) -> str | None:
    """The fingerprint stored by :func:`save_record`, or ``None`` for a file without one."""
    f = _read(path)
    return str(f["fingerprint"][()]) if "fingerprint" in f else None


def stack_records(records, axis: str, coords) -> TrainRecord:
    """Stack records of equal layout along a new leading member axis named ``axis``."""
    records = [r.to_numpy().replace(params=None) for r in records]
    if not records:
        raise ValueError("stack_records needs at least one record, got none.")
    first = records[0]
    for r in records[1:]:
        if r.axes != first.axes or not np.array_equal(r.step, first.step):
            raise ValueError(
                f"cannot stack records with different layouts: axes {r.axes} vs {first.axes}, "
                f"steps {r.step.shape} vs {first.step.shape}"
            )

    def stack(*xs):
        return None if xs[0] is None else np.stack(xs)

    out = {name: stack(*(getattr(r, name) for r in records)) for name in _ARRAY_FIELDS}
    out["step"] = first.step
    obs = {k: np.stack([r.observables[k] for r in records]) for k in first.observables}
    return TrainRecord(
        **out,
        observables=obs,
        params=None,
        axes=(axis, *first.axes),
        coords={axis: np.asarray(coords), **first.coords},
    )
