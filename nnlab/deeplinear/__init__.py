r"""Deep linear networks: exact learning dynamics against simulation (Saxe et al. 2014).

Saxe, McClelland & Ganguli, "Exact solutions to the nonlinear dynamics of learning in deep
linear neural networks", ICLR 2014, arXiv:1312.6120.

Conventions (stated once here and in each docstring):

* data ``x`` ``(P, n_in)``, ``y`` ``(P, n_out)``; the network is :math:`x \mapsto W_D\cdots W_1x`
  with ``depth`` :math:`D` = the number of weight matrices (:math:`D = 2`: one hidden layer),
  built as :func:`network` = ``serial(Dense(n_1, b_std=None), ..., Dense(n_out, b_std=None))``
  in the ``'standard'`` parameterization;
* loss :math:`L = \frac1{2P}\sum_\mu\lVert y_\mu - W_D\cdots W_1x_\mu\rVert^2` (nnlab.train's
  ``'mse'`` with ``'mean'`` normalisation);
* with whitened inputs (:math:`\Sigma_{xx} = I`) and a balanced, mode-aligned initialisation
  (every layer carries :math:`a_0` = ``W_std`` on each mode, :math:`u_\alpha(0) = a_0^D`), each
  mode obeys :math:`\tau\,du/dt = D\,u^{2-2/D}(s-u)`, and gradient descent with learning rate
  :math:`\eta` follows it with :math:`\tau = 1/\eta` and :math:`t` counted in steps.

Pieces: :func:`mode_decomposition` (the modes :math:`s_\alpha, u_\alpha, v_\alpha`);
theory as arrays (:func:`mode_dynamics`, :func:`learning_time`, :func:`mode_velocity`) and as
records (:func:`mode_trajectory` -> :class:`ModeTrajectory`, :func:`learning_times` ->
:class:`LearningTimes`); simulation (:func:`simulate` -> :class:`ModeTrajectory`, with
:func:`network` and :func:`init_params`); reading records (:func:`crossing_times`,
:func:`stage_order_violations`); the figure :func:`stages_figure`; :func:`project_modes` /
:func:`weight_product`; the datasets :func:`hierarchical_data` and :func:`random_teacher`
(from :mod:`nnlab.data`). See ``docs/deeplinear.md``.
"""

from ._data import Dataset as Dataset
from ._data import hierarchical_data as hierarchical_data
from ._data import random_teacher as random_teacher
from ._dynamics import learning_time as learning_time
from ._dynamics import mode_dynamics as mode_dynamics
from ._dynamics import mode_velocity as mode_velocity
from ._modes import Modes as Modes
from ._modes import correlations as correlations
from ._modes import mode_decomposition as mode_decomposition
from ._modes import project_modes as project_modes
from ._modes import weight_product as weight_product
from ._plot import stages_figure as stages_figure
from ._simulate import init_params as init_params
from ._simulate import network as network
from ._simulate import simulate as simulate
from ._theory import LearningTimes as LearningTimes
from ._theory import ModeTrajectory as ModeTrajectory
from ._theory import crossing_times as crossing_times
from ._theory import learning_times as learning_times
from ._theory import mode_trajectory as mode_trajectory
from ._theory import stage_order_violations as stage_order_violations

__all__ = [
    "Dataset",
    "LearningTimes",
    "ModeTrajectory",
    "Modes",
    "correlations",
    "crossing_times",
    "hierarchical_data",
    "init_params",
    "learning_time",
    "learning_times",
    "mode_decomposition",
    "mode_dynamics",
    "mode_trajectory",
    "mode_velocity",
    "network",
    "project_modes",
    "random_teacher",
    "simulate",
    "stage_order_violations",
    "stages_figure",
    "weight_product",
]
