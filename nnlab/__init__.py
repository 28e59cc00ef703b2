"""nnlab: a JAX toolkit for the theory of wide neural networks.

One architecture definition gives both the finite network you train
(``init``/``apply``) and its infinite-width kernels (``kernel``); predictors,
trainers and an evaluation layer put theory and simulation side by side.

Submodules are imported on first use, so ``import nnlab`` stays fast::

    import nnlab
    net = nnlab.layers.serial(nnlab.layers.Dense(512), nnlab.layers.Relu(),
                              nnlab.layers.Dense(1))
    k = nnlab.kernel(net, x1, x2)          # Kernel with .nngp and .ntk
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBMODULES = (
    "curvature",
    "data",
    "deeplinear",
    "empirical",
    "evaluate",
    "experiments",
    "finitewidth",
    "kernels",
    "layers",
    "meanfield",
    "parameterization",
    "predict",
    "quadratic",
    "record",
    "spectral",
    "taylor",
    "train",
)
_FUNCTIONS = {
    "kernel": "kernels",
    "Kernel": "kernels",
    "kernel_operator": "kernels",
    "Record": "record",
    "save_record": "record",
    "load_record": "record",
}

__all__ = ["__version__", *_SUBMODULES, *_FUNCTIONS]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"nnlab.{name}")
    if name in _FUNCTIONS:
        return getattr(importlib.import_module(f"nnlab.{_FUNCTIONS[name]}"), name)
    raise AttributeError(f"module 'nnlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
