"""Curvature of the training loss: Hessian-vector products, Lanczos eigenpairs, Hutchinson
trace, stochastic Lanczos quadrature densities, Gauss-Newton products, per-block restriction
and a sharpness observable for :mod:`nnlab.train`.

See ``docs/curvature.md``.
"""

from ._density import Quadrature as Quadrature
from ._density import SpectralDensity as SpectralDensity
from ._density import gaussian_broadening as gaussian_broadening
from ._density import lanczos_quadrature as lanczos_quadrature
from ._density import spectral_density as spectral_density
from ._lanczos import Eigenpairs as Eigenpairs
from ._lanczos import LanczosResult as LanczosResult
from ._lanczos import lanczos as lanczos
from ._lanczos import top_eigenpairs as top_eigenpairs
from ._observable import sharpness as sharpness
from ._operator import CurvatureOperator as CurvatureOperator
from ._operator import dense as dense
from ._operator import gauss_newton_operator as gauss_newton_operator
from ._operator import hessian_operator as hessian_operator
from ._operator import hvp as hvp
from ._operator import matrix_operator as matrix_operator
from ._operator import restrict as restrict
from ._trace import TraceEstimate as TraceEstimate
from ._trace import hutchinson_trace as hutchinson_trace

__all__ = [
    "CurvatureOperator",
    "Eigenpairs",
    "LanczosResult",
    "Quadrature",
    "SpectralDensity",
    "TraceEstimate",
    "dense",
    "gauss_newton_operator",
    "gaussian_broadening",
    "hessian_operator",
    "hutchinson_trace",
    "hvp",
    "lanczos",
    "lanczos_quadrature",
    "matrix_operator",
    "restrict",
    "sharpness",
    "spectral_density",
    "top_eigenpairs",
]
