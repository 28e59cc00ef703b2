"""Finite-width kernels: empirical NTK/NNGP, pseudo-NTK, Monte Carlo kernel estimates.

See ``docs/empirical.md`` for the output-shape convention and the cost model.
"""

from ._ntk import MEMORY_BUDGET as MEMORY_BUDGET
from ._ntk import empirical_ntk as empirical_ntk
from ._ntk import method_costs as method_costs

__all__ = ["MEMORY_BUDGET", "empirical_ntk", "method_costs"]
