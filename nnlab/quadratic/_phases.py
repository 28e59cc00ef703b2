r"""Training phases of MSE gradient descent: lazy, catapult, divergent.

Lewkowycz, Bahri, Dyer, Sohl-Dickstein & Gur-Ari (2020, arXiv:2003.02218): with ``λ0`` the
top eigenvalue of the (loss-normalised) NTK at initialisation and learning rate ``η``,

* ``η < 2/λ0``: lazy. Every NTK mode of the residual contracts by ``|1 - ηλ| < 1``; the
  kernel barely moves and the loss decreases monotonically.
* ``2/λ0 < η < η_max``: catapult. The top mode grows (the loss spikes), which drives λ down
  until ``ηλ < 2``; then training converges in a flatter region.
* ``η > η_max``: divergent. ``η_max = 4/λ0`` for the uv model and for the neural quadratic
  model of a two-layer network (Zhu, Liu, Radhakrishnan & Belkin 2022, arXiv:2205.11787);
  Lewkowycz et al. measure ``η_max ≈ 12/λ0`` for deep ReLU networks.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import _checks
from nnlab.record import Record


class Phase(enum.IntEnum):
    """Phase of a gradient-descent trajectory; the integer values are the codes returned by
    :func:`phase_codes`."""

    LAZY = 0
    CATAPULT = 1
    DIVERGENT = 2


class CatapultThresholds(NamedTuple):
    """Learning rates bounding the phases: ``lazy < lazy_max < catapult < catapult_max``."""

    lazy_max: jax.Array
    catapult_max: jax.Array


RATIO = "eta_lam0"  # the axis of rates in units of 1/λ0 (phase diagrams and their predictions)
# Upper edge of the catapult window in η λ0 per model; for "nn" (a ReLU network) 4 is a lower
# bound of its own edge (Lewkowycz et al. measure up to ≈ 12 for deep ReLU nets).
_CATAPULT_MAX = {"uv": 4.0, "nqm": 4.0, "nn": 4.0, "linear": 2.0}


def catapult_thresholds(lam0, *, model: str = "uv") -> CatapultThresholds:
    r"""Phase boundaries ``(2/λ0, 4/λ0)`` of the uv model / two-layer NQM.

    Lewkowycz et al. (2020, arXiv:2003.02218), section 2: for MSE and NTK ``λ0``, GD is lazy
    for ``η < 2/λ0``, catapults for ``2/λ0 < η < 4/λ0`` and diverges for ``η > 4/λ0``.
    Zhu et al. (2022, arXiv:2205.11787) show the same for the neural quadratic model. The
    linear model (``model='linear'``) has no catapult: GD on a quadratic loss diverges for
    ``η > 2/λ0``, so both thresholds are ``2/λ0``. For a ReLU network (``model='nn'``)
    ``4/λ0`` is a lower bound of its upper edge. ``lam0 = 1`` gives the thresholds in units
    of ``η λ0``.

    Args:
      lam0: positive NTK eigenvalue(s) at initialisation (any shape).
      model: ``'uv'``, ``'nqm'``, ``'nn'`` or ``'linear'``.

    Returns:
      :class:`CatapultThresholds` ``(2/λ0, 4/λ0)`` (``(2/λ0, 2/λ0)`` for the linear model).

    Example:
      >>> catapult_thresholds(2.0)
      CatapultThresholds(lazy_max=Array(1., ...), catapult_max=Array(2., ...))
      >>> float(catapult_thresholds(1.0, model="linear").catapult_max)
      2.0
    """
    _checks.choice(model, "model", tuple(_CATAPULT_MAX))
    if not isinstance(lam0, jax.core.Tracer):
        a = np.asarray(lam0)
        if a.dtype.kind not in "iuf" or not np.all(np.isfinite(a)) or np.any(a <= 0):
            raise ValueError(f"lam0 must be positive and finite, got {lam0!r}.")
    lam0 = jnp.asarray(lam0, dtype=jnp.result_type(float))
    return CatapultThresholds(2.0 / lam0, _CATAPULT_MAX[model] / lam0)


class PhasePrediction(Record):
    """The predicted phase against ``η λ0`` (axis ``'eta_lam0'``).

    Variables:
      phase: ``('eta_lam0',)`` :class:`Phase` codes.
      eta_lam_final: ``('eta_lam0',)`` the final ``η λ_T``: ``η λ0`` in the lazy phase (the
        kernel does not move), NaN elsewhere (the catapult gives only ``η λ_T < 2``).
    """


def phase_prediction(
    ratios, *, model: str = "uv", band: float = 0.0, phases=tuple(Phase)
) -> PhasePrediction:
    r"""The phases predicted at rates ``η = ratio/λ0`` (Lewkowycz et al. 2020; Zhu et al. 2022).

    Lazy below ``2``, catapult up to ``catapult_max`` (4 for the uv model and NQM, see
    :func:`catapult_thresholds`), divergent above. The prediction is sharp only for infinite
    width and one example, so it is made at the ratios at least ``band`` (relative) away from
    each boundary, ``|ratio/b - 1| >= band``; for ``model='nn'`` only below the lower bound
    ``4`` of the network's upper edge, and only at ratios whose predicted phase is in
    ``phases``.

    Args:
      ratios: 1-D positive ``η λ0`` values.
      model: ``'uv'``, ``'nqm'``, ``'nn'`` or ``'linear'``.
      band: relative half-width ``>= 0`` of the excluded band around each boundary.
      phases: the :class:`Phase` values to keep.

    Returns:
      :class:`PhasePrediction` on the kept ratios.

    Example:
      >>> p = phase_prediction([1.0, 1.95, 3.0, 5.0], band=0.05)
      >>> p.coord("eta_lam0").tolist(), p.phase.tolist()
      ([1.0, 3.0, 5.0], [0, 1, 2])
    """
    _checks.real_array(ratios, "ratios", sign="positive")
    r = np.asarray(ratios, np.float64)  # float64 coordinates (real_array may give float32)
    if r.ndim != 1:
        raise ValueError(f"ratios must be 1-D, got shape {r.shape}.")
    _checks.real(band, "band", minimum=0.0, maximum=0.5, fix="band is relative, e.g. 0.05.")
    lazy_max, catapult_max = (float(t) for t in catapult_thresholds(1.0, model=model))
    phase = np.where(
        r < lazy_max, Phase.LAZY, np.where(r < catapult_max, Phase.CATAPULT, Phase.DIVERGENT)
    ).astype(np.int32)
    keep = np.isin(phase, [int(p) for p in phases])
    for b in {lazy_max, catapult_max}:
        keep &= np.abs(r / b - 1.0) >= band
    if model == "nn":
        keep &= r < catapult_max * (1.0 - band)
    lazy = np.where(phase == Phase.LAZY, r, np.nan)
    return PhasePrediction(
        {"phase": (RATIO, phase[keep]), "eta_lam_final": (RATIO, lazy[keep])},
        coords={RATIO: r[keep]},
        meta={"model": model},
    )


def _real_array(x, name: str) -> jax.Array:
    try:
        x = jnp.asarray(x)
    except TypeError as err:
        raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__}.") from err
    if not (
        jnp.issubdtype(x.dtype, jnp.integer)
        or jnp.issubdtype(x.dtype, jnp.floating)
        or x.dtype == jnp.bool_
    ):
        raise TypeError(f"{name} must hold real numbers, got dtype {x.dtype}.")
    return x


def phase_codes(loss, lam, lr, *, spike: float = 0.1, converged: float = 1.0, floor=1e-4):
    r"""Phase codes (``int``, see :class:`Phase`) of trajectories; jit- and vmap-safe.

    For a loss curve ``L_t`` and NTK curve ``λ_t`` (``t = 0..T``, last axis) at rate ``η``:

    * DIVERGENT if any ``L_t`` or ``λ_t`` is non-finite (a trainer freezes a divergent run
      and logs NaN), if ``L_T > converged · L_0`` (no progress), or if the loss spiked but
      ``η λ_T ≥ 2`` (the end point is not stable).
    * CATAPULT if the loss spiked and ``η λ_T < 2``. A spike is a rise of the loss above its
      running minimum, ``max_t L_t / max(min_{s≤t} L_s, floor · L_0) > 1 + spike``: in the
      lazy phase every NTK mode of the residual contracts, so the loss never rises, while a
      catapult grows the top mode from wherever the other modes have brought the loss
      (with several examples the rise above ``L_0`` itself can be small). The ``floor``
      ignores float rounding of an already converged loss.
    * LAZY otherwise.

    Args:
      loss: ``(..., T + 1)`` training loss, starting at initialisation.
      lam: ``(..., T + 1)`` top NTK eigenvalue (of the loss-normalised kernel) or ``(...,)``
        its final value.
      lr: learning rate, broadcastable to ``loss.shape[:-1]``.
      spike: relative loss rise that counts as a spike.
      converged: the final loss must be below ``converged · L_0``.
      floor: relative loss level below which rises are ignored.

    Returns:
      ``int32`` array of shape ``loss.shape[:-1]``.

    Raises:
      TypeError / ValueError: for non-numeric curves, ``loss`` without a step axis, ``lam``
        not matching ``loss``, and (concrete values) a NaN or negative ``spike``, a NaN or
        non-positive ``converged`` or ``floor``. NaN/inf inside the curves is data (a
        divergence), not an error.
    """
    _checks.real(spike, "spike", minimum=0, fix="spike is a relative loss rise, e.g. 0.1.")
    _checks.real(converged, "converged", positive=True, fix="converged is a ratio, e.g. 1.0.")
    _checks.real(floor, "floor", positive=True, fix="floor is a relative loss level, e.g. 1e-4.")
    loss = _real_array(loss, "loss")
    lam = _real_array(lam, "lam")
    if loss.ndim < 1 or loss.shape[-1] < 1:
        raise ValueError(f"loss must have a step axis (last), got shape {loss.shape}.")
    if lam.ndim == loss.ndim:
        if lam.shape != loss.shape:
            raise ValueError(f"lam must have the shape of loss {loss.shape}, got {lam.shape}.")
    elif lam.shape != loss.shape[:-1]:
        raise ValueError(
            f"lam must have the shape of loss {loss.shape} or its final values "
            f"{loss.shape[:-1]}, got {lam.shape}."
        )
    lam_final = lam[..., -1] if lam.ndim == loss.ndim else lam
    finite = jnp.all(jnp.isfinite(loss), axis=-1) & jnp.isfinite(lam_final)
    if lam.ndim == loss.ndim:
        finite &= jnp.all(jnp.isfinite(lam), axis=-1)
    l0 = loss[..., 0]
    clean = jnp.where(jnp.isfinite(loss), loss, jnp.inf)
    running_min = jax.lax.cummin(clean, axis=clean.ndim - 1)
    base = jnp.maximum(running_min, floor * l0[..., None])
    spiked = jnp.any(clean > (1.0 + spike) * base, axis=-1)
    lr = jnp.broadcast_to(jnp.asarray(lr, lam_final.dtype), lam_final.shape)
    stable_end = lr * lam_final < 2.0
    progress = loss[..., -1] <= converged * l0
    divergent = ~finite | ~progress | (spiked & ~stable_end)
    return jnp.where(divergent, Phase.DIVERGENT, jnp.where(spiked, Phase.CATAPULT, Phase.LAZY))


def _host_array(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got {x!r} (dtype {arr.dtype}).")
    return arr.astype(np.float64)


def classify_phase(loss, lam, lr, *, spike: float = 0.1, converged: float = 1.0) -> Phase:
    """The :class:`Phase` of one trajectory (host-side; see :func:`phase_codes` for the rule).

    Args:
      loss: ``(T + 1,)`` training loss from initialisation on.
      lam: ``(T + 1,)`` top NTK eigenvalue over the same steps (or its final value).
      lr: the learning rate (positive float).
      spike, converged: as in :func:`phase_codes`.

    Returns:
      ``Phase.LAZY``, ``Phase.CATAPULT`` or ``Phase.DIVERGENT``.

    Example:
      >>> import numpy as np
      >>> t = np.arange(50)
      >>> lam = np.where(t < 10, 1.5, 0.8)        # λ drops below 2/η = 1.33
      >>> loss = np.where(t < 10, 1.5 ** t, 0.5 ** t)  # spike, then convergence
      >>> classify_phase(loss, lam, 1.5)
      <Phase.CATAPULT: 1>
      >>> classify_phase(0.5 ** t, np.ones(50), 1.0)
      <Phase.LAZY: 0>
    """
    loss_a = _host_array(loss, "loss")
    lam_a = _host_array(lam, "lam")
    if loss_a.ndim != 1 or loss_a.size < 2:
        raise ValueError(f"loss must be 1-D with at least 2 steps, got shape {loss_a.shape}.")
    if lam_a.ndim not in (0, 1) or (lam_a.ndim == 1 and lam_a.shape != loss_a.shape):
        raise ValueError(
            f"lam must be a scalar (final value) or have the shape of loss {loss_a.shape}, got "
            f"shape {lam_a.shape}."
        )
    if isinstance(lr, bool | str | bytes) or not np.isscalar(lr) or not np.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a positive finite number, got {lr!r}.")
    _checks.real(spike, "spike", minimum=0, fix="spike is a relative loss rise, e.g. 0.1.")
    _checks.real(converged, "converged", positive=True, fix="converged is a ratio, e.g. 1.0.")
    code = phase_codes(loss_a, lam_a, float(lr), spike=spike, converged=converged)
    return Phase(int(code))
