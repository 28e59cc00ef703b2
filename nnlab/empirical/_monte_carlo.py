"""Monte Carlo estimates of the NNGP and NTK over random initialisations."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from nnlab import _checks

from . import _validate
from ._ntk import _METHODS, Method, _ntk, check_inputs

_KINDS = ("nngp", "ntk")


class MonteCarloEstimate(NamedTuple):
    """Sample mean of a kernel over initialisations and its standard error."""

    mean: jax.Array
    standard_error: jax.Array


def _sample(net, key, x1, x2, kinds, method):
    _, params = net.init(key, x1.shape)
    # shape-level checks, run once at trace time (params are tracers under vmap)
    _validate.float_params(params, "the params returned by net.init")
    _validate.analyze(net.apply, params, x1, name="net.apply")
    out = {}
    if "nngp" in kinds:
        f1 = net.apply(params, x1)
        f2 = f1 if x2 is None else net.apply(params, x2)
        o = math.prod(f1.shape[1:])
        out["nngp"] = f1.reshape(f1.shape[0], -1) @ f2.reshape(f2.shape[0], -1).T / o
    if "ntk" in kinds:
        out_shape = jax.eval_shape(net.apply, params, x1).shape[1:]
        axes = tuple(range(1, len(out_shape) + 1))
        # the eNTK averages the traced axes: the mean over the O outputs
        out["ntk"] = _ntk(net.apply, params, x1, x2, method, axes, (), None, True)
    return out


def monte_carlo_kernel(
    net: Any,
    key: jax.Array,
    x1: jax.Array,
    x2: jax.Array | None = None,
    *,
    n_samples: int,
    get: str | Sequence[str] = ("nngp", "ntk"),
    batch_size: int = 8,
    method: Method = "auto",
) -> MonteCarloEstimate | dict[str, MonteCarloEstimate]:
    r"""Mean and standard error of finite-width kernels over random initialisations.

    For ``n_samples`` independent ``params ~ net.init(key_s, x1.shape)``:

    * ``'nngp'``: :math:`\frac1O \sum_o f_o(x_1) f_o(x_2)` (output covariance averaged
      over the ``O`` output units), whose expectation is the analytic NNGP;
    * ``'ntk'``: the empirical NTK traced (averaged) over the outputs,
      :math:`\frac1O \sum_o \hat\Theta_{oo}(x_1, x_2)`, which converges to the analytic
      NTK as width grows.

    The standard error is :math:`s / \sqrt{S}` with ``s`` the sample standard deviation
    (``ddof=1``), accumulated with Chan et al.'s pairwise update so that float32 does
    not cancel. Samples are vmapped in batches of ``batch_size`` seeds and a
    ``lax.scan`` runs over the batches, so memory holds one batch of kernels.

    Args:
      net: an nnlab layer (``init(key, input_shape) -> (out_shape, params)``,
        ``apply(params, x)``); outputs ``(N, *out)``.
      key: a single PRNG key (``jax.random.key(seed)`` or a legacy ``PRNGKey``).
      x1: inputs ``(N1, ...)``.
      x2: inputs ``(N2, ...)``; ``None`` means ``x1``.
      n_samples: number of initialisations, at least 2.
      get: ``'nngp'``, ``'ntk'`` or a tuple of them.
      batch_size: seeds per vmapped batch.
      method: eNTK method, as in :func:`empirical_ntk`.

    Returns:
      A :class:`MonteCarloEstimate` ``(mean, standard_error)`` of shape ``(N1, N2)`` if
      ``get`` is a string, else a dict from kernel name to one.

    Example:
      >>> import jax
      >>> from nnlab import layers as nl
      >>> net = nl.serial(nl.Dense(64), nl.Relu(), nl.Dense(1))
      >>> x = jax.random.normal(jax.random.key(1), (4, 3))
      >>> est = monte_carlo_kernel(net, jax.random.key(0), x, n_samples=16, get="nngp")
      >>> est.mean.shape, est.standard_error.shape
      ((4, 4), (4, 4))
    """
    if not (callable(getattr(net, "init", None)) and callable(getattr(net, "apply", None))):
        raise TypeError(
            "net must be an nnlab layer with init(key, input_shape) -> (out_shape, params) "
            f"and apply(params, x), got {type(net).__name__}: {net!r}. For a bare apply_fn "
            "and fixed params use empirical_ntk/empirical_nngp."
        )
    key = _checks.prng_key(key, "key")
    if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.wrap_key_data(key)  # legacy uint32 key: split gives a key array
    single = isinstance(get, str)
    try:
        kinds = (get,) if single else tuple(get)
    except TypeError:
        kinds = (get,)
    for k in kinds:
        if not isinstance(k, str) or k not in _KINDS:
            raise ValueError(f"get must name kernels among {_KINDS}, got {get!r}")
    if not kinds:
        raise ValueError(f"get must name at least one kernel among {_KINDS}, got {get!r}")
    n_samples = _checks.integer(
        n_samples, "n_samples", minimum=2, fix="At least 2 draws give a standard error."
    )
    batch_size = _checks.integer(batch_size, "batch_size")
    _checks.choice(method, "method", _METHODS)
    x1, x2 = check_inputs(x1, x2)
    batch_size = min(batch_size, n_samples)
    n_batches = -(-n_samples // batch_size)
    keys = jax.random.split(key, n_batches * batch_size).reshape(n_batches, batch_size)
    weights = (jnp.arange(n_batches * batch_size) < n_samples).reshape(n_batches, batch_size)

    def step(carry, inp):
        count, mean, m2 = carry
        kb, wb = inp
        samples = jax.vmap(lambda k: _sample(net, k, x1, x2, kinds, method))(kb)
        nb = jnp.sum(wb).astype(count.dtype)
        new_mean, new_m2 = {}, {}
        for name, s in samples.items():
            w = wb.reshape((-1,) + (1,) * (s.ndim - 1)).astype(s.dtype)
            mb = jnp.sum(w * s, axis=0) / nb
            m2b = jnp.sum(w * (s - mb[None]) ** 2, axis=0)
            total = count + nb
            delta = mb - mean[name]
            new_mean[name] = mean[name] + delta * (nb / total)
            new_m2[name] = m2[name] + m2b + delta**2 * (count * nb / total)
        return (count + nb, new_mean, new_m2), None

    shapes = jax.eval_shape(lambda k: _sample(net, k, x1, x2, kinds, method), keys[0, 0])
    zeros = {n: jnp.zeros(s.shape, s.dtype) for n, s in shapes.items()}
    dtype = next(iter(shapes.values())).dtype
    init = (jnp.zeros((), dtype), zeros, dict(zeros))
    (count, mean, m2), _ = jax.lax.scan(step, init, (keys, weights))
    out = {n: MonteCarloEstimate(mean[n], jnp.sqrt(m2[n] / (count - 1) / count)) for n in kinds}
    return out[kinds[0]] if single else out
