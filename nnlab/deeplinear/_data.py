r"""The deep-linear datasets, from :mod:`nnlab.data` (Saxe, McClelland & Ganguli 2014).

:func:`hierarchical_data` and :func:`random_teacher` keep this family's argument order;
both return :func:`nnlab.data.hierarchical` / :func:`nnlab.data.low_rank_teacher` unchanged.
"""

from __future__ import annotations

import jax

from nnlab import _checks
from nnlab.data import Dataset, hierarchical, low_rank_teacher

__all__ = ["Dataset", "hierarchical_data", "random_teacher"]


def hierarchical_data(n_levels: int = 3, *, whitened: bool = True, dtype=None) -> Dataset:
    r"""Items x properties of a binary tree of categories (Saxe et al. 2014, arXiv:1312.6120).

    ``nnlab.data.hierarchical(n_levels=n_levels, whitened=whitened, dtype=dtype)``: the
    :math:`P = 2^L` items are the leaves of a complete binary tree whose :math:`2P - 1` nodes
    are properties, inputs one-hot (times :math:`\sqrt P` when ``whitened``, so
    :math:`\Sigma_{xx} = I`). The modes of :math:`\Sigma_{yx}` have
    :math:`s_k^2 = (2^{L+1-k} - 1)/P` by tree depth :math:`k`; for :math:`L = 3`,
    :math:`s^2 = (15, 7, 3, 3, 1, 1, 1, 1)/8`.

    Returns:
      :class:`~nnlab.data.Dataset` with ``x`` ``(2^L, 2^L)`` and ``y`` ``(2^L, 2^{L+1} - 1)``.

    Example:
      >>> data = hierarchical_data(2)
      >>> data.x.shape, data.y.shape
      ((4, 4), (4, 7))
    """
    return hierarchical(n_levels=n_levels, whitened=whitened, dtype=dtype)


def random_teacher(
    key: jax.Array,
    n_in: int,
    n_out: int,
    singular_values,
    *,
    n_samples: int | None = None,
    dtype=None,
) -> Dataset:
    r"""A random low-rank linear teacher :math:`y = W^* x` with exactly whitened inputs.

    ``nnlab.data.low_rank_teacher(key, n_samples, n_in, n_out,
    singular_values=singular_values)``: :math:`W^* = U\mathrm{diag}(s)V^\top` with
    Haar-random :math:`U, V` and :math:`\Sigma_{xx} = I`, :math:`\Sigma_{yx} = W^*` exactly, so
    the modes of :func:`~nnlab.deeplinear.mode_decomposition` are the teacher's (Saxe et al.
    2014, arXiv:1312.6120, Sec. 2, with a known target map).

    Args:
      key: PRNG key.
      n_in, n_out: input and output dimensions.
      singular_values: the teacher's :math:`r \le \min(n_{in}, n_{out})` singular values.
      n_samples: number of samples :math:`P \ge n_{in}` (default ``n_in``).
      dtype: floating dtype (default: JAX's default float).

    Example:
      >>> import jax
      >>> data = random_teacher(jax.random.key(0), 6, 4, [3.0, 1.0], n_samples=10)
      >>> data.x.shape, data.y.shape
      ((10, 6), (10, 4))
    """
    n_in = _checks.integer(n_in, "n_in")
    if n_samples is None:
        n_samples = n_in
    elif _checks.integer(n_samples, "n_samples") < n_in:
        raise ValueError(
            f"n_samples must be >= n_in = {n_in} so that the inputs can be exactly whitened, "
            f"got {n_samples}."
        )
    return low_rank_teacher(
        key, n_samples, n_in, n_out, singular_values=singular_values, dtype=dtype
    )
