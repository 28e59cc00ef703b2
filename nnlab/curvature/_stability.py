r"""The edge of stability: GD's threshold ``2/η`` and the phase in which the sharpness sits
at it (Cohen et al. 2021, arXiv:2103.00065)."""

from __future__ import annotations

import numpy as np

from nnlab import _checks
from nnlab.evaluate import first_crossing
from nnlab.record import TIME, Record


def stability_threshold(lr, *, time=None) -> Record:
    r"""The sharpness ``2/η`` above which gradient descent at rate ``η`` is unstable.

    GD ``θ' = θ − η∇L`` on a quadratic with Hessian ``H`` multiplies the error along the top
    eigenvector by ``1 − ηλ_max``, which grows in size once ``λ_max > 2/η``. For the mean loss
    ``L = 1/(2n) Σ|f − y|²`` trained with ``optax.sgd(η)`` (the convention of
    :mod:`nnlab.train` and :func:`hessian_operator`) the threshold is ``2/η`` as written;
    for a summed loss at the same ``η`` it is ``2/(nη)`` in the mean loss's units. Cohen et
    al. (2021, arXiv:2103.00065) find that full-batch GD on neural networks drives the
    sharpness up to this line (progressive sharpening) and then hovers at it (the edge of
    stability).

    Args:
      lr: learning rates ``η`` (a number or a 1-D array, all ``> 0``).
      time: optional 1-D time coordinates: the threshold is then constant along ``"time"``
        (a line to plot against a sharpness trajectory).

    Returns:
      A :class:`nnlab.Record` with variable ``"sharpness"`` over ``("lr",)`` (or ``("lr",
      "time")`` with ``time``, ``meta['time_unit'] = 'step'``) and coordinates ``"lr"``.

    Example:
      >>> stability_threshold([0.1, 0.5])["sharpness"].tolist()
      [20.0, 4.0]
    """
    lr = np.atleast_1d(np.asarray(lr, np.float64))
    if lr.ndim != 1 or lr.size == 0 or not np.all(np.isfinite(lr)) or np.any(lr <= 0):
        raise ValueError(f"lr must be positive finite learning rates (1-D), got {lr.tolist()}.")
    threshold = 2.0 / lr
    if time is None:
        return Record({"sharpness": (("lr",), threshold)}, coords={"lr": lr})
    time = np.asarray(time)
    values = np.broadcast_to(threshold[:, None], (lr.size, time.size))
    return Record(
        {"sharpness": (("lr", TIME), values)},
        coords={"lr": lr, TIME: time},
        meta={"time_unit": "step"},
    )


def threshold_learning_rates(sharpness, factors) -> np.ndarray:
    r"""The learning rates ``η = 2/(factor · λ)`` whose threshold ``2/η`` is ``factor · λ``.

    The inverse of :func:`stability_threshold`: with ``λ`` the initial sharpness ``λ_0``, a
    factor above 1 puts ``2/η`` above ``λ_0``, so gradient descent starts stable and must
    sharpen by the factor to reach the edge of stability (Cohen et al. 2021,
    arXiv:2103.00065, choose ``η`` this way); a large factor (small ``η``) gives a control
    run that stays far below its threshold.

    Args:
      sharpness: ``λ > 0``, e.g. ``top_eigenvalue(hessian_operator(...))`` at initialisation.
      factors: the ratios ``(2/η)/λ``, a number or 1-D, all ``> 0``.

    Returns:
      The learning rates, a float64 array of the shape of ``factors``.

    Example:
      >>> threshold_learning_rates(4.0, [1.0, 2.0]).tolist()   # 2/η = 4 and 8
      [0.5, 0.25]
    """
    _checks.real(sharpness, "sharpness", positive=True)
    factors = np.asarray(factors, np.float64)
    if factors.ndim > 1 or not np.all(np.isfinite(factors)) or np.any(factors <= 0):
        raise ValueError(f"factors must be positive finite numbers (1-D), got {factors.tolist()}.")
    return 2.0 / (sharpness * factors)


class EdgeOfStability(Record):
    """The edge-of-stability phase of sharpness trajectories, per run.

    Variables (over the trajectories' axes without ``"time"``, e.g. ``("seed", "lr")``):
      sharpness: mean sharpness over the phase (NaN when a run never reached it).
      initial_sharpness: the sharpness at the first log.
      onset: the time at which the sharpness first reached ``onset · 2/η`` (NaN if never,
        or if it started there).
      deviation: a quantile (``meta['quantile']``) of ``|λ η/2 − 1|`` over the phase (inf
        without a phase).
      gap_closed: ``(sharpness − initial)/(2/η − initial)``, the fraction of the initial gap
        to the threshold closed by progressive sharpening (1 at the edge).
      peak_ratio: ``max_t λ_t η/2`` (far below 1 for a run that never approaches the edge).
    """

    def at_lr(self, name: str, lrs) -> np.ndarray:
        """``self[name]`` at the learning rates ``lrs``, stacked along a new first axis.

        The other axes (e.g. ``"seed"``) are kept, so ``np.max(eos.at_lr("deviation",
        lrs))`` is the worst run among those rates.

        Example:
          >>> eos = EdgeOfStability({"deviation": (("seed", "lr"), [[0.1, 0.3, 0.2]])},
          ...                       coords={"lr": [0.1, 0.2, 0.3]})
          >>> eos.at_lr("deviation", [0.3, 0.1]).tolist()
          [[0.2], [0.1]]
        """
        return np.stack([np.asarray(self.sel(lr=lr)[name]) for lr in lrs])


def edge_of_stability(
    record: Record,
    field: str = "obs.sharpness",
    *,
    onset: float = 0.97,
    latest: float = 0.75,
    quantile: float = 0.9,
) -> EdgeOfStability:
    r"""Read the edge-of-stability phase off logged sharpness trajectories.

    For each trajectory ``λ_t`` (a run at rate ``η``, the coordinate of the ``"lr"`` axis)
    the phase starts at the first time ``t₀`` at which ``λ_t η/2`` reaches ``onset``
    (:func:`nnlab.evaluate.first_crossing`, interpolated between logs) and lasts to the end
    of the run. It counts only if ``t₀ <= latest · t_end``: a run that gets there at the very
    end is not hovering at the edge. A run that starts at or above the level (initially
    unstable) or never gets there has no phase, so its ``sharpness`` is NaN and a comparison
    with :func:`stability_threshold` fails. Cohen et al. (2021, arXiv:2103.00065) report
    the sharpness "hovering just above 2/η" during the phase.

    Args:
      record: a record with ``field`` over axes that include ``"lr"`` and ``"time"`` (e.g.
        the :class:`nnlab.train.TrainRecord` of ``train_ensemble(..., hyperparams={"lr":
        lrs}, observables={"sharpness": nnlab.curvature.sharpness()})``).
      field: the sharpness variable.
      onset: level of ``λ η/2`` that starts the phase, in ``(0, 1]``.
      latest: latest start of the phase as a fraction of the run, in ``(0, 1]``.
      quantile: the quantile of ``|λ η/2 − 1|`` reported as ``deviation``, in ``[0, 1]``.

    Returns:
      :class:`EdgeOfStability` over the other axes of ``field``.

    Example:
      >>> import numpy as np
      >>> t = np.arange(5.0)
      >>> rec = Record({"obs.sharpness": (("lr", "time"), [[1.0, 1.5, 2.0, 2.0, 2.0]])},
      ...              coords={"lr": [1.0], "time": t})
      >>> eos = edge_of_stability(rec)
      >>> eos["sharpness"].tolist(), eos["onset"].tolist(), eos["gap_closed"].tolist()
      ([2.0], [1.88], [1.0])
    """
    if not isinstance(record, Record):
        raise TypeError(f"record must be an nnlab.Record, got {type(record).__name__}.")
    if field not in record:
        raise ValueError(f"record has no variable {field!r}; it has {sorted(record.names)}.")
    dims = record.dims_of(field)
    for axis in ("lr", TIME):
        if axis not in dims:
            raise ValueError(
                f"record[{field!r}] has axes {dims}; it needs 'lr' (the learning rates) and "
                f"'{TIME}'. Train with hyperparams={{'lr': lrs}} (train_ensemble)."
            )
    _checks.real(onset, "onset", minimum=0.0, maximum=1.0)
    _checks.real(latest, "latest", minimum=0.0, maximum=1.0)
    _checks.real(quantile, "quantile", minimum=0.0, maximum=1.0)
    rest = tuple(a for a in dims if a != TIME)
    values = np.moveaxis(np.asarray(record[field], np.float64), dims.index(TIME), -1)
    time = np.asarray(record.coord(TIME), np.float64)
    lr = np.asarray(record.coord("lr"), np.float64)
    shape = [1] * len(rest)
    shape[rest.index("lr")] = lr.size
    threshold = (2.0 / lr).reshape(shape)
    ratio = values / threshold[..., None]
    start = first_crossing(time, ratio, onset)
    reached = start <= latest * time[-1]  # False for NaN
    phase = reached[..., None] & (time >= np.where(reached, start, np.inf)[..., None])
    count = phase.sum(-1)
    with np.errstate(invalid="ignore"):
        mean = np.where(
            reached, np.where(phase, values, 0.0).sum(-1) / np.maximum(count, 1), np.nan
        )
        dev = np.where(phase, np.abs(ratio - 1.0), np.nan)
        deviation = np.where(reached, _nanquantile(dev, quantile), np.inf)
        initial = values[..., 0]
        gap = (mean - initial) / (threshold - initial)
        peak = np.max(np.where(np.isnan(ratio), -np.inf, ratio), axis=-1)
    coords = {a: record.coord(a) for a in rest}
    meta = {"time_unit": record.time_unit, "onset": onset, "latest": latest, "quantile": quantile}
    return EdgeOfStability(
        {
            "sharpness": (rest, mean),
            "initial_sharpness": (rest, initial),
            "onset": (rest, start),
            "deviation": (rest, deviation),
            "gap_closed": (rest, gap),
            "peak_ratio": (rest, peak),
        },
        coords=coords,
        meta=meta,
    )


def _nanquantile(values, q):
    """``np.nanquantile`` along the last axis that returns NaN (quietly) for all-NaN rows."""
    out = np.full(values.shape[:-1], np.nan)
    ok = ~np.all(np.isnan(values), axis=-1)
    if ok.any():
        out[ok] = np.nanquantile(values[ok], q, axis=-1)
    return out
