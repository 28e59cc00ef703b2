"""Mean-field dynamics of two-layer networks, and exact online-SGD theory for committees.

* Particle systems: ``f(x) = (1/N) Σ_i a_i σ(w_i·x)`` trained under the mean-field time scaling
  (:func:`particle_gradient_flow`, :func:`meanfield_velocity`, :func:`meanfield_apply`), with
  density snapshots (:func:`particle_density`). Mei, Montanari & Nguyen 2018
  (arXiv:1804.06561); Chizat & Bach 2018 (arXiv:1805.09545); Rotskoff & Vanden-Eijnden 2018
  (arXiv:1805.00915).
* Soft committee machines with ``g = erf(·/√2)``: the Saad-Solla ODEs for the order parameters
  (:func:`saad_solla_rhs`, :func:`saad_solla_ode`), the generalisation error
  (:func:`committee_generalisation_error`), the closed-form Gaussian integrals
  (:func:`erf_i2`, :func:`erf_i3`, :func:`erf_i4`) and direct online SGD
  (:func:`committee_online_sgd`). Saad & Solla 1995; Goldt et al. 2019 (arXiv:1906.08632).

See ``docs/meanfield.md``.
"""

from ._erf_integrals import erf_i2 as erf_i2
from ._erf_integrals import erf_i3 as erf_i3
from ._erf_integrals import erf_i4 as erf_i4
from ._particles import Activation as Activation
from ._particles import Particles as Particles
from ._particles import ParticleTrajectory as ParticleTrajectory
from ._particles import init_particles as init_particles
from ._particles import meanfield_apply as meanfield_apply
from ._particles import meanfield_velocity as meanfield_velocity
from ._particles import particle_density as particle_density
from ._particles import particle_gradient_flow as particle_gradient_flow
from ._saad_solla import OrderParameters as OrderParameters
from ._saad_solla import committee_generalisation_error as committee_generalisation_error
from ._saad_solla import committee_online_sgd as committee_online_sgd
from ._saad_solla import committee_order_parameters as committee_order_parameters
from ._saad_solla import saad_solla_ode as saad_solla_ode
from ._saad_solla import saad_solla_rhs as saad_solla_rhs

__all__ = [
    "Activation",
    "OrderParameters",
    "ParticleTrajectory",
    "Particles",
    "committee_generalisation_error",
    "committee_online_sgd",
    "committee_order_parameters",
    "erf_i2",
    "erf_i3",
    "erf_i4",
    "init_particles",
    "meanfield_apply",
    "meanfield_velocity",
    "particle_density",
    "particle_gradient_flow",
    "saad_solla_ode",
    "saad_solla_rhs",
]
