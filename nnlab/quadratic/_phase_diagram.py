r"""Phase diagrams: sweep ``η λ0`` (vmapped over rates and seeds) and record each phase.

For every seed ``s`` and ratio ``c`` the rate is ``η = c / λ0(s)`` with ``λ0(s)`` the top
eigenvalue of the loss-normalised NTK at that seed's initialisation, so the phase boundaries
of Lewkowycz et al. (2020, arXiv:2003.02218) sit at ``c = 2`` and ``c = 4`` (uv model, NQM)
for every seed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import _checks
from nnlab import train as nt

from ._models import ntk_max_eigenvalue, ntk_scaled_sgd, taylor_ensemble_model
from ._phases import phase_codes
from ._uv import UVModel

MODEL_ORDERS: dict[str, int | None] = {"nn": None, "nqm": 2, "linear": 1}


class PhaseDiagram(NamedTuple):
    """One model's sweep: axes ``(seed, ratio)``, then ``step`` for curves (host arrays).

    Attributes:
      ratio: ``(R,)`` the swept ``η λ0``.
      lam0: ``(S,)`` λ0 of each seed.
      lr: ``(S, R)`` the learning rates ``ratio / lam0``.
      loss: ``(S, R, T + 1)`` training loss (NaN after a divergence).
      lam: ``(S, R, T + 1)`` top eigenvalue of the loss-normalised NTK.
      test_loss: ``(S, R, T + 1)`` or ``None``.
      phase: ``(S, R)`` :class:`Phase` codes from :func:`phase_codes`.
      loss_peak: ``(S, R)`` ``max_t L_t / L_0`` (inf after a divergence).
      lam_final: ``(S, R)`` ``λ_T`` (NaN after a divergence).
      train_final, test_final: ``(S, R)`` final losses (``test_final`` NaN without test data).
    """

    ratio: np.ndarray
    lam0: np.ndarray
    lr: np.ndarray
    loss: np.ndarray
    lam: np.ndarray
    test_loss: np.ndarray | None
    phase: np.ndarray
    loss_peak: np.ndarray
    lam_final: np.ndarray
    train_final: np.ndarray
    test_final: np.ndarray


def _check_ratios(ratios):
    r = np.asarray(ratios)
    if r.dtype.kind not in "iuf":
        raise TypeError(f"ratios must be a 1-D array of positive η λ0, got {ratios!r}.")
    r = r.astype(np.float64)
    if r.ndim != 1 or r.size == 0 or not np.all(np.isfinite(r)) or np.any(r <= 0):
        raise ValueError(f"ratios must be a non-empty 1-D array of positive η λ0, got {ratios!r}.")
    return r


def _summarise(ratio, lam0, loss, lam, test_loss) -> PhaseDiagram:
    lr = ratio[None, :] / lam0[:, None]
    phase = np.asarray(phase_codes(loss, lam, lr))
    with np.errstate(invalid="ignore", divide="ignore"):
        finite = np.all(np.isfinite(loss), axis=-1)
        peak = np.where(finite, np.nanmax(np.where(np.isfinite(loss), loss, -np.inf), -1), np.inf)
        loss_peak = peak / loss[..., 0]
    test_final = test_loss[..., -1] if test_loss is not None else np.full(lr.shape, np.nan)
    return PhaseDiagram(
        ratio=ratio,
        lam0=lam0,
        lr=lr,
        loss=loss,
        lam=lam,
        test_loss=test_loss,
        phase=phase,
        loss_peak=loss_peak,
        lam_final=lam[..., -1],
        train_final=loss[..., -1],
        test_final=test_final,
    )


def uv_phase_diagram(
    model: UVModel, ratios, *, key: jax.Array, seeds: int, steps: int
) -> PhaseDiagram:
    r"""Sweep ``η λ0`` for the uv model: GD on the full parameters, ``vmap`` over seeds and
    ratios in one compiled program (Lewkowycz et al. 2020, arXiv:2003.02218).

    Args:
      model: a :class:`UVModel`.
      ratios: ``(R,)`` values of ``η λ0``.
      key: PRNG key; seed ``s`` initialises from ``split(key, seeds)[s]``.
      seeds: number of initialisations.
      steps: GD steps.

    Returns:
      :class:`PhaseDiagram` (``test_loss`` is ``None``).

    Example:
      >>> import jax
      >>> d = uv_phase_diagram(UVModel(256), [1.0, 3.0, 5.0], key=jax.random.key(0), seeds=2,
      ...                      steps=200)
      >>> d.phase.tolist()  # lazy, catapult, divergent
      [[0, 1, 2], [0, 1, 2]]
    """
    if not isinstance(model, UVModel):
        raise TypeError(f"model must be a UVModel, got {type(model).__name__}.")
    ratio = _check_ratios(ratios)
    key = _checks.prng_key(key, "key")
    seeds = _checks.integer(seeds, "seeds")
    steps = _checks.integer(steps, "steps")

    @jax.jit
    def run(keys, c):
        def one(k, ci):
            p0 = model.init(k)
            lam0 = model.ntk(p0)
            return model.simulate(p0, ci / lam0, steps), lam0

        per_seed = jax.vmap(jax.vmap(one, in_axes=(None, 0)), in_axes=(0, None))
        return per_seed(keys, c)

    traj, lam0 = run(jax.random.split(key, seeds), jnp.asarray(ratio, jnp.result_type(float)))
    traj, lam0 = jax.device_get((traj, lam0))
    loss = np.asarray(traj.loss, np.float64)
    lam = np.asarray(traj.lam, np.float64)
    return _summarise(ratio, np.asarray(lam0, np.float64)[:, 0], loss, lam, None)


def phase_diagram(
    apply_fn: Callable[[Any, jax.Array], jax.Array],
    init_fn: Callable[[jax.Array], Any],
    data,
    ratios,
    *,
    key: jax.Array,
    seeds: int,
    steps: int,
    models: Sequence[str] = ("nn", "nqm", "linear"),
    divergence_threshold: float | None = 1e8,
) -> dict[str, PhaseDiagram]:
    r"""Sweep ``η λ0`` for a network, its NQM and its linear model from the same inits.

    Each model is trained with full-batch GD at ``η = ratio / λ0(seed)`` by
    :func:`nnlab.train.train_ensemble` (one ``jit(vmap(scan))`` over seeds × ratios), MSE
    with mean normalisation, logging at every step the loss, the test loss and the top
    eigenvalue of the loss-normalised NTK (:func:`ntk_max_eigenvalue`) on ``data.x_train``.
    The three models share ``init_fn``, the seeds and therefore ``λ0`` (Zhu et al. 2022,
    arXiv:2205.11787).

    Args:
      apply_fn: the network ``apply_fn(params, x)``.
      init_fn: ``init_fn(key) -> params``.
      data: :class:`nnlab.train.Data` (tuple or dict), optionally with test data.
      ratios: ``(R,)`` values of ``η λ0``.
      key: PRNG key for the seeds.
      seeds: number of initialisations.
      steps: GD steps.
      models: any of ``'nn'``, ``'nqm'``, ``'linear'``.
      divergence_threshold: a loss above this counts as divergence (frozen, NaN logs).

    Returns:
      ``{model: PhaseDiagram}``.
    """
    ratio = _check_ratios(ratios)
    _checks.function(apply_fn, "apply_fn", "apply_fn(params, x)")
    _checks.function(init_fn, "init_fn", "init_fn(key) -> params")
    key = _checks.prng_key(key, "key")
    seeds = _checks.integer(seeds, "seeds")
    steps = _checks.integer(steps, "steps")
    if isinstance(models, str):
        raise TypeError(f"models must be a sequence of model names, got the string {models!r}.")
    data = nt.Data(*data) if isinstance(data, tuple) and not isinstance(data, nt.Data) else data
    if isinstance(data, dict):
        data = nt.Data(**data)
    unknown = [m for m in models if m not in MODEL_ORDERS]
    if unknown or not models:
        raise ValueError(
            f"models must be a non-empty subset of {tuple(MODEL_ORDERS)}, got {models!r}."
        )
    x = data.x_train
    out = {}
    for name in models:
        pair = taylor_ensemble_model(apply_fn, init_fn, MODEL_ORDERS[name])
        lam_obs = nt.Observable(
            init=lambda f, p0, d: None,
            compute=lambda s, f, p, d: ntk_max_eigenvalue(f, p, x),
        )
        rec = nt.train_ensemble(
            pair.apply_fn,
            pair.init_fn,
            data,
            optimizer=lambda ratio, f=pair.apply_fn: ntk_scaled_sgd(ratio, f, x),
            seeds=seeds,
            key=key,
            steps=steps,
            hyperparams={"ratio": ratio.astype(np.asarray(x).dtype)},
            observables={"lam": lam_obs},
            divergence_threshold=divergence_threshold,
            divergence_factor=None,  # the absolute threshold above is this function's rule
        ).to_numpy()
        lam = np.asarray(rec.observables["lam"], np.float64)
        loss = np.asarray(rec.train_loss, np.float64)
        test = None if rec.test_loss is None else np.asarray(rec.test_loss, np.float64)
        out[name] = _summarise(ratio, lam[:, 0, 0], loss, lam, test)
    return out
