"""Registered experiments (``nnlab list`` shows them).

Importing this package imports every public module in it (any file not
starting with ``_``), and each module registers its experiments with
:func:`register`. Each experiment reproduces one published result at a
CPU-sized ``small`` scale and a GPU-sized ``large`` scale.
"""

import importlib as _importlib
import pkgutil as _pkgutil

from ._registry import Experiment as Experiment
from ._registry import Scale as Scale
from ._registry import get as get
from ._registry import names as names
from ._registry import register as register
from ._runner import run_demo as run_demo
from ._runner import run_experiment as run_experiment

__all__ = ["Experiment", "Scale", "get", "names", "register", "run_demo", "run_experiment"]

for _module in _pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        _importlib.import_module(f"{__name__}.{_module.name}")
