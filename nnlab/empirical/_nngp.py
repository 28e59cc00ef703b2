"""Empirical NNGP (output or last-layer-feature outer products) and the pseudo-NTK."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp

from nnlab import _checks

from . import _structured, _validate
from ._contract import check_axes, output_subscripts, trace_count
from ._ntk import _METHODS, Method, _ntk, check_inputs, output_shape

_FEATURES = ("output", "last_layer")


def empirical_nngp(
    apply_fn: Callable[[Any, jax.Array], jax.Array],
    params: Any,
    x1: jax.Array,
    x2: jax.Array | None = None,
    *,
    trace_axes: int | Sequence[int] = (-1,),
    diagonal_axes: int | Sequence[int] = (),
    features: Literal["output", "last_layer"] = "output",
) -> jax.Array:
    r"""Empirical NNGP kernel: the outer product of outputs or of last-layer features.

    ``features='output'``: :math:`K(x_1, x_2)_{oo'} = f_o(x_1) f_{o'}(x_2)`, with the
    output axes handled as in :func:`empirical_ntk` (shape ``(N1, N2, *kernel_out)``;
    traced axes are **averaged** over, so the default ``(-1,)`` is
    :math:`\frac1O \sum_o f_o(x_1) f_o(x_2)`). Averaged over initialisations it
    converges to the analytic NNGP ``nnlab.kernel(...).nngp`` for any number of outputs
    (Neal, 1996; Lee et al., 2018, arXiv:1711.00165); for one hidden layer it is an
    unbiased estimator at every width.

    ``features='last_layer'``: :math:`K(x_1, x_2) = \phi(x_1)\cdot\phi(x_2) / n`, where
    :math:`\phi \in \mathbb{R}^n` is the input of the *last* Dense (``dot_general``)
    layer whose weight is a parameter leaf, found by tracing ``apply_fn`` (see
    ``'structured'`` in :func:`empirical_ntk`); shape ``(N1, N2)``. For a readout
    ``f = W_std/sqrt(n) phi W + b_std b`` with i.i.d. standard normal ``W, b``, the
    expected output covariance is ``W_std^2 K + b_std^2``. Needs batch independence.

    Args:
      apply_fn: ``apply_fn(params, x) -> (N, *out)``. If ``params`` has leaves,
        ``apply_fn`` must use them (a closure such as the Flax NNX ``lambda p, x:
        model(x)`` is refused with a ValueError, see :func:`empirical_ntk`).
      params: parameter pytree (not differentiated: any leaves, ``None`` for a fixed
        feature map).
      x1: inputs ``(N1, ...)``.
      x2: inputs ``(N2, ...)``; ``None`` means ``x1``.
      trace_axes: output axes averaged over (``features='output'`` only).
      diagonal_axes: output axes of which only the diagonal is kept (``'output'`` only).
      features: ``'output'`` or ``'last_layer'``.

    Returns:
      The kernel.

    Example:
      >>> import jax.numpy as jnp
      >>> f = lambda p, x: jnp.tanh(x @ p) / 2
      >>> empirical_nngp(f, jnp.ones((3, 4)), jnp.ones((5, 3))).shape
      (5, 5)
    """
    _validate.function(apply_fn)
    x1, x2 = check_inputs(x1, x2)
    _checks.choice(features, "features", _FEATURES)
    if features == "output":
        # f(x1) f(x2) needs no derivative: a function that closes over its parameters
        # (the Flax NNX idiom) still gives the right outer product.
        out_shape = _validate.analyze(apply_fn, params, x1, require_use=False)
        out_ndim = len(out_shape) + 1
        trace, diag = check_axes(trace_axes, diagonal_axes, out_ndim)
        f1 = apply_fn(params, x1)
        f2 = f1 if x2 is None else apply_fn(params, x2)
        s1, s2, res, _ = output_subscripts(out_ndim, trace, diag)
        k = jnp.einsum(f"n{s1},m{s2}->nm{res}", f1, f2)
        count = trace_count(out_shape, trace)
        return k if count == 1 else k / count  # traced axes are averaged, not summed
    output_shape(apply_fn, params, x1)
    plan = _structured.make_plan(apply_fn, params, x1.shape[1:], x1.dtype)
    if not plan.eligible:
        raise ValueError(
            "features='last_layer' found no Dense layer (a dot_general with a parameter "
            "weight used only there) in apply_fn; use features='output' on a function "
            "that returns the features instead"
        )
    last = max(plan.eligible, key=lambda u: u.eqn)
    leaves = jax.tree_util.tree_leaves(params)

    def phi(x):
        def one(xn):
            _, rec = _structured._evaluate(
                plan.closed, leaves, xn[None], {}, {last.eqn: last.x_pos}
            )
            xa = rec[last.eqn]
            free = [i for i in range(xa.ndim) if i not in last.x_contract]
            xa = jnp.transpose(xa, (*free, *last.x_contract))
            return xa.reshape(last.t, last.d_in)

        return jax.vmap(one)(x)

    p1 = phi(x1)
    p2 = p1 if x2 is None else phi(x2)
    return jnp.einsum("nti,mti->nm", p1, p2) / (last.d_in * last.t)


def pseudo_ntk(
    apply_fn: Callable[[Any, jax.Array], jax.Array],
    params: Any,
    x1: jax.Array,
    x2: jax.Array | None = None,
    *,
    method: Method = "auto",
    batch_size: int | None = None,
) -> jax.Array:
    r"""Pseudo-NTK: the eNTK of the sum of the logits, divided by the number of logits.

    .. math::
        \mathrm{pNTK}(x_1, x_2) = \nabla_\theta \Big(\tfrac{1}{\sqrt O}\sum_o f_o(x_1)\Big)
        \cdot \nabla_\theta \Big(\tfrac{1}{\sqrt O}\sum_o f_o(x_2)\Big)

    (Mohamadi, Bae & Sutherland, 2023, "A fast, well-founded approximation to the
    empirical neural tangent kernel", arXiv:2206.12543). It costs one output instead
    of ``O``. Error bound (their main result, informally): for a network whose last
    layer is a Dense readout of width ``n`` at (standard or NTK) initialisation, the
    off-diagonal blocks ``Theta[o, o']`` (``o != o'``) of the full eNTK are
    ``O(1/sqrt(n))`` and every diagonal block differs from the pNTK by
    ``O(1/sqrt(n))`` relative to its size, so
    ``||Theta - pNTK (x) I_O||_F / ||Theta||_F = O(n^{-1/2})`` with high probability;
    ``tests/test_empirical.py`` checks this rate. It is not a bound after training.

    Args:
      apply_fn: ``apply_fn(params, x) -> (N, *out)``; every non-batch axis is a logit axis.
        It must use ``params`` (see :func:`empirical_ntk`).
      params: parameter pytree of float leaves.
      x1: inputs ``(N1, ...)``.
      x2: inputs ``(N2, ...)``; ``None`` means ``x1``.
      method: as in :func:`empirical_ntk`.
      batch_size: as in :func:`empirical_ntk`.

    Returns:
      ``(N1, N2)`` kernel.

    Example:
      >>> import jax.numpy as jnp
      >>> f = lambda p, x: jnp.tanh(x @ p["w"]) @ p["v"]
      >>> p = {"w": jnp.ones((3, 4)), "v": jnp.ones((4, 10))}
      >>> pseudo_ntk(f, p, jnp.ones((5, 3))).shape
      (5, 5)
    """
    _validate.function(apply_fn)
    _checks.choice(method, "method", _METHODS)
    x1, x2 = check_inputs(x1, x2)
    batch_size = _validate.optional_batch_size(batch_size)
    _validate.float_params(params)
    _validate.nonempty_params(params)
    out_shape = output_shape(apply_fn, params, x1)
    o = math.prod(out_shape)
    axes = tuple(range(1, len(out_shape) + 1))

    def summed(p, x):
        y = apply_fn(p, x)
        return jnp.sum(y, axis=axes).reshape(-1, 1) / jnp.sqrt(jnp.asarray(o, y.dtype))

    hint = "; for the pseudo-NTK, also a constant sum of the outputs (e.g. softmax probabilities)"
    return _ntk(
        summed, params, x1, x2, method, (-1,), (), batch_size, True, what="pseudo-NTK", hint=hint
    )
