"""Ensembles: vmap over seeds and per-member hyperparameters, sharded over devices."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from nnlab import _checks

from ._fingerprint import find_nan
from ._loop import (
    DIVERGENCE_FACTOR,
    LossName,
    LossNormalization,
    check_batching,
    check_outputs,
    check_run,
    check_stream,
    check_stream_outputs,
    drive,
    final_fields,
    to_record,
)
from ._precision import Precision, matmul_precision
from ._record import TrainRecord


def _member_keys(seeds, key):
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"seeds must be a positive int or an array of keys, got {seeds}.")
        if key is None:
            raise ValueError("seeds given as a count needs key=jax.random.key(...).")
        _checks.prng_key(key, "key")
        return jax.random.split(key, int(seeds))
    if isinstance(seeds, jax.Array) and jnp.issubdtype(seeds.dtype, jax.dtypes.prng_key):
        if seeds.ndim != 1:
            raise ValueError(f"seeds as keys must be 1-D, got shape {seeds.shape}.")
        return seeds
    raise TypeError(f"seeds must be an int count or a 1-D array of jax.random keys, got {seeds!r}.")


def _grid(hyperparams) -> dict[str, np.ndarray]:
    if hyperparams is None:
        return {}
    if not isinstance(hyperparams, Mapping):
        raise TypeError(
            f"hyperparams must be a dict name -> 1-D values, got {type(hyperparams).__name__}."
        )
    out = {}
    for name, values in hyperparams.items():
        if name == "seed":
            raise ValueError("hyperparams may not be named 'seed' (that axis is the seeds).")
        label = f"hyperparams[{name!r}]"
        if _checks.is_traced(values):
            raise TypeError(f"{label} must be concrete values, got a traced array.")
        v = np.asarray(values)
        if v.ndim != 1 or v.size == 0:
            raise ValueError(
                f"{label} must be a non-empty 1-D array of values, got shape {v.shape}."
            )
        if v.dtype == bool or not (
            np.issubdtype(v.dtype, np.integer) or np.issubdtype(v.dtype, np.floating)
        ):
            raise TypeError(f"{label} must hold real numbers, got {v.tolist()!r} ({v.dtype}).")
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{label} must be finite, got {v.tolist()!r}.")
        if _is_rate(name) and not np.all(v > 0):
            raise ValueError(
                f"{label} is a learning rate and must be > 0, got {v.tolist()!r}; a rate "
                "<= 0 does not descend."
            )
        out[name] = v
    return out


_RATE_NAMES = ("lr", "learning_rate", "eta", "step_size", "stepsize")


def _is_rate(name) -> bool:
    """Hyperparameters named like a learning rate (``lr``, ``learning_rate``, ``eta``, ...)."""
    return isinstance(name, str) and name.lower() in _RATE_NAMES


def _put(host, sharding):
    """A global array from a host array that every process holds (multi-host safe)."""
    host = np.asarray(host)
    return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])


def _to_host(tree):
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.device_get(tree)


def train_ensemble(
    apply_fn: Callable[[Any, jax.Array], jax.Array],
    init_fn: Callable[[jax.Array], Any],
    data,
    *,
    optimizer: Callable[..., optax.GradientTransformation] | optax.GradientTransformation,
    seeds: int | jax.Array,
    steps: int,
    key: jax.Array | None = None,
    hyperparams: Mapping[str, Any] | None = None,
    log_every: int = 1,
    loss: LossName | Callable = "mse",
    loss_normalization: LossNormalization = "mean",
    observables=None,
    batch_size: int | None = None,
    divergence_threshold: float | None = None,
    divergence_factor: float | None = DIVERGENCE_FACTOR,
    precision: Precision | None = None,
    progress: bool = False,
    devices=None,
) -> TrainRecord:
    r"""Train a grid of networks (seeds x hyperparameters) as one vmapped, sharded program.

    Member ``(s, i, j, ...)`` starts from ``init_fn(k_s)`` with ``k_s`` the ``s``-th seed key
    and trains with ``optimizer(**{name: hyperparams[name][i], ...})``; its minibatch key is
    ``jax.random.fold_in(k_s, 1)``, which is also the key of its stream when ``data`` is a
    :class:`Stream` (so seeds draw independent streams and evaluation batches, and member
    ``s`` equals ``train(..., data, key=fold_in(k_s, 1))``). All members run in one
    ``jit(vmap(scan))``, so each member equals a separate :func:`train` run from the same
    start up to float rounding (Python loops and vmap may order a reduction differently).
    Members are laid along one flat axis that is sharded over ``devices`` with a
    ``Mesh``/``NamedSharding`` (padded to a multiple of the device count); after
    ``jax.distributed.initialize()`` the default ``jax.devices()`` spans every host and each
    process supplies its own shards.

    Args:
      apply_fn: ``apply_fn(params, x)``.
      init_fn: ``init_fn(key) -> params``, e.g. ``lambda k: net.init(k, x.shape)[1]``.
      data: :class:`Data` shared by all members, or a :class:`Stream` (online learning;
        ``batch_size`` must be ``None``).
      optimizer: ``optimizer(**hp) -> GradientTransformation`` (hyperparameter values arrive
        as traced scalars, e.g. ``lambda lr: optax.sgd(lr)``), or a transformation when
        ``hyperparams`` is empty.
      seeds: number of seeds (split from ``key``) or a 1-D array of keys.
      hyperparams: name -> 1-D values; the grid is their outer product with the seeds.
        Values must be finite; those named like a learning rate (``lr``,
        ``learning_rate``, ``eta``, ``step_size``) must be ``> 0``.
      devices: devices to shard members over; ``None`` means ``jax.devices()``.
      Others: as in :func:`train`, including the divergence rule (non-finite, or a loss
        above ``divergence_factor = 1e6`` times the member's initial loss, or above an
        absolute ``divergence_threshold``), applied per member.

    Returns:
      A :class:`TrainRecord` with ``axes=('seed', *hyperparams)`` (in that order, then the
      ``step`` axis) and ``coords`` holding the hyperparameter values.

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> f = lambda p, x: x @ p
      >>> init = lambda k: jax.random.normal(k, (3, 1))
      >>> rec = train_ensemble(f, init, (jnp.eye(3), jnp.ones((3, 1))), key=jax.random.key(0),
      ...     seeds=2, hyperparams={"lr": jnp.array([0.1, 0.5])},
      ...     optimizer=lambda lr: optax.sgd(lr), steps=4)
      >>> rec.train_loss.shape  # (seed, lr, step)
      (2, 2, 5)
    """
    online, data, steps, log_every, n_logs, progress, configure = check_run(
        apply_fn, data, steps, log_every, precision, progress, loss, loss_normalization,
        divergence_threshold, divergence_factor, observables,
    )  # fmt: skip
    _checks.function(init_fn, "init_fn", "init_fn(key) -> params")
    if not (isinstance(seeds, (int, np.integer, jax.Array)) and not isinstance(seeds, bool)):
        raise TypeError(
            f"seeds must be an int count or a 1-D array of jax.random keys, got {seeds!r}."
        )
    grid = _grid(hyperparams)
    keys = _member_keys(seeds, key)
    if isinstance(optimizer, optax.GradientTransformation):
        if grid:
            raise TypeError(
                "optimizer is a fixed GradientTransformation but hyperparams were given; pass "
                "a function, e.g. optimizer=lambda lr: optax.sgd(lr)."
            )
        find_nan(optimizer, "optimizer")
        fixed = optimizer
        make_optimizer = lambda hp: fixed  # noqa: E731
    elif callable(optimizer):
        make_optimizer = lambda hp: optimizer(**hp)  # noqa: E731
    else:
        raise TypeError(
            f"optimizer must be a GradientTransformation or a function of the hyperparameters, "
            f"got {type(optimizer).__name__}."
        )
    plan = None
    if online:
        plan, data = check_stream(data, keys[0], batch_size, needs_key=False)
        check_stream_outputs(
            lambda x: jax.eval_shape(lambda k, x: apply_fn(init_fn(k), x), keys[0], x),
            plan,
            data,
            loss,
        )
    else:
        batch_size, _ = check_batching(batch_size, jax.random.key(0), data)
        check_outputs(
            jax.eval_shape(lambda k: apply_fn(init_fn(k), data.x_train), keys[0]), data, loss
        )

    shape = (keys.shape[0], *(v.size for v in grid.values()))
    idx = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    n_members = int(np.prod(shape))
    key_data = np.asarray(jax.random.key_data(keys))[idx[0].ravel()]
    hp_flat = {name: v[i.ravel()] for (name, v), i in zip(grid.items(), idx[1:], strict=True)}

    devices = jax.devices() if devices is None else list(devices)
    n_dev = len(devices)
    pad = -n_members % n_dev
    if pad:
        key_data = np.concatenate([key_data, np.repeat(key_data[-1:], pad, axis=0)])
        hp_flat = {n: np.concatenate([v, np.repeat(v[-1:], pad)]) for n, v in hp_flat.items()}
    sharding = None
    if n_dev > 1:
        mesh = Mesh(np.asarray(devices), ("member",))
        sharding = NamedSharding(mesh, PartitionSpec("member"))
        replicated = NamedSharding(mesh, PartitionSpec())
        key_data = _put(key_data, sharding)
        hp_flat = {n: _put(v, sharding) for n, v in hp_flat.items()}
        data = jax.tree_util.tree_map(lambda a: _put(a, replicated), data)
    impl = jax.random.key_impl(keys)

    program = configure(make_optimizer, batch_size, plan)

    def constrain(tree):
        if sharding is None:
            return tree
        return jax.tree_util.tree_map(lambda a: jax.lax.with_sharding_constraint(a, sharding), tree)

    def start_one(kd, hp, d):
        k = jax.random.wrap_key_data(kd, impl=impl)
        return program.start(init_fn(k), hp, jax.random.fold_in(k, 1), d)

    def start(kd, hp, d):
        return constrain(jax.vmap(start_one, in_axes=(0, 0, None))(kd, hp, d))

    def advance(state, n, kd, hp, d):
        run = jax.vmap(lambda s, h: program.advance(s, h, d, n), in_axes=(0, 0))
        return constrain(run(state, hp))

    with matmul_precision(precision):
        state, logs = drive(
            start,
            advance,
            (key_data, hp_flat, data),
            n_logs,
            progress,
            time_axis=1,
            desc="ensemble",
            steps=steps,
        )
    final, logs = _to_host((final_fields(state), logs))

    def unflat(a):
        return np.asarray(a)[:n_members].reshape(shape + a.shape[1:])

    final = jax.tree_util.tree_map(unflat, final)
    logs = jax.tree_util.tree_map(unflat, logs)
    coords = {"seed": np.arange(shape[0]), **grid}
    return to_record(final, logs, steps, log_every, axes=("seed", *grid), coords=coords)
