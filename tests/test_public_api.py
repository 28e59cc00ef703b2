"""The public API: ``from nnlab import *`` works and every public module declares ``__all__``."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import nnlab


def _public_modules():
    names = ["nnlab"]
    for info in pkgutil.walk_packages(nnlab.__path__, "nnlab."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return names


def test_star_import():
    namespace: dict = {}
    exec("from nnlab import *", namespace)
    for name in nnlab.__all__:
        assert name in namespace, name


@pytest.mark.parametrize("module_name", _public_modules())
def test_every_public_module_declares_all(module_name):
    module = importlib.import_module(module_name)
    assert hasattr(module, "__all__"), f"{module_name} has no __all__"
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.__all__ lists missing {name!r}"
    namespace: dict = {}
    exec(f"from {module_name} import *", namespace)
