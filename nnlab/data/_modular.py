r"""Modular arithmetic tables, the grokking benchmark (Power et al. 2022)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import _checks

from . import _dataset as _ds
from ._dataset import Dataset

_OPS = ("add", "sub", "mul", "div")


def _is_prime(p: int) -> bool:
    return p >= 2 and all(p % q for q in range(2, int(p**0.5) + 1))


def _table(p: int, op: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Operands ``a``, ``b`` and results ``c`` of every equation, in row-major order."""
    a, b = (g.ravel() for g in np.meshgrid(np.arange(p), np.arange(p), indexing="ij"))
    if op == "div":
        keep = b != 0
        a, b = a[keep], b[keep]
        c = (a * np.array([pow(int(v), p - 2, p) for v in b])) % p  # b^{-1} = b^{p-2} (Fermat)
    else:
        c = {"add": a + b, "sub": a - b, "mul": a * b}[op] % p
    return a, b, c


def modular_arithmetic(
    key: jax.Array, n: int | None = None, *, p: int = 97, op: str = "add", dtype=None
) -> Dataset:
    r"""All equations :math:`a \circ b \equiv c \pmod p`, one-hot encoded, in random order.

    Power, Burda, Edwards, Babuschkin & Misra (2022), arXiv:2201.02177: networks trained on a
    fraction of the table generalise to the rest long after fitting it ("grokking"). The
    table has every pair :math:`(a, b) \in \mathbb Z_p^2` once (``op='div'``: :math:`b \ne 0`,
    :math:`c = a\,b^{-1}`, so :math:`p(p-1)` pairs, :math:`p` prime). Inputs concatenate
    one-hot codes of :math:`a` and :math:`b`, as for the MLPs of Gromov (2023),
    arXiv:2301.02679; targets are one-hot :math:`c`.

    The key permutes the table; ``data.split(train_fraction)`` (or ``split(n_train)``) then
    gives a random train/test split in which every equation appears exactly once.

    Args:
      key: PRNG key (the order of the equations, hence the split).
      n: number of equations: ``None`` (default) for the whole table, else the first ``n`` of
        the permuted table (a random subset without replacement).
      p: modulus :math:`p \ge 2` (default 97, as in Power et al.).
      op: ``'add'`` (:math:`a + b`), ``'sub'`` (:math:`a - b`), ``'mul'`` (:math:`ab`) or
        ``'div'`` (:math:`a b^{-1}`, prime ``p``).
      dtype: floating dtype (default: JAX's default float).

    Returns:
      :class:`Dataset` with ``x`` ``(n, 2p)`` (``a = x[:, :p].argmax(1)``,
      ``b = x[:, p:].argmax(1)``) and ``y`` ``(n, p)`` (``c = y.argmax(1)``). Jittable with
      ``n``, ``p`` and ``op`` static.

    Example:
      >>> import jax
      >>> train, test = modular_arithmetic(jax.random.key(0), p=5).split(0.6)
      >>> train.x.shape, test.y.shape
      ((15, 10), (10, 5))
    """
    key = _ds.key(key)
    p = _ds.size(p, "p", minimum=2)
    _checks.choice(op, "op", _OPS)
    if op == "div" and not _is_prime(p):
        raise ValueError(f"op='div' needs a prime p (every b != 0 invertible mod p), got p={p}.")
    dtype = _ds.float_dtype(dtype)
    a, b, c = _table(p, op)
    total = len(c)
    n = total if n is None else _ds.size(n, "n")
    if n > total:
        raise ValueError(f"n must be <= {total} (the size of the {op} table mod {p}), got {n}.")
    order = jax.random.permutation(key, total)[:n]
    a, b, c = (jnp.asarray(v)[order] for v in (a, b, c))
    x = jnp.concatenate([_ds.one_hot(a, p, dtype), _ds.one_hot(b, p, dtype)], axis=1)
    return Dataset(x, _ds.one_hot(c, p, dtype))
