"""Reading an activation argument: a JAX function or an nnlab activation layer."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp


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
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{argname} must be an int >= {minimum}, got {value!r}.")
    return value


def as_float(value, argname: str) -> jax.Array:
    """A floating JAX array from ``value`` (checks concrete values to be finite and >= 0)."""
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
        if not bool(jnp.all(jnp.isfinite(arr))) or bool(jnp.any(arr < 0)):
            raise ValueError(f"{argname} must be finite and non-negative, got {value!r}.")
    return arr
