"""Finite-width kernels: empirical NTK/NNGP, pseudo-NTK, Monte Carlo kernel estimates.

See ``docs/empirical.md`` for the output-shape convention and the cost model.
"""

from ._monte_carlo import MonteCarloEstimate as MonteCarloEstimate
from ._monte_carlo import monte_carlo_kernel as monte_carlo_kernel
from ._nngp import empirical_nngp as empirical_nngp
from ._nngp import pseudo_ntk as pseudo_ntk
from ._ntk import MEMORY_BUDGET as MEMORY_BUDGET
from ._ntk import empirical_ntk as empirical_ntk
from ._ntk import method_costs as method_costs
from ._operator import EmpiricalNTKOperator as EmpiricalNTKOperator
from ._operator import ntk_operator as ntk_operator

__all__ = [
    "MEMORY_BUDGET",
    "EmpiricalNTKOperator",
    "MonteCarloEstimate",
    "empirical_nngp",
    "empirical_ntk",
    "method_costs",
    "monte_carlo_kernel",
    "ntk_operator",
    "pseudo_ntk",
]
