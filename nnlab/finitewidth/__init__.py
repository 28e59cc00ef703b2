"""Finite-width theory: criticality and the leading 1/n corrections to the NNGP.

Single-input theory in the conventions of Roberts, Yaida & Hanin (2021), "The
Principles of Deep Learning Theory", arXiv:2106.10165, and Antognini (2019),
"Finite size corrections for neural network Gaussian processes", arXiv:1908.10030:

* :func:`kernel_recursion`, :func:`kernel_map`, :func:`susceptibilities`,
  :func:`criticality` / :class:`CriticalPoint` — the infinite-width recursion
  ``K^{(ℓ+1)} = C_b + C_W⟨σ²⟩``, ``χ_∥``, ``χ_⊥`` and critical ``(C_b, C_W)``;
* :func:`finite_width_recursion` / :class:`FiniteWidthTheory` — the four-point
  vertex ``V^{(ℓ)}`` (``E[z⁴] - 3E[z²]² = 3V/n``) and the NLO metric, for any
  activation by quadrature; :func:`scale_invariant_kurtosis` — the exact
  finite-width product form for ReLU-like activations; :func:`output_density` —
  the corrected output density;
* :func:`sample_preactivations`, :func:`second_moment_estimate`,
  :func:`fourth_cumulant_estimate` — Monte Carlo over ensembles of networks with
  batch-means standard errors;
* :func:`gaussian_expectation` — ``⟨f(z)⟩_K`` by a split half-line Gauss rule.

See ``docs/finitewidth.md``.
"""

from ._criticality import CriticalPoint as CriticalPoint
from ._criticality import criticality as criticality
from ._criticality import kernel_map as kernel_map
from ._criticality import kernel_recursion as kernel_recursion
from ._criticality import susceptibilities as susceptibilities
from ._gaussian import gaussian_expectation as gaussian_expectation
from ._monte_carlo import MonteCarloEstimate as MonteCarloEstimate
from ._monte_carlo import PreactivationMoments as PreactivationMoments
from ._monte_carlo import fourth_cumulant_estimate as fourth_cumulant_estimate
from ._monte_carlo import sample_preactivations as sample_preactivations
from ._monte_carlo import second_moment_estimate as second_moment_estimate
from ._vertex import FiniteWidthTheory as FiniteWidthTheory
from ._vertex import finite_width_recursion as finite_width_recursion
from ._vertex import output_density as output_density
from ._vertex import scale_invariant_kurtosis as scale_invariant_kurtosis

__all__ = [
    "CriticalPoint",
    "FiniteWidthTheory",
    "MonteCarloEstimate",
    "PreactivationMoments",
    "criticality",
    "finite_width_recursion",
    "fourth_cumulant_estimate",
    "gaussian_expectation",
    "kernel_map",
    "kernel_recursion",
    "output_density",
    "sample_preactivations",
    "scale_invariant_kurtosis",
    "second_moment_estimate",
    "susceptibilities",
]
