r"""The catapult test problem: a wide two-layer ReLU network on a few points of the sphere.

Zhu, Liu, Radhakrishnan & Belkin (2022, arXiv:2205.11787) compare a wide two-layer network
with its neural quadratic model and its linear model on a handful of training points; this is
that setup with a smooth single-index target, ready for :func:`phase_diagram` and
:func:`linear_limit`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from nnlab import _checks
from nnlab import data as nd
from nnlab import layers as nl
from nnlab import train as nt


def two_layer_problem(
    key: jax.Array, *, width: int = 256, dim: int = 5, n_train: int = 8, n_test: int = 64
) -> tuple[Callable[[Any, jax.Array], jax.Array], Callable[[jax.Array], Any], nt.Data]:
    r"""A width-``width`` two-layer ReLU net on sphere points with target ``sin(w·x/√d)``.

    The network is ``serial(Dense(width, b_std=None), Relu(), Dense(1, b_std=None))`` (NTK
    parameterisation, no biases). ``key`` splits into ``(k_train, k_test, k_target)``: the
    inputs are ``nnlab.data.sphere`` points of radius ``√dim`` and the labels
    ``sin(w·x/√dim)`` with ``w ~ N(0, I)`` (:func:`nnlab.data.single_index_target`), one
    teacher for train and test. With few training points the top NTK eigenvalue ``λ0`` is
    cheap and exact (:func:`ntk_max_eigenvalue`), and the catapult window ``2 < η λ0 < 4`` of
    the NQM (Zhu et al. 2022, arXiv:2205.11787) can be swept for network, NQM and linear
    model from the same inits.

    Args:
      key: PRNG key for the data (the network's inits come from ``init_fn``'s own keys).
      width: hidden width.
      dim: input dimension.
      n_train, n_test: numbers of training and test points.

    Returns:
      ``(apply_fn, init_fn, data)``: ``apply_fn(params, x)``, ``init_fn(key) -> params`` and
      :class:`nnlab.train.Data` with test data, the first arguments of :func:`phase_diagram`.

    Example:
      >>> import jax
      >>> apply_fn, init_fn, data = two_layer_problem(jax.random.key(0), width=16, n_train=4)
      >>> data.x_train.shape, data.y_test.shape
      ((4, 5), (64, 1))
      >>> apply_fn(init_fn(jax.random.key(1)), data.x_train).shape
      (4, 1)
    """
    width = _checks.integer(width, "width")
    kx, kt, kw = jax.random.split(_checks.prng_key(key, "key"), 3)
    target = nd.single_index_target(kw, dim)
    train = nd.sphere(kx, n_train, dim, target=target)
    test = nd.sphere(kt, n_test, dim, target=target)
    net = nl.serial(nl.Dense(width, b_std=None), nl.Relu(), nl.Dense(1, b_std=None))

    def init_fn(k: jax.Array) -> Any:
        return net.init(k, train.x.shape)[1]

    return net.apply, init_fn, train.to_train_data(test=test)
