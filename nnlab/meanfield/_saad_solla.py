r"""Online SGD of a soft committee machine and its exact order-parameter ODEs.

Setup (Saad & Solla 1995; Goldt et al. 2019, arXiv:1906.08632). Inputs
``x ~ N(0, I_D)``; a teacher with ``M`` hidden units ``v_m`` and a student with ``K`` hidden units
``w_k`` output

``y = Σ_m g(v_m·x/√D)``,   ``ŷ = Σ_k g(w_k·x/√D)``,   ``g(z) = erf(z/√2)``.

**Convention.** Online SGD on ``½(ŷ - y)²`` with one fresh sample per step and step size ``η``
on the weights ``w`` (entries O(1)):

``w_k ← w_k + (η/√D) δ_k x``,  ``δ_k = g'(λ_k)(y - ŷ)``,  ``λ_k = w_k·x/√D``,

and time ``α = steps / D``. As ``D → ∞`` the order parameters ``Q = w wᵀ/D`` (K×K),
``R = w vᵀ/D`` (K×M) and ``T = v vᵀ/D`` (fixed) follow the deterministic ODEs

``dR_in/dα = η E[δ_i ν_n]``,
``dQ_ik/dα = η E[δ_i λ_k + δ_k λ_i] + η² E[δ_i δ_k]``,

whose expectations are the closed forms ``I3`` and ``I4`` of :mod:`._erf_integrals` over the
joint covariance ``C = [[Q, R], [Rᵀ, T]]`` of ``(λ, ν)``. The generalisation error is
``ε_g = ½ E[(ŷ - y)²] = ½ (Σ_ik I2(Q) + Σ_nm I2(T) - 2 Σ_in I2(R))``.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import _checks

from ._erf_integrals import _i3, _i4, check_psd


class OrderParameters(NamedTuple):
    """Trajectory of the order parameters at recorded times.

    Attributes:
      alpha: times ``α = steps / D``, shape ``(n_records,)``.
      q: student-student overlaps ``Q``, shape ``(n_records, K, K)``.
      r: student-teacher overlaps ``R``, shape ``(n_records, K, M)``.
      eg: generalisation error ``ε_g(Q, R, T)``, shape ``(n_records,)``.
    """

    alpha: jax.Array
    q: jax.Array
    r: jax.Array
    eg: jax.Array


def _float(x, argname: str = "x"):
    return _checks.real_array(x, argname)


def _check_order_parameters(q, r, t, names=("q", "r", "t")):
    """Shapes, finiteness and (when concrete) that ``C = [[Q, R], [Rᵀ, T]]`` is a covariance.

    ``C`` is the covariance of the local fields ``(λ, ν)``, so it must be symmetric and
    positive semi-definite; otherwise the integrals I2-I4 take square roots of negative numbers
    (NaN) or arcsines outside ``[-1, 1]``. Tolerance: see :func:`._erf_integrals.check_psd`.
    """
    nq, nr, nt = names
    q, r, t = _float(q, nq), _float(r, nr), _float(t, nt)
    if q.ndim != 2 or q.shape[0] != q.shape[1] or q.shape[0] == 0:
        raise ValueError(f"{nq} must be a non-empty square (K, K) matrix, got shape {q.shape}.")
    if t.ndim != 2 or t.shape[0] != t.shape[1] or t.shape[0] == 0:
        raise ValueError(f"{nt} must be a non-empty square (M, M) matrix, got shape {t.shape}.")
    if r.shape != (q.shape[0], t.shape[0]):
        raise ValueError(
            f"{nr} must have shape (K, M) = ({q.shape[0]}, {t.shape[0]}) to match {nq} {q.shape} "
            f"and {nt} {t.shape}, got {r.shape}."
        )
    dtype = jnp.result_type(q, r, t)
    q, r, t = q.astype(dtype), r.astype(dtype), t.astype(dtype)
    check_psd(q, nq, what="the student overlaps Q = w wᵀ/D")
    check_psd(t, nt, what="the teacher overlaps T = v vᵀ/D")
    check_psd(
        _joint_cov(q, r, t),
        f"[[{nq}, {nr}], [{nr}ᵀ, {nt}]]",
        what=f"the joint covariance of the local fields, with {nr} the student-teacher overlaps",
    )
    return q, r, t


def _check_positive(value, argname: str, *, integer: bool = False):
    if integer:
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise TypeError(f"{argname} must be a positive int, got {value!r}.")
        if value < 1:
            raise ValueError(f"{argname} must be a positive int, got {value}.")
        return int(value)
    if isinstance(value, jax.core.Tracer):
        return value
    if isinstance(value, bool | str | bytes) or not (
        isinstance(value, int | float | np.number) or jnp.ndim(value) == 0
    ):
        raise TypeError(f"{argname} must be a positive number, got {type(value).__name__}.")
    try:
        v = float(value)
    except TypeError as err:
        raise TypeError(f"{argname} must be a positive number, got {value!r}.") from err
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{argname} must be a positive finite number, got {value!r}.")
    return value


def _joint_cov(q, r, t):
    return jnp.concatenate(
        [jnp.concatenate([q, r], axis=1), jnp.concatenate([r.T, t], axis=1)], axis=0
    )


def committee_generalisation_error(q, r, t) -> jax.Array:
    r"""Generalisation error of an erf soft committee machine from its order parameters.

    ``ε_g = ½ (Σ_ik I2(Q_ii, Q_ik, Q_kk) + Σ_nm I2(T) - 2 Σ_in I2(Q_ii, R_in, T_nn))`` with
    ``I2(a, c, b) = (2/π) arcsin(c / sqrt((1 + a)(1 + b)))`` (Saad & Solla 1995).

    Args:
      q: ``(K, K)`` student overlaps ``w wᵀ / D``.
      r: ``(K, M)`` student-teacher overlaps ``w vᵀ / D``.
      t: ``(M, M)`` teacher overlaps ``v vᵀ / D``.

    Returns:
      Scalar ``ε_g``.

    Example:
      >>> import jax.numpy as jnp
      >>> eye = jnp.eye(2)
      >>> round(float(committee_generalisation_error(eye, eye, eye)), 6)  # student = teacher
      0.0
    """
    q, r, t = _check_order_parameters(q, r, t)
    return _eg(q, r, t)


def _eg(q, r, t):
    def i2_sum(cov_ab, diag_a, diag_b):
        denom = jnp.sqrt((1.0 + diag_a[:, None]) * (1.0 + diag_b[None, :]))
        return jnp.sum((2.0 / jnp.pi) * jnp.arcsin(cov_ab / denom))

    dq, dt = jnp.diagonal(q), jnp.diagonal(t)
    return 0.5 * (i2_sum(q, dq, dq) + i2_sum(t, dt, dt) - 2.0 * i2_sum(r, dq, dt))


def saad_solla_rhs(q, r, t, *, lr) -> tuple[jax.Array, jax.Array]:
    r"""Right-hand sides ``(dQ/dα, dR/dα)`` of the Saad-Solla ODEs for erf committees.

    With ``C = [[Q, R], [Rᵀ, T]]`` the covariance of ``u = (λ_1..λ_K, ν_1..ν_M)`` and signs
    ``s = (-1,..,-1, +1,..,+1)`` (so ``y - ŷ = Σ_c s_c g(u_c)``):

    ``dR_in/dα = η Σ_c s_c I3(i, K+n, c)``,
    ``dQ_ik/dα = η Σ_c s_c [I3(i, k, c) + I3(k, i, c)] + η² Σ_cd s_c s_d I4(i, k, c, d)``,

    where ``I3(a, b, c) = E[g'(u_a) u_b g(u_c)]`` and ``I4(a, b, c, d) = E[g'(u_a) g'(u_b)
    g(u_c) g(u_d)]`` (Saad & Solla 1995; Goldt et al. 2019, arXiv:1906.08632).

    Args:
      q: ``(K, K)``; r: ``(K, M)``; t: ``(M, M)`` order parameters.
      lr: step size ``η`` of the convention ``w ← w + (η/√D) δ x``.

    Returns:
      ``(dq, dr)`` of shapes ``(K, K)`` and ``(K, M)``.

    Example:
      >>> import jax.numpy as jnp
      >>> dq, dr = saad_solla_rhs(jnp.eye(2), jnp.eye(2), jnp.eye(2), lr=0.5)
      >>> float(jnp.abs(dq).max()), float(jnp.abs(dr).max())  # the teacher is a fixed point
      (0.0, 0.0)
    """
    q, r, t = _check_order_parameters(q, r, t)
    _check_positive(lr, "lr")
    return _rhs(q, r, t, lr)


def _rhs(q, r, t, lr):
    k = q.shape[0]
    c = _joint_cov(q, r, t)
    n = c.shape[0]
    s = jnp.concatenate([-jnp.ones(k, c.dtype), jnp.ones(n - k, c.dtype)])
    d = jnp.diagonal(c)
    # I3[a, b, e] for a a student unit and b, e any unit: shape (K, n, n).
    i3 = _i3(
        d[:k, None, None],
        c[:k, :, None],
        c[:k, None, :],
        c[None, :, :],
        d[None, None, :],
    )
    drift = jnp.einsum("abe,e->ab", i3, s)  # E[δ_a u_b] / η, shape (K, n)
    dr = lr * drift[:, k:]
    dq_drift = drift[:, :k]
    # I4[a, b, e, f] for a, b students and e, f any unit: shape (K, K, n, n).
    i4 = _i4(
        d[:k, None, None, None],
        d[None, :k, None, None],
        d[None, None, :, None],
        d[None, None, None, :],
        c[:k, :k, None, None],
        c[:k, None, :, None],
        c[:k, None, None, :],
        c[None, :k, :, None],
        c[None, :k, None, :],
        c[None, None, :, :],
    )
    noise = jnp.einsum("abef,e,f->ab", i4, s, s)
    dq = lr * (dq_drift + dq_drift.T) + lr**2 * noise
    return dq, dr


def saad_solla_ode(q0, r0, t, *, lr, alpha_max, dalpha=0.01, n_records=200) -> OrderParameters:
    r"""Integrate the Saad-Solla ODEs with classical RK4 at fixed step ``dalpha``.

    Solves ``dQ/dα, dR/dα`` of :func:`saad_solla_rhs` from ``(Q0, R0)`` with ``T`` fixed and
    records ``Q``, ``R``, ``ε_g`` at ``n_records`` equally spaced times in ``[0, alpha_max]``
    (Saad & Solla 1995; Goldt et al. 2019, arXiv:1906.08632).

    Args:
      q0: ``(K, K)`` initial student overlaps.
      r0: ``(K, M)`` initial student-teacher overlaps.
      t: ``(M, M)`` teacher overlaps.
      lr: step size ``η`` (convention ``w ← w + (η/√D) δ x``).
      alpha_max: final time.
      dalpha: RK4 step (rounded down so that records fall on steps).
      n_records: number of recorded times (including ``α = 0``), at least 2.

    Returns:
      :class:`OrderParameters` with ``n_records`` entries.

    Raises:
      ValueError: on shape mismatch, NaN/inf, or when ``Q0``, ``T`` or the joint covariance
        ``[[Q0, R0], [R0ᵀ, T]]`` of the local fields is not symmetric positive semi-definite
        (no weights realise such overlaps; the integrals would be NaN), and for
        non-positive ``lr``, ``alpha_max``, ``dalpha`` or ``n_records < 2``.

    Example:
      >>> import jax.numpy as jnp
      >>> traj = saad_solla_ode(0.5 * jnp.eye(2), 0.1 * jnp.eye(2), jnp.eye(2), lr=0.5,
      ...                       alpha_max=5.0, n_records=3)
      >>> bool(traj.eg[-1] < traj.eg[0])
      True
    """
    q0, r0, t = _check_order_parameters(q0, r0, t, names=("q0", "r0", "t"))
    _check_positive(lr, "lr")
    _check_positive(alpha_max, "alpha_max")
    _check_positive(dalpha, "dalpha")
    n_records = _check_positive(n_records, "n_records", integer=True)
    if n_records < 2:
        raise ValueError(f"n_records must be at least 2, got {n_records}.")
    per_record = max(1, math.ceil(float(alpha_max) / (n_records - 1) / float(dalpha)))
    h = float(alpha_max) / ((n_records - 1) * per_record)
    return _integrate(q0, r0, t, lr, h, per_record, n_records)


@functools.partial(jax.jit, static_argnums=(5, 6))
def _integrate(q0, r0, t, lr, h, per_record, n_records):
    def f(state):
        return _rhs(state[0], state[1], t, lr)

    def rk4(state, _):
        k1 = f(state)
        k2 = f(jax.tree.map(lambda s, d: s + 0.5 * h * d, state, k1))
        k3 = f(jax.tree.map(lambda s, d: s + 0.5 * h * d, state, k2))
        k4 = f(jax.tree.map(lambda s, d: s + h * d, state, k3))
        new = jax.tree.map(
            lambda s, a, b, c, d: s + (h / 6.0) * (a + 2.0 * b + 2.0 * c + d), state, k1, k2, k3, k4
        )
        return new, None

    def record(state, _):
        state, _ = jax.lax.scan(rk4, state, None, length=per_record)
        return state, state

    _, (qs, rs) = jax.lax.scan(record, (q0, r0), None, length=n_records - 1)
    qs = jnp.concatenate([q0[None], qs])
    rs = jnp.concatenate([r0[None], rs])
    eg = jax.vmap(_eg, in_axes=(0, 0, None))(qs, rs, t)
    alpha = h * per_record * jnp.arange(n_records, dtype=qs.dtype)
    return OrderParameters(alpha, qs, rs, eg)


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
    w, v = _check_weights(w, v)
    d = w.shape[1]
    return w @ w.T / d, w @ v.T / d, v @ v.T / d


def _check_weights(w, v, names=("w", "v")):
    w, v = _float(w, names[0]), _float(v, names[1])
    if w.ndim != 2 or 0 in w.shape:
        raise ValueError(
            f"{names[0]} must be (K, D) student weights with K, D >= 1, got shape {w.shape}."
        )
    if v.ndim != 2 or v.shape[1] != w.shape[1] or v.shape[0] == 0:
        raise ValueError(
            f"v must be (M, D) teacher weights with D = {w.shape[1]} (from w), got shape {v.shape}."
        )
    dtype = jnp.result_type(w, v)
    return w.astype(dtype), v.astype(dtype)


def committee_online_sgd(key, w0, v, *, lr, n_steps, n_records=200) -> OrderParameters:
    r"""Online SGD of an erf soft committee machine, one fresh Gaussian sample per step.

    Update (the convention of this module): ``x ~ N(0, I_D)``,
    ``w_k ← w_k + (η/√D) g'(λ_k)(y - ŷ) x`` with ``y = Σ_m g(v_m·x/√D)``,
    ``ŷ = Σ_k g(w_k·x/√D)``, ``g = erf(·/√2)`` (Saad & Solla 1995). Records the order parameters
    and ``ε_g(Q, R, T)`` (exact for the current weights) at ``n_records`` equally spaced times
    ``α = step / D``. Compiled as one ``lax.scan``; ``vmap`` over ``key`` and ``w0`` for seeds.

    Args:
      key: PRNG key for the samples.
      w0: ``(K, D)`` initial student weights.
      v: ``(M, D)`` teacher weights.
      lr: step size ``η``.
      n_steps: number of SGD steps; must be a multiple of ``n_records - 1``.
      n_records: number of recorded times (including step 0), at least 2.

    Returns:
      :class:`OrderParameters` (``alpha = step / D``).

    Example:
      >>> import jax
      >>> k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
      >>> v = jax.random.normal(k1, (2, 100))
      >>> w0 = jax.random.normal(k2, (2, 100))
      >>> traj = committee_online_sgd(k3, w0, v, lr=0.5, n_steps=1000, n_records=11)
      >>> traj.eg.shape
      (11,)
    """
    key = _checks.prng_key(key, "key")
    w0, v = _check_weights(w0, v, names=("w0", "v"))
    _check_positive(lr, "lr")
    n_steps = _check_positive(n_steps, "n_steps", integer=True)
    n_records = _check_positive(n_records, "n_records", integer=True)
    if n_records < 2 or n_steps % (n_records - 1):
        raise ValueError(
            f"n_steps ({n_steps}) must be a multiple of n_records - 1 ({n_records - 1}), with "
            f"n_records >= 2."
        )
    return _online_sgd(key, w0, v, lr, n_steps // (n_records - 1), n_records)


@functools.partial(jax.jit, static_argnums=(4, 5))
def _online_sgd(key, w0, v, lr, per_record, n_records):
    d = w0.shape[1]
    scale = 1.0 / math.sqrt(d)
    c = math.sqrt(2.0 / math.pi)

    def step(w, x):
        lam = (w @ x) * scale
        nu = (v @ x) * scale
        err = jnp.sum(jax.lax.erf(nu / math.sqrt(2.0))) - jnp.sum(jax.lax.erf(lam / math.sqrt(2.0)))
        delta = c * jnp.exp(-0.5 * lam**2) * err
        return w + (lr * scale) * delta[:, None] * x[None, :], None

    # Samples are drawn in blocks of `block` rows (one random call per block is much cheaper
    # than one per step) whose size bounds the memory to about 2**20 numbers.
    block = _largest_divisor_at_most(per_record, max(1, 2**20 // d))

    def sample_block(w, k):
        xs = jax.random.normal(k, (block, d), w.dtype)
        return jax.lax.scan(step, w, xs)

    def record(w, k):
        w, _ = jax.lax.scan(sample_block, w, jax.random.split(k, per_record // block))
        return w, (w @ w.T / d, w @ v.T / d)

    _, (qs, rs) = jax.lax.scan(record, w0, jax.random.split(key, n_records - 1))
    q0, r0, t = w0 @ w0.T / d, w0 @ v.T / d, v @ v.T / d
    qs = jnp.concatenate([q0[None], qs])
    rs = jnp.concatenate([r0[None], rs])
    eg = jax.vmap(_eg, in_axes=(0, 0, None))(qs, rs, t)
    alpha = (per_record / d) * jnp.arange(n_records, dtype=qs.dtype)
    return OrderParameters(alpha, qs, rs, eg)


def _largest_divisor_at_most(n: int, cap: int) -> int:
    for b in range(min(n, cap), 0, -1):
        if n % b == 0:
            return b
    return 1
