r"""Sparse parities on the Boolean hypercube (Barak et al. 2022)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import _checks

from . import _dataset as _ds
from ._dataset import Dataset


def _sizes(d: Any, k: Any) -> tuple[int, int]:
    d, k = _ds.size(d, "d"), _ds.size(k, "k")
    if k > d:
        raise ValueError(f"k must be <= d = {d} (k of the d bits enter the parity), got k = {k}.")
    return d, k


def parity_support(key: jax.Array, d: int, k: int) -> jax.Array:
    """The sorted ``(k,)`` bit indices :math:`S` that ``parity(key, n, d, k)`` multiplies.

    Uniform over the :math:`\\binom{d}{k}` subsets, drawn from the first half of
    ``jax.random.split(key)``. Jittable with ``d`` and ``k`` static.

    Example:
      >>> import jax
      >>> parity_support(jax.random.key(0), 10, 3).shape
      (3,)
    """
    key = _ds.key(key)
    d, k = _sizes(d, k)
    return jnp.sort(jax.random.choice(jax.random.split(key)[0], d, (k,), replace=False))


def parity(key: jax.Array, n: int, d: int, k: int, *, support: Any = None, dtype=None) -> Dataset:
    r"""Sparse :math:`k`-parity :math:`y = \prod_{i \in S} x_i` of uniform :math:`x \in \{\pm1\}^d`.

    Barak, Edelman, Goel, Kakade, Malach & Zhang (2022), arXiv:2207.08799: learning a hidden
    :math:`k`-subset :math:`S` of :math:`d` bits takes SGD on neural networks about
    :math:`d^{O(k)}` steps. Labels are :math:`\pm 1`, balanced (:math:`\mathbb E\,y = 0`), and
    uncorrelated with every product of fewer than :math:`k` bits or of any other subset.

    Args:
      key: PRNG key (split in two: the support, the inputs).
      n: number of examples.
      d: input dimension (bits).
      k: parity degree, :math:`1 \le k \le d`.
      support: the :math:`k` bit indices :math:`S` (default: a uniformly random subset, the one
        :func:`parity_support` returns for this key). Concrete values are checked: distinct, in
        ``[0, d)``.
      dtype: floating dtype (default: JAX's default float).

    Returns:
      :class:`Dataset` with ``x`` ``(n, d)`` of :math:`\pm 1` and ``y`` ``(n, 1)``. Jittable
      with ``n``, ``d``, ``k`` static.

    Example:
      >>> import jax
      >>> data = parity(jax.random.key(0), 4, 5, 2, support=[0, 1])
      >>> bool((data.y[:, 0] == data.x[:, 0] * data.x[:, 1]).all())
      True
    """
    key = _ds.key(key)
    n = _ds.size(n, "n")
    d, k = _sizes(d, k)
    dtype = _ds.float_dtype(dtype)
    k_x = jax.random.split(key)[1]
    if support is None:
        support = parity_support(key, d, k)
    else:
        support = _check_support(support, d, k)
    x = jax.random.rademacher(k_x, (n, d), dtype)
    return Dataset(x, jnp.prod(x[:, support], axis=1, keepdims=True))


def _check_support(support: Any, d: int, k: int) -> jax.Array:
    if not hasattr(support, "shape"):
        try:
            support = np.asarray(support)
        except (TypeError, ValueError) as err:
            raise TypeError(f"support must be a sequence of {k} ints, got {support!r}.") from err
    if not jnp.issubdtype(support.dtype, jnp.integer) or support.shape != (k,):
        raise ValueError(
            f"support must hold k = {k} integer bit indices (shape ({k},)), got {support!r}."
        )
    if not _checks.is_traced(support):
        host = np.asarray(support)
        if host.min() < 0 or host.max() >= d or len(set(host.tolist())) != k:
            raise ValueError(f"support must be {k} distinct indices in [0, {d}), got {host}.")
    return jnp.asarray(support)
