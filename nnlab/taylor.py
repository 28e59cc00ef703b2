r"""Taylor models of a network in its parameters: linearisation and higher orders.

For :math:`\Delta = \theta - \theta_0`,

.. math::
    f^{(k)}(\theta, x) = \sum_{j=0}^{k} \tfrac{1}{j!} D^j f(\theta_0, x)[\Delta, \dots, \Delta],

evaluated with nested forward-mode derivatives along the single direction
:math:`\Delta` (``jax.jvp`` of ``jax.jvp``), so no Jacobian or Hessian is ever
materialised. Order 1 is the linearised network of Lee et al. (2019,
arXiv:1902.06720); order 2 is the neural quadratic model of Zhu, Liu, Radhakrishnan
& Belkin (2022, arXiv:2205.11787).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nnlab.empirical import _validate

__all__ = ["expand", "linearize"]


def _check_params(params, params0):
    s1 = jax.tree_util.tree_structure(params)
    s0 = jax.tree_util.tree_structure(params0)
    if s1 != s0:
        raise ValueError(f"params must have the structure of params0; got {s1}, expected {s0}")
    for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(params0)):
        if jnp.shape(a) != jnp.shape(b):
            raise ValueError(
                f"params leaf of shape {jnp.shape(a)} does not match params0 leaf of shape "
                f"{jnp.shape(b)}"
            )


def _derivatives(f, p0, delta, order):
    """``(f(p0), Df[d], D^2 f[d, d], ..., D^order f[d, ..., d])`` by nested jvps."""

    def level(k):
        if k == 0:
            return lambda p: (f(p),)
        inner = level(k - 1)

        def g(p):
            primals, tangents = jax.jvp(inner, (p,), (delta,))
            return (*primals, tangents[-1])

        return g

    return level(order)(p0)


def expand(
    apply_fn: Callable[[Any, jax.Array], Any], params0: Any, order: int
) -> Callable[[Any, jax.Array], Any]:
    r"""Order-``order`` Taylor expansion of ``apply_fn`` around ``params0``.

    .. math::
        f^{(k)}(\theta, x) = \sum_{j=0}^{k} \tfrac{1}{j!} D^j f(\theta_0, x)[\Delta^{\otimes j}],
        \qquad \Delta = \theta - \theta_0

    Args:
      apply_fn: ``apply_fn(params, x)``; any pytree output.
      params0: expansion point: a pytree of float leaves (TypeError otherwise, e.g. for the
        integer ``RngCount`` leaves of a full Flax ``nnx.split(model)`` state; split with
        ``nnx.split(model, nnx.Param, ...)``).
      order: non-negative int (numpy ints accepted); 1 is :func:`linearize`, 2 the neural
        quadratic model (Zhu et al., 2022, arXiv:2205.11787).

    Returns:
      A function ``f_k(params, x)`` with the signature of ``apply_fn``. Its cost grows
      like ``2^order`` forward passes (nested jvps). When ``x`` is an array it is checked
      eagerly: an empty leading axis or NaN/inf is a ValueError (under ``jit`` only its
      shape is checked); ``params`` must match ``params0`` leaf by leaf.

    Example:
      >>> import jax.numpy as jnp
      >>> f = lambda p, x: jnp.sin(p * x)
      >>> f2 = expand(f, 0.0, 2)
      >>> float(f2(0.1, jnp.asarray(1.0)))  # sin(t) = t + O(t^3)
      0.1...
    """
    _validate.function(apply_fn)
    # a wrong kind is a ValueError here (not TypeError) for backward compatibility
    if isinstance(order, bool) or not isinstance(order, numbers.Integral | np.integer):
        raise ValueError(f"order must be a non-negative int such as 1 or 2, got {order!r}")
    order = int(order)
    if order < 0:
        raise ValueError(f"order must be a non-negative int such as 1 or 2, got {order!r}")
    _validate.float_params(params0, "params0")

    def taylor_fn(params, x):
        _validate.float_params(params)
        _check_params(params, params0)
        if hasattr(x, "shape") and hasattr(x, "dtype"):
            x = _validate.input_array(x, "x", batched=False)
        delta = jax.tree_util.tree_map(lambda a, b: a - b, params, params0)
        terms = _derivatives(lambda p: apply_fn(p, x), params0, delta, order)
        total = terms[0]
        for j in range(1, order + 1):
            c = 1.0 / math.factorial(j)
            total = jax.tree_util.tree_map(lambda t, d, c=c: t + c * d, total, terms[j])
        return total

    return taylor_fn


def linearize(
    apply_fn: Callable[[Any, jax.Array], Any], params0: Any
) -> Callable[[Any, jax.Array], Any]:
    r"""Linearised network :math:`f(\theta_0, x) + J(\theta_0, x)(\theta - \theta_0)`.

    Lee, Xiao, Schoenholz, Bahri, Novak, Sohl-Dickstein & Pennington (2019),
    "Wide neural networks of any depth evolve as linear models under gradient
    descent", arXiv:1902.06720. Same as ``expand(apply_fn, params0, 1)``.

    Args:
      apply_fn: ``apply_fn(params, x)``.
      params0: linearisation point.

    Returns:
      ``f_lin(params, x)`` with the signature of ``apply_fn``.

    Example:
      >>> import jax.numpy as jnp
      >>> f_lin = linearize(lambda p, x: jnp.exp(p * x), 0.0)
      >>> float(f_lin(0.5, jnp.asarray(2.0)))  # 1 + 2 * 0.5
      2.0
    """
    return expand(apply_fn, params0, 1)
