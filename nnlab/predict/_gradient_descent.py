"""Closed-form MSE training dynamics of linearised networks: gradient flow, GD, heavy ball.

The loss convention (``loss_normalization``, default the mean loss) is the one stated in
:mod:`nnlab.predict`; below ``η`` is the effective rate it defines: ``lr / n`` for ``'mean'``,
``lr`` for ``'sum'``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import _checks
from nnlab._checks import is_traced

from . import _linalg
from ._linalg import LossNormalization


class TrainTestPrediction(NamedTuple):
    """Outputs on the training points and (if a test kernel was given) on the test points.

    Shapes: ``(*t.shape, n[, k])`` for ``train`` and ``(*t.shape, m[, k])`` for ``test``; the
    trailing ``k`` is present when ``y`` was 2-D. ``test`` is ``None`` without a test kernel.
    """

    train: jax.Array
    test: jax.Array | None


def _prepare(ntk_train, y, ntk_test_train, f0_train, f0_test, ridge):
    ntk_train = _linalg.check_square(ntk_train, "ntk_train")
    n = ntk_train.shape[0]
    y2, squeeze = _linalg.check_targets(y, n)
    if f0_train is None:
        f0_train = jnp.zeros_like(y2)
    else:
        f0_train = _linalg.as_float_array(f0_train, "f0_train").astype(y2.dtype)
        if f0_train.shape not in (y2.shape, (n,) if squeeze else ()):
            want = (n,) if squeeze else y2.shape
            raise ValueError(f"f0_train must have the shape of y, {want}, got {f0_train.shape}.")
        f0_train = f0_train.reshape(y2.shape)
    if ntk_test_train is not None:
        ntk_test_train = _linalg.check_cross(ntk_test_train, None, n, "ntk_test_train")
        m = ntk_test_train.shape[0]
        if f0_test is None:
            f0_test = jnp.zeros((m, y2.shape[1]), y2.dtype)
        else:
            f0_test = _linalg.as_float_array(f0_test, "f0_test").astype(y2.dtype)
            if f0_test.shape not in ((m, y2.shape[1]), (m,) if squeeze else ()):
                raise ValueError(
                    f"f0_test must have shape ({m},{'' if squeeze else f' {y2.shape[1]}'}) "
                    f"(test points{'' if squeeze else ', outputs'}), got {f0_test.shape}."
                )
            f0_test = f0_test.reshape(m, y2.shape[1])
    elif f0_test is not None:
        raise ValueError("f0_test was given without ntk_test_train; pass both or neither.")
    _linalg.check_nonnegative(ridge, "ridge")
    ridged = _linalg.add_ridge(ntk_train, ridge)
    evals, evecs, ok = _linalg.eigh_psd(ridged, "ntk_train + ridge * I")
    return n, y2, squeeze, f0_train, ntk_test_train, f0_test, evals, evecs, ok


def _assemble(y2, squeeze, f0_train, ntk_test_train, f0_test, evecs, decay, drift, ok):
    """train = Y + V diag(decay) Vᵀ (f0 - Y);  test = f0* + Θ*X V diag(drift) Vᵀ (f0 - Y)."""
    coeff = evecs.T @ (f0_train - y2)  # (n, k) residual in the eigenbasis
    lead = (1,) * (decay.ndim - 1)
    coeff = coeff.reshape(lead + coeff.shape)
    train = y2.reshape(lead + y2.shape) + evecs.reshape(lead + evecs.shape) @ (
        decay[..., :, None] * coeff
    )
    nan = jnp.asarray(jnp.nan, train.dtype)
    train = jnp.where(ok, train, nan)
    test = None
    if ntk_test_train is not None:
        test = f0_test.reshape(lead + f0_test.shape) + (ntk_test_train @ evecs).reshape(
            lead + f0_test.shape[:1] + evecs.shape[1:]
        ) @ (drift[..., :, None] * coeff)
        test = jnp.where(ok, test, nan)
    if squeeze:
        train = train[..., 0]
        test = None if test is None else test[..., 0]
    return TrainTestPrediction(train, test)


def _broadcast_modes(times, evals):
    """Times of shape S and eigenvalues (n,) -> arrays of shape (*S, 1) and (1,...,1, n)."""
    times = times[..., None]
    return times, evals.reshape((1,) * (times.ndim - 1) + evals.shape)


def gradient_flow_mse(
    ntk_train,
    y,
    t,
    ntk_test_train=None,
    *,
    lr=1.0,
    f0_train=None,
    f0_test=None,
    ridge=0.0,
    loss_normalization: LossNormalization = "mean",
):
    r"""Outputs of the linearised network under gradient flow on the MSE loss, at any times.

    With ``Θ = Θ(X, X)`` and ``η`` the effective rate of the loss convention of
    :mod:`nnlab.predict` (``lr / n`` by default) (Lee et al. 2019, arXiv:1902.06720, eqs. 8-9):

    .. math::
       f_t(X) = Y + e^{-\eta\Theta t}(f_0(X) - Y), \qquad
       f_t(x) = f_0(x) + \Theta(x, X)\,\Theta^{-1}(I - e^{-\eta\Theta t})\,(Y - f_0(X)).

    One eigendecomposition ``Θ = V diag(λ) Vᵀ`` serves every time in ``t``; zero modes use the
    limit ``(1 - e^{-ηλt})/λ → ηt`` (and contribute nothing at ``t = ∞``, the min-norm limit).
    ``t = jnp.inf`` gives kernel regression.

    Args:
      ntk_train: ``(n, n)`` NTK on the training points.
      y: ``(n,)`` or ``(n, k)`` targets.
      t: times, any shape (scalar or ``(T,)``); may be traced, may contain ``inf``.
      ntk_test_train: optional ``(m, n)`` NTK between test and training points.
      lr: learning rate (may be traced).
      f0_train, f0_test: outputs at initialisation (default zero: the mean over inits).
      ridge: added to the diagonal of ``ntk_train`` (an L2 pull towards ``Y``-fit; jitter).
      loss_normalization: ``'mean'`` (default) or ``'sum'``, see :mod:`nnlab.predict`.

    Returns:
      ``TrainTestPrediction(train, test)`` with a leading time axis of ``t.shape``.

    Raises:
      ValueError: on bad shapes/values, or (outside ``jit``) when ``ntk_train + ridge·I`` has
        clearly negative eigenvalues. Inside ``jit`` that case returns NaN outputs.

    Example:
      >>> import jax.numpy as jnp
      >>> ntk = jnp.array([[2.0, 0.0], [0.0, 1.0]])
      >>> gradient_flow_mse(ntk, jnp.array([1.0, 1.0]), jnp.array([0.0, jnp.inf])).train.tolist()
      [[0.0, 0.0], [1.0, 1.0]]
    """
    n, y2, squeeze, f0_train, ntk_test_train, f0_test, evals, evecs, ok = _prepare(
        ntk_train, y, ntk_test_train, f0_train, f0_test, ridge
    )
    _linalg.check_times(t, "t")
    t = jnp.asarray(t, y2.dtype)
    _linalg.check_nonnegative(lr, "lr")
    eta = _linalg.learning_rate(lr, n, loss_normalization).astype(y2.dtype)
    tt, lam = _broadcast_modes(t, evals)
    exponent = -eta * lam * tt
    exponent = jnp.where(lam > 0, exponent, 0.0)  # avoid 0 * inf in zero modes
    decay = jnp.exp(exponent)
    safe_lam = jnp.where(lam > 0, lam, 1.0)
    zero_mode = jnp.where(jnp.isinf(tt), 0.0, -eta * tt)
    drift = jnp.where(lam > 0, jnp.expm1(exponent) / safe_lam, zero_mode)
    return _assemble(y2, squeeze, f0_train, ntk_test_train, f0_test, evecs, decay, drift, ok)


def _heavy_ball_modes(evals, eta, momentum, steps):
    """Per-mode (ρ_k, D_k) of the heavy-ball recursion via binary powers of a 3x3 matrix.

    State z_k = (ρ_k, w_k, D_k), z_0 = (1, 0, 0), with w_{k+1} = β w_k - η ρ_k,
    ρ_{k+1} = ρ_k + λ w_{k+1}, D_{k+1} = D_k + w_{k+1}.
    """
    one = jnp.ones_like(evals)
    zero = jnp.zeros_like(evals)
    beta = momentum * one
    a = jnp.stack(
        [
            jnp.stack([1 - eta * evals, evals * beta, zero], -1),
            jnp.stack([-eta * one, beta, zero], -1),
            jnp.stack([-eta * one, beta, one], -1),
        ],
        -2,
    )  # (n, 3, 3)
    if is_traced(steps):
        n_bits = 31
    else:
        n_bits = max(int(np.max(np.asarray(steps))).bit_length(), 1) if steps.size else 1
    z = jnp.zeros((*steps.shape, evals.shape[0], 3), evals.dtype).at[..., 0].set(1.0)
    bits = steps[..., None, None]

    def body(b, carry):
        power, z = carry
        hit = ((bits >> b) & 1) == 1
        z = jnp.where(hit, jnp.einsum("nij,...nj->...ni", power, z), z)
        return power @ power, z

    _, z = jax.lax.fori_loop(0, n_bits, body, (a, z))
    return z[..., 0], z[..., 2]


def _check_momentum(momentum) -> None:
    """Heavy-ball ``β`` must be a real number in ``[0, 1)`` (NaN fails; traced passes)."""
    fix = "Heavy-ball momentum β must be in [0, 1), e.g. 0.9."
    try:
        _checks.real(momentum, "momentum", minimum=0, fix=fix)
    except ValueError as err:
        raise ValueError(str(err).replace("must be >= 0", "must be in [0, 1)")) from None
    if not is_traced(momentum) and not float(momentum) < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}. {fix}")


def gradient_descent_mse(
    ntk_train,
    y,
    steps,
    ntk_test_train=None,
    *,
    lr=1.0,
    momentum=0.0,
    f0_train=None,
    f0_test=None,
    ridge=0.0,
    loss_normalization: LossNormalization = "mean",
):
    r"""Outputs of the linearised network after ``k`` discrete (heavy-ball) gradient steps.

    Plain GD (``momentum = 0``) on the MSE is ``f_{k+1} = f_k - ηΘ(f_k - Y)``, ``η`` the
    effective rate of :mod:`nnlab.predict`'s loss convention (``lr / n`` by default), whose
    closed form in the eigenbasis of ``Θ`` is the matrix power

    .. math::
       f_k(X) = Y + (I - \eta\Theta)^k (f_0 - Y), \quad
       f_k(x) = f_0(x) - \Theta(x, X)\,\Theta^{-1}\big(I - (I - \eta\Theta)^k\big)(f_0 - Y).

    Heavy-ball momentum ``β`` (Polyak 1964; ``v ← βv - lr ∇L``, ``θ ← θ + v``, as
    ``optax.sgd(lr, momentum=β)``) gives per eigenvalue ``λ`` the residual recursion
    ``r_{k+1} = (1 + β - ηλ) r_k - β r_{k-1}``, ``r_1 = (1 - ηλ) r_0``; it is evaluated in closed
    form by binary powers of a 3x3 matrix per mode, so ``steps`` may be traced. Linearised
    dynamics follow Lee et al. 2019 (arXiv:1902.06720).

    Args:
      ntk_train: ``(n, n)`` NTK on the training points.
      y: ``(n,)`` or ``(n, k)`` targets.
      steps: non-negative integer step counts, any shape (e.g. ``(T,)``); may be traced.
      ntk_test_train: optional ``(m, n)`` NTK between test and training points.
      lr: learning rate.
      momentum: heavy-ball coefficient ``β`` in ``[0, 1)``.
      f0_train, f0_test: outputs at initialisation (default zero).
      ridge: added to the diagonal of ``ntk_train``.
      loss_normalization: ``'mean'`` (default) or ``'sum'``, see :mod:`nnlab.predict`.

    Returns:
      ``TrainTestPrediction(train, test)`` with a leading axis of ``steps.shape``. Diverging
      learning rates (see :func:`max_learning_rate`) give growing or infinite outputs, not an
      error.

    Example:
      >>> import jax.numpy as jnp
      >>> ntk = jnp.array([[1.0, 0.0], [0.0, 0.5]])  # n = 2: lr = 2 is the rate η = 1
      >>> gradient_descent_mse(ntk, jnp.array([1.0, 1.0]), jnp.array([1, 2]), lr=2.0).train.tolist()
      [[1.0, 0.5], [1.0, 0.75]]
    """
    n, y2, squeeze, f0_train, ntk_test_train, f0_test, evals, evecs, ok = _prepare(
        ntk_train, y, ntk_test_train, f0_train, f0_test, ridge
    )
    steps = jnp.asarray(steps)
    if not jnp.issubdtype(steps.dtype, jnp.integer):
        raise TypeError(f"steps must be integer step counts, got dtype {steps.dtype}.")
    if not is_traced(steps) and bool(np.any(np.asarray(steps) < 0)):
        raise ValueError(f"steps must be >= 0 (step counts), got {steps}.")
    _linalg.check_nonnegative(lr, "lr")
    eta = _linalg.learning_rate(lr, n, loss_normalization).astype(y2.dtype)
    _check_momentum(momentum)
    if not is_traced(momentum) and float(momentum) == 0.0:
        kk, lam = _broadcast_modes(steps, evals)
        decay = jnp.power(1 - eta * lam, kk)
        safe_lam = jnp.where(lam > 0, lam, 1.0)
        drift = jnp.where(lam > 0, (decay - 1) / safe_lam, -eta * kk)
    else:
        decay, drift = _heavy_ball_modes(evals, eta, jnp.asarray(momentum, y2.dtype), steps)
    return _assemble(y2, squeeze, f0_train, ntk_test_train, f0_test, evecs, decay, drift, ok)


def max_learning_rate(
    ntk_train, *, momentum=0.0, loss_normalization: LossNormalization = "mean"
) -> jax.Array:
    r"""Largest stable learning rate of (heavy-ball) GD on the MSE loss of a linearised network.

    GD with effective rate ``η`` (:mod:`nnlab.predict`'s loss convention) converges iff
    ``|1 - ηλ_max| < 1``, i.e. ``η < 2 / λ_max`` (Lee et al. 2019, arXiv:1902.06720, §2.3);
    heavy ball with momentum ``β`` is stable iff ``η < 2(1 + β) / λ_max``. As a learning rate
    that is ``lr_max = 2(1 + β) n / λ_max`` for the default mean loss and ``2(1 + β) / λ_max``
    for ``loss_normalization='sum'``.

    Args:
      ntk_train: ``(n, n)`` NTK on the training points.
      momentum: heavy-ball coefficient ``β`` in ``[0, 1)``.
      loss_normalization: ``'mean'`` (default) or ``'sum'``, see :mod:`nnlab.predict`.

    Returns:
      Scalar ``lr_max``.

    Raises:
      ValueError: for ``momentum`` outside ``[0, 1)`` or NaN, NaN/inf in ``ntk_train``, or
        (outside ``jit``) an ``ntk_train`` whose largest eigenvalue is not positive (no
        learning rate is then stable or every one is: the formula does not apply).

    Example:
      >>> import jax.numpy as jnp
      >>> float(max_learning_rate(jnp.array([[4.0, 0.0], [0.0, 1.0]])))  # 2 n / λ_max
      1.0
    """
    ntk_train = _linalg.check_square(ntk_train, "ntk_train")
    n = ntk_train.shape[0]
    _check_momentum(momentum)
    lam_max = jnp.linalg.eigvalsh(ntk_train)[-1]
    if not is_traced(lam_max) and not float(lam_max) > 0:
        raise ValueError(
            f"ntk_train must have a positive largest eigenvalue, got {float(lam_max):.3g}; an NTK "
            "is positive semi-definite and non-zero, so check how it was computed."
        )
    return (
        2
        * (1 + jnp.asarray(momentum, lam_max.dtype))
        / _linalg.learning_rate(lam_max, n, loss_normalization)
    )
