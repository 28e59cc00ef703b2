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
import functools
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import _checks as checks
from nnlab._pytree import register_dataclass
from nnlab.kernels._kernel import Kernel

Array = jax.Array
Shape = tuple[int, ...]
Params = Any


def static(**kwargs: Any) -> Any:
    """A dataclass field that is static pytree metadata (structure, not data)."""
    return dataclasses.field(metadata={"static": True}, **kwargs)


def layer(cls: type) -> type:
    """Make ``cls`` a frozen dataclass registered as a pytree (static fields via :func:`static`).

    Construction checks every field generically before the class's own ``__post_init__``:
    numeric hyperparameters (fields annotated ``float``) must be real numbers (NaN and inf
    are errors; ``None`` only where the annotation allows it; arrays and tracers pass, so
    layers can be vmapped over), and NumPy integers in static ``int`` fields become ints.
    ``init`` checks its ``key`` and ``input_shape``; ``apply`` rejects Python lists and
    scalars in place of arrays.
    """
    own_post_init = getattr(cls, "__post_init__", None)

    def __post_init__(self):
        _normalise_and_check_fields(self)
        if own_post_init is not None:
            own_post_init(self)

    cls.__post_init__ = __post_init__
    if "init" in cls.__dict__:
        cls.init = _checked_init(cls.__dict__["init"])
    if "apply" in cls.__dict__:
        cls.apply = _checked_apply(cls.__dict__["apply"])
    cls = dataclasses.dataclass(frozen=True)(cls)
    register_dataclass(cls)
    return cls


def _normalise_and_check_fields(obj: Any) -> None:
    name = type(obj).__name__
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        annotation = str(f.type)
        if f.metadata.get("static", False):
            if annotation == "float":
                if checks.is_traced(value):
                    raise TypeError(
                        f"{name}: {f.name} is static (it shapes the computation) and must be a "
                        "concrete number, got a traced value; build the layer outside jit/vmap."
                    )
                object.__setattr__(obj, f.name, float(checks.real(value, f"{name}: {f.name}")))
            elif isinstance(value, np.integer):
                object.__setattr__(obj, f.name, int(value))
            elif isinstance(value, tuple) and any(isinstance(v, np.integer) for v in value):
                object.__setattr__(
                    obj, f.name, tuple(int(v) if isinstance(v, np.integer) else v for v in value)
                )
            continue
        if "float" not in annotation:
            continue
        if value is None:
            if "None" not in annotation:
                raise TypeError(f"{name}: {f.name} must be a real number, got None.")
            continue
        if isinstance(value, jax.Array | np.ndarray) and np.ndim(value) > 0:
            # A batch of hyperparameters (for jax.vmap over layers): real and finite.
            if not (
                jnp.issubdtype(value.dtype, jnp.floating)
                or jnp.issubdtype(value.dtype, jnp.integer)
            ):
                raise TypeError(f"{name}: {f.name} must be real, got dtype {value.dtype}.")
            if not checks.all_finite(value):
                raise ValueError(f"{name}: {f.name} must be finite, got {value}.")
            continue
        if type(value) is object:
            continue  # jax's sentinel leaves when it rebuilds a pytree
        checks.real(value, f"{name}: {f.name}")


def _check_shape(name: str, input_shape: Any) -> None:
    if isinstance(input_shape, list):
        for s in input_shape:
            _check_shape(name, s)
        return
    if isinstance(input_shape, jax.ShapeDtypeStruct):
        input_shape = input_shape.shape
    if not isinstance(input_shape, tuple) and not hasattr(input_shape, "__len__"):
        raise TypeError(
            f"{name}.init: input_shape must be a tuple of ints such as (N, features), got "
            f"{input_shape!r}."
        )
    for axis, size in enumerate(tuple(input_shape)):
        if isinstance(size, bool) or not isinstance(size, int | np.integer):
            raise TypeError(
                f"{name}.init: input_shape must be a tuple of ints, got {tuple(input_shape)!r}."
            )
        if size < 1 and not (axis == 0 and size == -1):
            raise ValueError(
                f"{name}.init: input_shape must have positive sizes (or -1 for an unknown "
                f"batch size in front), got {tuple(input_shape)}."
            )


def _checked_init(init):
    @functools.wraps(init)
    def wrapper(self, key, input_shape, *args, **kwargs):
        if not checks.is_traced(key):
            checks.prng_key(key, f"{type(self).__name__}.init: key")
        if isinstance(input_shape, jax.ShapeDtypeStruct):
            input_shape = input_shape.shape
        _check_shape(type(self).__name__, input_shape)
        if not isinstance(input_shape, list):
            input_shape = tuple(int(s) for s in input_shape)
        return init(self, key, input_shape, *args, **kwargs)

    return wrapper


def _checked_apply(apply):
    @functools.wraps(apply)
    def wrapper(self, params, x, *args, **kwargs):
        items = x if isinstance(x, list | tuple) else [x]
        for item in items:
            if not hasattr(item, "shape") or not hasattr(item, "dtype"):
                raise TypeError(
                    f"{type(self).__name__}.apply: x must be an array (or, for a layer that "
                    f"merges branches, a list of arrays), got {type(item).__name__}; convert "
                    "it with jnp.asarray first."
                )
        return apply(self, params, x, *args, **kwargs)

    return wrapper


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
