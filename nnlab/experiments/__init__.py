"""The built-in experiments (``nnlab list`` shows them); the machinery is :mod:`nnlab.registry`.

Importing this package imports every public module in it (any file not starting with
``_``), and each module registers its experiments with :func:`nnlab.registry.register`.
Each experiment reproduces one published result at a CPU-sized ``small`` scale and a
GPU-sized ``large`` scale. The registry's functions are re-exported here.
"""

import importlib as _importlib
import pkgutil as _pkgutil

from nnlab.registry import Experiment, Scale, get, names, register, run_demo, run_experiment

__all__ = ["Experiment", "Scale", "get", "names", "register", "run_demo", "run_experiment"]

for _module in _pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        _importlib.import_module(f"{__name__}.{_module.name}")
