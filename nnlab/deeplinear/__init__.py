r"""Deep linear networks: exact learning dynamics against simulation (Saxe et al. 2013).

Saxe, McClelland & Ganguli, "Exact solutions to the nonlinear dynamics of learning in deep
linear neural networks", 2013, arXiv:1312.6120.

Conventions (stated once here and in each docstring):

* data ``x`` ``(P, n_in)``, ``y`` ``(P, n_out)``; the network is :math:`x \mapsto W_D\cdots W_1x`
  with ``depth`` :math:`D` = the number of weight matrices (:math:`D = 2`: one hidden layer);
* loss :math:`L = \frac1{2P}\sum_\mu\lVert y_\mu - W_D\cdots W_1x_\mu\rVert^2`;
* with whitened inputs (:math:`\Sigma_{xx} = I`) and a balanced, mode-aligned initialisation
  (every layer carries :math:`a_0` on each mode, :math:`u_\alpha(0) = a_0^D`), each mode obeys
  :math:`\tau\,du/dt = D\,u^{2-2/D}(s-u)`, and gradient descent with learning rate :math:`\eta`
  follows it with :math:`\tau = 1/\eta` and :math:`t` counted in steps.

Pieces: :func:`mode_decomposition` (the modes :math:`s_\alpha, u_\alpha, v_\alpha`),
:func:`mode_dynamics` / :func:`learning_time` / :func:`mode_velocity` (theory),
:func:`simulate` / :func:`init_weights` / :func:`project_modes` (simulation), and the datasets
:func:`hierarchical_data` and :func:`random_teacher`. See ``docs/deeplinear.md``.
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
from ._simulate import Simulation as Simulation
from ._simulate import init_weights as init_weights
from ._simulate import simulate as simulate

__all__ = [
    "Dataset",
    "Modes",
    "Simulation",
    "correlations",
    "hierarchical_data",
    "init_weights",
    "learning_time",
    "mode_decomposition",
    "mode_dynamics",
    "mode_velocity",
    "project_modes",
    "random_teacher",
    "simulate",
    "weight_product",
]
