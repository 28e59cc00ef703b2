"""Curvature of the training loss: Hessian, Gauss-Newton and empirical-NTK operators, one
Lanczos routine for their top eigenvalues, Hutchinson trace, stochastic Lanczos quadrature
densities (and their dense references, :func:`spectrum_vs_dense`), per-block restriction, a
sharpness observable for :mod:`nnlab.train` and the gradient descent runs that log it
(:func:`sharpness_trajectories`), the edge of stability (the threshold ``2/η``, the rates
that reach it from the initial sharpness and the phase at it), with their figures.

See ``docs/curvature.md``.
"""

from ._density import Quadrature as Quadrature
from ._density import SpectralDensity as SpectralDensity
from ._density import eigenvalue_density as eigenvalue_density
from ._density import gaussian_broadening as gaussian_broadening
from ._density import lanczos_quadrature as lanczos_quadrature
from ._density import spectral_density as spectral_density
from ._eigen import Eigenpairs as Eigenpairs
from ._eigen import count_outliers as count_outliers
from ._eigen import dense_eigenpairs as dense_eigenpairs
from ._eigen import top_eigenpairs as top_eigenpairs
from ._eigen import top_eigenvalue as top_eigenvalue
from ._lanczos import LanczosResult as LanczosResult
from ._lanczos import lanczos as lanczos
from ._ntk import ntk_operator as ntk_operator
from ._observable import sharpness as sharpness
from ._observable import sharpness_trajectories as sharpness_trajectories
from ._operator import CurvatureOperator as CurvatureOperator
from ._operator import dense as dense
from ._operator import gauss_newton_operator as gauss_newton_operator
from ._operator import hessian_operator as hessian_operator
from ._operator import hvp as hvp
from ._operator import matrix_operator as matrix_operator
from ._operator import restrict as restrict
from ._plot import sharpness_figure as sharpness_figure
from ._plot import spectrum_figure as spectrum_figure
from ._reference import SpectrumCheck as SpectrumCheck
from ._reference import spectrum_vs_dense as spectrum_vs_dense
from ._stability import EdgeOfStability as EdgeOfStability
from ._stability import edge_of_stability as edge_of_stability
from ._stability import stability_threshold as stability_threshold
from ._stability import threshold_learning_rates as threshold_learning_rates
from ._trace import TraceEstimate as TraceEstimate
from ._trace import hutchinson_trace as hutchinson_trace

__all__ = [
    "CurvatureOperator",
    "EdgeOfStability",
    "Eigenpairs",
    "LanczosResult",
    "Quadrature",
    "SpectralDensity",
    "SpectrumCheck",
    "TraceEstimate",
    "count_outliers",
    "dense",
    "dense_eigenpairs",
    "edge_of_stability",
    "eigenvalue_density",
    "gauss_newton_operator",
    "gaussian_broadening",
    "hessian_operator",
    "hutchinson_trace",
    "hvp",
    "lanczos",
    "lanczos_quadrature",
    "matrix_operator",
    "ntk_operator",
    "restrict",
    "sharpness",
    "sharpness_figure",
    "sharpness_trajectories",
    "spectral_density",
    "spectrum_figure",
    "spectrum_vs_dense",
    "stability_threshold",
    "threshold_learning_rates",
    "top_eigenpairs",
    "top_eigenvalue",
]
