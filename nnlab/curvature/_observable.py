r"""Sharpness (top Hessian or Gauss-Newton eigenvalue) as an observable of
:func:`nnlab.train.train`."""

from __future__ import annotations

from typing import Literal

import jax

from nnlab import _checks
from nnlab.train import Observable

from ._eigen import top_eigenvalue
from ._operator import gauss_newton_operator, hessian_operator

_OPERATORS = {"hessian": hessian_operator, "gauss_newton": gauss_newton_operator}


def sharpness(
    *,
    loss="mse",
    loss_normalization="mean",
    num_iters: int = 20,
    matrix: Literal["hessian", "gauss_newton"] = "hessian",
    wrt=None,
    batch_size: int | None = None,
    seed: int = 0,
) -> Observable:
    r"""The largest eigenvalue of the training loss's Hessian, logged during training.

    ``λ_max(∇²L(θ_t))`` on ``data.x_train, data.y_train`` by :func:`top_eigenvalue`, a
    ``num_iters``-step Lanczos run from a fixed random start. Lanczos converges to
    ``λ_max`` much faster than power iteration for the same number of Hessian-vector products
    (error ``~ exp(−4 m √(gap/spread))`` against ``(λ₂/λ₁)^{2m}``), so ~20 products suffice
    for the edge-of-stability plots of Cohen et al. (2021, arXiv:2103.00065), where gradient
    descent at rate ``η`` drives the sharpness to ``2/η`` (:func:`stability_threshold`,
    :func:`edge_of_stability`). With ``matrix='gauss_newton'`` it logs the top of the
    Gauss-Newton matrix instead (for MSE with the mean loss, ``λ_max`` of the eNTK over
    ``n``). The loss must be the one being trained (same ``loss`` and
    ``loss_normalization`` as in :func:`nnlab.train.train`).

    The observable API computes each log from the current parameters and the state made
    at initialisation only, so the Lanczos run cannot be warm-started from the previous
    eigenvector; its start vector is the same random vector at every log.

    Args:
      loss, loss_normalization: as in :func:`nnlab.train.train`.
      num_iters: Lanczos steps (matrix-vector products) per log, capped at the dimension.
      matrix: ``'hessian'`` (:func:`hessian_operator`) or ``'gauss_newton'``
        (:func:`gauss_newton_operator`).
      wrt: restrict to a subset of the parameters (see :func:`restrict`).
      batch_size: chunk size over the training data (memory bound).
      seed: seed of the start vector.

    Returns:
      An :class:`nnlab.train.Observable` giving a scalar per log step.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from nnlab.train import Data, train
      >>> data = Data(jnp.eye(3), jnp.ones((3, 1)))
      >>> rec = train(lambda p, x: x @ p, jnp.zeros((3, 1)), data, optimizer=optax.sgd(0.1),
      ...             steps=2, observables={"sharpness": sharpness(num_iters=3)})
      >>> [round(v, 4) for v in rec.observables["sharpness"].tolist()]  # H = XᵀX/n = I/3
      [0.3333, 0.3333, 0.3333]
    """
    num_iters = _checks.integer(num_iters, "num_iters")
    seed = _checks.integer(seed, "seed", minimum=0)
    _checks.choice(matrix, "matrix", tuple(_OPERATORS))
    if batch_size is not None:
        batch_size = _checks.integer(batch_size, "batch_size")
    make = _OPERATORS[matrix]

    def compute(state, apply_fn, params, data):
        op = make(
            apply_fn,
            params,
            data.x_train,
            data.y_train,
            loss=loss,
            loss_normalization=loss_normalization,
            wrt=wrt,
            batch_size=batch_size,
        )
        return top_eigenvalue(op, jax.random.key(seed), num_iters=num_iters)

    return Observable(init=lambda apply_fn, params0, data: None, compute=compute)
