"""The training record: arrays indexed by member axes, then by logged step."""

from __future__ import annotations

import dataclasses
import os
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


def save_record(record: TrainRecord, path: str | os.PathLike) -> None:
    """Write ``record`` (without ``params``) to ``path`` as ``.npz``, atomically.

    The file is written next to its destination and renamed into place, so an interrupted
    write never leaves a partial file where a finished one is expected.
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
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}.npz"
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_record(path: str | os.PathLike) -> TrainRecord:
    """Read a record written by :func:`save_record` (``params`` is ``None``)."""
    with np.load(os.fspath(path)) as f:
        fields = {name: (f[name] if name in f.files else None) for name in _ARRAY_FIELDS}
        obs = {k[4:]: f[k] for k in f.files if k.startswith("obs.")}
        coords = {k[6:]: f[k] for k in f.files if k.startswith("coord.")}
        axes = tuple(str(a) for a in f["axes"])
    return TrainRecord(**fields, observables=obs, params=None, axes=axes, coords=coords)


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
