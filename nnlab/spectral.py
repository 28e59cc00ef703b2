"""Kernel spectra and eigenlearning: predicted learning curves of kernel (ridge) regression.

Eigenlearning (Simon, Dickens, Karkada & DeWeese 2021, arXiv:2110.03922; equivalently
Bordelon, Canatar & Pehlevan 2020, arXiv:2002.02561) predicts the test and train error of
kernel ridge regression with ``n`` samples from the kernel's eigenvalues ``λ_i`` (w.r.t. the
data distribution) and the target's coefficients ``v_i`` in the orthonormal eigenbasis.

Conventions: the regressor is ``f̂(x) = K(x, X)(K(X, X) + δ I)^{-1} Y`` with ridge ``δ``, and
``noise`` is the *variance* ``ε²`` of i.i.d. label noise on train (and test) labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import _checks, _roots

__all__ = [
    "Eigenlearning",
    "LearningCurve",
    "eigenlearning",
    "eigh_descending",
    "learning_curve",
    "operator_eigensystem",
    "solve_kappa",
]


def _float_array(x, name: str) -> jax.Array:
    """A real floating array; concrete values must be finite (NaN/inf is a ValueError)."""
    return _checks.real_array(x, name)


def _vector(x, name: str) -> jax.Array:
    x = _float_array(x, name)
    if x.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {x.shape}.")
    if x.shape[0] == 0:
        raise ValueError(f"{name} must have at least one entry, got shape {x.shape}.")
    return x


def _concrete_nonnegative(value, name: str) -> None:
    """A real scalar ``>= 0``, not NaN or inf (traced values pass)."""
    _checks.real(value, name, minimum=0)


def _concrete_nonnegative_array(value, name: str) -> None:
    """Every entry ``>= 0`` (NaN fails); traced values pass."""
    if _checks.is_traced(value):
        return
    arr = np.asarray(value)
    if not np.all(arr >= 0):
        raise ValueError(
            f"{name} must be >= 0 (and not NaN), got {arr[~(arr >= 0)][:5].tolist()} at "
            f"positions {np.flatnonzero(~(arr >= 0))[:5].tolist()}."
        )


def _square(k, name: str) -> jax.Array:
    k = _float_array(k, name)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty square (n, n) matrix, got shape {k.shape}.")
    return k


def eigh_descending(k) -> tuple[jax.Array, jax.Array]:
    """Eigenvalues (descending) and matching eigenvectors (columns) of a symmetric matrix.

    Example:
      >>> import jax.numpy as jnp
      >>> eigh_descending(jnp.diag(jnp.array([1.0, 3.0])))[0].tolist()
      [3.0, 1.0]
    """
    k = _square(k, "k")
    evals, evecs = jnp.linalg.eigh(k)
    return evals[::-1], evecs[:, ::-1]


def operator_eigensystem(k_sample, y=None):
    r"""Nyström estimate of a kernel operator's spectrum from ``n`` samples of the data.

    For ``x_j`` drawn from the data distribution, ``K/n = U diag(λ̂) Uᵀ`` approximates the
    operator ``(Tf)(x) = E_{x'}[K(x, x') f(x')]``: ``λ̂_i`` estimate its eigenvalues and
    ``√n U_{·i}`` its orthonormal eigenfunctions at the samples. Target coefficients are
    ``v̂_i = ⟨φ_i, y⟩ ≈ U_{·i}ᵀ y / √n`` (Simon et al. 2021, arXiv:2110.03922, §3).

    Args:
      k_sample: ``(n, n)`` kernel on samples of the data distribution.
      y: optional ``(n,)`` target values at the samples.

    Returns:
      ``(eigenvalues (n,), eigenfunctions (n, n))`` descending, plus ``coefficients (n,)`` when
      ``y`` is given.

    Example:
      >>> import jax.numpy as jnp
      >>> operator_eigensystem(2 * jnp.eye(4))[0].tolist()
      [0.5, 0.5, 0.5, 0.5]
    """
    k_sample = _square(k_sample, "k_sample")
    n = k_sample.shape[0]
    evals, evecs = eigh_descending(k_sample / n)
    if y is None:
        return evals, jnp.sqrt(n) * evecs
    y = _vector(y, "y")
    if y.shape != (n,):
        raise ValueError(f"y must have shape ({n},), got {y.shape}.")
    return evals, jnp.sqrt(n) * evecs, evecs.T @ y / jnp.sqrt(n)


def solve_kappa(eigenvalues, n, *, ridge=0.0, iterations: int = 200) -> jax.Array:
    r"""Effective regularisation ``κ`` of kernel ridge regression with ``n`` samples.

    ``κ > 0`` solves (Simon et al. 2021, arXiv:2110.03922, eq. 5)

    .. math:: \sum_i \frac{\lambda_i}{\lambda_i + \kappa} + \frac{\delta}{\kappa} = n,

    found by ``iterations`` halvings of the bracket ``[ε²·κ_hi, κ_hi]`` on ``log κ`` (the left
    side decreases in ``κ``; ``κ_hi = (Σλ + δ)/n``, ``ε`` the dtype's epsilon) with
    :class:`optimistix.Bisection` (:func:`nnlab._roots.bisect`); about 60 halvings reach float64
    resolution. Works under ``jit``/``vmap`` (``n`` may be traced), and where a root exists
    ``jax.grad`` of ``κ`` (in ``eigenvalues``, ``n``, ``ridge``) is exact, by the implicit
    function theorem. With
    ``δ = 0`` a root needs more than ``n`` non-zero eigenvalues; otherwise the result is the
    lower end of the bracket (``κ ≈ 0``, interpolation).

    Raises:
      ValueError: for NaN/inf, negative or no eigenvalues, a NaN or negative ridge, ``n <= 0``
        or NaN, or ``iterations < 1`` (checked on concrete values; traced ones pass).

    Example:
      >>> import jax.numpy as jnp
      >>> round(float(solve_kappa(jnp.ones(4), 2)), 4)  # 4 / (1 + κ) = 2
      1.0
    """
    lam = _vector(eigenvalues, "eigenvalues")
    _concrete_nonnegative_array(lam, "eigenvalues")
    _concrete_nonnegative(ridge, "ridge")
    _checks.real(n, "n", positive=True, fix="n is the number of training samples.")
    iterations = _checks.integer(iterations, "iterations")
    n = jnp.asarray(n, lam.dtype)
    ridge = jnp.asarray(ridge, lam.dtype)
    hi = jnp.log((jnp.sum(lam) + ridge) / n)
    lo = hi + 2 * jnp.log(jnp.finfo(lam.dtype).eps)

    def deficit(log_kappa, args):  # n - Σλ/(λ+κ) - δ/κ: rises through 0 at the root
        lam, n, ridge = args
        kappa = jnp.exp(log_kappa)
        return n - jnp.sum(lam / (lam + kappa)) - ridge / kappa

    return jnp.exp(_roots.bisect(deficit, lo, hi, (lam, n, ridge), steps=iterations))


class Eigenlearning(NamedTuple):
    """Eigenlearning predictions (see :func:`eigenlearning`)."""

    kappa: jax.Array
    learnability: jax.Array
    e0: jax.Array
    test_mse: jax.Array
    train_mse: jax.Array
    generalization_error: jax.Array


def eigenlearning(eigenvalues, coefficients, n, *, ridge=0.0, noise=0.0) -> Eigenlearning:
    r"""Predicted test and train MSE of kernel ridge regression (eigenlearning).

    With ``κ`` from :func:`solve_kappa` (Simon et al. 2021, arXiv:2110.03922, eqs. 5-9;
    Bordelon, Canatar & Pehlevan 2020, arXiv:2002.02561):

    .. math::
       \mathcal L_i = \frac{\lambda_i}{\lambda_i + \kappa}, \quad
       \mathcal E_0 = \frac{n}{n - \sum_i \mathcal L_i^2}, \quad
       \text{MSE}_{te} = \mathcal E_0\Big(\sum_i (1 - \mathcal L_i)^2 v_i^2 + \epsilon^2\Big),
       \quad \text{MSE}_{tr} = \frac{\delta^2}{n^2\kappa^2}\,\text{MSE}_{te}.

    ``test_mse`` is measured against noisy test labels ``y = f(x) + ε``;
    ``generalization_error = test_mse - ε²`` is the error against the clean target ``f``.
    Target power outside the listed modes should be folded into ``noise``.

    Args:
      eigenvalues: ``(M,)`` kernel eigenvalues ``λ_i >= 0`` w.r.t. the data distribution.
      coefficients: ``(M,)`` target coefficients ``v_i`` in the orthonormal eigenbasis.
      n: number of training samples (may be traced).
      ridge: ridge ``δ >= 0``.
      noise: label-noise variance ``ε² >= 0``.

    Returns:
      ``Eigenlearning(kappa, learnability (M,), e0, test_mse, train_mse,
      generalization_error)``.

    Example:
      >>> import jax.numpy as jnp
      >>> lam = 1.0 / jnp.arange(1, 101) ** 2
      >>> out = eigenlearning(lam, jnp.sqrt(lam), 20)
      >>> bool(0 < out.test_mse < jnp.sum(lam))
      True
    """
    lam = _vector(eigenvalues, "eigenvalues")
    v = _vector(coefficients, "coefficients")
    if v.shape != lam.shape:
        raise ValueError(
            f"coefficients must have the shape of eigenvalues, {lam.shape}, got {v.shape}."
        )
    _concrete_nonnegative(noise, "noise")
    _concrete_nonnegative_array(lam, "eigenvalues")
    kappa = solve_kappa(lam, n, ridge=ridge)
    n = jnp.asarray(n, lam.dtype)
    learn = lam / (lam + kappa)
    e0 = n / (n - jnp.sum(learn**2))
    test = e0 * (jnp.sum((1 - learn) ** 2 * v**2) + noise)
    train = (jnp.asarray(ridge, lam.dtype) / (n * kappa)) ** 2 * test
    return Eigenlearning(kappa, learn, e0, test, train, test - noise)


class LearningCurve(NamedTuple):
    """Empirical learning curve: ``n (len(ns),)`` and per-seed errors ``(len(ns), seeds)``."""

    n: jax.Array
    test_mse: jax.Array
    train_mse: jax.Array
    generalization_error: jax.Array


def learning_curve(
    key,
    eigenvalues,
    coefficients,
    ns: Sequence[int],
    *,
    seeds: int = 32,
    ridge=0.0,
    noise=0.0,
) -> LearningCurve:
    r"""Empirical kernel ridge regression over sample sizes and seeds, to compare with theory.

    Data: features ``φ_i(x) ~ N(0, 1)`` i.i.d. (an orthonormal eigenbasis in distribution),
    kernel ``K(x, x') = Σ_i λ_i φ_i(x) φ_i(x')``, target ``f(x) = Σ_i v_i φ_i(x)``, labels
    ``y = f(x) + ε`` with ``ε ~ N(0, noise)``. The learned function is
    ``f̂ = Σ_i β_i φ_i`` with ``β = Λ Φᵀ (K + δ I)^{-1} y``, so the error against the clean
    target is exact: ``‖β - v‖²`` (no test sample is needed); ``test_mse`` adds ``ε²``.
    This is the setting in which eigenlearning (:func:`eigenlearning`) is derived (Simon et al.
    2021, arXiv:2110.03922; Bordelon et al. 2020, arXiv:2002.02561).

    Args:
      key: PRNG key.
      eigenvalues: ``(M,)`` eigenvalues ``λ_i``.
      coefficients: ``(M,)`` target coefficients ``v_i``.
      ns: training-set sizes (Python ints; each compiles once).
      seeds: independent draws per size.
      ridge: ridge ``δ`` (``0`` needs ``n < M``).
      noise: label-noise variance ``ε²``.

    Returns:
      ``LearningCurve(n, test_mse, train_mse, generalization_error)``, errors of shape
      ``(len(ns), seeds)``; train MSE is ``mean_j (f̂(x_j) - y_j)²`` on the noisy labels.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> lam = 1.0 / jnp.arange(1, 51) ** 2
      >>> curve = learning_curve(jax.random.key(0), lam, jnp.sqrt(lam), [10, 20], seeds=4)
      >>> curve.test_mse.shape
      (2, 4)
    """
    lam = _vector(eigenvalues, "eigenvalues")
    v = _vector(coefficients, "coefficients").astype(lam.dtype)
    if v.shape != lam.shape:
        raise ValueError(
            f"coefficients must have the shape of eigenvalues, {lam.shape}, got {v.shape}."
        )
    _checks.prng_key(key, "key")
    if isinstance(ns, str | bytes) or not isinstance(ns, Sequence | np.ndarray | jax.Array):
        raise TypeError(
            f"ns must be a sequence of training-set sizes such as [10, 20, 40], got {ns!r}."
        )
    if isinstance(ns, np.ndarray | jax.Array) and np.ndim(ns) != 1:
        raise ValueError(f"ns must be 1-D, got shape {np.shape(ns)}.")
    if len(ns) == 0:
        raise ValueError(f"ns must be a non-empty list of positive sizes, got {ns}.")
    ns = [_checks.integer(n, f"ns[{i}]") for i, n in enumerate(ns)]
    seeds = _checks.integer(seeds, "seeds")
    _concrete_nonnegative(ridge, "ridge")
    _concrete_nonnegative(noise, "noise")
    if not _checks.is_traced(ridge) and float(ridge) == 0 and max(ns) > lam.shape[0]:
        raise ValueError(
            f"ns has sizes up to {max(ns)} > M = {lam.shape[0]} modes, where the kernel matrix is "
            "singular and ridge=0 has no solution; pass ridge > 0 or sizes ns <= M."
        )
    ridge = jnp.asarray(ridge, lam.dtype)
    noise_std = jnp.sqrt(jnp.asarray(noise, lam.dtype))

    def one(key, n):
        k_feat, k_noise = jax.random.split(key)
        phi = jax.random.normal(k_feat, (n, lam.shape[0]), lam.dtype)
        y = phi @ v + noise_std * jax.random.normal(k_noise, (n,), lam.dtype)
        k = (phi * lam[None, :]) @ phi.T
        alpha = jax.scipy.linalg.cho_solve(
            (jnp.linalg.cholesky(k + ridge * jnp.eye(n, dtype=lam.dtype)), True), y
        )
        beta = lam * (phi.T @ alpha)
        gen = jnp.sum((beta - v) ** 2)
        train = jnp.mean((k @ alpha - y) ** 2)
        return gen, train

    gens, trains = [], []
    for i, n in enumerate(ns):
        keys = jax.random.split(jax.random.fold_in(key, i), seeds)
        gen, train = jax.jit(jax.vmap(one, in_axes=(0, None)), static_argnums=1)(keys, n)
        gens.append(gen)
        trains.append(train)
    gen = jnp.stack(gens)
    return LearningCurve(jnp.asarray(ns), gen + noise_std**2, jnp.stack(trains), gen)
