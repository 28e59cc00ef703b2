"""Mean and covariance of the infinite ensemble of linearised networks trained on the MSE."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp

from . import _linalg
from ._linalg import LossNormalization


class EnsemblePrediction(NamedTuple):
    """Mean ``(*t.shape, m[, k])`` and covariance ``(*t.shape, m, m)`` (or variances
    ``(*t.shape, m)``) of the outputs over random initialisations; ``covariance`` is ``None``
    when ``compute_cov=False``. Output channels are independent and share the covariance."""

    mean: jax.Array
    covariance: jax.Array | None


def _part(k, part: str, name: str, allow_bare: bool):
    """Pull ``part`` ('nngp'/'ntk') out of a Kernel-like object, a mapping or a bare array."""
    if isinstance(k, Mapping):
        val = k.get(part)
    elif hasattr(k, "nngp") or hasattr(k, "ntk"):
        val = getattr(k, part, None)
    elif allow_bare:
        val = k
    else:
        val = None
    if val is None:
        raise TypeError(
            f"{name} must provide a {part!r} kernel: pass an object with .nngp and .ntk "
            f"(e.g. nnlab.kernel(..., get=('nngp', 'ntk'))) or a dict with those keys; got "
            f"{type(k).__name__}."
        )
    return _linalg.as_float_array(val, f"{name}.{part}")


def ensemble_mse(
    k_train_train,
    y,
    t,
    k_test_train=None,
    nngp_test_test=None,
    *,
    get: Literal["ntk", "nngp"] = "ntk",
    lr=1.0,
    ridge=0.0,
    compute_cov: bool = True,
    loss_normalization: LossNormalization = "mean",
) -> EnsemblePrediction:
    r"""Infinite ensemble of wide networks trained by gradient flow on the MSE: mean and covariance.

    At initialisation the outputs are a GP with the NNGP kernel ``K``; the linearised network
    trained by gradient flow on the MSE is a Gaussian process at every time ``t`` (Lee et al.
    2019, arXiv:1902.06720, eqs. 14-16), ``η`` the effective rate of the loss convention of
    :mod:`nnlab.predict` (``lr / n`` by default). With ``A_t(x) = G(x, X) G^{-1}
    (I - e^{-η G t})``, where ``G = Θ`` (NTK, all layers trained; ``get='ntk'``) or ``G = K``
    (readout-only training; ``get='nngp'``):

    .. math::
       \mu_t(x) = A_t(x)\, Y, \qquad
       \Sigma_t(x, x') = K(x, x') + A_t(x) K(X, X) A_t(x')^\top
                         - A_t(x) K(X, x') - K(x, X) A_t(x')^\top .

    For ``get='nngp'`` this reduces to ``K(x, x') - K(x, X) K^{-1}(I - e^{-2ηKt}) K(X, x')``.
    One eigendecomposition of ``G`` serves all times; ``t = jnp.inf`` gives the converged
    ensemble.

    Args:
      k_train_train: train-train kernels ``(n, n)``: an object with ``.nngp`` and ``.ntk``
        (such as ``nnlab.kernel(net, x_train, get=('nngp', 'ntk'))``) or a dict with keys
        ``'nngp'``/``'ntk'``. For ``get='nngp'`` a bare NNGP array is accepted.
      y: ``(n,)`` or ``(n, k)`` targets.
      t: times, any shape; may be traced, may contain ``inf``.
      k_test_train: test-train kernels ``(m, n)`` in the same form. If ``None`` the prediction
        is on the training points.
      nngp_test_test: test-test NNGP ``(m, m)``, or its diagonal ``(m,)`` for variances only
        (object with ``.nngp`` also accepted). Needed when ``compute_cov`` and test kernels are
        given.
      get: ``'ntk'`` or ``'nngp'``, which kernel drives training.
      lr: learning rate.
      ridge: added to the diagonal of the training kernel ``G``.
      compute_cov: also compute the covariance.
      loss_normalization: ``'mean'`` (default) or ``'sum'``, see :mod:`nnlab.predict`.

    Returns:
      ``EnsemblePrediction(mean, covariance)``.

    Raises:
      ValueError / TypeError: on bad shapes or missing kernels; outside ``jit`` also when
        ``G + ridge·I`` has clearly negative eigenvalues (inside ``jit``: NaN outputs).

    Example:
      >>> import jax.numpy as jnp
      >>> nngp = jnp.array([[1.0, 0.2], [0.2, 1.0]])
      >>> k = {"nngp": nngp, "ntk": 2 * nngp}
      >>> out = ensemble_mse(k, jnp.array([1.0, -1.0]), jnp.inf)
      >>> out.mean.round(3).tolist(), (jnp.diag(out.covariance).round(3) + 0.0).tolist()
      ([1.0, -1.0], [0.0, 0.0])
    """
    if get not in ("ntk", "nngp"):
        raise ValueError(f"get must be 'ntk' or 'nngp', got {get!r}.")
    nngp = _part(k_train_train, "nngp", "k_train_train", get == "nngp")
    nngp = _linalg.check_square(nngp, "nngp")
    drive = (
        nngp
        if get == "nngp"
        else _linalg.check_square(_part(k_train_train, "ntk", "k_train_train", False), "ntk")
    )
    n = nngp.shape[0]
    if drive.shape != nngp.shape:
        raise ValueError(
            f"ntk and nngp train kernels differ in shape: {drive.shape} vs {nngp.shape}."
        )
    y2, squeeze = _linalg.check_targets(y, n)
    if k_test_train is None:
        nngp_x, drive_x, nngp_xx = nngp, drive, nngp
        if nngp_test_test is not None:
            raise ValueError("nngp_test_test was given without k_test_train; pass both.")
    else:
        nngp_x = _linalg.check_cross(
            _part(k_test_train, "nngp", "k_test_train", get == "nngp"), None, n, "k_test_train.nngp"
        )
        m = nngp_x.shape[0]
        drive_x = (
            nngp_x
            if get == "nngp"
            else _linalg.check_cross(
                _part(k_test_train, "ntk", "k_test_train", False), m, n, "k_test_train.ntk"
            )
        )
        nngp_xx = None
        if compute_cov:
            if nngp_test_test is None:
                raise ValueError(
                    "compute_cov=True needs nngp_test_test, the (m, m) test-test NNGP (or its "
                    "(m,) diagonal); pass it or set compute_cov=False."
                )
            nngp_xx = _part(nngp_test_test, "nngp", "nngp_test_test", True)
            if nngp_xx.shape not in ((m, m), (m,)):
                raise ValueError(
                    f"nngp_test_test must have shape ({m}, {m}) or ({m},), got {nngp_xx.shape}."
                )
    _linalg.check_nonnegative(ridge, "ridge")
    _linalg.check_times(t, "t")
    t = jnp.asarray(t, y2.dtype)
    _linalg.check_nonnegative(lr, "lr")
    eta = _linalg.learning_rate(lr, n, loss_normalization).astype(y2.dtype)

    mean, cov, ok = _ensemble_core(
        drive, nngp, drive_x, nngp_x, nngp_xx, y2, t, eta, ridge, compute_cov=compute_cov
    )
    _linalg.raise_if_not_psd(ok, _linalg.add_ridge(drive, ridge), f"{get}_train + ridge * I")
    if squeeze:
        mean = mean[..., 0]
    return EnsemblePrediction(mean, cov)


@partial(jax.jit, static_argnames=("compute_cov",))
def _ensemble_core(drive, nngp, drive_x, nngp_x, nngp_xx, y2, t, eta, ridge, *, compute_cov):
    """Jitted numerics of :func:`ensemble_mse`; returns (mean, covariance or None, ok flag)."""
    ridge = jnp.asarray(ridge, drive.dtype)
    evals, evecs, ok = _linalg.eigh_psd(_linalg.add_ridge(drive, ridge), "training kernel")
    tt = t[..., None]
    lam = evals.reshape((1,) * (tt.ndim - 1) + evals.shape)
    exponent = jnp.where(lam > 0, -eta * lam * tt, 0.0)
    safe_lam = jnp.where(lam > 0, lam, 1.0)
    zero_mode = jnp.where(jnp.isinf(tt), 0.0, eta * tt)
    a = jnp.where(lam > 0, -jnp.expm1(exponent) / safe_lam, zero_mode)  # (*T, n)

    lead = (1,) * (a.ndim - 1)
    b = drive_x @ evecs  # G(x, X) V: (m, n)
    coeff = evecs.T @ y2
    mean = b.reshape(lead + b.shape) @ (a[..., :, None] * coeff.reshape(lead + coeff.shape))
    nan = jnp.asarray(jnp.nan, mean.dtype)
    mean = jnp.where(ok, mean, nan)
    if not compute_cov:
        return mean, None, ok

    c = evecs.T @ nngp_x.T  # Vᵀ K(X, x): (n, m)
    s = evecs.T @ nngp @ evecs  # Vᵀ K(X, X) V: (n, n)
    ba = b.reshape(lead + b.shape) * a[..., None, :]  # A_t V: (*T, m, n)
    nngp_xx = nngp_xx.reshape(lead + nngp_xx.shape)
    if nngp_xx.ndim == len(lead) + 1:
        cross = jnp.einsum("...mn,nm->...m", ba, c)
        quad = jnp.einsum("...mn,nk,...mk->...m", ba, s, ba)
        cov = nngp_xx + quad - 2 * cross
    else:
        cross = jnp.einsum("...mn,nk->...mk", ba, c)
        quad = jnp.einsum("...mn,nk,...jk->...mj", ba, s, ba)
        cov = nngp_xx + quad - cross - jnp.swapaxes(cross, -1, -2)
    return mean, jnp.where(ok, cov, nan), ok
