"""The training record: arrays indexed by member axes, then by logged step."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import numpy as np

from nnlab._pytree import register_dataclass
from nnlab.record import _io
from nnlab.record._io import TMP_MARK as TMP_MARK
from nnlab.record._io import CorruptRecordError as CorruptRecordError
from nnlab.record._record import TIME, Record


@dataclasses.dataclass(frozen=True)
class TrainRecord(Record, pytree=False):
    """What a training run logged, as arrays with named leading axes: an :class:`nnlab.Record`.

    As a record its variables are ``train_loss``, ``test_loss``, ``probe_outputs`` (dims
    ``(*axes, 'time', 'probe', 'out0', ...)``), ``obs.<name>`` for each observable,
    ``diverged`` and ``diverged_step``; the ``'time'`` axis has the coordinates ``step``
    (``meta['time_unit'] == 'step'``), and ``coords`` gives the member axes' coordinates.

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

    # ---- the Record protocol -------------------------------------------------------------

    def _record_variables(self) -> dict:
        axes = tuple(self.axes)
        timed = (*axes, TIME)
        out = {}

        def put(name, value, extra=()):
            if value is not None:
                rest = len(np.shape(value)) - len(timed) - len(extra)
                out[name] = ((*timed, *extra, *(f"{name}_{i}" for i in range(rest))), value)

        put("train_loss", self.train_loss)
        put("test_loss", self.test_loss)
        if self.probe_outputs is not None:
            rest = len(np.shape(self.probe_outputs)) - len(timed) - 1
            out["probe_outputs"] = (
                (*timed, "probe", *(f"out{i}" for i in range(rest))),
                self.probe_outputs,
            )
        for name, value in self.observables.items():
            put(f"obs.{name}", value)
        out["diverged"] = (axes, self.diverged)
        out["diverged_step"] = (axes, self.diverged_step)
        return out

    def _record_coords(self) -> dict:
        return {**self.coords, TIME: np.asarray(self.step)}

    @property
    def meta(self) -> dict:
        return {"time_unit": "step"}

    @classmethod
    def _from_record(cls, rec: Record) -> TrainRecord:
        get = lambda n: rec[n] if n in rec else None  # noqa: E731
        axes = rec.dims_of("diverged")
        coords = dict(rec.coords)
        step = coords.pop(TIME)
        obs = {n[4:]: rec[n] for n in rec.names if n.startswith("obs.")}
        return cls(
            step=step,
            train_loss=rec["train_loss"],
            test_loss=get("test_loss"),
            probe_outputs=get("probe_outputs"),
            observables=obs,
            diverged=rec["diverged"],
            diverged_step=rec["diverged_step"],
            params=None,
            axes=tuple(axes),
            coords=coords,
        )

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


def save_record(
    record: TrainRecord, path: str | os.PathLike, *, fingerprint: str | None = None
) -> None:
    """Write ``record`` (without ``params``) to ``path``: :func:`nnlab.save_record` with the
    sweep ``fingerprint`` (a JSON string, see :mod:`nnlab.train._fingerprint`) stored beside
    it and read back by :func:`read_fingerprint`. Atomic: see :func:`nnlab.save_record`."""
    if not isinstance(record, TrainRecord):
        raise TypeError(f"record must be a TrainRecord, got {type(record).__name__}.")
    extra = {} if fingerprint is None else {"fingerprint": fingerprint}
    _io.save_record(record, path, extra=extra)


def load_record(path: str | os.PathLike) -> TrainRecord:
    """Read a record written by :func:`save_record` (``params`` is ``None``).

    A truncated or corrupt file raises ``ValueError`` naming the file.
    """
    rec = _io.load_record(path)
    if not isinstance(rec, TrainRecord):
        raise CorruptRecordError(
            f"{os.fspath(path)} holds a {type(rec).__name__}, not a training record."
        )
    return rec


def read_fingerprint(path: str | os.PathLike) -> str | None:
    """The fingerprint stored by :func:`save_record`, or ``None`` for a file without one."""
    return _io.read_extra(path).get("fingerprint")


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
