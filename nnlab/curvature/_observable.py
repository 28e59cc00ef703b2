r"""Sharpness (top Hessian or Gauss-Newton eigenvalue) as an observable of
:func:`nnlab.train.train`, and gradient descent runs that log it."""

from __future__ import annotations

from typing import Literal

import jax
import numpy as np
import optax

from nnlab import _checks
from nnlab.record import Record
from nnlab.train import Observable, train_ensemble

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


def sharpness_trajectories(
    apply_fn,
    init_fn,
    data,
    lrs,
    *,
    key,
    steps: int,
    seeds: int = 1,
    log_every: int = 1,
    num_iters: int = 20,
    loss="mse",
) -> Record:
    r"""Full-batch gradient descent at each learning rate, logging the sharpness.

    The edge-of-stability protocol of Cohen et al. (2021, arXiv:2103.00065):
    :func:`nnlab.train.train_ensemble` with ``optax.sgd(η)`` for every ``η`` in ``lrs`` and
    ``seeds`` initialisations ``init_fn(k)``, on the whole training set at every step, with
    the observable :func:`sharpness` (``num_iters`` Lanczos steps per log) in the compiled
    loop. Read the result with :func:`edge_of_stability` and :func:`stability_threshold`,
    draw it with :func:`sharpness_figure`.

    Args:
      apply_fn, init_fn, data: as in :func:`nnlab.train.train_ensemble` (``data`` a
        :class:`nnlab.train.Data`).
      lrs: the learning rates (1-D), e.g. from :func:`threshold_learning_rates`.
      key: PRNG key of the initialisations (member ``s`` starts from ``init_fn`` of the
        ``s``-th key of ``jax.random.split(key, seeds)``).
      steps, seeds, log_every: as in :func:`nnlab.train.train_ensemble`.
      num_iters: Lanczos steps per logged sharpness.
      loss: the training loss (and the Hessian's).

    Returns:
      The training record as host arrays, ``obs.sharpness`` and ``train_loss`` over
      ``("seed", "lr", "time")``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from nnlab.train import Data
      >>> data = Data(jnp.eye(3), jnp.ones((3, 1)))       # H = XᵀX/n = I/3: λ = 1/3
      >>> rec = sharpness_trajectories(lambda p, x: x @ p, lambda k: jnp.zeros((3, 1)), data,
      ...                              [0.1, 1.0], key=jax.random.key(0), steps=4, log_every=2,
      ...                              num_iters=3)
      >>> rec["obs.sharpness"].shape, round(float(rec["obs.sharpness"][0, 1, -1]), 4)
      ((1, 2, 3), 0.3333)
    """
    observable = sharpness(loss=loss, num_iters=num_iters)
    return train_ensemble(
        apply_fn,
        init_fn,
        data,
        optimizer=lambda lr: optax.sgd(lr),
        seeds=seeds,
        key=key,
        hyperparams={"lr": np.asarray(lrs, np.float64)},
        steps=steps,
        log_every=log_every,
        loss=loss,
        observables={"sharpness": observable},
    ).to_numpy()
