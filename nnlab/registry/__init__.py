"""The experiment registry: named, reproducible theory-vs-simulation runs and their runner.

:class:`Experiment` couples a paper's claim with a ``small`` (CPU) and a ``large`` (GPU)
configuration and a ``run`` function; :func:`register` adds one, :func:`get` and
:func:`names` read the registry (the built-in experiments of :mod:`nnlab.experiments` are
loaded on first use), and :func:`run_experiment` / :func:`run_demo` run experiments and
write their output folders (``config.json``, ``results.json``, arrays, figures,
``report.md``). The CLI (``nnlab list``, ``nnlab run NAME``, ``nnlab demo``) is a thin
layer over these functions.

Example:
  >>> from nnlab import registry
  >>> "catapult_uv" in registry.names()
  True
  >>> registry.get("catapult_uv").config("small").width
  512
"""

from ._experiment import Experiment as Experiment
from ._experiment import Scale as Scale
from ._experiment import config_dict as config_dict
from ._experiment import get as get
from ._experiment import names as names
from ._experiment import register as register
from ._run import run_all as run_all
from ._run import run_demo as run_demo
from ._run import run_experiment as run_experiment

__all__ = [
    "Experiment",
    "Scale",
    "config_dict",
    "get",
    "names",
    "register",
    "run_all",
    "run_demo",
    "run_experiment",
]
