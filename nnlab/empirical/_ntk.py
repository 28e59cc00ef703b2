"""Empirical neural tangent kernel: Jacobian contraction, NTK-vector products, structured."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp

from nnlab import _checks

from . import _structured, _validate
from ._contract import (
    check_axes,
    contract_jacobians,
    kernel_out_shape,
    reduce_full_kernel,
    trace_count,
)

Method = Literal["auto", "jacobian", "ntk_vp", "structured"]
_METHODS = ("auto", "jacobian", "ntk_vp", "structured")

#: Bytes one chunk's Jacobian (rows x outputs x parameters) may take when
#: ``batch_size=None``; chunks are balanced so that padding is minimal.
MEMORY_BUDGET = 2**30


def check_inputs(x1, x2, name1="x1", name2="x2"):
    """Checked arrays ``(x1, x2)``: a batch axis of size >= 1, no NaN/inf, matching shapes."""
    return _validate.inputs(x1, x2, name1, name2)


def output_shape(apply_fn, params, x, *, name="apply_fn") -> tuple[int, ...]:
    """Per-example output shape ``out`` of ``apply_fn`` (its outputs are ``(N, *out)``).

    Also refuses an ``apply_fn`` whose output does not depend on ``params`` (see
    :func:`nnlab.empirical._validate.analyze`); works on tracers.
    """
    return _validate.analyze(apply_fn, params, x, name=name)


def _per_example_jacobian(apply_fn, params, x, batch_independent):
    if batch_independent:
        return jax.vmap(lambda xn: jax.jacrev(lambda p: apply_fn(p, xn[None])[0])(params))(x)
    return jax.jacrev(lambda p: apply_fn(p, x))(params)


def _jacobian_parts(apply_fn, params, out_ndim, trace, diag, batch_independent):
    def feats(x):
        return _per_example_jacobian(apply_fn, params, x, batch_independent)

    def pair(j1, j2):
        terms = jax.tree_util.tree_map(
            lambda a, b: contract_jacobians(a, b, out_ndim, trace, diag), j1, j2
        )
        return sum(jax.tree_util.tree_leaves(terms))

    return feats, feats, pair


def _ntk_vp_parts(apply_fn, params, out_shape, trace, diag, batch_independent):
    out_ndim = len(out_shape) + 1
    o = math.prod(out_shape)
    dtype = jnp.result_type(*jax.tree_util.tree_leaves(params))

    def tangents(x2):
        # J2^T e for every cotangent basis vector e of f(x2)
        n2 = x2.shape[0]
        if batch_independent:
            # the vjp of a one-hot cotangent on example m only needs example m
            def vjp_one(xm):
                _, vjp = jax.vjp(lambda p: apply_fn(p, xm[None])[0], params)
                basis = jnp.eye(o, dtype=dtype)
                return jax.vmap(lambda e: vjp(e.reshape(out_shape))[0])(basis)

            t = jax.vmap(vjp_one)(x2)  # leaves (N2, O, *leaf)
            return jax.tree_util.tree_map(lambda a: a.reshape((n2 * o, *a.shape[2:])), t)
        _, vjp2 = jax.vjp(lambda p: apply_fn(p, x2), params)
        basis = jnp.eye(n2 * o, dtype=dtype).reshape((n2 * o, n2, *out_shape))
        return jax.vmap(lambda e: vjp2(e)[0])(basis)

    def pair(x1, t2):
        # J1 v for each tangent v = J2^T e: one jvp over the x1 batch per tangent
        _, jvp1 = jax.linearize(lambda p: apply_fn(p, x1), params)
        k = jax.vmap(jvp1)(t2)  # (N2 O, N1, *out)
        n1 = k.shape[1]
        k = k.reshape((-1, *out_shape, n1, *out_shape))
        r = out_ndim - 1  # k[m, o', n, o] -> K[n, o, m, o']
        k = jnp.moveaxis(k, tuple(range(1 + r, 2 + 2 * r)), tuple(range(0, 1 + r)))
        return reduce_full_kernel(k, out_ndim, trace, diag)

    return (lambda x: x), tangents, pair


def _structured_parts(plan, params, out_shape, trace, diag):
    def feats(x):
        return _structured.features(plan, params, x, out_shape)

    def pair(f1, f2):
        return _structured.kernel_from_features(plan, f1, f2, len(out_shape) + 1, trace, diag)

    return feats, feats, pair


def _pad_rows(x, rows):
    pad = rows - x.shape[0]
    if pad == 0:
        return x
    return jnp.concatenate([x, jnp.broadcast_to(x[:1], (pad, *x.shape[1:]))])


def blockwise(feats1, feats2, pair, x1, x2, batch_size):
    """``pair(feats1(a), feats2(b))`` over row chunks ``a`` of ``x1`` and ``b`` of ``x2``.

    ``x2=None`` means ``x2 = x1``; unchunked, shared features are then computed once
    when ``feats1 is feats2``. Rows are padded by repeating the first row (harmless
    under batch independence) and the padding is sliced away, so the result equals
    the unchunked one.
    """
    n1 = x1.shape[0]
    n2 = n1 if x2 is None else x2.shape[0]
    if batch_size is None or (batch_size >= n1 and batch_size >= n2):
        f1 = feats1(x1)
        if x2 is None and feats1 is feats2:
            return pair(f1, f1)
        return pair(f1, feats2(x1 if x2 is None else x2))
    x2 = x1 if x2 is None else x2

    def split(x):
        nb = -(-x.shape[0] // batch_size)
        xp = _pad_rows(x, nb * batch_size)
        return xp.reshape((nb, batch_size, *x.shape[1:]))

    b1, b2 = split(x1), split(x2)

    def row(a):
        fa = feats1(a)
        return jax.lax.map(lambda b: pair(fa, feats2(b)), b2)

    rows = jax.lax.map(row, b1)
    nb1, nb2, bs = rows.shape[0], rows.shape[1], rows.shape[2]
    rows = jnp.moveaxis(rows, 2, 1).reshape((nb1 * bs, nb2 * bs, *rows.shape[4:]))
    return rows[:n1, :n2]


def _param_count(params) -> int:
    return sum(math.prod(jnp.shape(l)) for l in jax.tree_util.tree_leaves(params))


def method_costs(params, n1, n2, out_shape, plan=None) -> dict[str, float]:
    """FLOP estimates used by ``method='auto'`` (documented in docs/empirical.md).

    With ``P`` parameters, ``O`` outputs per example, and ``N = N1 + N2``:

    * jacobian: ``3 N O P`` to form per-example Jacobians, ``2 N1 N2 O^2 P`` to contract;
    * ntk_vp:   ``3 N2 O P`` for the vjps and ``4 N1 N2 O P`` for the jvps, which
      recompute the forward pass per tangent (a factor ~2 over a plain contraction);
    * structured: ``3 N O P`` for one forward/backward per output, plus
      ``2 N1 N2 O^2 T^2 (d_in + d_out)`` per Dense use and the Jacobian cost of the
      fallback leaves.
    """
    p = _param_count(params)
    o = math.prod(out_shape)
    n = n1 + n2
    costs = {
        "jacobian": 3.0 * n * o * p + 2.0 * n1 * n2 * o * o * p,
        "ntk_vp": 3.0 * n2 * o * p + 4.0 * n1 * n2 * o * p,
    }
    if plan is not None:
        leaves = jax.tree_util.tree_leaves(params)
        c = 3.0 * n * o * p
        for u in plan.dense:
            c += 2.0 * n1 * n2 * o * o * u.t * u.t * (u.d_in + u.d_out)
        for i in plan.fallback:
            c += 2.0 * n1 * n2 * o * o * math.prod(jnp.shape(leaves[i]))
        costs["structured"] = c
    return costs


def empirical_ntk(
    apply_fn: Callable[[Any, jax.Array], jax.Array],
    params: Any,
    x1: jax.Array,
    x2: jax.Array | None = None,
    *,
    method: Method = "auto",
    trace_axes: int | Sequence[int] = (-1,),
    diagonal_axes: int | Sequence[int] = (),
    batch_size: int | None = None,
    batch_independent: bool = True,
) -> jax.Array:
    r"""Empirical neural tangent kernel of ``apply_fn`` at ``params``.

    .. math::
        \hat\Theta(x_1, x_2)_{o o'} = \sum_p
        \frac{\partial f_o(\theta, x_1)}{\partial \theta_p}
        \frac{\partial f_{o'}(\theta, x_2)}{\partial \theta_p}

    (Jacot, Gabriel & Hongler, 2018, arXiv:1806.07572). For outputs of shape
    ``(N, *out)`` the result has shape ``(N1, N2, *kernel_out)``: output axes in
    ``trace_axes`` are **averaged** over, :math:`\frac{1}{d_j}\sum_{o_j}
    \hat\Theta_{\dots o_j \dots,\, \dots o_j \dots}` (the neural-tangents convention; the
    default ``(-1,)`` is the mean over the logits, so for a net with ``k`` i.i.d. readout
    units the traced eNTK estimates the analytic per-output NTK ``nnlab.kernel(...).ntk`` for
    every ``k``; multiply by ``d_j`` for the sum), axes in ``diagonal_axes`` keep only
    ``o == o'`` (one copy), and every other output axis ``j`` contributes an adjacent pair
    ``(d_j, d_j)`` in order.

    Methods (all give the same kernel up to float rounding):

    * ``'jacobian'``: form per-example Jacobians and contract them.
    * ``'ntk_vp'``: NTK-vector products ``J1 (J2^T e)`` (a jvp of a vjp) for each
      cotangent basis vector ``e``; never contracts two Jacobians.
    * ``'structured'``: for Dense layers use ``Theta_W = c^2 (X1 X2^T) * (G1 G2^T)``
      without forming weight gradients (Novak, Sohl-Dickstein & Schoenholz, 2022,
      arXiv:2206.08720); other leaves (biases, conv kernels) use the Jacobian path.
    * ``'auto'``: the smallest estimate of :func:`method_costs`.

    Args:
      apply_fn: ``apply_fn(params, x) -> (N, *out)``: an nnlab layer's ``apply``, a Flax
        linen module's ``apply`` or a plain function. It must use ``params``: a closure
        such as ``lambda p, x: model(x)`` (Flax NNX) is refused with a ValueError; for
        NNX use ``graphdef, params, rest = nnx.split(model, nnx.Param, ...)`` and
        ``lambda p, x: nnx.merge(graphdef, p, rest)(x)``.
      params: parameter pytree; every leaf must be a float array (TypeError otherwise:
        e.g. the ``RngKey``/``RngCount`` leaves of a full ``nnx.split(model)`` state).
      x1: inputs ``(N1, ...)``.
      x2: inputs ``(N2, ...)``; ``None`` means ``x1`` (features are computed once).
      method: one of ``'auto'``, ``'jacobian'``, ``'ntk_vp'``, ``'structured'``.
      trace_axes: output axes averaged over (an int or a sequence of ints; ``()`` keeps
        every output pair).
      diagonal_axes: output axes of which only the diagonal is kept.
      batch_size: rows of ``x1``/``x2`` per chunk (memory bound). ``None`` picks the
        largest chunk whose Jacobian fits in :data:`MEMORY_BUDGET` bytes (no chunking
        for ``'structured'``). Chunked results equal unchunked ones.
      batch_independent: whether example ``i``'s output depends only on example ``i``
        (true for MLPs/CNNs, false with batch norm). When true, Jacobians are taken
        per example; when false, over the whole batch, ``'structured'`` is unavailable
        and no chunking is done.

    Returns:
      The kernel, shape ``(N1, N2, *kernel_out)``.

    Raises:
      TypeError: ``apply_fn`` not callable; ``x1``/``x2`` not arrays; non-float leaves in
        ``params``; ``batch_size``/``trace_axes``/``batch_independent`` of the wrong kind.
      ValueError: an empty batch, NaN/inf in ``x1``/``x2``, an unknown ``method``, bad
        axes, ``params`` without leaves, an ``apply_fn`` whose output does not depend on
        ``params`` (detected on its jaxpr, also under ``jit``), or, for concrete inputs, an
        identically zero kernel.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> f = lambda p, x: jnp.tanh(x @ p["w"]) @ p["v"]
      >>> p = {"w": jnp.ones((3, 4)), "v": jnp.ones((4, 2))}
      >>> empirical_ntk(f, p, jnp.ones((5, 3)), jnp.ones((6, 3))).shape
      (5, 6)
    """
    _validate.function(apply_fn)
    _checks.choice(method, "method", _METHODS)
    x1, x2 = check_inputs(x1, x2)
    batch_size = _validate.optional_batch_size(batch_size)
    batch_independent = _checks.boolean(batch_independent, "batch_independent")
    _validate.float_params(params)
    _validate.nonempty_params(params)
    return _ntk(
        apply_fn, params, x1, x2, method, trace_axes, diagonal_axes, batch_size, batch_independent
    )


def _ntk(
    apply_fn,
    params,
    x1,
    x2,
    method,
    trace_axes,
    diagonal_axes,
    batch_size,
    batch_independent,
    *,
    what="empirical NTK",
    hint="",
):
    """:func:`empirical_ntk` on checked arguments."""
    if not batch_independent:
        if method == "structured":
            raise ValueError(
                "method='structured' needs batch_independent=True (each example's output "
                "may depend only on that example); use 'jacobian' or 'ntk_vp'"
            )
        if batch_size is not None:
            raise ValueError(
                f"batch_size={batch_size} chunks the batch, which changes the outputs of a "
                "function with batch_independent=False; pass batch_size=None"
            )
    out_shape = output_shape(apply_fn, params, x1)
    out_ndim = len(out_shape) + 1
    trace, diag = check_axes(trace_axes, diagonal_axes, out_ndim)
    n1 = x1.shape[0]
    n2 = n1 if x2 is None else x2.shape[0]

    plan = None
    if batch_independent and method in ("auto", "structured"):
        plan = _structured.make_plan(apply_fn, params, x1.shape[1:], x1.dtype)
    if method == "auto":
        costs = method_costs(params, n1, n2, out_shape, plan)
        method = min(costs, key=costs.get)

    if method == "structured":

        def build(p):
            return _structured_parts(plan, p, out_shape, trace, diag)

    else:
        if method == "jacobian":

            def build(p):
                return _jacobian_parts(apply_fn, p, out_ndim, trace, diag, batch_independent)

        else:

            def build(p):
                return _ntk_vp_parts(apply_fn, p, out_shape, trace, diag, batch_independent)

        if batch_size is None and batch_independent:
            itemsize = jnp.dtype(x1.dtype).itemsize
            row_bytes = max(1, math.prod(out_shape) * _param_count(params) * itemsize)
            max_rows = max(1, MEMORY_BUDGET // row_bytes)
            n_max = max(n1, n2)
            if max_rows < n_max:
                batch_size = -(-n_max // -(-n_max // max_rows))

    # one jit around the whole computation: eager op-by-op dispatch of the vmapped
    # Jacobians is far slower than compiling; under an outer jit this is inlined
    count = trace_count(out_shape, trace)

    def kernel(p, a, b):
        k = blockwise(*build(p), a, b, batch_size)
        return k if count == 1 else k / count  # traced axes are averaged, not summed

    k = jax.jit(kernel)(params, x1, x2)
    expected = (n1, n2, *kernel_out_shape(out_shape, trace, diag))
    assert k.shape == expected, (k.shape, expected)
    _validate.check_nonzero(k, params, what=what, hint=hint)
    return k
