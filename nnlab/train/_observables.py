"""Quantities computed inside the compiled training loop at each log step.

An :class:`Observable` follows optax's two-function pattern: ``init`` runs once on the
initial parameters (e.g. to store the eNTK at initialisation) and ``compute`` runs at every
log step. A plain callable ``fn(apply_fn, params, params0, data) -> array`` is accepted as a
custom observable too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from nnlab import _checks
from nnlab.empirical import empirical_ntk


class Observable(NamedTuple):
    """``init(apply_fn, params0, data) -> state``; ``compute(state, apply_fn, params, data)``."""

    init: Callable[..., Any]
    compute: Callable[..., jax.Array]


def as_observable(name: str, obs) -> Observable:
    if isinstance(obs, Observable):
        return obs
    if callable(obs):
        return Observable(
            init=lambda apply_fn, params0, data: params0,
            compute=lambda params0, apply_fn, params, data: obs(apply_fn, params, params0, data),
        )
    raise TypeError(
        f"observables[{name!r}] must be an Observable or a callable "
        f"fn(apply_fn, params, params0, data), got {type(obs).__name__}."
    )


def _probe(data, x):
    if x is not None:
        return x
    return data.x_train if data.x_probe is None else data.x_probe


def _tree_sq_norm(tree):
    return sum(jnp.sum(jnp.square(a)) for a in jax.tree_util.tree_leaves(tree))


def ntk_top_eigenvalue(x=None, *, iters: int = 30, seed: int = 0) -> Observable:
    r"""Largest eigenvalue of the empirical NTK on a probe batch, by Lanczos.

    With ``J = ∂ vec f(θ, X) / ∂θ`` (all outputs of all probe points flattened) the eNTK is
    ``Θ = J Jᵀ`` (Jacot et al. 2018, arXiv:1806.07572). ``λ_max(Θ)`` is
    :func:`nnlab.curvature.top_eigenvalue` of :func:`nnlab.curvature.ntk_operator`: ``iters``
    Lanczos steps (capped at ``N · out``, where the result is exact to rounding), each
    applying ``Θ v = J (Jᵀ v)`` as one vjp and one jvp, so the kernel is never formed. The
    same routine gives the sharpness (:func:`nnlab.curvature.sharpness`). This is the
    sharpness-like quantity of the catapult / edge-of-stability analyses (Lewkowycz et al.
    2020, arXiv:2003.02218); for MSE with the mean loss the top of the Gauss-Newton matrix
    is ``λ_max(Θ)/N``.

    Args:
      x: probe inputs; ``None`` uses ``data.x_probe`` (or ``data.x_train`` without one).
      iters: Lanczos steps (kernel-vector products).
      seed: seed of the fixed start vector.

    Returns:
      An :class:`Observable` giving a scalar per log step.
    """
    # nnlab.curvature imports nnlab.train (make_loss, Observable): import it when called.
    from nnlab.curvature import ntk_operator, top_eigenvalue

    iters = _checks.integer(iters, "iters")
    seed = _checks.integer(seed, "seed", minimum=0)

    def compute(state, apply_fn, params, data):
        op = ntk_operator(apply_fn, params, _probe(data, x))
        return top_eigenvalue(op, jax.random.key(seed), num_iters=iters)

    return Observable(init=lambda apply_fn, params0, data: None, compute=compute)


def ntk_relative_change(x=None, *, method: str = "jacobian") -> Observable:
    r"""Relative change of the empirical NTK from initialisation on a probe batch.

    ``‖Θ̂_t − Θ̂_0‖_F / ‖Θ̂_0‖_F`` with ``Θ̂`` from :func:`nnlab.empirical.empirical_ntk`
    (logits traced out). In the NTK parameterisation it vanishes like ``1/sqrt(width)`` (Jacot
    et al. 2018; Lee et al. 2019, arXiv:1902.06720); in muP it stays order one.

    Args:
      x: probe inputs; ``None`` uses ``data.x_probe`` (or ``data.x_train``).
      method: passed to :func:`nnlab.empirical.empirical_ntk`.
    """

    def kernel(apply_fn, params, data):
        return empirical_ntk(apply_fn, params, _probe(data, x), method=method)

    def compute(k0, apply_fn, params, data):
        k = kernel(apply_fn, params, data)
        return jnp.linalg.norm(k - k0) / jnp.linalg.norm(k0)

    return Observable(init=kernel, compute=compute)


def weight_distance(*, relative: bool = False) -> Observable:
    r"""Distance of the parameters from initialisation, ``‖θ_t − θ_0‖_2`` over all leaves.

    With ``relative=True``, divided by ``‖θ_0‖_2``. Lazy training has ``‖θ_t − θ_0‖ = O(1)``
    while each weight moves ``O(1/sqrt(width))`` (Chizat, Oyallon & Bach 2019,
    arXiv:1812.07956).
    """

    def compute(params0, apply_fn, params, data):
        diff = jax.tree_util.tree_map(lambda a, b: a - b, params, params0)
        dist = jnp.sqrt(_tree_sq_norm(diff))
        return dist / jnp.sqrt(_tree_sq_norm(params0)) if relative else dist

    return Observable(init=lambda apply_fn, params0, data: params0, compute=compute)


BUILTIN = {
    "ntk_top_eigenvalue": ntk_top_eigenvalue,
    "ntk_relative_change": ntk_relative_change,
    "weight_distance": weight_distance,
}


def resolve_observables(observables) -> dict[str, Observable]:
    """Names of built-ins, a mapping name -> Observable/callable, or a mix in a sequence."""
    if observables is None:
        return {}
    if isinstance(observables, str):
        observables = (observables,)
    if isinstance(observables, dict):
        items = observables.items()
    else:
        items = []
        for o in observables:
            if not isinstance(o, str):
                raise TypeError(
                    "observables given as a sequence must be names of built-ins "
                    f"{tuple(BUILTIN)}; pass a dict name -> Observable for others, got {o!r}."
                )
            items.append((o, o))
    out = {}
    for name, obs in items:
        if isinstance(obs, str):
            if obs not in BUILTIN:
                raise ValueError(
                    f"unknown observable {obs!r}; built-ins are {tuple(BUILTIN)}, or pass a "
                    "dict name -> Observable / callable(apply_fn, params, params0, data)."
                )
            obs = BUILTIN[obs]()
        out[name] = as_observable(name, obs)
    return out
