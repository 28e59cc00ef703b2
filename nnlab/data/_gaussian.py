r"""Isotropic inputs: Gaussian, uniform on a sphere, and a Gaussian mixture of classes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from nnlab import _checks

from . import _dataset as _ds
from ._dataset import Dataset


def _labelled(x: jax.Array, target: Callable | None, dtype: Any) -> Dataset:
    n = x.shape[0]
    if target is None:
        return Dataset(x, jnp.zeros((n, 0), dtype))
    _checks.function(target, "target", "target(x) -> y of shape (n,) or (n, k)")
    return Dataset(x, _ds.as_targets(target(x), n, dtype))


def gaussian(
    key: jax.Array, n: int, d: int, *, target: Callable | None = None, dtype=None
) -> Dataset:
    r"""Standard Gaussian inputs :math:`x_i \sim \mathcal N(0, I_d)`, labelled by ``target``.

    The input distribution of teacher-student and NTK/mean-field experiments (e.g. Goldt et
    al. 2019, arXiv:1906.08632; Jacot et al. 2018, arXiv:1806.07572), with
    :math:`\mathbb E\,\|x\|^2 = d`.
    ``x = jax.random.normal(key, (n, d), dtype)``: the same draw as that call.

    Args:
      key: PRNG key.
      n: number of examples.
      d: input dimension.
      target: ``target(x) -> y`` applied to the ``(n, d)`` inputs, returning ``(n,)`` (made
        ``(n, 1)``) or ``(n, k)``, cast to ``dtype``. ``None`` (default) gives unlabelled
        inputs: ``y`` has shape ``(n, 0)``, so ``x`` alone feeds a kernel or a probe set.
      dtype: floating dtype (default: JAX's default float).

    Returns:
      :class:`Dataset` with ``x`` ``(n, d)``. Jittable with ``n``, ``d`` and ``target`` static.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> data = gaussian(jax.random.key(0), 4, 3, target=lambda x: jnp.sum(x, axis=1))
      >>> data.x.shape, data.y.shape
      ((4, 3), (4, 1))
      >>> gaussian(jax.random.key(0), 4, 3).y.shape
      (4, 0)
    """
    key = _ds.key(key)
    n, d = _ds.size(n, "n"), _ds.size(d, "d")
    dtype = _ds.float_dtype(dtype)
    return _labelled(jax.random.normal(key, (n, d), dtype), target, dtype)


def sphere(
    key: jax.Array,
    n: int,
    d: int,
    *,
    radius: float | None = None,
    target: Callable | None = None,
    dtype=None,
) -> Dataset:
    r"""Inputs uniform on the sphere :math:`\{x \in \mathbb R^d : \|x\| = r\}`.

    :math:`x = r\,g/\|g\|` with :math:`g \sim \mathcal N(0, I_d)` (the normalised Gaussian is
    uniform on the sphere by rotation invariance). The default radius :math:`r = \sqrt d` gives
    :math:`\|x\|^2/d = 1`, the normalisation under which the NNGP/NTK recursions act on
    :math:`x\cdot x'/d` (Jacot et al. 2018, arXiv:1806.07572); ``radius=1`` gives unit vectors.
    Each coordinate has :math:`\mathbb E\,x_j = 0`, :math:`\mathbb E\,x_j^2 = r^2/d`.

    Args:
      key: PRNG key (``g = jax.random.normal(key, (n, d), dtype)``).
      n: number of examples.
      d: input dimension.
      radius: :math:`r > 0` (default :math:`\sqrt d`).
      target: as in :func:`gaussian` (default: ``y`` of shape ``(n, 0)``).
      dtype: floating dtype (default: JAX's default float).

    Returns:
      :class:`Dataset` with ``x`` ``(n, d)``. Jittable with ``n``, ``d`` and ``target`` static.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> x = sphere(jax.random.key(0), 3, 4).x
      >>> [round(float(v), 4) for v in jnp.sum(x**2, axis=1)]
      [4.0, 4.0, 4.0]
    """
    key = _ds.key(key)
    n, d = _ds.size(n, "n"), _ds.size(d, "d")
    dtype = _ds.float_dtype(dtype)
    if radius is None:
        radius = jnp.sqrt(jnp.asarray(d, dtype))
    else:
        radius = jnp.asarray(_checks.real(radius, "radius", positive=True), dtype)
    g = jax.random.normal(key, (n, d), dtype)
    x = g / jnp.linalg.norm(g, axis=1, keepdims=True) * radius
    return _labelled(x, target, dtype)


def gaussian_mixture(
    key: jax.Array,
    n: int,
    d: int,
    *,
    n_classes: int = 2,
    separation: float = 1.0,
    dtype=None,
) -> Dataset:
    r"""Classes as isotropic Gaussian clusters around random means, labels one-hot.

    Class means :math:`\mu_c = \sigma\, m_c` with :math:`m_c \sim \mathcal N(0, I_d)`
    (:math:`\sigma` = ``separation``); example :math:`i` has class :math:`c_i = i \bmod C` and
    :math:`x_i = \mu_{c_i} + \varepsilon_i`, :math:`\varepsilon_i \sim \mathcal N(0, I_d)`. The
    setting in which the Hessian of the cross-entropy loss shows :math:`C` outliers
    (Papyan 2019, arXiv:1901.08244). Classes are balanced to within one example.

    Args:
      key: PRNG key (split in two: means, noise).
      n: number of examples.
      d: input dimension.
      n_classes: number of classes :math:`C \ge 1`.
      separation: scale :math:`\sigma \ge 0` of the class means (cluster distance
        :math:`\approx \sigma\sqrt{2d}`).
      dtype: floating dtype (default: JAX's default float).

    Returns:
      :class:`Dataset` with ``x`` ``(n, d)`` and one-hot ``y`` ``(n, n_classes)``; the class
      index is ``y.argmax(1)``. Jittable with the sizes static.

    Example:
      >>> import jax
      >>> data = gaussian_mixture(jax.random.key(0), 6, 2, n_classes=3)
      >>> data.y.argmax(1).tolist()
      [0, 1, 2, 0, 1, 2]
    """
    key = _ds.key(key)
    n, d = _ds.size(n, "n"), _ds.size(d, "d")
    n_classes = _ds.size(n_classes, "n_classes")
    _checks.real(separation, "separation", minimum=0.0)
    dtype = _ds.float_dtype(dtype)
    k_means, k_noise = jax.random.split(key)
    means = separation * jax.random.normal(k_means, (n_classes, d), dtype)
    labels = jnp.arange(n) % n_classes
    x = means[labels] + jax.random.normal(k_noise, (n, d), dtype)
    return Dataset(x.astype(dtype), _ds.one_hot(labels, n_classes, dtype))
