"""Finite-width theory: criticality and the leading 1/n corrections to the NNGP.

Single-input theory in the conventions of Roberts, Yaida & Hanin (2021), "The
Principles of Deep Learning Theory", arXiv:2106.10165, and Antognini (2019),
"Finite size corrections for neural network Gaussian processes", arXiv:1908.10030,
with the book's ``C_W = W_std²`` and ``C_b = b_std²``. One ``nnlab.layers`` network
``serial(Dense(n, W_std, b_std), σ, ..., Dense(n, W_std, b_std))`` gives both the theory
(:func:`finite_width_theory`) and the Monte Carlo (:func:`sample_preactivations`); both
return :class:`nnlab.Record` s over the axis ``'layer'`` that
:meth:`nnlab.evaluate.Comparison.from_records` lines up:

* :func:`kernel_recursion`, :func:`kernel_map`, :func:`susceptibilities`,
  :func:`criticality` / :class:`CriticalPoint` — the infinite-width recursion
  ``K^{(ℓ+1)} = C_b + C_W⟨σ²⟩``, ``χ_∥``, ``χ_⊥`` and critical ``(C_b, C_W)``;
  :func:`critical_mlp` — the network at criticality;
* :func:`finite_width_theory`, :func:`finite_width_recursion` /
  :class:`FiniteWidthTheory`, :func:`sweep_theory` — the four-point vertex ``V^{(ℓ)}``
  (``E[z⁴] - 3E[z²]² = 3V/n``) and the NLO metric, for any activation by quadrature;
  :func:`scale_invariant_kurtosis` — the exact finite-width product form for ReLU-like
  activations; :func:`output_density`, :func:`output_density_bins` — the corrected
  output density, :func:`density_correction` — its 1/n term, theory and Monte Carlo;
  :func:`from_layer`, :func:`depth_exponent` — records from a layer on, power laws in depth;
* :func:`sample_preactivations`, :func:`moment_batches`, :func:`sweep_moments`,
  :func:`second_moment_estimate`, :func:`fourth_cumulant_estimate`,
  :func:`output_histogram` — Monte Carlo over ensembles of networks with batch-means
  standard errors (:class:`nnlab.empirical.MonteCarloEstimate`);
* :func:`gaussian_expectation` — ``⟨f(z)⟩_K`` by a split half-line Gauss rule;
* :func:`susceptibility_figure`, :func:`kurtosis_figure` — figures.

See ``docs/finitewidth.md``.
"""

from ._criticality import CriticalPoint as CriticalPoint
from ._criticality import critical_mlp as critical_mlp
from ._criticality import criticality as criticality
from ._criticality import kernel_map as kernel_map
from ._criticality import kernel_recursion as kernel_recursion
from ._criticality import susceptibilities as susceptibilities
from ._density import density_correction as density_correction
from ._density import output_density as output_density
from ._density import output_density_bins as output_density_bins
from ._density import output_histogram as output_histogram
from ._gaussian import gaussian_expectation as gaussian_expectation
from ._monte_carlo import BatchMoments as BatchMoments
from ._monte_carlo import PreactivationMoments as PreactivationMoments
from ._monte_carlo import fourth_cumulant_estimate as fourth_cumulant_estimate
from ._monte_carlo import moment_batches as moment_batches
from ._monte_carlo import sample_preactivations as sample_preactivations
from ._monte_carlo import second_moment_estimate as second_moment_estimate
from ._monte_carlo import sweep_moments as sweep_moments
from ._plot import kurtosis_figure as kurtosis_figure
from ._plot import susceptibility_figure as susceptibility_figure
from ._vertex import FiniteWidthTheory as FiniteWidthTheory
from ._vertex import depth_exponent as depth_exponent
from ._vertex import finite_width_recursion as finite_width_recursion
from ._vertex import finite_width_theory as finite_width_theory
from ._vertex import from_layer as from_layer
from ._vertex import scale_invariant_kurtosis as scale_invariant_kurtosis
from ._vertex import sweep_theory as sweep_theory

__all__ = [
    "BatchMoments",
    "CriticalPoint",
    "FiniteWidthTheory",
    "PreactivationMoments",
    "critical_mlp",
    "criticality",
    "density_correction",
    "depth_exponent",
    "finite_width_recursion",
    "finite_width_theory",
    "fourth_cumulant_estimate",
    "from_layer",
    "gaussian_expectation",
    "kernel_map",
    "kernel_recursion",
    "kurtosis_figure",
    "moment_batches",
    "output_density",
    "output_density_bins",
    "output_histogram",
    "sample_preactivations",
    "scale_invariant_kurtosis",
    "second_moment_estimate",
    "susceptibilities",
    "susceptibility_figure",
    "sweep_moments",
    "sweep_theory",
]
