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

import jax
import jax.numpy as jnp

from nnlab import _checks
from nnlab.record import Record

from ._erf_integrals import _i3, _i4, check_psd


class OrderParameters(Record):
    r"""Order parameters of a soft committee machine over ``time = α = steps / D``.

    Variables (``*lead`` = ``('seed',)`` for an ensemble of simulations, nothing for one run
    or the ODE):

    * ``q`` ``(*lead, 'time', 'student', 'student2')``: ``Q = w wᵀ/D``;
    * ``r`` ``(*lead, 'time', 'student', 'teacher')``: ``R = w vᵀ/D``;
    * ``eg`` ``(*lead, 'time')``: the generalisation error ``ε_g(Q, R, T)``;
    * ``t`` ``('teacher', 'teacher2')``: ``T = v vᵀ/D`` (fixed).

    ``meta['time_unit'] == 'alpha'``; ``alpha`` is the ``time`` coordinate.
    """

    @property
    def alpha(self):
        return self.time


def _check_lr(lr):
    return _checks.real(lr, "lr", positive=True, fix="It is the SGD step size η.")


def _check_order_parameters(q, r, t, names=("q", "r", "t")):
    """Shapes, finiteness and (when concrete) that ``C = [[Q, R], [Rᵀ, T]]`` is a covariance.

    ``C`` is the covariance of the local fields ``(λ, ν)``, so it must be symmetric and
    positive semi-definite; otherwise the integrals I2-I4 take square roots of negative numbers
    (NaN) or arcsines outside ``[-1, 1]``. Tolerance: see :func:`._erf_integrals.check_psd`.
    """
    nq, nr, nt = names
    q, r, t = (_checks.real_array(a, n) for a, n in ((q, nq), (r, nr), (t, nt)))
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
    _check_lr(lr)
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


def saad_solla_ode(
    q0, r0, t, *, lr, alpha_max, n_records=200, rtol=None, atol=None, max_steps=65536
) -> OrderParameters:
    r"""Integrate the Saad-Solla ODEs with ``diffrax`` and record ``Q``, ``R``, ``ε_g``.

    Solves ``dQ/dα, dR/dα`` of :func:`saad_solla_rhs` from ``(Q0, R0)`` with ``T`` fixed by
    ``diffrax.diffeqsolve`` (Kidger 2021, arXiv:2202.02435) with the adaptive fifth-order
    Runge-Kutta method ``Tsit5`` and a PID step-size controller at tolerances
    ``rtol``/``atol``, saved at ``n_records`` equally spaced times in ``[0, alpha_max]``
    (``SaveAt(ts=...)``) (Saad & Solla 1995; Goldt et al. 2019, arXiv:1906.08632).

    Args:
      q0: ``(K, K)`` initial student overlaps.
      r0: ``(K, M)`` initial student-teacher overlaps.
      t: ``(M, M)`` teacher overlaps.
      lr: step size ``η`` (convention ``w ← w + (η/√D) δ x``).
      alpha_max: final time.
      n_records: number of recorded times (including ``α = 0``), at least 2.
      rtol, atol: the step-size controller's relative and absolute tolerances (default
        ``1e-8``, ``1e-10`` in float64; ``1e-6``, ``1e-8`` in float32, whose rounding error
        estimates of ``~1e-7`` would otherwise shrink the steps without end).
      max_steps: most solver steps (more is an error: the flow is stiff or blows up).

    Returns:
      :class:`OrderParameters` with ``n_records`` times.

    Raises:
      ValueError: on shape mismatch, NaN/inf, or when ``Q0``, ``T`` or the joint covariance
        ``[[Q0, R0], [R0ᵀ, T]]`` of the local fields is not symmetric positive semi-definite
        (no weights realise such overlaps; the integrals would be NaN), and for
        non-positive ``lr``, ``alpha_max``, tolerances or ``n_records < 2``.

    Example:
      >>> import jax.numpy as jnp
      >>> traj = saad_solla_ode(0.5 * jnp.eye(2), 0.1 * jnp.eye(2), jnp.eye(2), lr=0.5,
      ...                       alpha_max=5.0, n_records=3)
      >>> traj.alpha.tolist(), bool(traj.eg[-1] < traj.eg[0])
      ([0.0, 2.5, 5.0], True)
    """
    q0, r0, t = _check_order_parameters(q0, r0, t, names=("q0", "r0", "t"))
    _check_lr(lr)
    _checks.real(alpha_max, "alpha_max", positive=True, fix="It is the final time α.")
    n_records = _checks.integer(n_records, "n_records", minimum=2)
    wide = jnp.finfo(q0.dtype).bits == 64
    rtol = (1e-8 if wide else 1e-6) if rtol is None else rtol
    atol = (1e-10 if wide else 1e-8) if atol is None else atol
    rtol = float(_checks.real(rtol, "rtol", positive=True))
    atol = float(_checks.real(atol, "atol", positive=True))
    max_steps = _checks.integer(max_steps, "max_steps")
    ts = jnp.linspace(0.0, alpha_max, n_records, dtype=q0.dtype)
    qs, rs = _solve(q0, r0, t, lr, ts, rtol=rtol, atol=atol, max_steps=max_steps)
    eg = jax.vmap(_eg, in_axes=(0, 0, None))(qs, rs, t)
    return OrderParameters(
        {
            "q": (("time", "student", "student2"), qs),
            "r": (("time", "student", "teacher"), rs),
            "eg": ("time", eg),
            "t": (("teacher", "teacher2"), t),
        },
        coords={"time": ts},
        meta={"time_unit": "alpha"},
    )


def _student_symmetric(q, r):
    """The projection onto the student-permutation-invariant overlaps: equal diagonal and
    off-diagonal entries of ``Q``, equal rows of ``R`` (the group average)."""
    k = q.shape[0]
    eye = jnp.eye(k, dtype=q.dtype)
    diag = jnp.trace(q) / k
    off = (jnp.sum(q) - jnp.trace(q)) / max(k * (k - 1), 1)
    rows = jnp.broadcast_to(jnp.mean(r, axis=0, keepdims=True), r.shape)
    return diag * eye + off * (1.0 - eye), rows


@functools.partial(jax.jit, static_argnames=("rtol", "atol", "max_steps", "symmetric"))
def _solve(q0, r0, t, lr, ts, *, rtol, atol, max_steps, symmetric=False):
    """``(Q, R)`` at ``ts``; with ``symmetric`` the flow is projected on the invariant
    subspace of student permutations at every evaluation (rounding cannot leave it)."""
    import diffrax  # here, not at the top: importing it takes seconds and only this needs it

    def field(_alpha, state, _args):
        q, r = _student_symmetric(*state) if symmetric else state
        return _rhs(q, r, t, lr)

    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(field),
        diffrax.Tsit5(),
        t0=ts[0],
        t1=ts[-1],
        dt0=None,
        y0=(q0, r0),
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=max_steps,
    )
    return sol.ys
