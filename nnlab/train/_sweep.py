"""Sweeps that persist each finished point and resume after an interruption."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from ._ensemble import train_ensemble
from ._record import TrainRecord, load_record, save_record, stack_records


def _file_name(axis: str, point: Any) -> str:
    text = re.sub(r"[^A-Za-z0-9_.+-]", "_", str(point))
    return f"{axis}={text}.npz"


def sweep(
    run_point: Callable[[Any], TrainRecord],
    points: Sequence[Any],
    *,
    axis: str = "point",
    out_dir: str | os.PathLike | None = None,
) -> TrainRecord:
    """Run ``run_point`` at each point and stack the records along a new leading ``axis``.

    With ``out_dir`` each finished point is written to ``out_dir/{axis}={point}.npz`` as
    soon as it completes (atomically: written to a temporary file, then renamed). Calling
    again with the same ``out_dir`` loads the points already on disk and runs only the
    others, so an interrupted sweep loses no finished point and runs none twice. Only
    process 0 writes when several hosts run the sweep.

    Args:
      run_point: ``point -> TrainRecord`` (e.g. a :func:`train_ensemble` call); records of
        all points must share their layout.
      points: the sweep values (their ``str`` names the files; keep them distinct).
      axis: name of the new axis (``'width'``, ``'lr'``, ...).
      out_dir: directory for per-point files, created if missing; ``None`` keeps nothing.

    Returns:
      The stacked :class:`TrainRecord` (NumPy arrays, ``params=None``), axes
      ``(axis, *point_axes)``.
    """
    points = list(points)
    if not points:
        raise ValueError("points must be a non-empty sequence, got an empty one.")
    names = [_file_name(axis, p) for p in points]
    if len(set(names)) != len(names):
        raise ValueError(f"points must have distinct string forms, got {points!r}.")
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
    records = []
    for point, name in zip(points, names, strict=True):
        path = None if out_dir is None else os.path.join(out_dir, name)
        if path is not None and os.path.exists(path):
            records.append(load_record(path))
            continue
        record = run_point(point).to_numpy().replace(params=None)
        if path is not None and jax.process_index() == 0:
            save_record(record, path)
        records.append(record)
    return stack_records(records, axis, np.asarray(points))


def width_sweep(
    make_model: Callable[[int], tuple[Callable, Callable]],
    widths: Sequence[int],
    data,
    *,
    out_dir: str | os.PathLike | None = None,
    **ensemble_kwargs,
) -> TrainRecord:
    """A :func:`train_ensemble` per width (one compile each), stacked along ``'width'``.

    Args:
      make_model: ``width -> (apply_fn, init_fn)``.
      widths: positive ints.
      data: shared :class:`Data`.
      out_dir: persist and resume as in :func:`sweep`.
      **ensemble_kwargs: passed to :func:`train_ensemble` (``optimizer``, ``seeds``, ``key``,
        ``steps``, ``hyperparams``, ...).

    Returns:
      A :class:`TrainRecord` with axes ``('width', 'seed', *hyperparams)``, then ``step``.
    """
    for w in widths:
        if not isinstance(w, (int, np.integer)) or w < 1:
            raise ValueError(f"widths must be positive ints, got {w!r} in {list(widths)!r}.")

    def run(width):
        apply_fn, init_fn = make_model(int(width))
        return train_ensemble(apply_fn, init_fn, data, **ensemble_kwargs)

    return sweep(run, [int(w) for w in widths], axis="width", out_dir=out_dir)
