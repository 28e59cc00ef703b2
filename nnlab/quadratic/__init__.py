"""Quadratic models and the catapult phase (Lewkowycz et al. 2020; Zhu et al. 2022).

* :class:`UVModel`: the two-layer linear uv model as an nnlab network, its exact ``(f, λ)``
  GD recursion (:meth:`UVModel.theory`) and its training by :mod:`nnlab.train`
  (:meth:`UVModel.simulate`), both :class:`UVTrajectory` records.
* :func:`quadratic_model`, :func:`linear_model`, :func:`taylor_ensemble_model`: the NQM and
  linear model of a network, trainable with :mod:`nnlab.train` beside the network.
* :class:`Phase`, :func:`catapult_thresholds`, :func:`classify_phase`, :func:`phase_codes`,
  :func:`phase_prediction` (the predicted phase against ``η λ0``, a record).
* :func:`uv_phase_diagram`, :func:`phase_diagram`: sweeps of ``η λ0`` returning
  :class:`PhaseDiagram` records (axes ``seed``, ``eta_lam0``, ``time``);
  :func:`linear_limit`: the linear model's converged test loss on the same axes;
  :func:`ratio_grid` (rounded grids of ``η λ0``), :func:`diagram_arrays` (flat arrays).
* :func:`two_layer_problem`: the wide two-layer ReLU net on sphere points of Zhu et al.
* :func:`phase_figure`, :func:`trajectory_figure`, :func:`generalization_figure`.

See ``docs/catapult.md``.
"""

from ._models import Anchored as Anchored
from ._models import ModelPair as ModelPair
from ._models import NTKScaledSGDState as NTKScaledSGDState
from ._models import linear_model as linear_model
from ._models import ntk_max_eigenvalue as ntk_max_eigenvalue
from ._models import ntk_scaled_sgd as ntk_scaled_sgd
from ._models import quadratic_model as quadratic_model
from ._models import taylor_ensemble_model as taylor_ensemble_model
from ._phase_diagram import MODEL_ORDERS as MODEL_ORDERS
from ._phase_diagram import PhaseDiagram as PhaseDiagram
from ._phase_diagram import diagram_arrays as diagram_arrays
from ._phase_diagram import linear_limit as linear_limit
from ._phase_diagram import phase_diagram as phase_diagram
from ._phase_diagram import ratio_grid as ratio_grid
from ._phase_diagram import uv_phase_diagram as uv_phase_diagram
from ._phases import CatapultThresholds as CatapultThresholds
from ._phases import Phase as Phase
from ._phases import PhasePrediction as PhasePrediction
from ._phases import catapult_thresholds as catapult_thresholds
from ._phases import classify_phase as classify_phase
from ._phases import phase_codes as phase_codes
from ._phases import phase_prediction as phase_prediction
from ._plot import generalization_figure as generalization_figure
from ._plot import phase_figure as phase_figure
from ._plot import trajectory_figure as trajectory_figure
from ._problem import two_layer_problem as two_layer_problem
from ._uv import UVModel as UVModel
from ._uv import UVState as UVState
from ._uv import UVTrajectory as UVTrajectory

__all__ = [
    "MODEL_ORDERS",
    "Anchored",
    "CatapultThresholds",
    "ModelPair",
    "NTKScaledSGDState",
    "Phase",
    "PhaseDiagram",
    "PhasePrediction",
    "UVModel",
    "UVState",
    "UVTrajectory",
    "catapult_thresholds",
    "classify_phase",
    "diagram_arrays",
    "generalization_figure",
    "linear_limit",
    "linear_model",
    "ntk_max_eigenvalue",
    "ntk_scaled_sgd",
    "phase_codes",
    "phase_diagram",
    "phase_figure",
    "phase_prediction",
    "quadratic_model",
    "ratio_grid",
    "taylor_ensemble_model",
    "trajectory_figure",
    "two_layer_problem",
    "uv_phase_diagram",
]
