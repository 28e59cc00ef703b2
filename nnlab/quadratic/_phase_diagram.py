r"""Phase diagrams: sweep ``η λ0`` (vmapped over rates and seeds) and record each phase.

For every seed ``s`` and ratio ``c`` the rate is ``η = c / λ0(s)`` with ``λ0(s)`` the top
eigenvalue of the loss-normalised NTK at that seed's initialisation, so the phase boundaries
of Lewkowycz et al. (2020, arXiv:2003.02218) sit at ``c = 2`` and ``c = 4`` (uv model, NQM)
for every seed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import _checks
from nnlab import train as nt
from nnlab.evaluate import Comparison, first_crossing
from nnlab.record import TIME, Record

from ._models import ntk_max_eigenvalue, ntk_scaled_sgd, taylor_ensemble_model
from ._phases import (
    RATIO,
    Phase,
    PhasePrediction,
    catapult_thresholds,
    phase_codes,
    phase_prediction,
)
from ._uv import UVModel

MODEL_ORDERS: dict[str, int | None] = {"nn": None, "nqm": 2, "linear": 1}
_CURVE = ("seed", RATIO, TIME)
_POINT = ("seed", RATIO)


class PhaseDiagram(Record):
    """One model's sweep over seeds and ``η λ0`` (``meta['model']``, ``time_unit='step'``).

    Variables (dims):
      loss, lam, test_loss: ``('seed', 'eta_lam0', 'time')`` training loss (NaN after a
        divergence), top eigenvalue of the loss-normalised NTK, test loss (absent without
        test data).
      lam0: ``('seed',)`` λ0 of each seed.
      lr, phase, loss_peak, lam_final, eta_lam_final, train_final, test_final:
        ``('seed', 'eta_lam0')`` the rates ``ratio / lam0``, :class:`Phase` codes from
        :func:`phase_codes`, ``max_t L_t / L_0`` (inf after a divergence), ``λ_T``,
        ``η λ_T``, the final losses (``test_final`` NaN without test data).
    """

    @property
    def ratio(self) -> np.ndarray:
        """The swept ``η λ0``."""
        return np.asarray(self.coord(RATIO))

    def boundary(self, phase: Phase) -> np.ndarray:
        """Per seed, the midpoint between the last ratio whose phase is below ``phase`` and
        the first at or above it (:func:`nnlab.evaluate.first_crossing`; NaN if the sweep
        starts at or above ``phase`` or never reaches it)."""
        above = (np.asarray(self["phase"]) >= int(phase)).astype(np.float64)
        return first_crossing(self.ratio, above, 0.5)

    def max_stable(self) -> np.ndarray:
        """Per seed, the largest ratio that did not diverge (0 if every one did)."""
        ok = np.asarray(self["phase"]) != Phase.DIVERGENT
        return np.where(ok, self.ratio, 0.0).max(axis=1)

    def stable_shortfall(self, edge: float) -> np.ndarray:
        """Per seed, the relative shortfall ``max(0, 1 - max_stable / edge)`` of the largest
        stable ratio below ``edge`` (0 when the model trains stably at least up to ``edge``):
        a one-sided claim such as ``η_max λ0 ≥ 4`` for ReLU networks (Lewkowycz et al. 2020,
        arXiv:2003.02218) as a number that a tolerance can bound."""
        edge = _checks.real(edge, "edge", positive=True)
        return np.maximum(0.0, 1.0 - self.max_stable() / edge)

    def prediction(self, *, band: float = 0.0, phases=tuple(Phase)) -> PhasePrediction:
        """:func:`phase_prediction` at this diagram's ratios for its ``meta['model']``: the
        theory side of ``Comparison.from_records(..., theory, diagram, 'phase')``."""
        model = self.meta.get("model", "uv")
        return phase_prediction(self.ratio, model=model, band=band, phases=phases)

    def phase_check(self, name: str, *, band: float = 0.0, description: str = "") -> Comparison:
        """The measured phases against :meth:`prediction` (``band`` excluded around each
        predicted boundary) as a :class:`~nnlab.evaluate.Comparison` named ``name``.

        Phases are discrete codes (0 lazy, 1 catapult, 2 divergent), so the claim is exact:
        the metric is ``max_abs`` of the seed-mean code minus the predicted one and the
        tolerance is 0 (every seed in the predicted phase at every kept ratio, up to a mix of
        lazy and divergent seeds averaging to a catapult code)."""
        model = self.meta.get("model", "uv")
        return Comparison.from_records(
            name,
            self.prediction(band=band),
            self,
            "phase",
            metric="max_abs",
            tolerance=0.0,
            ylabel=f"phase, {model} (0 lazy, 1 catapult, 2 divergent)",
            description=description,
        )

    def relative(self, name: str) -> PhaseDiagram:
        """The diagram with ``name`` divided, per seed, by its value at the smallest ratio."""
        value = np.asarray(self[name])
        first = np.take(value, [int(np.argmin(self.ratio))], axis=self.dims_of(name).index(RATIO))
        variables = {**self._record_variables(), name: (self.dims_of(name), value / first)}
        return PhaseDiagram(variables, self.coords, self.meta)

    def seedwise(self, name: str) -> Record:
        """``name`` (dims ``('seed', 'eta_lam0')``) as a record over ``('eta_lam0', 'seed')``:
        the theory side of a seed-by-seed comparison (``Comparison.from_records(...,
        seed_axis=None)``: both sides start from the same inits, so the seed is an ordinary
        shared axis), drawn against ``η λ0``."""
        if self.dims_of(name) != _POINT:
            raise ValueError(f"{name!r} has dims {self.dims_of(name)}, not {_POINT}.")
        values = np.asarray(self[name]).T
        return Record({name: ((RATIO, "seed"), values)}, self.coords, self.meta)

    def select(self, keep) -> PhaseDiagram:
        """The diagram at the ratios where the boolean mask ``keep`` holds."""
        idx = np.flatnonzero(np.asarray(keep, bool))
        out = {}
        for name, (dims, value) in self._record_variables().items():
            on_axis = RATIO in dims
            out[name] = (dims, np.take(value, idx, axis=dims.index(RATIO)) if on_axis else value)
        coords = {**self.coords, RATIO: self.ratio[idx]}
        return PhaseDiagram(out, coords, self.meta)


def ratio_grid(lo: float, hi: float, n: int, *, decimals: int = 3) -> tuple[float, ...]:
    """``n`` evenly spaced ``η λ0`` from ``lo`` to ``hi``, rounded to ``decimals`` places.

    A hashable grid (a tuple of floats) for frozen experiment configs and the ``ratios`` of
    :func:`phase_diagram`; the rounding keeps the ratios readable in records and reports.

    Args:
      lo, hi: positive end points, ``lo < hi``.
      n: number of points (at least 2).
      decimals: decimal places kept.

    Example:
      >>> ratio_grid(0.5, 3.0, 4)
      (0.5, 1.333, 2.167, 3.0)
    """
    lo = _checks.real(lo, "lo", positive=True)
    hi = _checks.real(hi, "hi", positive=True)
    n = _checks.integer(n, "n", minimum=2)
    if not lo < hi:
        raise ValueError(f"ratio_grid needs lo < hi, got lo={lo}, hi={hi}.")
    return tuple(float(r) for r in np.round(np.linspace(lo, hi, n), decimals))


def diagram_arrays(
    diagrams: Mapping[str, PhaseDiagram],
    fields: Sequence[str] = ("phase", "loss_peak", "lam_final", "lam0", "test_final"),
) -> dict[str, np.ndarray]:
    """Flat ``{f'{model}_{field}': array}`` of several diagrams, plus ``f'{model}_ratio'``.

    The arrays an experiment saves next to its comparisons (``ExperimentResult.arrays``),
    one name per model and variable.

    Args:
      diagrams: ``{model: PhaseDiagram}``, e.g. the result of :func:`phase_diagram`.
      fields: variables of each diagram to keep.

    Example:
      >>> import numpy as np
      >>> d = PhaseDiagram({"phase": (("seed", "eta_lam0"), np.zeros((1, 2), int))},
      ...                  coords={"eta_lam0": np.array([1.0, 3.0])})
      >>> sorted(diagram_arrays({"nn": d}, fields=("phase",)))
      ['nn_phase', 'nn_ratio']
    """
    out = {f"{m}_{f}": np.asarray(d[f]) for m, d in diagrams.items() for f in fields}
    return {**out, **{f"{m}_ratio": d.ratio for m, d in diagrams.items()}}


def _check_ratios(ratios):
    r = np.asarray(ratios)
    if r.dtype.kind not in "iuf":
        raise TypeError(f"ratios must be a 1-D array of positive η λ0, got {ratios!r}.")
    r = r.astype(np.float64)
    if r.ndim != 1 or r.size == 0 or not np.all(np.isfinite(r)) or np.any(r <= 0):
        raise ValueError(f"ratios must be a non-empty 1-D array of positive η λ0, got {ratios!r}.")
    return r


def _summarise(model, ratio, lam0, loss, lam, test_loss) -> PhaseDiagram:
    lr = ratio[None, :] / lam0[:, None]
    phase = np.asarray(phase_codes(loss, lam, lr))
    with np.errstate(invalid="ignore", divide="ignore"):
        finite = np.all(np.isfinite(loss), axis=-1)
        peak = np.where(finite, np.nanmax(np.where(np.isfinite(loss), loss, -np.inf), -1), np.inf)
        loss_peak = peak / loss[..., 0]
    test_final = test_loss[..., -1] if test_loss is not None else np.full(lr.shape, np.nan)
    variables = {
        "loss": (_CURVE, loss),
        "lam": (_CURVE, lam),
        "test_loss": (_CURVE, test_loss),
        "lam0": ("seed", lam0),
        "lr": (_POINT, lr),
        "phase": (_POINT, phase),
        "loss_peak": (_POINT, loss_peak),
        "lam_final": (_POINT, lam[..., -1]),
        "eta_lam_final": (_POINT, lr * lam[..., -1]),
        "train_final": (_POINT, loss[..., -1]),
        "test_final": (_POINT, test_final),
    }
    coords = {"seed": np.arange(lam0.size), RATIO: ratio, TIME: np.arange(loss.shape[-1])}
    return PhaseDiagram(variables, coords, {"time_unit": "step", "model": model})


def _check_data(data) -> nt.Data:
    if isinstance(data, tuple) and not isinstance(data, nt.Data):
        return nt.Data(*data)
    return nt.Data(**data) if isinstance(data, dict) else data


def uv_phase_diagram(
    model: UVModel, ratios, *, key: jax.Array, seeds: int, steps: int
) -> PhaseDiagram:
    r"""Sweep ``η λ0`` for the uv model (Lewkowycz et al. 2020, arXiv:2003.02218).

    :func:`phase_diagram` of the uv network (``model.apply_fn``, ``model.init``,
    ``model.data``), with divergence only on non-finite values (``meta['model'] == 'uv'``).

    Example:
      >>> import jax
      >>> d = uv_phase_diagram(UVModel(256), [1.0, 3.0, 5.0], key=jax.random.key(0), seeds=2,
      ...                      steps=200)
      >>> d.phase.tolist()  # lazy, catapult, divergent
      [[0, 1, 2], [0, 1, 2]]
    """
    if not isinstance(model, UVModel):
        raise TypeError(f"model must be a UVModel, got {type(model).__name__}.")
    return phase_diagram(
        model.apply_fn,
        model.init,
        model.data,
        {"uv": ratios},
        key=key,
        seeds=seeds,
        steps=steps,
        divergence_threshold=None,
    )["uv"]


def phase_diagram(
    apply_fn: Callable[[Any, jax.Array], jax.Array],
    init_fn: Callable[[jax.Array], Any],
    data,
    ratios,
    *,
    key: jax.Array,
    seeds: int,
    steps: int,
    models: Sequence[str] | None = None,
    divergence_threshold: float | None = 1e8,
) -> dict[str, PhaseDiagram]:
    r"""Sweep ``η λ0`` for a network, its NQM and its linear model from the same inits.

    Each model is trained with full-batch GD at ``η = ratio / λ0(seed)`` by
    :func:`nnlab.train.train_ensemble` (one ``jit(vmap(scan))`` over seeds × ratios), MSE
    with mean normalisation, logging at every step the loss, the test loss and the top
    eigenvalue of the loss-normalised NTK (:func:`ntk_max_eigenvalue`) on ``data.x_train``.
    The models share ``init_fn``, the seeds and therefore ``λ0`` (Zhu et al. 2022,
    arXiv:2205.11787). Divergence is a result: the relative rule of the trainer is off
    (``divergence_factor=None``), only ``divergence_threshold`` and non-finite values stop a
    member.

    Args:
      apply_fn: the network ``apply_fn(params, x)``.
      init_fn: ``init_fn(key) -> params``.
      data: :class:`nnlab.train.Data` (tuple or dict), optionally with test data.
      ratios: ``(R,)`` values of ``η λ0``, or a dict model -> ratios (one grid per model;
        a name not in ``MODEL_ORDERS`` trains the network itself under that name).
      key: PRNG key for the seeds.
      seeds: number of initialisations.
      steps: GD steps.
      models: any of ``'nn'``, ``'nqm'``, ``'linear'`` (default all three; ``None`` with a
        dict of ratios).
      divergence_threshold: a loss above this counts as divergence (frozen, NaN logs).

    Returns:
      ``{model: PhaseDiagram}``.
    """
    _checks.function(apply_fn, "apply_fn", "apply_fn(params, x)")
    _checks.function(init_fn, "init_fn", "init_fn(key) -> params")
    key = _checks.prng_key(key, "key")
    seeds = _checks.integer(seeds, "seeds")
    steps = _checks.integer(steps, "steps")
    if isinstance(ratios, Mapping):
        if models is not None:
            raise ValueError("pass models=None with a dict of ratios (its keys are the models).")
        grids = {name: _check_ratios(r) for name, r in ratios.items()}
    else:
        if isinstance(models, str):
            raise TypeError(f"models must be a sequence of model names, got the string {models!r}.")
        models = ("nn", "nqm", "linear") if models is None else tuple(models)
        unknown = [m for m in models if m not in MODEL_ORDERS]
        if unknown or not models:
            raise ValueError(
                f"models must be a non-empty subset of {tuple(MODEL_ORDERS)}, got {models!r}."
            )
        grids = dict.fromkeys(models, _check_ratios(ratios))
    data = _check_data(data)
    x = data.x_train
    lam_obs = nt.Observable(
        init=lambda f, p0, d: None, compute=lambda s, f, p, d: ntk_max_eigenvalue(f, p, x)
    )
    out = {}
    for name, ratio in grids.items():
        pair = taylor_ensemble_model(apply_fn, init_fn, MODEL_ORDERS.get(name))
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
            divergence_factor=None,  # divergence is a result, not a stopping rule
        ).to_numpy()
        lam = np.asarray(rec.observables["lam"], np.float64)
        loss = np.asarray(rec.train_loss, np.float64)
        test = None if rec.test_loss is None else np.asarray(rec.test_loss, np.float64)
        out[name] = _summarise(name, ratio, lam[:, 0, 0], loss, lam, test)
    return out


def linear_limit(
    apply_fn: Callable, init_fn: Callable, data, ratios, *, key: jax.Array, seeds: int
) -> Record:
    r"""Converged test loss of the linear model at rates ``η = ratio/λ0`` below ``2/λ0``.

    GD on the linearised network converges for ``η λ_max < 2`` to eNTK regression on the
    initial residual, ``f0 + Θ(·, X) Θ(X, X)⁻¹ (y − f0(X))`` (Lee et al. 2019,
    arXiv:1902.06720), independent of ``η``: the prediction for the lazy phase of the
    network (its theory for every ratio below 2). Seeds are those of :func:`phase_diagram`
    (``init_fn(split(key, seeds)[s])``), so the record pairs with its diagrams seed by seed.

    Returns:
      A :class:`nnlab.Record` with ``test_final`` over ``('eta_lam0', 'seed')`` (rates
      first: the theory side of a seed-by-seed comparison, see
      :meth:`PhaseDiagram.seedwise`).
    """
    _checks.function(apply_fn, "apply_fn", "apply_fn(params, x)")
    _checks.function(init_fn, "init_fn", "init_fn(key) -> params")
    from nnlab.empirical import empirical_ntk
    from nnlab.predict import kernel_regression

    ratio = _check_ratios(ratios)
    lazy_max = float(catapult_thresholds(1.0, model="linear").lazy_max)
    if np.any(ratio >= lazy_max):
        raise ValueError(
            f"ratios must be below {lazy_max} (η λ0; the linear model diverges above), got "
            f"{ratio.tolist()}."
        )
    data = _check_data(data)
    if data.x_test is None:
        raise ValueError("data needs x_test and y_test: linear_limit gives the test loss.")
    x, y, xt, yt = data.x_train, data.y_train, data.x_test, data.y_test

    def one(k):
        p0 = init_fn(k)
        resid = y - apply_fn(p0, x)
        k_xx, k_tx = empirical_ntk(apply_fn, p0, x), empirical_ntk(apply_fn, p0, xt, x)
        ft = apply_fn(p0, xt) + kernel_regression(k_xx, resid, k_tx)
        return 0.5 * jnp.mean(jnp.sum(jnp.square(ft - yt), axis=-1))

    keys = jax.random.split(_checks.prng_key(key, "key"), _checks.integer(seeds, "seeds"))
    test = np.asarray(jax.jit(jax.vmap(one))(keys), np.float64)
    return Record(
        {"test_final": ((RATIO, "seed"), np.repeat(test[None, :], ratio.size, axis=0))},
        coords={"seed": np.arange(test.size), RATIO: ratio},
        meta={"model": "linear_limit"},
    )
