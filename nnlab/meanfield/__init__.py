"""Mean-field dynamics of two-layer networks, and exact online-SGD theory for committees.

* Mean-field networks: ``f(x) = (1/N) Σ_i a_i σ(w_i·x)`` is the nnlab network
  :func:`meanfield_network` (``Dense`` layers with ``parameterization='meanfield'``), trained
  by :func:`nnlab.train.train` at its mean-field rates in :func:`particle_gradient_flow`;
  its particles (:func:`particles`) and their density (:func:`particle_density`), the
  fluctuations across seeds (:func:`seed_fluctuations`, exact at initialisation:
  :func:`init_output_variance`, sampled: :func:`sample_init_output_std`) and their figures
  (:func:`fluctuations_figure`, :func:`particle_density_figure`). Mei,
  Montanari & Nguyen 2018 (arXiv:1804.06561); Chizat & Bach 2018 (arXiv:1805.09545);
  Rotskoff & Vanden-Eijnden 2018 (arXiv:1805.00915).
* Soft committee machines with ``g = erf(·/√2)``: the Saad-Solla ODEs for the order parameters
  (:func:`saad_solla_rhs`, :func:`saad_solla_ode`), the generalisation error
  (:func:`committee_generalisation_error`), the closed-form Gaussian integrals
  (:func:`erf_i2`, :func:`erf_i3`, :func:`erf_i4`) and online SGD of
  :func:`committee_network` on a :class:`nnlab.train.Stream` (:func:`committee_online_sgd`);
  the ODEs from a run's own start (:func:`saad_solla_from_overlaps`), the specialisation
  plateau (:func:`saad_solla_plateau`, :func:`plateau_window`) and
  :func:`order_parameters_figure`.
  Saad & Solla 1995; Goldt et al. 2019 (arXiv:1906.08632).

Trajectories are :class:`nnlab.Record` s: :class:`ParticleTrajectory` over the mean-field
time ``t = lr · steps`` and :class:`OrderParameters` over ``α = steps / D``. See
``docs/meanfield.md``.
"""

from ._committee import committee_network as committee_network
from ._committee import committee_online_sgd as committee_online_sgd
from ._committee import committee_order_parameters as committee_order_parameters
from ._committee import committee_params as committee_params
from ._committee import saad_solla_from_overlaps as saad_solla_from_overlaps
from ._erf_integrals import erf_i2 as erf_i2
from ._erf_integrals import erf_i3 as erf_i3
from ._erf_integrals import erf_i4 as erf_i4
from ._fluctuations import init_output_variance as init_output_variance
from ._fluctuations import sample_init_output_std as sample_init_output_std
from ._fluctuations import seed_fluctuations as seed_fluctuations
from ._particles import Activation as Activation
from ._particles import ParticleTrajectory as ParticleTrajectory
from ._particles import meanfield_network as meanfield_network
from ._particles import particle_density as particle_density
from ._particles import particle_gradient_flow as particle_gradient_flow
from ._particles import particles as particles
from ._plateau import plateau_window as plateau_window
from ._plateau import saad_solla_plateau as saad_solla_plateau
from ._plot import fluctuations_figure as fluctuations_figure
from ._plot import order_parameters_figure as order_parameters_figure
from ._plot import particle_density_figure as particle_density_figure
from ._saad_solla import OrderParameters as OrderParameters
from ._saad_solla import committee_generalisation_error as committee_generalisation_error
from ._saad_solla import saad_solla_ode as saad_solla_ode
from ._saad_solla import saad_solla_rhs as saad_solla_rhs

__all__ = [
    "Activation",
    "OrderParameters",
    "ParticleTrajectory",
    "committee_generalisation_error",
    "committee_network",
    "committee_online_sgd",
    "committee_order_parameters",
    "committee_params",
    "erf_i2",
    "erf_i3",
    "erf_i4",
    "fluctuations_figure",
    "init_output_variance",
    "meanfield_network",
    "order_parameters_figure",
    "particle_density",
    "particle_density_figure",
    "particle_gradient_flow",
    "particles",
    "plateau_window",
    "saad_solla_from_overlaps",
    "saad_solla_ode",
    "saad_solla_plateau",
    "saad_solla_rhs",
    "sample_init_output_std",
    "seed_fluctuations",
]
