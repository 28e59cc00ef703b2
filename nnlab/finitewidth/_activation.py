"""Reading an activation argument: a JAX function or an nnlab activation layer."""

from __future__ import annotations

from collections.abc import Callable

import jax

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
    return _checks.real_array(value, argname, sign="positive" if positive else "nonnegative")


def as_float_signed(value, argname: str) -> jax.Array:
    """A floating JAX array from ``value``, any sign; concrete values must be finite."""
    return _checks.real_array(value, argname)
