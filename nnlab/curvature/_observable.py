r"""Sharpness (top Hessian eigenvalue) as an observable of :func:`nnlab.train.train`."""

from __future__ import annotations

import jax

from nnlab import _checks
from nnlab.train import Observable

from ._lanczos import top_eigenpairs
from ._operator import hessian_operator


def sharpness(
    *,
    loss="mse",
    loss_normalization="mean",
    num_iters: int = 20,
    wrt=None,
    batch_size: int | None = None,
    seed: int = 0,
) -> Observable:
    r"""The largest Hessian eigenvalue of the training loss, logged during training.

    ``λ_max(∇²L(θ_t))`` on ``data.x_train, data.y_train`` by a ``num_iters``-step Lanczos run
    (:func:`top_eigenpairs`) from a fixed random start. Lanczos converges to ``λ_max`` much
    faster than power iteration for the same number of Hessian-vector products (error
    ``~ exp(−4 m √(gap/spread))`` against ``(λ₂/λ₁)^{2m}``), so ~20 products suffice for the
    edge-of-stability plots of Cohen et al. (2021, arXiv:2103.00065), where gradient descent
    at rate ``η`` drives the sharpness to ``2/η``. The loss must be the one being trained
    (same ``loss`` and ``loss_normalization`` as in :func:`nnlab.train.train`).

    The observable API computes each log from the current parameters and the state made
    at initialisation only, so the Lanczos run cannot be warm-started from the previous
    eigenvector; its start vector is the same random vector at every log.

    Args:
      loss, loss_normalization: as in :func:`nnlab.train.train`.
      num_iters: Lanczos steps (Hessian-vector products) per log.
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
    if batch_size is not None:
        batch_size = _checks.integer(batch_size, "batch_size")

    def compute(state, apply_fn, params, data):
        op = hessian_operator(
            apply_fn,
            params,
            data.x_train,
            data.y_train,
            loss=loss,
            loss_normalization=loss_normalization,
            wrt=wrt,
            batch_size=batch_size,
        )
        m = min(num_iters, op.dim)
        return top_eigenpairs(op, jax.random.key(seed), 1, num_iters=m).eigenvalues[0]

    return Observable(init=lambda apply_fn, params0, data: None, compute=compute)
