"""Output-axis bookkeeping shared by the empirical kernels.

An empirical kernel of a function with outputs of shape ``(N, *out)`` has shape
``(N1, N2, *kernel_out)`` where ``kernel_out`` walks the output axes ``1..r`` in
order and, for each axis ``j`` of size ``d_j``,

* contributes nothing if ``j`` is in ``trace_axes`` (the axis is *averaged* over:
  ``(1/d_j) sum_o K[..., o, o, ...]``),
* contributes ``(d_j,)`` if ``j`` is in ``diagonal_axes`` (one copy, the diagonal),
* contributes ``(d_j, d_j)`` otherwise (the pair ``(o, o')``, adjacent).

This is the neural-tangents convention (Novak et al., 2022, arXiv:2206.08720). The
einsums below *sum* over traced axes; :func:`trace_count` gives the number of terms that
the callers divide by.
"""

from __future__ import annotations

import math
import numbers
import string
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

_LETTERS = [c for c in string.ascii_letters if c not in "nmts"]


def normalize_axes(axes: int | Sequence[int], out_ndim: int, name: str) -> tuple[int, ...]:
    """Turn ``axes`` into sorted positive output-axis indices in ``1..out_ndim-1``.

    Numpy integers count as ints; bools, floats and strings are a TypeError.
    """
    if isinstance(axes, numbers.Integral | np.integer) and not isinstance(axes, bool):
        axes = (axes,)
    if isinstance(axes, str | bytes):
        axes = None  # a string is a sequence, but not of axes
    try:
        axes = tuple(axes)
    except TypeError:
        raise TypeError(
            f"{name} must be an int or a sequence of ints (output axes), got {axes!r}; "
            "use () for none."
        ) from None
    result = []
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, numbers.Integral | np.integer):
            raise TypeError(
                f"{name} must contain ints (output axes), got {a!r} in {axes!r}; "
                "for example (-1,) for the last output axis."
            )
        a = int(a)
        if not -out_ndim <= a < out_ndim:
            raise ValueError(
                f"{name}={axes!r} has axis {a}, out of range for outputs of rank {out_ndim} "
                f"(axis 0 is the batch axis); valid axes are 1..{out_ndim - 1} or "
                f"-{out_ndim - 1}..-1"
            )
        a = a % out_ndim
        if a == 0:
            raise ValueError(
                f"{name}={axes!r} names the batch axis 0; only output axes 1..{out_ndim - 1} "
                "(or negative indices) can be traced or diagonalised"
            )
        result.append(a)
    if len(set(result)) != len(result):
        raise ValueError(f"{name}={axes!r} repeats an axis; name each axis once")
    return tuple(sorted(result))


def check_axes(trace_axes, diagonal_axes, out_ndim: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Validate and normalise ``trace_axes``/``diagonal_axes`` for outputs of rank ``out_ndim``."""
    if out_ndim < 1:
        raise ValueError(
            "apply_fn must return an array with a leading batch axis, got a scalar output"
        )
    t = normalize_axes(trace_axes, out_ndim, "trace_axes")
    d = normalize_axes(diagonal_axes, out_ndim, "diagonal_axes")
    if set(t) & set(d):
        raise ValueError(
            f"trace_axes={trace_axes!r} and diagonal_axes={diagonal_axes!r} share an axis; "
            "an axis is either averaged over (traced) or diagonalised, not both"
        )
    return t, d


def trace_count(out_shape, trace) -> int:
    """Number of terms averaged over by tracing: the product of the traced axis sizes."""
    return math.prod(out_shape[j - 1] for j in trace)


def output_subscripts(out_ndim: int, trace: tuple[int, ...], diag: tuple[int, ...]):
    """Einsum subscripts ``(side1, side2, result)`` for output axes ``1..out_ndim-1``."""
    s1, s2, res = "", "", ""
    letters = iter(_LETTERS)
    for j in range(1, out_ndim):
        a = next(letters)
        if j in trace:
            s1, s2 = s1 + a, s2 + a
        elif j in diag:
            s1, s2, res = s1 + a, s2 + a, res + a
        else:
            b = next(letters)
            s1, s2, res = s1 + a, s2 + b, res + a + b
    return s1, s2, res, letters


def kernel_out_shape(out_shape, trace, diag) -> tuple[int, ...]:
    """The trailing shape ``kernel_out`` of the kernel for per-example outputs ``out_shape``."""
    shape: list[int] = []
    for j, d in enumerate(out_shape, start=1):
        if j in trace:
            continue
        shape += [d] if j in diag else [d, d]
    return tuple(shape)


def contract_jacobians(j1, j2, out_ndim, trace, diag):
    """``sum_p J1[n, o, p] J2[m, o', p]`` with the output axes handled as documented.

    ``j1``: ``(N1, *out, *leaf)``, ``j2``: ``(N2, *out, *leaf)``.
    """
    r = out_ndim - 1
    j1 = j1.reshape((*j1.shape[: 1 + r], -1))
    j2 = j2.reshape((*j2.shape[: 1 + r], -1))
    s1, s2, res, letters = output_subscripts(out_ndim, trace, diag)
    p = next(letters)
    return jnp.einsum(f"n{s1}{p},m{s2}{p}->nm{res}", j1, j2)


def reduce_full_kernel(k, out_ndim, trace, diag):
    """Apply trace/diagonal to a full kernel ``K[n, *o, m, *o']``."""
    s1, s2, res, _ = output_subscripts(out_ndim, trace, diag)
    return jnp.einsum(f"n{s1}m{s2}->nm{res}", k)
