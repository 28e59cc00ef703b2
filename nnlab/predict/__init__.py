"""Analytic predictions for wide networks: kernel regression, GP posteriors and training dynamics.

Kernels come in as arrays (``ntk_train`` ``(n, n)``, ``ntk_test_train`` ``(m, n)``, ...), so any
kernel source works (``nnlab.kernel``, ``nnlab.empirical``, a hand-written formula).

Loss convention, the same in every function here and in :mod:`nnlab.train`: the default
``loss_normalization='mean'`` is the mean loss over the ``n`` training points

    ``L = (1/2n) Σ_i |f(x_i) - y_i|²``,  so gradient flow is  ``df/dt = -(lr/n) Θ (f - Y)``

on the training outputs (``Θ = Θ(X, X)``, ``lr`` the learning rate): ``optax.sgd(lr)`` on
``nnlab.train``'s default MSE follows :func:`gradient_descent_mse` with the same ``lr``
(exactly for a model linear in its parameters, to ``O(1/√width)`` for a wide network).
``loss_normalization='sum'`` is ``L = ½ Σ_i |f(x_i) - y_i|²`` with ``df/dt = -lr Θ (f - Y)``,
the form of Lee et al. 2019 (arXiv:1902.06720). The formulas in the docstrings use the
effective rate ``η``: ``lr / n`` for ``'mean'``, ``lr`` for ``'sum'``. :func:`gradient_flow`
takes its loss as given (write the ``1/n`` into it).

Trajectories as records: :func:`mse_trajectory` gives the outputs and losses of the GD or
gradient-flow prediction at several times as an :class:`MSETrajectory` (an
:class:`nnlab.Record` over ``'time'``), and :func:`network_trajectory` gives a
:mod:`nnlab.train` run in the same layout, for :meth:`nnlab.evaluate.Comparison.from_records`.

Scale: ``kernel_regression`` and ``gp_posterior`` take ``solver='cholesky'|'cg'|'auto'`` (or
:class:`CG` with options) and accept matrix-free kernel operators (:func:`nnlab.kernel_operator`)
as well as arrays; :func:`solve_kernel_system` returns the solve with its residual history.
See ``docs/scale.md``.

Non-positive-definite kernels never fail silently: outside ``jax.jit`` they raise a
``ValueError`` that names the kernel and suggests a ridge; inside ``jit`` the outputs are NaN.
"""

from ._ensemble import EnsemblePrediction as EnsemblePrediction
from ._ensemble import ensemble_mse as ensemble_mse
from ._flow_ode import gradient_flow as gradient_flow
from ._gradient_descent import TrainTestPrediction as TrainTestPrediction
from ._gradient_descent import gradient_descent_mse as gradient_descent_mse
from ._gradient_descent import gradient_flow_mse as gradient_flow_mse
from ._gradient_descent import max_learning_rate as max_learning_rate
from ._likelihood import HyperparameterFit as HyperparameterFit
from ._likelihood import fit_hyperparameters as fit_hyperparameters
from ._likelihood import log_marginal_likelihood as log_marginal_likelihood
from ._regression import GPPosterior as GPPosterior
from ._regression import gp_posterior as gp_posterior
from ._regression import kernel_regression as kernel_regression
from ._solve import CG as CG
from ._solve import KernelSolve as KernelSolve
from ._solve import solve_kernel_system as solve_kernel_system
from ._trajectory import MSETrajectory as MSETrajectory
from ._trajectory import mse_trajectory as mse_trajectory
from ._trajectory import network_trajectory as network_trajectory

__all__ = [
    "CG",
    "EnsemblePrediction",
    "GPPosterior",
    "HyperparameterFit",
    "KernelSolve",
    "MSETrajectory",
    "TrainTestPrediction",
    "ensemble_mse",
    "fit_hyperparameters",
    "gp_posterior",
    "gradient_descent_mse",
    "gradient_flow",
    "gradient_flow_mse",
    "kernel_regression",
    "log_marginal_likelihood",
    "max_learning_rate",
    "mse_trajectory",
    "network_trajectory",
    "solve_kernel_system",
]
