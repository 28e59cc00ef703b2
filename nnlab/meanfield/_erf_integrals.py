r"""Closed-form Gaussian expectations for ``g(z) = erf(z / sqrt(2))`` (Saad & Solla 1995).

For a centred Gaussian vector ``u`` with covariance ``C`` (indices 1-based below),
the online-SGD equations of a soft committee machine need

* ``I2 = E[g(u1) g(u2)] = (2/pi) arcsin(C12 / sqrt((1 + C11)(1 + C22)))``,
* ``I3 = E[g'(u1) u2 g(u3)]
  = (2/pi) (C23 (1 + C11) - C12 C13) / ((1 + C11) sqrt(L3))``,
  ``L3 = (1 + C11)(1 + C33) - C13**2``,
* ``I4 = E[g'(u1) g'(u2) g(u3) g(u4)] = (4/pi**2) arcsin(L0 / sqrt(L1 L2)) / sqrt(L4)``, with
  ``L4 = (1 + C11)(1 + C22) - C12**2``,
  ``L0 = L4 C34 - C23 C24 (1 + C11) - C13 C14 (1 + C22) + C12 C13 C24 + C12 C14 C23``,
  ``L1 = L4 (1 + C33) - C23**2 (1 + C11) - C13**2 (1 + C22) + 2 C12 C13 C23`` and ``L2`` the same
  with index 3 replaced by 4.

References: D. Saad & S. A. Solla, "On-line learning in soft committee machines",
Phys. Rev. E 52, 4225 (1995); S. Goldt, M. Advani, A. Saxe, F. Krzakala & L. Zdeborova,
"Dynamics of stochastic gradient descent for two-layer neural networks in the teacher-student
setup", NeurIPS 2019, arXiv:1906.08632 (appendix, same integrals).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import _checks


def check_psd(c, name: str, *, what: str = "a covariance matrix") -> None:
    """Raise unless concrete ``c`` (``(..., n, n)``) is finite, symmetric and PSD.

    Rounding tolerance: a covariance built in floating point (e.g. ``w wᵀ/D``) is symmetric
    and PSD up to ``O(n ε)`` relative to its largest entry / eigenvalue (backward stability of
    the product and of ``eigvalsh``), so entries with ``|C - Cᵀ| <= τ max|C|`` and
    eigenvalues ``>= -τ λ_max`` pass, with ``τ = 100 n ε``. Traced values are not checked
    (inside ``jit`` a non-PSD covariance gives NaN).
    """
    if _checks.is_traced(c):
        return
    arr = np.asarray(c, np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf; it must be {what}.")
    n = arr.shape[-1]
    tol = 100 * n * float(jnp.finfo(jnp.asarray(c).dtype).eps)
    size = np.max(np.abs(arr)) if arr.size else 0.0
    asym = np.max(np.abs(arr - np.swapaxes(arr, -1, -2))) if arr.size else 0.0
    if not asym <= tol * size:
        raise ValueError(
            f"{name} must be symmetric ({what}), but max|C - Cᵀ| = {asym:.3g} for max|C| = "
            f"{size:.3g}; symmetrise it, (C + C.T) / 2."
        )
    evals = np.linalg.eigvalsh(0.5 * (arr + np.swapaxes(arr, -1, -2)))
    lam_min, lam_max = float(np.min(evals)), float(np.max(np.abs(evals)))
    if not lam_min >= -tol * lam_max:
        raise ValueError(
            f"{name} must be positive semi-definite ({what}), but its smallest eigenvalue is "
            f"{lam_min:.3g} (largest |eigenvalue| {lam_max:.3g}): no Gaussian fields have "
            "these covariances. Build the overlaps from weights (committee_order_parameters) "
            "or check |R_in|² <= Q_ii T_nn."
        )


def _checked_cov(c, size: int, argname: str) -> jax.Array:
    c = _checks.real_array(c, argname)
    if c.ndim < 2 or c.shape[-2:] != (size, size):
        raise ValueError(
            f"{argname} must be a covariance matrix of shape (..., {size}, {size}), "
            f"got shape {c.shape}."
        )
    check_psd(c, argname)
    return c


def erf_i2(cov) -> jax.Array:
    r"""``E[g(u1) g(u2)]`` for ``g(z) = erf(z/√2)`` and ``u ~ N(0, cov)``.

    Formula: ``(2/π) arcsin(C12 / sqrt((1 + C11)(1 + C22)))`` (Saad & Solla 1995).

    Args:
      cov: covariance matrices, shape ``(..., 2, 2)``.

    Returns:
      Array of shape ``cov.shape[:-2]``.

    Example:
      >>> import jax.numpy as jnp
      >>> round(float(erf_i2(jnp.eye(2))), 6)  # independent units
      0.0
    """
    c = _checked_cov(cov, 2, "cov")
    c11, c12, c22 = c[..., 0, 0], c[..., 0, 1], c[..., 1, 1]
    return (2.0 / jnp.pi) * jnp.arcsin(c12 / jnp.sqrt((1.0 + c11) * (1.0 + c22)))


def erf_i3(cov) -> jax.Array:
    r"""``E[g'(u1) u2 g(u3)]`` for ``g(z) = erf(z/√2)`` and ``u ~ N(0, cov)``.

    Formula: ``(2/π) (C23 (1 + C11) - C12 C13) / ((1 + C11) sqrt(L3))`` with
    ``L3 = (1 + C11)(1 + C33) - C13²`` (Saad & Solla 1995).

    Args:
      cov: covariance matrices, shape ``(..., 3, 3)``.

    Returns:
      Array of shape ``cov.shape[:-2]``.

    Example:
      >>> import jax.numpy as jnp
      >>> round(float(erf_i3(jnp.eye(3))), 6)
      0.0
    """
    c = _checked_cov(cov, 3, "cov")
    return _i3(c[..., 0, 0], c[..., 0, 1], c[..., 0, 2], c[..., 1, 2], c[..., 2, 2])


def _i3(c11, c12, c13, c23, c33):
    l3 = (1.0 + c11) * (1.0 + c33) - c13**2
    return (2.0 / jnp.pi) * (c23 * (1.0 + c11) - c12 * c13) / ((1.0 + c11) * jnp.sqrt(l3))


def erf_i4(cov) -> jax.Array:
    r"""``E[g'(u1) g'(u2) g(u3) g(u4)]`` for ``g(z) = erf(z/√2)`` and ``u ~ N(0, cov)``.

    Formula: ``(4/π²) arcsin(L0 / sqrt(L1 L2)) / sqrt(L4)`` with ``L0, L1, L2, L4`` as in the
    module docstring (Saad & Solla 1995).

    Args:
      cov: covariance matrices, shape ``(..., 4, 4)``.

    Returns:
      Array of shape ``cov.shape[:-2]``.

    Example:
      >>> import jax.numpy as jnp
      >>> round(float(erf_i4(jnp.eye(4))), 6)
      0.0
    """
    c = _checked_cov(cov, 4, "cov")
    return _i4(
        c[..., 0, 0],
        c[..., 1, 1],
        c[..., 2, 2],
        c[..., 3, 3],
        c[..., 0, 1],
        c[..., 0, 2],
        c[..., 0, 3],
        c[..., 1, 2],
        c[..., 1, 3],
        c[..., 2, 3],
    )


def _i4(c11, c22, c33, c44, c12, c13, c14, c23, c24, c34):
    l4 = (1.0 + c11) * (1.0 + c22) - c12**2
    l0 = (
        l4 * c34
        - c23 * c24 * (1.0 + c11)
        - c13 * c14 * (1.0 + c22)
        + c12 * c13 * c24
        + c12 * c14 * c23
    )
    l1 = l4 * (1.0 + c33) - c23**2 * (1.0 + c11) - c13**2 * (1.0 + c22) + 2.0 * c12 * c13 * c23
    l2 = l4 * (1.0 + c44) - c24**2 * (1.0 + c11) - c14**2 * (1.0 + c22) + 2.0 * c12 * c14 * c24
    return (4.0 / jnp.pi**2) * jnp.arcsin(l0 / jnp.sqrt(l1 * l2)) / jnp.sqrt(l4)
