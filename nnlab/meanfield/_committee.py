r"""Soft committee machines as nnlab networks, trained online by :func:`nnlab.train.train`.

The committee ``ŷ = Σ_k g(w_k·x/√D)``, ``g(z) = erf(z/√2)`` (Saad & Solla 1995; Goldt et al.
2019, arXiv:1906.08632) is ``serial(Dense(K, b_std=None, parameterization='ntk'),
Erf(b=1/√2), Dense(1, W_std=√K, b_std=None, parameterization='ntk'))`` with the output
weights fixed to 1 (rate factor 0 through :func:`nnlab.parameterization.scale_learning_rates`):
the first layer's ``W`` is ``wᵀ`` ``(D, K)`` and its ``'ntk'`` multiplier is ``1/√D``. On one
fresh sample per step, ``optax.sgd(η)`` on nnlab.train's loss ``½ (ŷ − y)²`` (the mean over a
batch of one) is exactly the convention of :mod:`._saad_solla`,
``w_k ← w_k + (η/√D) g'(λ_k)(y − ŷ) x``: no rate conversion.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnlab import _checks
from nnlab import layers as nl
from nnlab.data import gaussian
from nnlab.parameterization import scale_learning_rates
from nnlab.record import Record
from nnlab.train import Stream, train, train_ensemble

from ._particles import check_schedule
from ._saad_solla import OrderParameters, _check_lr, _eg, saad_solla_ode


def committee_network(n_units: int) -> nl.Serial:
    r"""The soft committee machine ``x ↦ Σ_k g(w_k·x/√D)``, ``g = erf(·/√2)``, as a network.

    Its parameters for weights ``w`` ``(K, D)`` are :func:`committee_params` ``(w)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jax.scipy.special import erf
      >>> w, x = jnp.array([[1.0, 0.0], [0.0, 2.0]]), jnp.array([[1.0, 1.0]])
      >>> y = committee_network(2).apply(committee_params(w), x)
      >>> bool(jnp.allclose(y, erf(0.5) + erf(1.0)))  # g(w·x/√2) summed, D = 2
      True
    """
    k = _checks.integer(n_units, "n_units")
    return nl.serial(
        nl.Dense(k, W_std=1.0, b_std=None, parameterization="ntk"),
        nl.Erf(b=1.0 / math.sqrt(2.0)),
        nl.Dense(1, W_std=math.sqrt(k), b_std=None, parameterization="ntk"),
    )


def committee_params(w):
    """Parameters of :func:`committee_network` with first-layer weights ``w`` ``(K, D)``."""
    w = _checks.real_array(w, "w")
    if w.ndim != 2 or 0 in w.shape:
        raise ValueError(f"w must be (K, D) weights with K, D >= 1, got shape {w.shape}.")
    return ({"W": w.T, "b": None}, (), {"W": jnp.ones((w.shape[0], 1), w.dtype), "b": None})


def _overlaps(w, v):
    return w @ w.T / w.shape[1], w @ v.T / w.shape[1], v @ v.T / w.shape[1]


def committee_order_parameters(w, v) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Order parameters ``(Q, R, T) = (w wᵀ/D, w vᵀ/D, v vᵀ/D)`` of student ``w`` and teacher ``v``.

    Args:
      w: ``(K, D)`` student first-layer weights.
      v: ``(M, D)`` teacher first-layer weights.

    Returns:
      ``(q, r, t)`` of shapes ``(K, K)``, ``(K, M)``, ``(M, M)``.

    Example:
      >>> import jax.numpy as jnp
      >>> q, r, t = committee_order_parameters(jnp.ones((2, 4)), jnp.ones((1, 4)))
      >>> q.shape, r.shape, t.shape
      ((2, 2), (2, 1), (1, 1))
    """
    return _overlaps(*_check_weights(w, v))


def _check_weights(w, v, names=("w", "v")):
    w, v = _checks.real_array(w, names[0]), _checks.real_array(v, names[1])
    if w.ndim != 2 or 0 in w.shape:
        raise ValueError(
            f"{names[0]} must be (K, D) student weights with K, D >= 1, got shape {w.shape}."
        )
    if v.ndim != 2 or v.shape[1] != w.shape[1] or v.shape[0] == 0:
        raise ValueError(
            f"v must be (M, D) teacher weights with D = {w.shape[1]} (from {names[0]}), got "
            f"shape {v.shape}."
        )
    dtype = jnp.result_type(w, v)
    return w.astype(dtype), v.astype(dtype)


def committee_online_sgd(
    key, w0, v, *, lr, n_steps: int, n_records: int = 200, seeds: int | None = None
) -> OrderParameters:
    r"""Online SGD of an erf soft committee machine through :func:`nnlab.train.train`.

    The student :func:`committee_network` trains with ``optax.sgd(lr)`` on a
    :class:`nnlab.train.Stream` that draws one fresh sample per step,
    :func:`nnlab.data.gaussian` ``x ~ N(0, I_D)`` labelled by the teacher committee ``v``,
    ``y = Σ_m g(v_m·x/√D)``: ``w_k ← w_k + (η/√D) g'(λ_k)(y − ŷ) x`` (Saad & Solla 1995;
    module docstring). The overlaps ``Q = w wᵀ/D`` and ``R = w vᵀ/D`` are observables logged
    at ``n_records`` equally spaced times ``α = step / D``; ``ε_g(Q, R, T)`` (exact for the
    current weights) is computed from them. ``seeds`` runs are one
    :func:`nnlab.train.train_ensemble`: member ``s`` starts from ``w0(k_s)`` (or ``w0``) and
    draws its samples from ``fold_in(k_s, 1)``, ``k_s = jax.random.split(key, seeds)[s]``; one
    run (``seeds=None``) is that member with ``k_s = key``; it works under ``jax.jit`` and
    ``jax.vmap``, ``seeds`` does not (the ensemble is laid out on the host).

    Args:
      key: PRNG key.
      w0: ``(K, D)`` initial student weights, or ``w0(key) -> (K, D)`` (a start per seed).
      v: ``(M, D)`` teacher weights.
      lr: step size ``η``.
      n_steps: number of SGD steps (samples); a multiple of ``n_records - 1``.
      n_records: number of recorded times (including step 0), at least 2.
      seeds: number of independent runs (a ``'seed'`` axis), or ``None``.

    Returns:
      :class:`OrderParameters` over ``time = α = step / D``.

    Example:
      >>> import jax
      >>> k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
      >>> v = jax.random.normal(k1, (2, 100))
      >>> w0 = jax.random.normal(k2, (2, 100))
      >>> traj = committee_online_sgd(k3, w0, v, lr=0.5, n_steps=1000, n_records=11)
      >>> traj.eg.shape, traj.dims_of("r"), float(traj.alpha[-1])
      ((11,), ('time', 'student', 'teacher'), 10.0)
    """
    key = _checks.prng_key(key, "key")
    if callable(w0):
        shape = jax.eval_shape(w0, key)
        _check_weights(jnp.zeros(shape.shape, shape.dtype), v, names=("w0(key)", "v"))
        init = w0
    else:
        w0, v = _check_weights(w0, v, names=("w0", "v"))
        init = lambda _: w0  # noqa: E731
    v = _checks.real_array(v, "v")
    _check_lr(lr)
    n_steps, n_records, seeds = check_schedule(n_steps, n_records, seeds)
    k, (m, d) = jax.eval_shape(init, key).shape[0], v.shape
    student, teacher, v_params = committee_network(k), committee_network(m), committee_params(v)

    def labels(x):
        return teacher.apply(v_params, x)

    def sample(key):
        return tuple(gaussian(key, 1, d, target=labels, dtype=v.dtype))

    def overlap(i):
        return lambda apply_fn, params, params0, data: _overlaps(params[0]["W"].T, v)[i]

    frozen_output = ({"W": 1.0, "b": None}, (), {"W": 0.0, "b": None})
    settings = dict(
        optimizer=optax.chain(optax.sgd(lr), scale_learning_rates(frozen_output)),
        steps=n_steps,
        log_every=n_steps // (n_records - 1),
        observables={"q": overlap(0), "r": overlap(1)},
        divergence_factor=None,  # the logged loss is one sample's: no relative rule
    )
    stream = Stream(sample)
    init_fn = lambda k: committee_params(init(k))  # noqa: E731
    if seeds is None:
        rec = train(student.apply, init_fn(key), stream, key=jax.random.fold_in(key, 1), **settings)
    else:
        rec = train_ensemble(student.apply, init_fn, stream, seeds=seeds, key=key, **settings)
    q, r = rec.observables["q"], rec.observables["r"]
    t = v @ v.T / d
    t_all = jnp.broadcast_to(t, (*q.shape[:-2], *t.shape))
    eg = jnp.vectorize(_eg, signature="(k,k),(k,m),(m,m)->()")(q, r, t_all)
    lead = (*rec.axes, "time")
    return OrderParameters(
        {
            "q": ((*lead, "student", "student2"), q),
            "r": ((*lead, "student", "teacher"), r),
            "eg": (lead, eg),
            "t": (("teacher", "teacher2"), t),
        },
        coords={**rec.coords, "time": np.asarray(rec.step) / d},
        meta={"time_unit": "alpha"},
    )


def saad_solla_from_overlaps(sim: OrderParameters, *, lr) -> Record:
    r"""The Saad-Solla ODEs started from each run's initial overlaps, on the run's times.

    For an online-SGD record of :func:`committee_online_sgd` (one run, or a ``'seed'`` axis),
    :func:`saad_solla_ode` is solved in float64 from each run's own ``(Q(0), R(0))`` and
    ``T`` to the run's last ``α``, recorded at the run's ``n_records`` times: theory and
    simulation then share the initial-overlap fluctuations of order ``D^{-1/2}`` and differ
    only by the SGD noise (Saad & Solla 1995; Goldt et al. 2019).

    Args:
      sim: :class:`OrderParameters` over ``('time', ...)`` or ``('seed', 'time', ...)``, with
        equally spaced times from 0.
      lr: the step size the run used.

    Returns:
      A :class:`nnlab.Record` with ``q``, ``r``, ``eg`` (and ``t``) on the run's axes, as
      NumPy float64 arrays.

    Example:
      >>> import jax
      >>> k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
      >>> v, w0 = jax.random.normal(k1, (2, 200)), jax.random.normal(k2, (2, 200))
      >>> sim = committee_online_sgd(k3, w0, v, lr=0.5, n_steps=2000, n_records=3)
      >>> ode = saad_solla_from_overlaps(sim, lr=0.5)
      >>> ode.dims_of("eg"), bool(abs(ode["eg"][0] - sim["eg"][0]) < 1e-5)  # the same start
      (('time',), True)
    """
    if not isinstance(sim, OrderParameters):
        raise TypeError(f"sim must be OrderParameters (committee_online_sgd), got {type(sim)}.")
    lead = sim.dims_of("eg")[:-1]
    if lead not in ((), ("seed",)):
        raise ValueError(f"sim must be over ('time',) or ('seed', 'time'), got {(*lead, 'time')}.")
    alpha = np.asarray(sim.coord("time"))
    with jax.enable_x64(True):
        t = np.asarray(sim["t"], np.float64)
        q0 = np.asarray(sim["q"], np.float64)[..., 0, :, :]
        r0 = np.asarray(sim["r"], np.float64)[..., 0, :, :]

        def solve(q, r):
            return saad_solla_ode(q, r, t, lr=lr, alpha_max=alpha[-1], n_records=len(alpha))

        if not lead:
            return solve(q0, r0).to_numpy()
        return jax.vmap(solve)(q0, r0).with_leading_axis("seed").to_numpy()
