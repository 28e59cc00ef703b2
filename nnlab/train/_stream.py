r"""Online learning: a data source that draws a fresh batch from a key at every step.

With ``data=Stream(sample, ...)`` the training loop of :func:`nnlab.train.train` (and
:func:`nnlab.train.train_ensemble`) runs online SGD on fresh samples, the setting of the
statistical-mechanics analyses of on-line learning (Saad & Solla, Phys. Rev. Lett. 74, 4337
(1995); Phys. Rev. E 52, 4225 (1995)): update ``k`` uses the batch
``sample(jax.random.fold_in(step_key, k))``, never a batch seen before.

Keys. From the run's key (``train``'s ``key``; member ``s`` of an ensemble uses
``jax.random.fold_in(k_s, 1)``, its minibatch key in Data mode)
``eval_key, step_key = jax.random.split(key)``.

What is logged as ``train_loss``: the loss on one fixed *evaluation batch*, drawn once at the
start as the first ``n_eval`` examples of ``sample(fold_in(eval_key, j))``, ``j = 0, 1, ...``
(one batch when ``n_eval`` is ``None``). It is independent of every training batch, so at each
log it is an unbiased estimate of the population loss ``E_{(x,y)} L(θ_k)``, and because the
batch is the same at every log it does not fluctuate from log to log. Observables receive a
:class:`~nnlab.train.Data` whose ``x_train``/``y_train`` is that batch (and the stream's test
and probe sets), so every observable written for Data mode works unchanged.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from nnlab import _checks
from nnlab._pytree import register_dataclass


@dataclasses.dataclass(frozen=True)
class Stream:
    """Training data drawn online: ``sample(key) -> (x, y)`` gives one batch.

    ``x`` has shape ``(b, ...)`` and ``y`` ``(b, *out)`` with the same ``b >= 1`` for every
    key (static shapes: ``sample`` is traced once, inside the compiled loop). ``x_test``,
    ``y_test``, ``x_probe`` are fixed arrays used as in :class:`~nnlab.train.Data`.
    ``n_eval`` is the number of examples of the fixed evaluation batch on which
    ``train_loss`` is logged (default: one batch, ``b``); it is drawn as
    ``ceil(n_eval / b)`` batches and truncated. A pytree whose ``sample`` and ``n_eval``
    are static.

    With small batches pass a larger ``n_eval`` (e.g. 1000): it lowers the noise of the
    logged loss and of ``L(θ_0)``, the reference of the relative divergence rule.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> w_star = jnp.array([[1.0], [-2.0]])
      >>> def sample(key):
      ...     x = jax.random.normal(key, (4, 2))
      ...     return x, x @ w_star
      >>> stream = Stream(sample, n_eval=100)
      >>> [a.shape for a in sample(jax.random.key(0))]
      [(4, 2), (4, 1)]
    """

    sample: Callable = dataclasses.field(metadata={"static": True})
    x_test: Any = None
    y_test: Any = None
    x_probe: Any = None
    n_eval: int | None = dataclasses.field(default=None, metadata={"static": True})


register_dataclass(Stream)


class StreamPlan(NamedTuple):
    """A checked stream: its ``sample``, one batch's shapes and the evaluation batch's size."""

    sample: Callable
    x: jax.ShapeDtypeStruct  # one batch
    y: jax.ShapeDtypeStruct
    n_eval: int
    n_batches: int  # batches drawn for the evaluation batch

    @property
    def batch_size(self) -> int:
        return self.x.shape[0]

    def eval_shapes(self):
        """``(x, y)`` structs of the evaluation batch."""
        n = self.n_eval
        return (
            jax.ShapeDtypeStruct((n, *self.x.shape[1:]), self.x.dtype),
            jax.ShapeDtypeStruct((n, *self.y.shape[1:]), self.y.dtype),
        )


def plan_stream(stream: Stream, key, batch_size, *, needs_key: bool = True) -> StreamPlan:
    """Check a :class:`Stream` (with the run's ``key`` and ``batch_size``) and plan it.

    ``sample`` is called through :func:`jax.eval_shape` only (nothing is drawn here).
    """
    _checks.function(stream.sample, "data.sample", "sample(key) -> (x, y)")
    if batch_size is not None:
        raise ValueError(
            f"batch_size must be None when data is a Stream, got batch_size={batch_size!r}: "
            "each step draws one batch from data.sample(key), so set the batch size inside "
            "sample."
        )
    if needs_key and key is None:
        raise ValueError(
            "data is a Stream, which draws every batch from a key, but key is None; pass "
            "key=jax.random.key(...)."
        )
    if key is not None:
        _checks.prng_key(key, "key")
    n_eval = stream.n_eval
    if n_eval is not None:
        n_eval = _checks.integer(
            n_eval, "data.n_eval", fix="It is the size of the evaluation batch, or None."
        )
    out = jax.eval_shape(stream.sample, jax.random.key(0) if key is None else key)
    if not (
        isinstance(out, tuple | list)
        and len(out) == 2
        and all(isinstance(a, jax.ShapeDtypeStruct) for a in out)
    ):
        raise TypeError(
            "data.sample(key) must return a pair (x, y) of arrays, got "
            f"{jax.tree_util.tree_structure(out)}."
        )
    x, y = out
    for name, a in (("x", x), ("y", y)):
        if len(a.shape) < 1 or a.shape[0] < 1:
            raise ValueError(
                f"data.sample(key) returned {name} of shape {a.shape}; it needs a leading "
                "example axis of length >= 1 (one batch)."
            )
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"data.sample(key) returned x of shape {x.shape} and y of shape {y.shape}; they "
            "must have the same number of examples (leading axis)."
        )
    b = x.shape[0]
    n_eval = b if n_eval is None else n_eval
    return StreamPlan(stream.sample, x, y, n_eval, math.ceil(n_eval / b))


def stream_keys(key):
    """``(eval_key, step_key)`` of a run's key."""
    keys = jax.random.split(key)
    return keys[0], keys[1]


def step_batch(plan: StreamPlan, step_key, step):
    """The batch of update ``step``: ``sample(fold_in(step_key, step))``."""
    return plan.sample(jax.random.fold_in(step_key, step))


def eval_batch(plan: StreamPlan, eval_key):
    """The evaluation batch: the first ``n_eval`` examples of ``sample(fold_in(eval_key, j))``."""
    keys = jax.vmap(lambda j: jax.random.fold_in(eval_key, j))(jnp.arange(plan.n_batches))
    xs, ys = jax.vmap(plan.sample)(keys)

    def flat(a):
        return a.reshape(-1, *a.shape[2:])[: plan.n_eval]

    return flat(xs), flat(ys)
