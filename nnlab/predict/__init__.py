"""Analytic predictions for wide networks: kernel regression, GP posteriors and training dynamics.

Kernels come in as arrays (``ntk_train`` ``(n, n)``, ``ntk_test_train`` ``(m, n)``, ...), so any
kernel source works (``nnlab.kernel``, ``nnlab.empirical``, a hand-written formula).

Loss normalisation, used throughout: ``loss_normalization='sum'`` (default) means
``L = ½ Σ_i (f(x_i) - y_i)²`` and gradient flow ``df/dt = -η Θ (f - Y)``; ``'mean'`` means
``L = (1/2n) Σ_i (f(x_i) - y_i)²``, i.e. an effective rate ``η / n``.

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

__all__ = [
    "EnsemblePrediction",
    "GPPosterior",
    "HyperparameterFit",
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
]
