r"""Neural quadratic and linear models, packaged to train side by side with the network.

The neural quadratic model (NQM) of Zhu, Liu, Radhakrishnan & Belkin (2022,
arXiv:2205.11787) is the second-order Taylor expansion of the network in its parameters,

.. math::
    f_{\rm quad}(\theta, x) = f(\theta_0, x) + J(\theta_0, x)\,\Delta
        + \tfrac12\,\Delta^\top H(\theta_0, x)\,\Delta, \qquad \Delta = \theta - \theta_0,

and the linear model (Lee et al. 2019, arXiv:1902.06720) stops at first order. Both come from
:func:`nnlab.taylor.expand`; here they are packaged so that the trainer of
:mod:`nnlab.train` runs them exactly like the network.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnlab import _checks, taylor


def _check_apply(apply_fn):
    if not callable(apply_fn):
        raise TypeError(f"apply_fn must be a function apply_fn(params, x), got {apply_fn!r}.")


def quadratic_model(apply_fn: Callable, params0: Any) -> Callable:
    r"""The neural quadratic model of ``apply_fn`` around ``params0`` (Zhu et al. 2022).

    ``expand(apply_fn, params0, order=2)``: trains with :func:`nnlab.train.train` from the
    same ``params0`` as the network, e.g. ``train(quadratic_model(f, p0), p0, data, ...)``.

    Args:
      apply_fn: ``apply_fn(params, x)``.
      params0: expansion point (the network's initialisation).

    Returns:
      ``f_quad(params, x)``.

    Example:
      >>> import jax.numpy as jnp
      >>> f = lambda p, x: jnp.tanh(p * x)
      >>> fq = quadratic_model(f, 0.0)  # tanh(t) = t + O(t^3): no quadratic term
      >>> float(fq(0.5, jnp.asarray(1.0)))
      0.5
    """
    _check_apply(apply_fn)
    return taylor.expand(apply_fn, params0, 2)


def linear_model(apply_fn: Callable, params0: Any) -> Callable:
    r"""The linearised network ``f(θ0) + J(θ0)(θ − θ0)`` (Lee et al. 2019, arXiv:1902.06720).

    Example:
      >>> import jax.numpy as jnp
      >>> fl = linear_model(lambda p, x: jnp.exp(p * x), 0.0)
      >>> float(fl(1.0, jnp.asarray(1.0)))
      2.0
    """
    _check_apply(apply_fn)
    return taylor.expand(apply_fn, params0, 1)


class Anchored(NamedTuple):
    """Parameters of a Taylor model trained in an ensemble: the trained ``params`` and the
    expansion point ``anchor`` (held fixed: it receives no gradient)."""

    params: Any
    anchor: Any


class ModelPair(NamedTuple):
    """``apply_fn(params, x)`` and ``init_fn(key) -> params`` for
    :func:`nnlab.train.train_ensemble`."""

    apply_fn: Callable
    init_fn: Callable


def taylor_ensemble_model(apply_fn: Callable, init_fn: Callable, order: int | None) -> ModelPair:
    r"""Package the network (``order=None``) or its order-``k`` Taylor model for an ensemble.

    In an ensemble each seed has its own initialisation ``θ0``, so the Taylor model's
    expansion point must travel with the parameters: they become ``Anchored(θ, θ0)``
    with ``θ = θ0`` at the start and ``θ0`` behind ``stop_gradient`` (its gradient is zero, so
    SGD never moves it and the NTK observables see only ``θ``). ``order=None`` wraps the
    network in the same way, so NN, NQM (``order=2``) and linear model (``order=1``) share
    ``init_fn``, seeds and trainer and start from the same function.

    Args:
      apply_fn: the network's ``apply_fn(params, x)``.
      init_fn: ``init_fn(key) -> params``.
      order: ``None`` (the network), 1 (linear model) or 2 (NQM); any non-negative int works.

    Returns:
      :class:`ModelPair` ``(apply_fn, init_fn)`` over :class:`Anchored` parameters.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> f = lambda p, x: jnp.sin(x @ p)
      >>> m = taylor_ensemble_model(f, lambda k: jax.random.normal(k, (2, 1)), order=2)
      >>> p = m.init_fn(jax.random.key(0))
      >>> m.apply_fn(p, jnp.ones((3, 2))).shape
      (3, 1)
    """
    _check_apply(apply_fn)
    if not callable(init_fn):
        raise TypeError(f"init_fn must be a function init_fn(key) -> params, got {init_fn!r}.")
    if order is not None:
        fix = "order must be None (the network) or a non-negative int, e.g. 1 or 2."
        order = _checks.integer(order, "order", minimum=0, fix=fix)

    def init(key):
        p0 = init_fn(key)
        return Anchored(p0, p0)

    def apply(p: Anchored, x):
        anchor = jax.lax.stop_gradient(p.anchor)
        if order is None:
            return apply_fn(p.params, x)
        return taylor.expand(apply_fn, anchor, order)(p.params, x)

    return ModelPair(apply, init)


def ntk_max_eigenvalue(apply_fn: Callable, params: Any, x: jax.Array, *, normalization="mean"):
    r"""Top eigenvalue of the loss-normalised empirical NTK on ``x``, exactly.

    For MSE ``L = ½ (1/N) Σ_i (f_i − y_i)²`` GD moves the outputs by ``−η (Θ/N) r``, so the
    sharpness that sets the phases is ``λ = λ_max(Θ)/N`` (``normalization='mean'``), or
    ``λ_max(Θ)`` for a summed loss (``'sum'``). ``Θ = J Jᵀ`` over all outputs is formed
    from the Jacobian (``N · out`` rows) and diagonalised with ``eigvalsh``: meant for the
    few-example training sets of catapult experiments.

    Example:
      >>> import jax.numpy as jnp
      >>> f = lambda p, x: x @ p
      >>> float(ntk_max_eigenvalue(f, jnp.zeros((2,)), jnp.eye(2) * 2.0))  # Θ = 4 I, N = 2
      2.0
    """
    _check_apply(apply_fn)
    if not isinstance(normalization, str) or normalization not in ("mean", "sum"):
        raise ValueError(f"normalization must be 'mean' or 'sum', got {normalization!r}.")
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise TypeError(f"x must be an array, got {type(x).__name__}; use jnp.asarray first.")
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"x must have a non-empty leading example axis, got shape {x.shape}.")
    if not _checks.is_traced(x) and not bool(np.all(np.isfinite(np.asarray(x)))):
        raise ValueError("x contains NaN or inf; clean the data first.")
    jac = jax.jacrev(lambda p: apply_fn(p, x).reshape(-1))(params)
    rows = jnp.concatenate(
        [j.reshape(j.shape[0], -1) for j in jax.tree_util.tree_leaves(jac)], axis=1
    )
    lam = jnp.linalg.eigvalsh(rows @ rows.T)[-1]
    return lam / x.shape[0] if normalization == "mean" else lam


class NTKScaledSGDState(NamedTuple):
    """The learning rate ``η = ratio / λ0`` fixed at ``init``."""

    lr: jax.Array


def ntk_scaled_sgd(ratio, apply_fn: Callable, x: jax.Array) -> optax.GradientTransformation:
    r"""Plain SGD at ``η = ratio / λ0``, with ``λ0`` the loss-normalised NTK top eigenvalue
    of the member's own initialisation (:func:`ntk_max_eigenvalue` on ``x``).

    Phase diagrams are drawn in ``η λ0``; each seed has its own ``λ0``, so the rate is
    fixed in ``init(params0)`` from the parameters it is given (optax ``init``/``update``
    pattern). Use it as ``optimizer=lambda ratio: ntk_scaled_sgd(ratio, apply_fn, x)`` in
    :func:`nnlab.train.train_ensemble` with ``hyperparams={'ratio': ...}``.

    Example:
      >>> import jax.numpy as jnp
      >>> f = lambda p, x: x @ p
      >>> opt = ntk_scaled_sgd(1.0, f, jnp.eye(2) * 2.0)
      >>> state = opt.init(jnp.zeros((2,)))
      >>> float(state.lr)  # 1 / λ0 with λ0 = 4 / 2
      0.5
    """
    _check_apply(apply_fn)
    _checks.real(ratio, "ratio", positive=True, fix="ratio is η λ0, a positive number.")

    def init(params):
        return NTKScaledSGDState(ratio / ntk_max_eigenvalue(apply_fn, params, x))

    def update(grads, state, params=None):
        del params
        return jax.tree_util.tree_map(lambda g: -state.lr * g, grads), state

    return optax.GradientTransformation(init, update)
