"""Reading an activation argument: a JAX function or an nnlab activation layer."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import _checks


def activation_fn(activation, argname: str = "activation") -> Callable[[jax.Array], jax.Array]:
    """The elementwise function of ``activation`` (a callable, or a layer with a ``fn`` method)."""
    fn = getattr(activation, "fn", None)
    if callable(fn) and not isinstance(activation, type):
        return fn
    if callable(activation) and not isinstance(activation, type):
        return activation
    raise TypeError(
        f"{argname} must be an elementwise function such as jnp.tanh or an nnlab activation "
        f"layer such as nl.Relu(), got {activation!r}."
    )


def check_positive_int(value, argname: str, minimum: int = 1) -> int:
    """``value`` as a Python int ``>= minimum`` (NumPy integers accepted; bools and floats not)."""
    return _checks.integer(value, argname, minimum=minimum)


def as_float(value, argname: str, *, positive: bool = False) -> jax.Array:
    """A floating JAX array from ``value``; concrete values must be finite and ``>= 0``
    (``> 0`` with ``positive``). NaN fails; traced values are not checked."""
    try:
        arr = jnp.asarray(value)
    except TypeError as err:
        raise TypeError(
            f"{argname} must be a number or array, got {type(value).__name__}."
        ) from err
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        if not (jnp.issubdtype(arr.dtype, jnp.integer) or arr.dtype == jnp.bool_):
            raise TypeError(f"{argname} must be real, got dtype {arr.dtype}.")
        arr = arr.astype(jnp.result_type(float))
    if not isinstance(arr, jax.core.Tracer):
        host = np.asarray(arr)
        ok = np.isfinite(host) & ((host > 0) if positive else (host >= 0))
        if not bool(np.all(ok)):
            what = "positive" if positive else "non-negative"
            raise ValueError(
                f"{argname} must be finite and {what}, got {value!r}; variances, kernels and "
                "widths cannot be negative or NaN."
            )
    return arr


def as_float_signed(value, argname: str) -> jax.Array:
    """A floating JAX array from ``value``, any sign; concrete values must be finite."""
    try:
        arr = jnp.asarray(value)
    except TypeError as err:
        raise TypeError(
            f"{argname} must be a number or array, got {type(value).__name__}."
        ) from err
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        if not (jnp.issubdtype(arr.dtype, jnp.integer) or arr.dtype == jnp.bool_):
            raise TypeError(f"{argname} must be real, got dtype {arr.dtype}.")
        arr = arr.astype(jnp.result_type(float))
    if not isinstance(arr, jax.core.Tracer) and not bool(np.all(np.isfinite(np.asarray(arr)))):
        raise ValueError(f"{argname} must be finite, got {value!r}.")
    return arr
