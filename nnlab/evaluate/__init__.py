"""Theory next to simulation: comparison records, scaling fits and reports.

* :class:`Comparison` pairs a theory array with a simulation array over named
  axes (time, width, seed, ...), computes error metrics and pass/fail, and
  hands itself to pandas (``to_dataframe``) or matplotlib (``plot``).
* :func:`scaling_fit` fits ``error ~ prefactor * x ** exponent`` with a
  confidence interval for the exponent.
* :meth:`Comparison.from_records` lines up two :class:`nnlab.Record` s by axis name;
  :func:`first_crossing`, :func:`threshold_crossing` and :func:`fixed_exponent_fit` read
  numbers off curves; :func:`power_law_comparisons` checks a law ``c x^p`` and its exponent.
* :func:`write_report` / :func:`write_index` write the experiment folders and
  the index behind ``nnlab run`` and ``nnlab demo``.

See ``docs/evaluate.md``.
"""

from ._comparison import METRICS as METRICS
from ._comparison import Comparison as Comparison
from ._comparison import Metric as Metric
from ._curves import first_crossing as first_crossing
from ._curves import fixed_exponent_fit as fixed_exponent_fit
from ._curves import threshold_crossing as threshold_crossing
from ._power_law import power_law_comparisons as power_law_comparisons
from ._report import ExperimentResult as ExperimentResult
from ._report import write_index as write_index
from ._report import write_report as write_report
from ._scaling import ScalingFit as ScalingFit
from ._scaling import scaling_fit as scaling_fit

__all__ = [
    "METRICS",
    "Comparison",
    "ExperimentResult",
    "Metric",
    "ScalingFit",
    "first_crossing",
    "fixed_exponent_fit",
    "power_law_comparisons",
    "scaling_fit",
    "threshold_crossing",
    "write_index",
    "write_report",
]
