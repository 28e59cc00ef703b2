"""One training run as one compiled program: ``jit`` + ``lax.scan`` with logging inside."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnlab import _checks

from ._fingerprint import find_nan
from ._observables import resolve_observables
from ._precision import Precision, check_precision, matmul_precision
from ._record import TrainRecord
from ._stream import Stream, StreamPlan, eval_batch, plan_stream, step_batch, stream_keys

LossName = Literal["mse", "xent"]
LossNormalization = Literal["mean", "sum"]


class Data(NamedTuple):
    """Training data: ``x_train (n, ...)``, ``y_train (n, *out)``, optional test and probe sets.

    ``x_probe`` are inputs on which the outputs are logged (and that observables use by
    default); to record the outputs on the training and test points, pass them as probes.
    """

    x_train: Any
    y_train: Any
    x_test: Any = None
    y_test: Any = None
    x_probe: Any = None


def _check_array(name, value):
    """A data field: an array (any dtype), with an example axis of length >= 1, finite."""
    name = f"data.{name}"
    if not hasattr(value, "shape") or not hasattr(value, "dtype"):
        raise TypeError(
            f"{name} must be an array, got {type(value).__name__}; convert it with jnp.asarray."
        )
    if len(value.shape) < 1:
        raise ValueError(f"{name} must have a leading example axis, got shape {value.shape}.")
    _checks.finite_array(value, name, floating=False, min_examples=1)


def check_data(data) -> Data:
    """``data`` as a :class:`Data`, with every given field checked (arrays, >= 1 example,
    finite, matching example counts)."""
    if isinstance(data, Mapping):
        unknown = set(data) - set(Data._fields)
        if unknown:
            raise ValueError(
                f"data has unknown fields {sorted(unknown)}; the fields are {Data._fields}."
            )
        data = Data(**data)
    elif isinstance(data, tuple) and not isinstance(data, Data):
        data = Data(*data)
    if not isinstance(data, Data):
        raise TypeError(f"data must be a Data, Stream, tuple or dict, got {type(data).__name__}.")
    for name in ("x_train", "y_train"):
        _check_array(name, getattr(data, name))
    if data.x_train.shape[0] != data.y_train.shape[0]:
        raise ValueError(
            f"data.x_train and data.y_train must have the same number of examples, got "
            f"{data.x_train.shape[0]} and {data.y_train.shape[0]}."
        )
    _check_fixed(data)
    return data


def _check_fixed(data) -> None:
    """The test and probe fields of ``data`` (a Data or a Stream)."""
    if (data.x_test is None) != (data.y_test is None):
        raise ValueError("data.x_test and data.y_test must be given together or not at all.")
    if data.x_test is not None:
        _check_array("x_test", data.x_test)
        _check_array("y_test", data.y_test)
        if data.x_test.shape[0] != data.y_test.shape[0]:
            raise ValueError(
                f"data.x_test has {data.x_test.shape[0]} examples but data.y_test has "
                f"{data.y_test.shape[0]}."
            )
    if data.x_probe is not None:
        _check_array("x_probe", data.x_probe)


def check_stream(stream: Stream, key, batch_size, *, needs_key: bool = True):
    """``(plan, fixed)``: the checked :class:`Stream` and its fixed fields as a :class:`Data`
    with ``x_train = y_train = None`` (filled in with the evaluation batch by the program)."""
    _check_fixed(stream)
    plan = plan_stream(stream, key, batch_size, needs_key=needs_key)
    return plan, Data(None, None, stream.x_test, stream.y_test, stream.x_probe)


def check_source(data):
    """``data`` checked without running anything: a :class:`Data` or a :class:`Stream`."""
    if isinstance(data, Stream):
        check_stream(data, None, None, needs_key=False)
        return data
    return check_data(data)


def check_stream_outputs(out_fn, plan: StreamPlan, fixed: Data, loss) -> None:
    """Check ``out_fn(x)`` (an ``eval_shape`` of ``apply_fn``) on a batch and on the
    evaluation batch of ``plan`` against the sampled targets and the fixed test set."""
    names = {"x_name": "x from data.sample(key)", "y_name": "data.sample(key)[1]"}
    batches = [(plan.x, plan.y)]
    if plan.n_eval != plan.batch_size:
        batches.append(plan.eval_shapes())
    for x, y in batches:
        check_outputs(out_fn(x), fixed._replace(x_train=x, y_train=y), loss, **names)


LOSSES = ("mse", "xent")
NORMALIZATIONS = ("mean", "sum")


def check_targets(f_shape, y, loss, name: str = "y") -> None:
    """Raise ``ValueError`` unless targets ``y`` fit outputs of shape ``f_shape`` for ``loss``.

    Shapes are static, so this runs at trace time. Accepted: ``y.shape == f_shape``; for
    ``'mse'`` also ``y`` of shape ``(n,)`` against outputs ``(n, 1)``; for ``'xent'``
    integer class labels of shape ``f_shape[:-1]``. A callable loss is not checked (it gets
    the outputs and targets as given).
    """
    if callable(loss):
        return
    f_shape, y_shape = tuple(f_shape), tuple(y.shape)
    integer = jnp.issubdtype(y.dtype, jnp.integer)
    if loss == "xent" and integer:
        if y_shape == f_shape[:-1]:
            return
        raise ValueError(
            f"{name} holds integer class labels of shape {y_shape}, but apply_fn returns logits "
            f"of shape {f_shape}; labels must have shape {f_shape[:-1]} (one per example), or "
            f"pass one-hot float targets of shape {f_shape}."
        )
    if y_shape == f_shape:
        return
    if loss == "mse" and len(f_shape) >= 1 and f_shape[-1] == 1 and y_shape == f_shape[:-1]:
        return
    raise ValueError(
        f"{name} has shape {y_shape} but apply_fn returns outputs of shape {f_shape}; with "
        f"loss={loss!r} they must match (no broadcasting). Fix the network's output width or "
        f"reshape the targets to {f_shape}."
    )


def check_labels(f_shape, y, loss, name: str) -> None:
    """Concrete integer labels for ``'xent'`` must lie in ``[0, K)`` (else one_hot is 0)."""
    if loss != "xent" or not jnp.issubdtype(y.dtype, jnp.integer) or _checks.is_traced(y):
        return
    if isinstance(y, jax.ShapeDtypeStruct):  # a stream's targets: drawn inside the loop
        return
    k = f_shape[-1]
    lo, hi = int(jnp.min(y)), int(jnp.max(y))
    if lo < 0 or hi >= k:
        raise ValueError(
            f"{name} holds class labels in [{lo}, {hi}], but apply_fn returns {k} logits; "
            f"class labels must lie in [0, {k - 1}]."
        )


def check_outputs(
    out, data: Data, loss, *, x_name: str = "data.x_train", y_name: str = "data.y_train"
) -> None:
    """Check ``apply_fn``'s output structure ``out`` (from ``jax.eval_shape``) against data."""
    if not isinstance(out, jax.ShapeDtypeStruct):
        raise TypeError(
            "apply_fn(params, x) must return one array of shape (N, *out), got "
            f"{jax.tree_util.tree_structure(out)}."
        )
    n = data.x_train.shape[0]
    if len(out.shape) < 1 or out.shape[0] != n:
        raise ValueError(
            f"apply_fn(params, {x_name}) must return shape (N, *out) with N = {n} examples, "
            f"got {out.shape}."
        )
    check_targets(out.shape, data.y_train, loss, y_name)
    check_labels(out.shape, data.y_train, loss, y_name)
    if data.y_test is not None:
        f_test = (data.y_test.shape[0], *out.shape[1:])
        check_targets(f_test, data.y_test, loss, "data.y_test")
        check_labels(f_test, data.y_test, loss, "data.y_test")


def check_loss(loss, loss_normalization):
    _checks.choice(loss_normalization, "loss_normalization", NORMALIZATIONS)
    if not callable(loss):
        if not isinstance(loss, str):
            raise TypeError(
                f"loss must be one of {LOSSES} or a callable loss(f, y) -> scalar, got "
                f"{type(loss).__name__}: {loss!r}."
            )
        _checks.choice(loss, "loss", LOSSES)


def check_divergence(divergence_threshold, divergence_factor):
    """Validate the divergence rule's two settings; returns them as floats (or None)."""
    if divergence_threshold is not None:
        fix = "it is an absolute loss level (> 0), or None for none."
        _checks.real(
            divergence_threshold, "divergence_threshold", positive=True, allow_inf=True, fix=fix
        )
        divergence_threshold = float(divergence_threshold)
    if divergence_factor is not None:
        fix = "it multiplies the initial loss (>= 1, default 1e6), or None to disable the rule."
        _checks.real(divergence_factor, "divergence_factor", minimum=1.0, allow_inf=True, fix=fix)
        divergence_factor = float(divergence_factor)
    return divergence_threshold, divergence_factor


def make_loss(loss, normalization: LossNormalization) -> Callable:
    r"""``loss(f, y) -> scalar``.

    * ``'mse'``: ``L = ½ · (1/n) Σ_i ‖f(x_i) − y_i‖²`` (``'mean'``, the default) or
      ``½ Σ_i ‖f(x_i) − y_i‖²`` (``'sum'``): outputs are summed, examples averaged or
      summed. These match :mod:`nnlab.predict`'s ``loss_normalization`` of the same name.
    * ``'xent'``: ``−(1/n) Σ_i Σ_k y_ik log softmax(f(x_i))_k`` (or summed); integer targets
      of shape ``(n,)`` are class labels.
    * a callable ``loss(f, y)``, used as given.

    The built-in losses require the targets to match the outputs (``ValueError`` otherwise,
    never broadcasting), except that targets ``(n,)`` match outputs ``(n, 1)`` for ``'mse'``
    and integer labels ``(n,)`` match logits ``(n, K)`` for ``'xent'``.
    """
    check_loss(loss, normalization)
    if callable(loss):
        return loss
    reduce = jnp.mean if normalization == "mean" else jnp.sum

    def _match(f, y):
        if y.ndim == f.ndim - 1 and f.shape[-1] == 1:
            y = y[..., None]
        return y

    if loss == "mse":

        def mse(f, y):
            check_targets(f.shape, y, "mse")
            y = _match(f, y)
            per_example = 0.5 * jnp.sum(jnp.square(f - y).reshape(f.shape[0], -1), axis=1)
            return reduce(per_example)

        return mse
    if loss == "xent":

        def xent(f, y):
            check_targets(f.shape, y, "xent")
            if jnp.issubdtype(y.dtype, jnp.integer):
                y = jax.nn.one_hot(y, f.shape[-1], dtype=f.dtype)
            return reduce(-jnp.sum(y * jax.nn.log_softmax(f, axis=-1), axis=-1))

        return xent
    raise AssertionError(loss)  # unreachable: check_loss lists the choices


def check_schedule(steps, log_every) -> int:
    steps = _checks.integer(steps, "steps", fix="It is the number of optimizer updates.")
    log_every = _checks.integer(log_every, "log_every", fix="Logs are taken every log_every steps.")
    if steps % log_every:
        raise ValueError(
            f"log_every={log_every} must divide steps={steps}; logs are taken at "
            "0, log_every, ..., steps."
        )
    return steps // log_every


DIVERGENCE_FACTOR = 1e6


class State(NamedTuple):
    """Loop state of one member."""

    params: Any
    opt_state: Any
    step: jax.Array
    diverged: jax.Array
    diverged_step: jax.Array
    key: jax.Array
    obs_state: Any
    loss0: jax.Array  # training loss at θ_0 (the reference of the relative divergence rule)
    eval_data: Any = None  # a Stream's evaluation batch (x, y); None in Data mode


def _tree_finite(tree):
    leaves = [jnp.all(jnp.isfinite(a)) for a in jax.tree_util.tree_leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def _mask_nan(x, diverged):
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return jnp.where(diverged, jnp.asarray(jnp.nan, x.dtype), x)
    return x


class Program(NamedTuple):
    """The pure pieces of one member's run, to be jitted (and vmapped) by the drivers."""

    start: Callable  # (params0, hp, key, data) -> (state, log)
    advance: Callable  # (state, hp, data, n_logs) -> (state, logs)


def make_program(
    apply_fn,
    make_optimizer: Callable[[dict], optax.GradientTransformation],
    *,
    loss,
    loss_normalization,
    log_every,
    observables,
    batch_size,
    divergence_threshold,
    divergence_factor=DIVERGENCE_FACTOR,
    stream: StreamPlan | None = None,
) -> Program:
    """The divergence rule: a step ``k`` diverges when ``L(θ_k)`` or ``θ_{k+1}`` is
    non-finite, or ``L(θ_k) > divergence_threshold`` (absolute, if given), or
    ``L(θ_k) > divergence_factor · L(θ_0)`` (if given and ``L(θ_0) > 0``).

    With a ``stream`` the ``data`` handed to ``start``/``advance`` holds only the fixed test
    and probe fields; ``start`` splits ``key`` into ``(eval_key, step_key)``, draws the
    evaluation batch (kept in the state and used as ``x_train``/``y_train`` by the logs and
    observables) and step ``k`` trains on ``sample(fold_in(step_key, k))``."""
    base_loss = make_loss(loss, loss_normalization)
    divergence_threshold, divergence_factor = check_divergence(
        divergence_threshold, divergence_factor
    )
    obs = resolve_observables(observables)
    threshold = jnp.inf if divergence_threshold is None else divergence_threshold

    def loss_fn(f, y, name):
        check_targets(f.shape, y, loss, name)  # static shapes: raises at trace time
        return base_loss(f, y)

    def relative_limit(loss0):
        if divergence_factor is None or math.isinf(divergence_factor):
            return jnp.asarray(jnp.inf, loss0.dtype)
        return jnp.where(loss0 > 0, divergence_factor * loss0, jnp.inf)

    def view(state, data):
        """The data the logs and observables see (a stream's evaluation batch as x_train)."""
        if state.eval_data is None:
            return data
        return data._replace(x_train=state.eval_data[0], y_train=state.eval_data[1])

    def log(state, data):
        data = view(state, data)
        p = state.params
        out = {"train_loss": loss_fn(apply_fn(p, data.x_train), data.y_train, "data.y_train")}
        if data.x_test is not None:
            out["test_loss"] = loss_fn(apply_fn(p, data.x_test), data.y_test, "data.y_test")
        if data.x_probe is not None:
            out["probe_outputs"] = apply_fn(p, data.x_probe)
        out["observables"] = {
            name: jnp.asarray(o.compute(state.obs_state[name], apply_fn, p, data))
            for name, o in obs.items()
        }
        return jax.tree_util.tree_map(lambda x: _mask_nan(x, state.diverged), out)

    def update(state, opt, data):
        p = state.params
        if stream is not None:
            x, y = step_batch(stream, state.key, state.step)
        else:
            x, y = data.x_train, data.y_train
        if batch_size is not None:
            k = jax.random.fold_in(state.key, state.step)
            idx = jax.random.permutation(k, x.shape[0])[:batch_size]
            x, y = x[idx], y[idx]
        value, grads = jax.value_and_grad(lambda q: loss_fn(apply_fn(q, x), y, "data.y_train"))(p)
        updates, opt_state = opt.update(grads, state.opt_state, p)
        new_p = optax.apply_updates(p, updates)
        bad = (
            ~jnp.isfinite(value)
            | (value > threshold)
            | (value > relative_limit(state.loss0))
            | ~_tree_finite(new_p)
        )
        frozen = state.diverged | bad
        keep = lambda old, new: jax.tree_util.tree_map(  # noqa: E731
            lambda a, b: jnp.where(frozen, a, b), old, new
        )
        newly = bad & ~state.diverged
        return State(
            params=keep(p, new_p),
            opt_state=keep(state.opt_state, opt_state),
            step=state.step + 1,
            diverged=frozen,
            diverged_step=jnp.where(newly, state.step, state.diverged_step),
            key=state.key,
            obs_state=state.obs_state,
            loss0=state.loss0,
            eval_data=state.eval_data,
        )

    def start(params0, hp, key, data):
        opt = make_optimizer(hp)
        eval_data = None
        if stream is not None:
            eval_key, key = stream_keys(key)
            eval_data = eval_batch(stream, eval_key)
            data = data._replace(x_train=eval_data[0], y_train=eval_data[1])
        loss0 = loss_fn(apply_fn(params0, data.x_train), data.y_train, "data.y_train")
        state = State(
            params=params0,
            opt_state=opt.init(params0),
            step=jnp.zeros((), jnp.int32),
            diverged=jnp.zeros((), bool),
            diverged_step=jnp.full((), -1, jnp.int32),
            key=key,
            obs_state={name: o.init(apply_fn, params0, data) for name, o in obs.items()},
            loss0=jnp.asarray(loss0),
            eval_data=eval_data,
        )
        return state, log(state, data)

    def advance(state, hp, data, n_logs):
        opt = make_optimizer(hp)

        def interval(s, _):
            s, _ = jax.lax.scan(lambda t, _: (update(t, opt, data), None), s, length=log_every)
            return s, log(s, data)

        return jax.lax.scan(interval, state, length=n_logs)

    return Program(start, advance)


def chunk_sizes(n_logs: int, progress: bool, chunks: int = 20) -> list[int]:
    """Split ``n_logs`` logs into at most two distinct chunk sizes (two compiles at most)."""
    if not progress or n_logs <= 1:
        return [n_logs]
    size = max(1, math.ceil(n_logs / chunks))
    sizes = [size] * (n_logs // size)
    if n_logs % size:
        sizes.append(n_logs % size)
    return sizes


# ``nnlab demo`` and ``nnlab run --scale small`` compile with XLA's level-0 backend (fast
# compiles for many short programs, see ``nnlab.cli``) and say so in this variable. A long
# loop is run-time bound instead: at level 0 online SGD of the Saad-Solla committee (80,000
# steps) ran 7.7x slower per step, so loops from ``LONG_LOOP_STEPS`` steps on are compiled
# with XLA's default optimisation whatever the process-wide flag says.
FAST_COMPILE_ENV = "NNLAB_FAST_COMPILE"
LONG_LOOP_STEPS = 10_000


def loop_compiler_options(steps: int) -> dict | None:
    """XLA options for the jitted loop of ``steps`` updates (see ``FAST_COMPILE_ENV``)."""
    if steps >= LONG_LOOP_STEPS and os.environ.get(FAST_COMPILE_ENV) == "1":
        return {"xla_backend_optimization_level": 3}
    return None


def drive(start, advance, args, n_logs, progress, time_axis, desc="train", steps=0):
    """Run ``start`` then ``advance`` over all logs: one program, or chunks with a bar.

    Without a progress bar ``start`` and all of ``advance`` are fused into one jitted call.
    With one, the scan runs in chunks and the bar is updated between them; each chunk is a
    compiled scan, so the loop itself is not slowed (only a host sync per chunk). ``steps``
    (the number of updates) picks the compiler options (:func:`loop_compiler_options`).
    """
    sizes = chunk_sizes(n_logs, progress)
    options = loop_compiler_options(steps)
    if len(sizes) == 1:

        def whole(*args):
            state, log0 = start(*args)
            state, logs = advance(state, n_logs, *args)
            return state, log0, logs

        state, log0, logs = jax.jit(whole, compiler_options=options)(*args)
        parts = [logs]
    else:
        from tqdm.auto import tqdm

        state, log0 = jax.jit(start)(*args)
        adv = jax.jit(advance, static_argnums=1, compiler_options=options)
        parts = []
        with tqdm(total=n_logs, desc=desc, unit="log") as bar:
            for size in sizes:
                state, logs = adv(state, size, *args)
                jax.block_until_ready(logs)
                parts.append(logs)
                bar.update(size)
    logs = jax.tree_util.tree_map(
        lambda first, *rest: jnp.concatenate(
            [jnp.expand_dims(first, time_axis), *rest], axis=time_axis
        ),
        log0,
        *parts,
    )
    return state, logs


def to_record(final, logs, steps, log_every, axes=(), coords=None) -> TrainRecord:
    """``final``: dict with the final ``params``, ``diverged`` and ``diverged_step``."""
    return TrainRecord(
        step=np.arange(0, steps + 1, log_every),
        train_loss=logs["train_loss"],
        test_loss=logs.get("test_loss"),
        probe_outputs=logs.get("probe_outputs"),
        observables=logs["observables"],
        diverged=final["diverged"],
        diverged_step=final["diverged_step"],
        params=final["params"],
        axes=tuple(axes),
        coords=dict(coords or {}),
    )


def check_run(
    apply_fn, data, steps, log_every, precision, progress, loss, loss_normalization,
    divergence_threshold, divergence_factor, observables,
):  # fmt: skip
    """The arguments :func:`train` and ``train_ensemble`` share, checked; returns
    ``(online, data, steps, log_every, n_logs, progress, configure)`` (``data`` normalised
    unless it is a :class:`Stream`), where ``configure(make_optimizer, batch_size, stream)``
    is :func:`make_program` with the shared loss, logging, observable and divergence
    settings filled in."""
    _checks.function(apply_fn, "apply_fn", "apply_fn(params, x) -> (N, *out)")
    online = isinstance(data, Stream)
    if not online:
        data = check_data(data)
    steps = _checks.integer(steps, "steps", fix="It is the number of optimizer updates.")
    log_every = _checks.integer(log_every, "log_every")
    n_logs = check_schedule(steps, log_every)
    check_precision(precision)
    progress = _checks.boolean(progress, "progress")
    check_loss(loss, loss_normalization)
    check_divergence(divergence_threshold, divergence_factor)

    def configure(make_optimizer, batch_size, stream) -> Program:
        return make_program(
            apply_fn, make_optimizer, loss=loss, loss_normalization=loss_normalization,
            log_every=log_every, observables=observables, batch_size=batch_size,
            divergence_threshold=divergence_threshold, divergence_factor=divergence_factor,
            stream=stream,
        )  # fmt: skip

    return online, data, steps, log_every, n_logs, progress, configure


def train(
    apply_fn: Callable[[Any, jax.Array], jax.Array],
    params0: Any,
    data,
    *,
    optimizer: optax.GradientTransformation,
    steps: int,
    log_every: int = 1,
    loss: LossName | Callable = "mse",
    loss_normalization: LossNormalization = "mean",
    observables=None,
    batch_size: int | None = None,
    key: jax.Array | None = None,
    divergence_threshold: float | None = None,
    divergence_factor: float | None = DIVERGENCE_FACTOR,
    precision: Precision | None = None,
    progress: bool = False,
) -> TrainRecord:
    r"""Train ``apply_fn`` from ``params0`` with an optax optimizer, as one compiled program.

    Each step applies ``θ ← θ + optimizer.update(∇L(θ))`` on the full batch (or a random
    minibatch of ``batch_size`` drawn from ``key``); every ``log_every`` steps the loss on the
    training and test sets, the outputs on ``data.x_probe`` and the ``observables`` are
    recorded. The whole loop is ``jax.jit`` of ``lax.scan`` over log intervals of
    ``lax.scan`` over steps. With ``loss='mse'`` and ``loss_normalization='mean'``,
    ``L = ½ (1/n) Σ_i ‖f(x_i) − y_i‖²``, so plain GD at rate ``η`` is
    :func:`nnlab.predict.gradient_descent_mse` with ``loss_normalization='mean'`` for a
    linearised network (Lee et al. 2019, arXiv:1902.06720).

    Online learning: with ``data=Stream(sample, ...)`` (``key`` required, ``batch_size``
    ``None``) step ``k`` trains on the fresh batch ``sample(fold_in(step_key, k))`` (online
    SGD, Saad & Solla, Phys. Rev. Lett. 74, 4337 (1995)), where
    ``eval_key, step_key = jax.random.split(key)``. ``train_loss`` is then the loss on a
    fixed evaluation batch of ``n_eval`` examples drawn once from ``eval_key`` (an unbiased
    estimate of the population loss, the same batch at every log), ``L(θ_0)`` of the
    divergence rule is its loss at the start, and observables see it as
    ``data.x_train``/``data.y_train``. See :class:`Stream`.

    Divergence is a result. Step ``k`` (the update from ``θ_k``) diverges when

    * ``L(θ_k)`` or the updated parameters ``θ_{k+1}`` are non-finite (always), or
    * ``L(θ_k) > divergence_factor · L(θ_0)`` (default factor ``1e6``; ``L(θ_0)`` is the
      full training loss at the start, and the rule is off when ``L(θ_0) ≤ 0``), or
    * ``L(θ_k) > divergence_threshold`` (an absolute level, off by default).

    ``L(θ_k)`` is the loss of the step's batch (the full training set without
    ``batch_size``). Then the parameters stay at ``θ_k``, ``diverged`` is set,
    ``diverged_step = k``, and the logs after step ``k`` are NaN. A loss a million times its
    start has left every regime a theory comparison describes, while the transient spikes of
    catapult dynamics (Lewkowycz et al. 2020, arXiv:2003.02218) are usually far smaller;
    pass a larger factor (or ``None``) for runs whose loss may legitimately grow more.

    Args:
      apply_fn: ``apply_fn(params, x) -> (N, *out)``; nnlab ``net.apply``, a Flax
        ``module.apply`` (then ``params0`` is its variables dict) or any JAX function.
      params0: initial parameter pytree.
      data: :class:`Data` (or a tuple/dict of its fields), or a :class:`Stream` for
        online learning.
      optimizer: an ``optax.GradientTransformation`` (e.g. ``optax.sgd(0.1)``).
      steps: number of updates; log_every: log interval (must divide ``steps``).
      loss: ``'mse'``, ``'xent'`` or ``loss(f, y) -> scalar``; loss_normalization: ``'mean'``
        or ``'sum'`` over examples (see :func:`make_loss`).
      observables: built-in names (``'ntk_top_eigenvalue'``, ``'ntk_relative_change'``,
        ``'weight_distance'``) or a dict name -> :class:`Observable` / callable
        ``fn(apply_fn, params, params0, data)``.
      batch_size: minibatch size (needs ``key``); ``None`` for full-batch GD (and with a
        :class:`Stream`, whose ``sample`` sets the batch).
      key: PRNG key of the minibatches, or of a :class:`Stream`'s batches (required then).
      divergence_threshold: an absolute loss level above which a step diverges (``> 0``,
        ``inf`` or ``None`` for none).
      divergence_factor: a step whose loss exceeds this multiple of the initial loss
        diverges (``>= 1``; default ``1e6``); ``None`` (or ``inf``) keeps only the
        non-finite rule (the behaviour before nnlab added this rule).
      precision: matmul precision, ``'highest'`` for theory checks on GPU (see
        :func:`matmul_precision`); ``None`` leaves JAX's setting.
      progress: show a progress bar (the scan then runs in ~20 compiled chunks).

    Returns:
      A :class:`TrainRecord` with ``axes=()`` (leading axis of each log is ``step``) and the
      final ``params``.

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> f = lambda p, x: x @ p
      >>> data = Data(jnp.eye(3), jnp.ones((3, 1)))
      >>> rec = train(f, jnp.zeros((3, 1)), data, optimizer=optax.sgd(1.0), steps=4, log_every=2)
      >>> rec.train_loss.shape
      (3,)
    """
    online, data, steps, log_every, n_logs, progress, configure = check_run(
        apply_fn, data, steps, log_every, precision, progress, loss, loss_normalization,
        divergence_threshold, divergence_factor, observables,
    )  # fmt: skip
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(
            f"optimizer must be an optax.GradientTransformation, got {type(optimizer).__name__}."
        )
    find_nan(optimizer, "optimizer")
    plan = None
    if online:
        plan, data = check_stream(data, key, batch_size)
        check_stream_outputs(lambda x: jax.eval_shape(apply_fn, params0, x), plan, data, loss)
    else:
        batch_size, key = check_batching(batch_size, key, data)
        check_outputs(jax.eval_shape(apply_fn, params0, data.x_train), data, loss)
    program = configure(lambda hp: optimizer, batch_size, plan)
    with matmul_precision(precision):
        state, logs = drive(
            lambda p, k, d: program.start(p, {}, k, d),
            lambda s, n, p, k, d: program.advance(s, {}, d, n),
            (params0, key, data),
            n_logs,
            progress,
            time_axis=0,
            steps=steps,
        )
    return to_record(final_fields(state), logs, steps, log_every)


def final_fields(state: State) -> dict:
    return {
        "params": state.params,
        "diverged": state.diverged,
        "diverged_step": state.diverged_step,
    }


def check_batching(batch_size, key, data):
    """``(batch_size as an int or None, key)``; the key defaults to ``key(0)`` without batches."""
    if key is not None:
        _checks.prng_key(key, "key")
    if batch_size is None:
        return None, (jax.random.key(0) if key is None else key)
    n = data.x_train.shape[0]
    batch_size = _checks.integer(batch_size, "batch_size", fix=f"Use 1..{n} or None.")
    if batch_size > n:
        raise ValueError(f"batch_size must be an int in [1, {n}] or None, got {batch_size!r}.")
    if key is None:
        raise ValueError("batch_size was given without key; pass key=jax.random.key(...).")
    return batch_size, key
