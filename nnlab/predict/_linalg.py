"""Private linear algebra for the predictors: validated inputs, Cholesky and eigh with PD checks.

Kernels that are not positive definite must never fail silently. Outside ``jax.jit`` the
helpers here raise a ``ValueError`` naming the kernel and suggesting a ridge; inside ``jit``
(where values are traced) Cholesky failures propagate as NaN and eigendecompositions with
clearly negative eigenvalues turn the result into NaN, as documented in every public function.
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import cho_solve

from nnlab import _checks
from nnlab._checks import is_traced

LossNormalization = Literal["mean", "sum"]


def as_float_array(x, name: str) -> jax.Array:
    """Convert to a floating JAX array (keeping float64 under x64), naming ``x`` in errors.

    Concrete (non-traced) values must be finite: NaN or inf is a ``ValueError``.
    """
    return _checks.real_array(x, name)


def check_finite(arr: jax.Array, name: str) -> None:
    """Raise if a concrete array holds NaN or inf (traced values are not checked)."""
    if not is_traced(arr) and not bool(np.all(np.isfinite(np.asarray(arr)))):
        bad = int(np.sum(~np.isfinite(np.asarray(arr))))
        raise ValueError(
            f"{name} contains NaN or inf ({bad} of its {arr.size} entries); clean the data first."
        )


def check_square(k, name: str) -> jax.Array:
    k = as_float_array(k, name)
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise ValueError(f"{name} must be a square (n, n) kernel matrix, got shape {k.shape}.")
    if k.shape[0] == 0:
        raise ValueError(
            f"{name} must have at least one training point, got shape {k.shape}; pass a "
            "non-empty kernel."
        )
    return k


def check_targets(y, n: int, name: str = "y") -> tuple[jax.Array, bool]:
    """Return targets as (n, k) plus whether the input was 1-D (to squeeze the output back)."""
    y = as_float_array(y, name)
    if y.ndim not in (1, 2) or y.shape[0] != n:
        raise ValueError(
            f"{name} must have shape (n,) or (n, k) with n = {n} training points, "
            f"got shape {y.shape}."
        )
    return (y[:, None], True) if y.ndim == 1 else (y, False)


def check_cross(k, m_rows: int | None, n: int, name: str) -> jax.Array:
    """Check a (m, n) test-train kernel; ``m_rows`` None accepts any number of rows."""
    k = as_float_array(k, name)
    if k.ndim != 2 or k.shape[1] != n or (m_rows is not None and k.shape[0] != m_rows):
        want = f"({'m' if m_rows is None else m_rows}, {n})"
        raise ValueError(f"{name} must have shape {want} (test, train), got shape {k.shape}.")
    return k


def check_nonnegative(value, name: str) -> None:
    """A concrete real scalar ``>= 0``: not NaN, not inf (traced values pass unchecked)."""
    _checks.real(value, name, minimum=0)


def check_times(t, name: str = "t", *, allow_inf: bool = True) -> None:
    """Concrete times must be ``>= 0`` and not NaN (``inf`` allowed when ``allow_inf``)."""
    if is_traced(t):
        return
    arr = np.asarray(t)
    bad = np.isnan(arr) | ~(arr >= 0) | (False if allow_inf else np.isinf(arr))
    if np.any(bad):
        what = ">= 0" if allow_inf else "finite and >= 0"
        raise ValueError(
            f"{name} must be {what} (NaN is not a time), got {t}; "
            f"{np.count_nonzero(bad)} bad entries."
        )


def learning_rate(lr, n: int, loss_normalization: LossNormalization) -> jax.Array:
    """Effective rate η in df/dt = -η Θ (f - y): lr / n for the mean loss, lr for the sum loss.

    The convention is stated in :mod:`nnlab.predict`; ``loss_normalization`` has no default
    here, every public function passes its own (``'mean'``).
    """
    _checks.choice(loss_normalization, "loss_normalization", ("mean", "sum"))
    if loss_normalization == "mean":
        return jnp.asarray(lr) / n
    return jnp.asarray(lr)


def add_ridge(k: jax.Array, ridge) -> jax.Array:
    return k + jnp.asarray(ridge, k.dtype) * jnp.eye(k.shape[0], dtype=k.dtype)


def _not_pd_message(name: str, k: jax.Array, detail: str) -> str:
    min_eig = float(jnp.linalg.eigvalsh(k)[0]) if k.shape[0] <= 4096 else float("nan")
    scale = float(jnp.mean(jnp.diag(k)))
    return (
        f"{name} is not positive definite ({detail}; smallest eigenvalue {min_eig:.3g}, mean "
        f"diagonal {scale:.3g}). Add a ridge / jitter to the diagonal, e.g. "
        f"ridge={1e-6 * scale:.1g} or larger, or compute the kernel in float64."
    )


def cholesky(k: jax.Array, name: str) -> jax.Array:
    """Lower Cholesky factor; ValueError outside jit if it fails, NaN inside jit."""
    chol = jnp.linalg.cholesky(k)
    if not is_traced(chol) and not bool(np.all(np.isfinite(np.asarray(chol)))):
        raise ValueError(_not_pd_message(name, k, "Cholesky factorisation failed"))
    return chol


def solve_pd(chol: jax.Array, b: jax.Array) -> jax.Array:
    return cho_solve((chol, True), b)


def raise_if_not_psd(ok, k: jax.Array, name: str) -> None:
    """Outside jit, turn a False ``ok`` flag from :func:`eigh_psd` into a clear ValueError."""
    if is_traced(ok) or bool(ok):
        return
    evals = np.linalg.eigvalsh(np.asarray(k, np.float64))
    raise ValueError(
        f"{name} is not positive semi-definite (smallest eigenvalue {evals[0]:.3g}, "
        f"largest {evals[-1]:.3g}). Symmetrise it, add a ridge / jitter to the "
        "diagonal, or compute the kernel in float64."
    )


def eigh_psd(k: jax.Array, name: str) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Eigendecomposition of a PSD kernel: (eigenvalues clipped at 0, eigenvectors, ok flag).

    Eigenvalues with |λ| <= tol = 100 · n · eps · λ_max are rounding noise and are set to 0
    (so exactly singular kernels act through their pseudo-inverse). Anything below -tol means
    the kernel is not PSD: ValueError outside jit, ``ok = False``
    inside jit (callers turn their outputs into NaN).
    """
    evals, evecs = jnp.linalg.eigh(k)
    tol = 100 * k.shape[0] * jnp.finfo(k.dtype).eps * jnp.maximum(jnp.abs(evals[-1]), 1e-30)
    ok = (evals[0] >= -tol) & jnp.all(jnp.isfinite(evals))
    if not is_traced(ok) and not bool(ok):
        raise ValueError(
            f"{name} is not positive semi-definite (smallest eigenvalue {float(evals[0]):.3g}, "
            f"largest {float(evals[-1]):.3g}). Symmetrise it, add a ridge / jitter to the "
            "diagonal, or compute the kernel in float64."
        )
    return jnp.where(evals > tol, evals, 0.0), evecs, ok
