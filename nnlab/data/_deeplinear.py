r"""Deep-linear datasets (Saxe et al. 2014): a hierarchy of categories, a low-rank teacher."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import _checks

from . import _dataset as _ds
from ._dataset import Dataset

_MAX_LEVELS = 12  # 4096 items: the one-hot inputs are (P, P)


def _tree_properties(n_levels: int) -> np.ndarray:
    """``(P, 2P - 1)`` 0/1 matrix: item ``i`` has property ``j`` iff node ``j`` is its ancestor."""
    p = 2**n_levels
    y = np.zeros((p, 2 * p - 1))
    for item in range(p):
        node = p - 1 + item  # heap index of the leaf (root 0; children of j: 2j + 1, 2j + 2)
        while True:
            y[item, node] = 1.0
            if node == 0:
                break
            node = (node - 1) // 2
    return y


def hierarchical(
    key: jax.Array | None = None,
    n: int | None = None,
    *,
    n_levels: int = 3,
    whitened: bool = True,
    dtype=None,
) -> Dataset:
    r"""Items of a binary tree of categories and their properties (Saxe et al. 2014).

    Saxe, McClelland & Ganguli (2014), arXiv:1312.6120, Sec. 2 and Fig. 3: the
    :math:`P = 2^L` items (:math:`L` = ``n_levels``) are the leaves of a complete binary tree
    whose :math:`2P - 1` nodes are properties; an item has the properties on its
    root-to-leaf path. Inputs are one-hot item codes, scaled by :math:`\sqrt P` when
    ``whitened`` so that :math:`\Sigma_{xx} = x^\top x/P = I`.

    The input-output correlation :math:`\Sigma_{yx} = y^\top x/P` (whitened) has one singular
    value per tree depth :math:`k = 0, \dots, L`, with multiplicity 1 for :math:`k = 0` and
    :math:`2^{k-1}` for :math:`k \ge 1`, and :math:`s_k^2 = (2^{L+1-k} - 1)/P`; for
    :math:`L = 3`, :math:`s^2 = (15, 7, 3, 3, 1, 1, 1, 1)/8`. Broader distinctions have larger
    :math:`s` and are learnt first.

    Args:
      key: PRNG key; used only when ``n`` is given (may be ``None`` otherwise).
      n: ``None`` (default): all :math:`P` items once, in tree order (the same arrays as
        ``nnlab.deeplinear.hierarchical_data(n_levels, whitened=whitened)``). An int: ``n``
        items drawn uniformly with replacement (then :math:`\Sigma_{xx}` and
        :math:`\Sigma_{yx}` match the above in expectation).
      n_levels: levels below the root, :math:`1 \le L \le 12`.
      whitened: scale the one-hot inputs by :math:`\sqrt P`.
      dtype: floating dtype (default: JAX's default float).

    Returns:
      :class:`Dataset` with ``x`` ``(P or n, P)`` and ``y`` ``(P or n, 2P - 1)``, properties
      breadth-first (root first). Jittable with ``n`` and ``n_levels`` static.

    Example:
      >>> data = hierarchical(n_levels=2)
      >>> data.x.shape, data.y.shape
      ((4, 4), (4, 7))
      >>> data.y[0].tolist()
      [1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    """
    n_levels = _checks.integer(n_levels, "n_levels")
    if n_levels > _MAX_LEVELS:
        raise ValueError(
            f"n_levels must be between 1 and {_MAX_LEVELS} (2**n_levels items), got {n_levels}."
        )
    whitened = _checks.boolean(whitened, "whitened")
    dtype = _ds.float_dtype(dtype)
    p = 2**n_levels
    x = jnp.asarray(np.eye(p) * (np.sqrt(p) if whitened else 1.0), dtype)
    y = jnp.asarray(_tree_properties(n_levels), dtype)
    if n is None:
        if key is not None:
            _ds.key(key)
        return Dataset(x, y)
    n = _ds.size(n, "n")
    if key is None:
        raise TypeError("key is required when n is given (it draws the items), got None.")
    items = jax.random.randint(_ds.key(key), (n,), 0, p)
    return Dataset(x[items], y[items])


def low_rank_teacher(
    key: jax.Array, n: int, d: int, k: int, *, singular_values: Any, dtype=None
) -> Dataset:
    r"""Linear teacher :math:`y = W^* x`, :math:`W^* = U\,\mathrm{diag}(s)\,V^\top`, whitened x.

    :math:`U` ``(k, r)`` and :math:`V` ``(d, r)`` are the first columns of Haar-random
    orthogonal matrices, and :math:`x = \sqrt n\,Q` with :math:`Q` ``(n, d)`` orthonormal
    columns, so :math:`\Sigma_{xx} = x^\top x/n = I` and :math:`\Sigma_{yx} = y^\top x/n = W^*`
    exactly: the input-output modes have strengths ``singular_values`` (the deep-linear
    setting of Saxe, McClelland & Ganguli 2014, arXiv:1312.6120, with a known target map).
    The same draw as ``nnlab.deeplinear.random_teacher(key, d, k, s, n_samples=n)``.

    Args:
      key: PRNG key (split in three: :math:`U`, :math:`V`, :math:`Q`).
      n: number of examples, :math:`n \ge d`.
      d: input dimension.
      k: output dimension.
      singular_values: the :math:`r \le \min(d, k)` singular values :math:`s \ge 0` (1-D).
      dtype: floating dtype (default: JAX's default float).

    Returns:
      :class:`Dataset` with ``x`` ``(n, d)``, ``y`` ``(n, k)``. Jittable with the sizes static.

    Example:
      >>> import jax
      >>> data = low_rank_teacher(jax.random.key(0), 10, 6, 4, singular_values=[3.0, 1.0])
      >>> s = jax.numpy.linalg.svd(data.y.T @ data.x / 10, compute_uv=False)
      >>> [round(float(v), 4) for v in s[:3]]
      [3.0, 1.0, 0.0]
    """
    key = _ds.key(key)
    n, d, k = _ds.size(n, "n"), _ds.size(d, "d"), _ds.size(k, "k")
    if n < d:
        raise ValueError(
            f"n must be >= d = {d} so that the inputs can be exactly whitened, got n = {n}."
        )
    dtype = _ds.float_dtype(dtype)
    s = _checks.real_array(singular_values, "singular_values", sign="nonnegative").astype(dtype)
    if s.ndim != 1 or s.shape[0] < 1 or s.shape[0] > min(d, k):
        raise ValueError(
            f"singular_values must be 1-D with 1 to min(d, k) = {min(d, k)} entries (the rank "
            f"of a ({k} x {d}) teacher), got shape {s.shape}."
        )
    r = s.shape[0]
    k_u, k_v, k_x = jax.random.split(key, 3)
    u = jax.random.orthogonal(k_u, k, dtype=dtype)[:, :r]
    v = jax.random.orthogonal(k_v, d, dtype=dtype)[:, :r]
    q = jax.random.orthogonal(k_x, n, dtype=dtype)[:, :d]
    x = jnp.sqrt(jnp.asarray(n, dtype)) * q
    w = (u * s[None, :]) @ v.T
    return Dataset(x, x @ w.T)
