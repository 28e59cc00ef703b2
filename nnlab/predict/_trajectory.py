"""Linearised MSE training as a :class:`nnlab.Record`: theory and network on one time axis.

:func:`mse_trajectory` evaluates :func:`~nnlab.predict.gradient_descent_mse` (discrete steps)
or :func:`~nnlab.predict.gradient_flow_mse` (continuous time) at several times and names the
axes; :func:`network_trajectory` puts a training run of :mod:`nnlab.train` in the same layout,
so :meth:`nnlab.evaluate.Comparison.from_records` lines the two up with no axes passed by hand.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from nnlab import _checks
from nnlab.record import Record
from nnlab.record._record import TIME

from ._gradient_descent import gradient_descent_mse, gradient_flow_mse
from ._linalg import LossNormalization, as_float_array

__all__ = ["MSETrajectory", "mse_trajectory", "network_trajectory"]


class MSETrajectory(Record):
    """Outputs and MSE losses of a (linearised) network over time, as a :class:`nnlab.Record`.

    Variables (``*members`` are leading axes such as ``'seed'`` or ``'width'``, present for
    records built from an ensemble or under ``vmap``; ``out*`` are the output axes of ``y``,
    ``out0`` for targets ``(n, 1)``, none for targets ``(n,)``):

    * ``f_train`` ``(*members, 'time', 'train', out*)``: outputs on the training points;
    * ``f_test`` ``(*members, 'time', 'test', out*)``: outputs on the test points (with a
      test kernel, or test probes);
    * ``train_loss`` ``(*members, 'time')``: ``L = (1/2n) Σ_i ‖f(x_i) - y_i‖²`` for the mean
      convention (``½ Σ_i`` for ``'sum'``), as ``nnlab.train`` logs it;
    * ``test_loss`` ``(*members, 'time')``: the same on the test points (with ``y_test``).

    ``coords['time']`` are the steps (``meta['time_unit'] == 'step'``) or continuous times
    (``'time'``).
    """


def _out_dims(ndim: int) -> tuple[str, ...]:
    return tuple(f"out{i}" for i in range(ndim))


def _mse(f, y, normalization: LossNormalization):
    """``½ reduce_i ‖f_i - y_i‖²`` over the point axis of ``f`` ``(T, n, *out)``."""
    per_point = 0.5 * jnp.sum(jnp.square(f - y).reshape(*f.shape[:2], -1), axis=-1)
    return jnp.mean(per_point, axis=1) if normalization == "mean" else jnp.sum(per_point, axis=1)


def mse_trajectory(
    ntk_train,
    y,
    times,
    ntk_test_train=None,
    *,
    lr,
    f0_train=None,
    f0_test=None,
    y_test=None,
    discrete: bool = False,
    momentum=0.0,
    ridge=0.0,
    loss_normalization: LossNormalization = "mean",
) -> MSETrajectory:
    r"""Linearised-network outputs and losses at ``times``, as an :class:`MSETrajectory`.

    With ``η`` the effective rate of :mod:`nnlab.predict`'s loss convention (``lr / n`` for
    the default mean loss) and ``Θ = Θ(X, X)`` (Lee et al. 2019, arXiv:1902.06720, eqs. 8-11):

    * ``discrete=True``: ``times`` are step counts ``k`` of GD with ``optax.sgd(lr)`` (or
      heavy ball, ``momentum``), ``f_k(X) = Y + (I - ηΘ)^k (f_0 - Y)``
      (:func:`~nnlab.predict.gradient_descent_mse`); ``meta['time_unit'] == 'step'``. This
      lines up with a :class:`~nnlab.train.TrainRecord`, whose time axis is the logged steps.
    * ``discrete=False``: gradient flow ``dθ/dt = -lr ∇L``, ``f_t(X) = Y + e^{-ηΘt}(f_0 - Y)``
      (:func:`~nnlab.predict.gradient_flow_mse`); ``meta['time_unit'] == 'time'``. GD with
      rate ``lr`` after ``k`` steps is close to the flow with ``lr = 1`` at ``t = lr · k``
      (the Euler discretisation; the gap per mode is ``O(k (ηλ)²)``); compare a run with
      ``network_trajectory(record, n_train, lr=lr)``, whose time axis is ``t = lr · step``.

    Test outputs follow ``f(x) = f_0(x) + Θ(x, X) Θ⁻¹ (f(X) - f_0(X))``. The losses are the
    MSE of :mod:`nnlab.train` in the same ``loss_normalization``: ``train_loss =
    (1/2n) Σ_i ‖f(x_i) - y_i‖²`` and, with ``y_test``, ``test_loss`` over the ``m`` test
    points. The values are exactly those of the array functions; this adds the axis names,
    the time coordinates and the unit. Works under ``jax.jit`` (``times``, ``lr``, the
    kernels and outputs may be traced; ``discrete`` and ``loss_normalization`` are static) and
    ``jax.vmap`` (name the new axis with :meth:`~nnlab.Record.with_leading_axis`).

    Args:
      ntk_train: ``(n, n)`` NTK on the training points.
      y: ``(n,)`` or ``(n, k)`` targets; their trailing axis is ``out0`` in the record.
      times: 1-D times (a scalar is one time): integer steps for ``discrete=True``, times
        ``>= 0`` (``inf`` allowed: kernel regression) for the flow.
      ntk_test_train: optional ``(m, n)`` test-train NTK, for ``f_test``.
      lr: learning rate (keyword, required).
      f0_train, f0_test: outputs at initialisation (default zero, the mean over inits).
      y_test: test targets ``(m,)`` / ``(m, k)``, for ``test_loss`` (needs ``ntk_test_train``).
      discrete: GD steps (``True``) or gradient flow (``False``).
      momentum: heavy-ball ``β`` in ``[0, 1)``, only with ``discrete=True``.
      ridge: added to the diagonal of ``ntk_train``.
      loss_normalization: ``'mean'`` (default) or ``'sum'``, see :mod:`nnlab.predict`.

    Returns:
      An :class:`MSETrajectory` with ``f_train``, ``train_loss`` and, with a test kernel,
      ``f_test`` (and ``test_loss`` with ``y_test``); ``meta`` has ``time_unit`` and
      ``loss_normalization``.

    Raises:
      ValueError / TypeError: bad shapes or values (also those of the array functions),
        ``times`` with more than one axis, ``y_test`` without ``ntk_test_train`` or of the
        wrong shape, non-zero ``momentum`` for the flow.

    Example:
      >>> import jax.numpy as jnp
      >>> ntk = jnp.array([[1.0, 0.0], [0.0, 0.5]])  # n = 2: lr = 2 is the rate η = 1
      >>> rec = mse_trajectory(ntk, jnp.ones(2), jnp.array([0, 1, 2]), lr=2.0, discrete=True)
      >>> rec.dims_of("f_train"), rec.time_unit, rec.train_loss.tolist()
      (('time', 'train'), 'step', [0.5, 0.0625, 0.015625])
    """
    discrete = _checks.boolean(discrete, "discrete")
    _checks.choice(loss_normalization, "loss_normalization", ("mean", "sum"))
    times = jnp.asarray(times)
    if times.ndim == 0:
        times = times[None]
    if times.ndim != 1:
        raise ValueError(
            f"times must be 1-D (the 'time' axis), got shape {times.shape}; pass a flat array of "
            "steps or times, e.g. record.time."
        )
    y = as_float_array(y, "y")
    if y_test is not None:  # checked before the (costly) prediction
        if ntk_test_train is None:
            raise ValueError("y_test was given without ntk_test_train; pass both or neither.")
        y_test = as_float_array(y_test, "y_test")
        want = (np.shape(ntk_test_train)[0], *y.shape[1:])
        if y_test.shape != want:
            raise ValueError(
                f"y_test must have shape {want} (test points{', outputs' if y.ndim > 1 else ''}, "
                f"like y), got {y_test.shape}."
            )
    common = {
        "lr": lr,
        "f0_train": f0_train,
        "f0_test": f0_test,
        "ridge": ridge,
        "loss_normalization": loss_normalization,
    }
    if discrete:
        out = gradient_descent_mse(ntk_train, y, times, ntk_test_train, momentum=momentum, **common)
    else:
        _checks.real(momentum, "momentum")
        if _checks.is_traced(momentum) or float(momentum) != 0.0:
            raise ValueError(
                f"momentum={momentum!r} needs discrete=True: heavy ball is defined by its steps; "
                "gradient flow has no momentum."
            )
        out = gradient_flow_mse(ntk_train, y, times, ntk_test_train, **common)
    outs = _out_dims(y.ndim - 1)
    variables = {
        "f_train": ((TIME, "train", *outs), out.train),
        "train_loss": (
            (TIME,),
            _mse(out.train, y[None].astype(out.train.dtype), loss_normalization),
        ),
    }
    if out.test is not None:
        variables["f_test"] = ((TIME, "test", *outs), out.test)
    if y_test is not None:
        variables["test_loss"] = (
            (TIME,),
            _mse(out.test, y_test[None].astype(out.test.dtype), loss_normalization),
        )
    meta = {
        "time_unit": "step" if discrete else "time",
        "loss_normalization": loss_normalization,
    }
    return MSETrajectory(variables, coords={TIME: times}, meta=meta)


def network_trajectory(record, n_train: int, *, lr=None) -> MSETrajectory:
    """A training run's outputs and losses in the layout of :func:`mse_trajectory`.

    ``record`` is a :class:`~nnlab.train.TrainRecord` (or any :class:`nnlab.Record` with
    ``probe_outputs`` over ``(*members, 'time', 'probe', out*)``) of a run whose probe inputs
    are the training points followed by the test points, ``Data(x_train, y_train, x_test,
    y_test, x_probe=jnp.concatenate([x_train, x_test]))``. The first ``n_train`` probes become
    ``f_train`` (axis ``'train'``), the rest ``f_test`` (axis ``'test'``); ``train_loss`` and
    ``test_loss`` are copied; member axes (``'seed'``, ``'width'``, ...) and their coordinates
    stay in front.

    The time axis stays in steps (``time_unit 'step'``), to compare with
    ``mse_trajectory(..., discrete=True)``. With ``lr`` it becomes the gradient-flow time
    ``t = lr · step`` (``time_unit 'time'``), to compare with ``mse_trajectory(..., lr=1.0)``
    evaluated at ``t``; the two then agree up to the Euler error of GD, ``O(lr)``.

    Args:
      record: the training record.
      n_train: number of leading probe points that are training points (``0`` to
        ``n_probe``; all other probes are test points).
      lr: optional learning rate of the run (``> 0``), to put the time axis in flow time.

    Returns:
      An :class:`MSETrajectory` (host or device arrays, as in ``record``).

    Raises:
      TypeError / ValueError: ``record`` not a record, no ``probe_outputs`` (log them with
        ``x_probe``), a bad ``n_train`` or ``lr``.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from nnlab.train import Data, train
      >>> x = jnp.eye(3)
      >>> data = Data(x[:2], jnp.ones((2, 1)), x[2:], jnp.ones((1, 1)), x_probe=x)
      >>> rec = train(lambda p, x: x @ p, jnp.zeros((3, 1)), data, optimizer=optax.sgd(1.0),
      ...             steps=4, log_every=2)
      >>> sim = network_trajectory(rec, 2)
      >>> sim.dims_of("f_test"), sim.time.tolist(), sim.time_unit
      (('time', 'test', 'out0'), [0, 2, 4], 'step')
    """
    if not isinstance(record, Record):
        raise TypeError(
            f"record must be an nnlab.Record (e.g. a TrainRecord), got {type(record).__name__}."
        )
    if "probe_outputs" not in record:
        raise ValueError(
            "record has no probe_outputs: train with Data(..., x_probe=jnp.concatenate([x_train, "
            "x_test])) so that the outputs on the training and test points are logged."
        )
    dims = record.dims_of("probe_outputs")
    if "probe" not in dims or TIME not in dims:
        raise ValueError(
            f"record's probe_outputs must have a 'time' and a 'probe' axis, got dims {dims}."
        )
    axis = dims.index("probe")
    values = record["probe_outputs"]
    n_probe = values.shape[axis]
    n_train = _checks.integer(n_train, "n_train", minimum=0)
    if n_train > n_probe:
        raise ValueError(
            f"n_train={n_train} exceeds the {n_probe} probe points of record; n_train counts the "
            "leading probes that are training points."
        )
    rec = record.as_record()
    coords = dict(rec.coords)
    meta = {"time_unit": rec.meta.get("time_unit", "step")}
    if lr is not None:
        if meta["time_unit"] != "step":
            raise ValueError(
                f"lr converts steps to flow time t = lr · step, but record's time axis is in "
                f"{meta['time_unit']!r}; pass lr=None."
            )
        _checks.real(lr, "lr", positive=True, fix="It is the run's learning rate.")
        steps = coords[TIME]
        # float64 on the host, so that t = lr · step matches a theory's times to 1e-9
        steps = jnp.asarray(steps) if _checks.is_traced(lr) else np.asarray(steps, np.float64)
        coords[TIME] = lr * steps
        meta["time_unit"] = "time"
    lead = (slice(None),) * axis
    variables = {}
    for name, part in (("train", slice(0, n_train)), ("test", slice(n_train, n_probe))):
        if part.stop > part.start:
            new_dims = (*dims[:axis], name, *dims[axis + 1 :])
            variables[f"f_{name}"] = (new_dims, values[(*lead, part)])
    for name in ("train_loss", "test_loss"):
        if name in rec:
            variables[name] = (rec.dims_of(name), rec[name])
    return MSETrajectory(variables, coords=coords, meta=meta)
