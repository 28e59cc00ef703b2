r"""Teacher-student data: targets from a fixed (random) teacher on isotropic inputs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from nnlab import _checks

from . import _dataset as _ds
from ._dataset import Dataset
from ._gaussian import gaussian, sphere


def _teacher_fn(teacher: Any, key: jax.Array, input_shape: tuple[int, int]) -> Callable:
    """``teacher`` as ``x -> y``: a ``(net, params)`` pair, a network to initialise, a callable."""
    if isinstance(teacher, tuple):
        if len(teacher) != 2:
            raise ValueError(
                f"teacher as a tuple must be (network, params), got a tuple of {len(teacher)}."
            )
        net, params = teacher
        apply = getattr(net, "apply", net)
        _checks.function(apply, "teacher[0]", "(a network with .apply, or apply_fn(params, x))")
        return lambda x: apply(params, x)
    if hasattr(teacher, "init") and hasattr(teacher, "apply"):
        _, params = teacher.init(key, input_shape)
        return lambda x: teacher.apply(params, x)
    _checks.function(
        teacher, "teacher", "teacher(x) -> y, a network with init/apply, or (network, params)"
    )
    return teacher


def teacher_student(
    key: jax.Array,
    n: int,
    d: int,
    *,
    teacher: Any,
    noise: float = 0.0,
    input: str = "gaussian",
    radius: float | None = None,
    dtype=None,
) -> Dataset:
    r"""Targets :math:`y = f^*(x) + \sigma\,\xi` of a fixed teacher :math:`f^*` on random inputs.

    The teacher-student setting (Gardner & Derrida 1989; for two-layer networks Goldt et al.
    2019, arXiv:1906.08632): inputs from :func:`gaussian` (:math:`\mathcal N(0, I_d)`) or
    :func:`sphere` (radius :math:`\sqrt d` unless ``radius``), label noise
    :math:`\xi \sim \mathcal N(0, I_k)` with standard deviation :math:`\sigma` = ``noise``.

    ``key`` is split in three: inputs, teacher parameters (used only when ``teacher`` is a
    network to initialise), noise.

    Args:
      key: PRNG key.
      n: number of examples.
      d: input dimension.
      teacher: one of ``f(x) -> y`` (``(n,)`` or ``(n, k)``); an nnlab network
        (``init``/``apply``, e.g. ``nnlab.layers.serial(...)``), initialised from the teacher
        key; or ``(network, params)`` (a network or ``apply_fn(params, x)`` and its parameters).
      noise: label-noise standard deviation :math:`\sigma \ge 0`.
      input: ``'gaussian'`` or ``'sphere'``.
      radius: sphere radius (``input='sphere'`` only; default :math:`\sqrt d`).
      dtype: floating dtype (default: JAX's default float).

    Returns:
      :class:`Dataset` with ``x`` ``(n, d)``, ``y`` ``(n, k)``. Jittable with the sizes, the
      teacher and ``input`` static.

    Example:
      >>> import jax
      >>> import nnlab.layers as nl
      >>> net = nl.serial(nl.Dense(16), nl.Relu(), nl.Dense(2))
      >>> data = teacher_student(jax.random.key(0), 8, 3, teacher=net, noise=0.1)
      >>> data.x.shape, data.y.shape
      ((8, 3), (8, 2))
    """
    key = _ds.key(key)
    n, d = _ds.size(n, "n"), _ds.size(d, "d")
    _checks.choice(input, "input", ("gaussian", "sphere"))
    _checks.real(noise, "noise", minimum=0.0)
    dtype = _ds.float_dtype(dtype)
    if input == "gaussian" and radius is not None:
        raise ValueError(f"radius applies to input='sphere' only, got radius={radius!r}.")
    k_x, k_teacher, k_noise = jax.random.split(key, 3)
    f = _teacher_fn(teacher, k_teacher, (n, d))
    if input == "gaussian":
        inputs = gaussian(k_x, n, d, dtype=dtype)
    else:
        inputs = sphere(k_x, n, d, radius=radius, dtype=dtype)
    y = _ds.as_targets(f(inputs.x), n, dtype, "teacher(x)")
    y = y + noise * jax.random.normal(k_noise, y.shape, dtype)
    return Dataset(inputs.x, y.astype(dtype))


def linear_teacher(
    key: jax.Array,
    n: int,
    d: int,
    k: int = 1,
    *,
    noise: float = 0.0,
    input: str = "gaussian",
    dtype=None,
) -> Dataset:
    r"""A random linear teacher :math:`y = W^* x/\sqrt d + \sigma\xi`, :math:`W^*_{ij} \sim N(0,1)`.

    :math:`W^*` is ``(k, d)``; with Gaussian inputs each output has variance
    :math:`\|w^*_i\|^2/d \approx 1`. The model of high-dimensional linear regression and of
    linear networks trained on a teacher (e.g. Advani & Saxe 2017, arXiv:1710.03667).
    Equal to ``teacher_student(key, n, d, teacher=lambda x: x @ W.T / sqrt(d), ...)`` with
    ``W = jax.random.normal(jax.random.split(key, 3)[1], (k, d), dtype)``.

    Args:
      key: PRNG key.
      n: number of examples.
      d: input dimension.
      k: output dimension.
      noise: label-noise standard deviation :math:`\sigma \ge 0`.
      input: ``'gaussian'`` or ``'sphere'`` (radius :math:`\sqrt d`).
      dtype: floating dtype (default: JAX's default float).

    Returns:
      :class:`Dataset` with ``x`` ``(n, d)``, ``y`` ``(n, k)``. Jittable with the sizes static.

    Example:
      >>> import jax
      >>> linear_teacher(jax.random.key(0), 5, 3, k=2).y.shape
      (5, 2)
    """
    key = _ds.key(key)
    d, k = _ds.size(d, "d"), _ds.size(k, "k")
    dtype = _ds.float_dtype(dtype)
    w = jax.random.normal(jax.random.split(key, 3)[1], (k, d), dtype)
    scale = jnp.sqrt(jnp.asarray(d, dtype))
    return teacher_student(
        key, n, d, teacher=lambda x: x @ w.T / scale, noise=noise, input=input, dtype=dtype
    )


def single_index_target(
    key: jax.Array, d: int, *, link: Callable = jnp.sin, dtype=None
) -> Callable[[jax.Array], jax.Array]:
    r"""A random single-index target :math:`f(x) = g(w\cdot x/\sqrt d)`, :math:`w \sim N(0, I_d)`.

    Single-index models (e.g. Ben Arous, Gheissari & Jagannath 2021, arXiv:2003.10409) with
    link :math:`g` (default :math:`\sin`); ``w = jax.random.normal(key, (d,), dtype)``. Pass the
    result as ``target=`` to :func:`gaussian`/:func:`sphere` (or as ``teacher=``) to label
    several input sets with the same teacher.

    Args:
      key: PRNG key for :math:`w`.
      d: input dimension.
      link: elementwise :math:`g` (default ``jnp.sin``).
      dtype: floating dtype of :math:`w` (default: JAX's default float).

    Returns:
      ``f(x)``: ``(n, d)`` inputs to ``(n, 1)`` targets.

    Example:
      >>> import jax
      >>> f = single_index_target(jax.random.key(0), 3)
      >>> f(jax.numpy.zeros((2, 3))).tolist()
      [[0.0], [0.0]]
    """
    key = _ds.key(key)
    d = _ds.size(d, "d")
    _checks.function(link, "link", "link(z) elementwise")
    w = jax.random.normal(key, (d,), _ds.float_dtype(dtype))

    def target(x: jax.Array) -> jax.Array:
        return link(x @ w / jnp.sqrt(d))[:, None]

    return target
