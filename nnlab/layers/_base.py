"""What every nnlab layer is: a frozen dataclass pytree with ``init``, ``apply``, ``kernel``.

A layer's numeric hyperparameters (``W_std``, ``b_std``, an activation's slope)
are pytree leaves, so a layer can be passed through ``jax.jit``, vmapped over,
and differentiated with respect to its hyperparameters; structural settings
(widths, filter shapes, padding, parameterization) are static metadata.

Shapes include the batch dimension first: ``init(key, (N, d))`` returns
``((N, out), params)``; ``apply(params, x)`` maps (N, ...) to (N, ...);
``kernel(k)`` maps a :class:`~nnlab.kernels.Kernel` to the kernel of the
layer's outputs.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, runtime_checkable

import jax

from nnlab._pytree import register_dataclass
from nnlab.kernels._kernel import Kernel

Array = jax.Array
Shape = tuple[int, ...]
Params = Any


def static(**kwargs: Any) -> Any:
    """A dataclass field that is static pytree metadata (structure, not data)."""
    return dataclasses.field(metadata={"static": True}, **kwargs)


def layer(cls: type) -> type:
    """Make ``cls`` a frozen dataclass registered as a pytree (static fields via :func:`static`)."""
    cls = dataclasses.dataclass(frozen=True)(cls)
    register_dataclass(cls)
    return cls


@runtime_checkable
class Layer(Protocol):
    """The protocol every layer and combinator follows."""

    def init(self, key: Array, input_shape: Shape) -> tuple[Shape, Params]: ...

    def apply(self, params: Params, x: Array) -> Array: ...

    def kernel(self, k: Kernel) -> Kernel: ...


def check_rank(name: str, input_shape: Any, ranks: tuple[int, ...], what: str) -> None:
    """Raise a ValueError naming layer ``name`` if ``input_shape`` has the wrong rank."""
    if isinstance(input_shape, list):
        raise TypeError(
            f"{name} takes a single input, got a list of {len(input_shape)} "
            "inputs; combine branches first with FanInSum or FanInConcat."
        )
    if len(input_shape) not in ranks:
        raise ValueError(f"{name} expects inputs of shape {what}, got shape {tuple(input_shape)}.")


def check_kernel(name: str, k: Any) -> Kernel:
    """Raise a TypeError naming layer ``name`` unless ``k`` is a single Kernel."""
    if isinstance(k, list):
        raise TypeError(
            f"{name} takes a single input, got a list of {len(k)} kernels; "
            "combine branches first with FanInSum or FanInConcat."
        )
    if not isinstance(k, Kernel):
        raise TypeError(f"{name}.kernel expects a nnlab Kernel, got {type(k).__name__}.")
    return k
