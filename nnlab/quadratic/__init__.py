"""Quadratic models and the catapult phase (Lewkowycz et al. 2020; Zhu et al. 2022).

* :class:`UVModel`: the two-layer linear uv model, its exact ``(f, λ)`` GD recursion and
  parameter-space simulation.
* :func:`quadratic_model`, :func:`linear_model`, :func:`taylor_ensemble_model`: the NQM and
  linear model of a network, trainable with :mod:`nnlab.train` beside the network.
* :class:`Phase`, :func:`catapult_thresholds`, :func:`classify_phase`, :func:`phase_codes`.
* :func:`uv_phase_diagram`, :func:`phase_diagram`: sweeps of ``η λ0``.

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
from ._phase_diagram import phase_diagram as phase_diagram
from ._phase_diagram import uv_phase_diagram as uv_phase_diagram
from ._phases import CatapultThresholds as CatapultThresholds
from ._phases import Phase as Phase
from ._phases import catapult_thresholds as catapult_thresholds
from ._phases import classify_phase as classify_phase
from ._phases import phase_codes as phase_codes
from ._uv import UVModel as UVModel
from ._uv import UVParams as UVParams
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
    "UVModel",
    "UVParams",
    "UVState",
    "UVTrajectory",
    "catapult_thresholds",
    "classify_phase",
    "linear_model",
    "ntk_max_eigenvalue",
    "ntk_scaled_sgd",
    "phase_codes",
    "phase_diagram",
    "quadratic_model",
    "taylor_ensemble_model",
    "uv_phase_diagram",
]
