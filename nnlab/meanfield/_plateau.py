r"""The specialisation plateau of soft committee machines (Saad & Solla 1995).

The ODEs of :mod:`._saad_solla` leave the subspace of student-permutation-symmetric overlaps
(``Q_ii`` all equal, ``Q_ik`` all equal, ``R_in`` independent of ``i``) invariant. Inside it
the flow from ``Q = I``, ``R = 0`` converges to the unspecialised fixed point, which is a
saddle of the full flow: a trajectory from random initial weights is drawn to it, stays on
the plateau ``ε_g ≈ ε_g*`` and leaves along its unstable (specialising) direction after a
time that grows like ``log D``, triggered by ``O(D^{-1/2})`` asymmetries (Saad & Solla 1995;
Biehl, Riegler & Woehler 1996).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import _checks
from nnlab.evaluate import first_crossing

from ._saad_solla import _check_lr, _check_order_parameters, _eg, _solve


def saad_solla_plateau(t, n_students: int, *, lr, alpha_max=200.0) -> jax.Array:
    r"""``ε_g`` at the unspecialised fixed point of the Saad-Solla ODEs.

    Integrates the flow projected on the student-permutation-symmetric subspace (module
    docstring) from ``Q = I``, ``R = 0`` to ``alpha_max`` with the solver of
    :func:`saad_solla_ode` (so rounding cannot trigger the escape that the full flow would
    take, in float32 already after ``α ≈ 200`` at ``η = 2``).

    Args:
      t: ``(M, M)`` teacher overlaps.
      n_students: ``K``.
      lr: step size ``η``.
      alpha_max: integration time (the approach is exponential; check by doubling it).

    Example:
      >>> import jax.numpy as jnp
      >>> round(float(saad_solla_plateau(jnp.eye(2), 2, lr=2.0)), 4)
      0.0652
    """
    k = _checks.integer(n_students, "n_students")
    t = _checks.real_array(t, "t")
    q0, r0 = jnp.eye(k, dtype=t.dtype), jnp.zeros((k, t.shape[0]), t.dtype)
    q0, r0, t = _check_order_parameters(q0, r0, t)
    _check_lr(lr)
    _checks.real(alpha_max, "alpha_max", positive=True)
    wide = jnp.finfo(t.dtype).bits == 64
    ts = jnp.linspace(0.0, alpha_max, 2, dtype=t.dtype)
    qs, rs = _solve(
        q0, r0, t, lr, ts, rtol=1e-8 if wide else 1e-6, atol=1e-10 if wide else 1e-8,
        max_steps=65536, symmetric=True,
    )  # fmt: skip
    return _eg(qs[-1], rs[-1], t)


def plateau_window(alpha, eg, plateau, *, escape=0.9, within=0.05, after=1.0):
    r"""Where a curve ``ε_g(α)`` sits on the plateau, and where it leaves it.

    The escape is the first time after ``α = after`` at which ``eg`` falls below
    ``escape · plateau`` (:func:`nnlab.evaluate.first_crossing`); ``i_escape`` is the first
    record at or after it (the last record when the curve never escapes). The window is the
    records before the escape where ``|eg / plateau − 1| < within``.

    Args:
      alpha: ``(T,)`` times; eg: ``(T,)`` the curve (e.g. the seed mean of the ODEs);
      plateau: the fixed point's ``ε_g*`` (:func:`saad_solla_plateau`).

    Returns:
      ``(i_escape, window)``: an int and the indices of the window.

    Example:
      >>> import numpy as np
      >>> a = np.arange(6.0)
      >>> plateau_window(a, np.array([1.0, 0.11, 0.1, 0.101, 0.05, 0.01]), 0.1)
      (4, array([2, 3]))
    """
    alpha, eg = np.asarray(alpha, float), np.asarray(eg, float)
    if alpha.ndim != 1 or eg.shape != alpha.shape:
        raise ValueError(f"alpha and eg must be 1-D of one length, got {alpha.shape}, {eg.shape}.")
    plateau = _checks.real(plateau, "plateau", positive=True)
    late = alpha > after
    t_escape = first_crossing(alpha[late], -eg[late], -escape * plateau)
    i_escape = len(alpha) - 1 if np.isnan(t_escape) else int(np.searchsorted(alpha, t_escape))
    window = np.flatnonzero(np.abs(eg[:i_escape] / plateau - 1.0) < within)
    return i_escape, window
