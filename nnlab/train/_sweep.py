"""Sweeps that persist each finished point and resume after an interruption.

Each point file carries a fingerprint of the configuration that produced it (see
:mod:`nnlab.train._fingerprint`); a later sweep into the same directory reuses a point only
if its fingerprint matches, so a changed configuration is never answered with stale results.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from nnlab import _checks

from . import _fingerprint as fp
from ._ensemble import _grid, _member_keys, train_ensemble
from ._loop import DIVERGENCE_FACTOR, check_source
from ._record import (
    TMP_MARK,
    CorruptRecordError,
    TrainRecord,
    load_record,
    read_fingerprint,
    save_record,
    stack_records,
)
from ._stream import Stream, plan_stream

FINGERPRINT_VERSION = 1


def _file_name(axis: str, point: Any) -> str:
    text = re.sub(r"[^A-Za-z0-9_.+-]", "_", str(point))
    return f"{axis}={text}.npz"


def _remove_leftovers(path: str) -> None:
    """Delete ``{path}.tmp-*`` files left by a write that was killed before its rename."""
    for tmp in glob.glob(glob.escape(path) + TMP_MARK + "*"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


def _point_fingerprint(axis, point, config) -> dict:
    out = {
        "version": fp.component(FINGERPRINT_VERSION),
        "axis": fp.component(axis),
        "point": fp.component(point, summary=f"{axis}={point!r}"),
    }
    if config is not None:
        out.update(config if _is_fingerprint(config) else {"config": fp.component(config)})
    return out


def _is_fingerprint(config) -> bool:
    return isinstance(config, dict) and all(
        isinstance(v, dict) and set(v) == {"digest", "summary"} for v in config.values()
    )


def _mismatch(path, stored: dict, current: dict) -> str:
    lines = fp.differences(stored, current)
    return (
        f"{path} was computed with a different configuration:\n  "
        + "\n  ".join(lines)
        + "\nUse a new out_dir for the new configuration, or pass overwrite=True to recompute "
        "(and replace) every point."
    )


def _load_matching(path: str, current: dict):
    """The record at ``path`` if its fingerprint matches ``current``; ``None`` if corrupt."""
    try:
        record = load_record(path)
        text = read_fingerprint(path)
    except CorruptRecordError as err:
        warnings.warn(f"{err} Recomputing the point and replacing {path}.", stacklevel=3)
        return None
    if text is None:
        raise ValueError(
            f"{path} has no configuration fingerprint (it was written by an older nnlab), so "
            "it cannot be checked against this sweep; use a new out_dir, or pass "
            "overwrite=True to recompute it."
        )
    try:
        stored = fp.from_json(text)
    except ValueError:
        warnings.warn(f"{path} has an unreadable fingerprint; recomputing it.", stacklevel=3)
        return None
    if fp.differences(stored, current):
        raise ValueError(_mismatch(path, stored, current))
    return record


def sweep(
    run_point: Callable[[Any], TrainRecord],
    points: Sequence[Any],
    *,
    axis: str = "point",
    out_dir: str | os.PathLike | None = None,
    config: Any = None,
    overwrite: bool = False,
    _fingerprints: Callable[[Any], dict] | None = None,
) -> TrainRecord:
    """Run ``run_point`` at each point and stack the records along a new leading ``axis``.

    With ``out_dir`` each finished point is written to ``out_dir/{axis}={point}.npz`` as
    soon as it completes (atomically: written to a temporary file, then renamed; leftover
    temporary files of killed writes are removed). Calling again with the same ``out_dir``
    loads the points already on disk and runs only the others, so an interrupted sweep
    loses no finished point and runs none twice. Only process 0 writes when several hosts
    run the sweep.

    Every file stores a fingerprint of ``axis``, the point and ``config``; a file whose
    fingerprint differs from the current call's is a ``ValueError`` naming what differs
    (use a new ``out_dir`` or ``overwrite=True``), never a silent reuse. ``run_point``
    itself is opaque here (it is not called for finished points), so **pass everything it
    depends on as** ``config`` (e.g. ``config=dict(lr=lr, steps=steps, data=data)``: numbers,
    strings, arrays (hashed), containers, functions (by code and closure)).
    :func:`width_sweep` builds its fingerprint itself. A truncated or corrupt file is
    recomputed with a warning naming it.

    Args:
      run_point: ``point -> TrainRecord`` (e.g. a :func:`train_ensemble` call); records of
        all points must share their layout.
      points: the sweep values (their ``str`` names the files; keep them distinct).
      axis: name of the new axis (``'width'``, ``'lr'``, ...).
      out_dir: directory for per-point files, created if missing; ``None`` keeps nothing.
      config: what determines the results besides the point (fingerprinted).
      overwrite: recompute every point and replace its file, whatever is on disk.

    Returns:
      The stacked :class:`TrainRecord` (NumPy arrays, ``params=None``), axes
      ``(axis, *point_axes)``.
    """
    _checks.function(run_point, "run_point", "run_point(point) -> TrainRecord")
    if not isinstance(axis, str) or not axis:
        raise TypeError(f"axis must be a non-empty str, got {axis!r}.")
    _checks.boolean(overwrite, "overwrite")
    points = list(points)
    if not points:
        raise ValueError("points must be a non-empty sequence, got an empty one.")
    names = [_file_name(axis, p) for p in points]
    if len(set(names)) != len(names):
        raise ValueError(f"points must have distinct string forms, got {points!r}.")
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
    writer = jax.process_index() == 0
    records = []
    for point, name in zip(points, names, strict=True):
        path = None if out_dir is None else os.path.join(os.fspath(out_dir), name)
        current = None
        if path is not None:
            extra = config if _fingerprints is None else _fingerprints(point)
            current = _point_fingerprint(axis, point, extra)
            if writer:
                _remove_leftovers(path)
            if not overwrite and os.path.exists(path):
                record = _load_matching(path, current)
                if record is not None:
                    records.append(record)
                    continue
        record = run_point(point)
        if not isinstance(record, TrainRecord):
            raise TypeError(
                f"run_point({point!r}) must return a TrainRecord, got {type(record).__name__}."
            )
        record = record.to_numpy().replace(params=None)
        if path is not None and writer:
            save_record(record, path, fingerprint=fp.to_json(current))
        records.append(record)
    return stack_records(records, axis, np.asarray(points))


_ENSEMBLE_DEFAULTS = {
    "log_every": 1,
    "loss": "mse",
    "loss_normalization": "mean",
    "observables": None,
    "batch_size": None,
    "divergence_threshold": None,
    "divergence_factor": DIVERGENCE_FACTOR,
    "precision": None,
}
# settings that do not change a result (beyond float rounding): not fingerprinted
_NOT_FINGERPRINTED = ("progress", "devices")


def _data_component(data) -> dict:
    """The data's fingerprint: every array field by shape and sha256 of its bytes.

    A :class:`Stream` cannot be hashed by value (its batches are drawn inside the loop), so
    its ``sample`` is described as any function is (see :mod:`nnlab.train._fingerprint`:
    module and qualified name, closure contents, and, outside the libraries, bytecode and
    the globals it names), together with one batch's shapes and dtypes (from
    ``jax.eval_shape``), ``n_eval`` and the fixed test/probe arrays by hash. A change that
    none of these sees is not detected: an edited library function ``sample`` calls, a
    value it reads from a library's globals or from a C object's state.
    """
    if isinstance(data, Stream):
        return _stream_component(data)
    parts, summary = {}, []
    for name in data._fields:
        a = getattr(data, name)
        if a is not None:
            parts[name] = fp.array_digest(a)
            summary.append(f"{name}{tuple(a.shape)}")
    return fp.component(parts, summary="data " + ", ".join(summary) + " (hashed)")


def _stream_component(stream: Stream) -> dict:
    plan = plan_stream(stream, None, None, needs_key=False)
    parts = {"sample": fp.describe(stream.sample), "n_eval": plan.n_eval}
    summary = [f"sample={getattr(stream.sample, '__qualname__', type(stream.sample).__name__)}"]
    for name, a in (("x", plan.x), ("y", plan.y)):
        parts[name] = fp.describe(a)
        summary.append(f"{name}{tuple(a.shape)}")
    summary.append(f"n_eval={plan.n_eval}")
    for name in ("x_test", "y_test", "x_probe"):
        a = getattr(stream, name)
        if a is not None:
            parts[name] = fp.array_digest(a)
            summary.append(f"{name}{tuple(a.shape)}")
    return fp.component(parts, summary="stream " + ", ".join(summary) + " (by code and shapes)")


def _example_inputs(data, key):
    """Inputs of the shape the network sees: ``x_train``, or one batch of a Stream."""
    if isinstance(data, Stream):
        return jax.eval_shape(data.sample, key)[0]
    return data.x_train


def _ensemble_fingerprint(make_model, width, data, kwargs) -> dict:
    """Everything that determines a :func:`train_ensemble` result at one width."""
    kwargs = dict(kwargs)
    settings = {k: kwargs.pop(k, v) for k, v in _ENSEMBLE_DEFAULTS.items()}
    for k in _NOT_FINGERPRINTED:
        kwargs.pop(k, None)
    optimizer = kwargs.pop("optimizer", None)
    seeds = kwargs.pop("seeds", None)
    key = kwargs.pop("key", None)
    steps = kwargs.pop("steps", None)
    hyperparams = kwargs.pop("hyperparams", None)
    if not isinstance(seeds, (int, np.integer, jax.Array)) or isinstance(seeds, bool):
        raise TypeError(
            f"seeds must be an int count or a 1-D array of jax.random keys, got {seeds!r}."
        )
    keys = _member_keys(seeds, key)
    grid = _grid(hyperparams)
    apply_fn, init_fn = make_model(width)
    _checks.function(apply_fn, "apply_fn", "(from make_model)")
    _checks.function(init_fn, "init_fn", "(from make_model)")
    params = jax.eval_shape(init_fn, keys[0])
    x = _example_inputs(data, keys[0])
    out = jax.eval_shape(lambda k, x: apply_fn(init_fn(k), x), keys[0], x)
    shapes = [(tuple(a.shape), str(a.dtype)) for a in jax.tree_util.tree_leaves(params)]
    network = {
        "treedef": str(jax.tree_util.tree_structure(params)),
        "leaves": shapes,
        "out": fp.describe(out),
        "apply_fn": fp.describe(apply_fn),
        "init_fn": fp.describe(init_fn),
    }
    n_params = sum(int(np.prod(s)) for s, _ in shapes)
    result = {
        "data": _data_component(data),
        "steps": fp.component(steps, summary=f"steps={steps!r}"),
        "seeds": fp.component(fp.array_digest(keys), summary=f"{keys.shape[0]} seed keys (hashed)"),
        "hyperparams": fp.component(
            grid, summary="hyperparams " + repr({k: v.tolist() for k, v in grid.items()})
        ),
        "optimizer": fp.component(optimizer, summary="optimizer (by code and settings)"),
        "network": fp.component(
            network,
            summary=f"network with {len(shapes)} leaves, {n_params} parameters, "
            f"outputs {tuple(out.shape)}",
        ),
    }
    for k, v in settings.items():
        result[k] = fp.component(v, summary=f"{k}={v!r}")
    for k, v in sorted(kwargs.items()):  # anything else passed on to train_ensemble
        result[k] = fp.component(v, summary=f"{k}={v!r}")
    return result


def width_sweep(
    make_model: Callable[[int], tuple[Callable, Callable]],
    widths: Sequence[int],
    data,
    *,
    out_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    **ensemble_kwargs,
) -> TrainRecord:
    """A :func:`train_ensemble` per width (one compile each), stacked along ``'width'``.

    With ``out_dir`` each width's file carries a fingerprint of its whole configuration:
    the data (shapes and a sha256 of the bytes), ``steps``, ``log_every``, the loss and its
    normalisation, ``batch_size``, the divergence settings, ``precision``, the seed keys,
    the hyperparameter grid, the optimizer (its code and the settings in its closures, e.g.
    ``optax.sgd(0.1)``'s rate) and the network (parameter treedef and leaf shapes, output
    shape, and ``apply_fn``/``init_fn`` by code and closure). A finished width is reused
    only if all of these match; otherwise a ``ValueError`` lists what differs (use a new
    ``out_dir`` or ``overwrite=True``). ``progress`` and ``devices`` are not part of it
    (they change results only by float rounding).

    Args:
      make_model: ``width -> (apply_fn, init_fn)``.
      widths: positive ints.
      data: shared :class:`Data`, or a :class:`Stream` (fingerprinted by its ``sample``
        function's code and closure and one batch's shapes; see ``docs/train.md``).
      out_dir: persist and resume as in :func:`sweep`.
      overwrite: recompute every width and replace its file.
      **ensemble_kwargs: passed to :func:`train_ensemble` (``optimizer``, ``seeds``, ``key``,
        ``steps``, ``hyperparams``, ...).

    Returns:
      A :class:`TrainRecord` with axes ``('width', 'seed', *hyperparams)``, then ``step``.
    """
    _checks.function(make_model, "make_model", "make_model(width) -> (apply_fn, init_fn)")
    widths = list(widths)
    checked = []
    for w in widths:
        checked.append(
            _checks.integer(w, "widths", fix=f"widths must be positive ints, got {widths!r}.")
        )
    data = check_source(data)
    if isinstance(ensemble_kwargs.get("hyperparams"), Mapping):
        _grid(ensemble_kwargs["hyperparams"])  # fail before any model is built

    def run(width):
        apply_fn, init_fn = make_model(int(width))
        return train_ensemble(apply_fn, init_fn, data, **ensemble_kwargs)

    def fingerprints(width):
        return _ensemble_fingerprint(make_model, int(width), data, ensemble_kwargs)

    return sweep(
        run,
        checked,
        axis="width",
        out_dir=out_dir,
        overwrite=overwrite,
        _fingerprints=fingerprints,
    )
