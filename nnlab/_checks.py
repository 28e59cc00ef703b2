"""Argument checks shared by every public entry point.

One place, one exception type per kind of mistake:

* ``TypeError``: the argument is of the wrong kind (a string where a number goes, a list
  where an array goes, a non-callable function, a raw integer where a PRNG key goes).
* ``ValueError``: the kind is right but the value is not (negative, zero, NaN, inf, the
  wrong shape, an unknown option).

Every message names the argument, shows the value received and says what is accepted.
NaN never passes a check: comparisons are written so that NaN fails them.

Checks on traced values (inside ``jax.jit``/``jax.vmap``) cannot read the value and let it
through; they still check its type and shape.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "all_finite",
    "boolean",
    "choice",
    "finite_array",
    "function",
    "integer",
    "is_traced",
    "prng_key",
    "real",
    "real_array",
]


def is_traced(value: Any) -> bool:
    """Whether ``value`` is (or holds) a JAX tracer, whose value cannot be read."""
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(value))


def _fix(fix: str) -> str:
    return f" {fix}" if fix else ""


def boolean(value: Any, name: str, *, fix: str = "") -> bool:
    """``value`` as a Python bool; only ``True``/``False`` (and NumPy bools) are accepted."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be a bool (True or False), got {value!r}.{_fix(fix)}")
    return bool(value)


def integer(value: Any, name: str, *, minimum: int | None = 1, fix: str = "") -> int:
    """``value`` as a Python int ``>= minimum``; numpy integers are accepted, bools are not."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral | np.integer):
        if (
            isinstance(value, jax.Array | np.ndarray)
            and np.ndim(value) == 0
            and not is_traced(value)
        ):
            if jnp.issubdtype(value.dtype, jnp.integer):
                value = int(value)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral | np.integer):
            raise TypeError(
                f"{name} must be an int, got {value!r} ({type(value).__name__}).{_fix(fix)}"
            )
    value = int(value)
    if minimum is not None and value < minimum:
        what = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"{name} must be {what}, got {value}.{_fix(fix)}")
    return value


def real(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    positive: bool = False,
    allow_inf: bool = False,
    fix: str = "",
) -> Any:
    """Check a real scalar: a number, not NaN, finite (unless ``allow_inf``), in range.

    ``positive=True`` requires ``value > 0``; ``minimum``/``maximum`` are inclusive bounds.
    Returns the value unchanged (a traced scalar passes with its shape checked only).
    """
    if isinstance(value, bool) or isinstance(value, str | bytes):
        raise TypeError(f"{name} must be a real number, got {value!r}.{_fix(fix)}")
    if isinstance(value, jax.Array | np.ndarray | np.generic):
        if np.ndim(value) != 0:
            raise ValueError(
                f"{name} must be a scalar, got an array of shape {np.shape(value)}.{_fix(fix)}"
            )
        if not jnp.issubdtype(value.dtype, jnp.number) or jnp.issubdtype(
            value.dtype, jnp.complexfloating
        ):
            raise TypeError(f"{name} must be a real number, got dtype {value.dtype}.{_fix(fix)}")
        if is_traced(value):
            return value
        number = float(value)
    elif isinstance(value, numbers.Real):
        number = float(value)
    else:
        raise TypeError(
            f"{name} must be a real number, got {value!r} ({type(value).__name__}).{_fix(fix)}"
        )
    if math.isnan(number):
        raise ValueError(f"{name} must be a number, got NaN.{_fix(fix)}")
    if math.isinf(number) and not allow_inf:
        raise ValueError(f"{name} must be finite, got {number}.{_fix(fix)}")
    if positive and not number > 0:
        raise ValueError(f"{name} must be > 0, got {number}.{_fix(fix)}")
    if minimum is not None and not number >= minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {number}.{_fix(fix)}")
    if maximum is not None and not number <= maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {number}.{_fix(fix)}")
    return value


def finite_array(
    x: Any,
    name: str,
    *,
    ndim: int | Iterable[int] | None = None,
    shape_hint: str = "",
    floating: bool = True,
    min_examples: int = 1,
) -> jax.Array:
    """``x`` as a JAX array; checks kind, rank, a non-empty leading axis and NaN/inf.

    ``ndim`` is the allowed rank(s); ``shape_hint`` describes the expected shape in the
    message (for example ``"(N, features)"``). Lists, tuples and other non-arrays are a
    ``TypeError``: pass ``jnp.asarray(...)`` explicitly.
    """
    hint = f" of shape {shape_hint}" if shape_hint else ""
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise TypeError(
            f"{name} must be an array{hint}, got {type(x).__name__}; "
            "convert it with jnp.asarray first."
        )
    if not isinstance(x, jax.Array):
        x = jnp.asarray(x)
    if floating and not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(
            f"{name} must have a floating dtype, got {x.dtype}; cast it with "
            f"{name}.astype(jnp.float32) (or float64)."
        )
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in allowed:
            want = f"shape {shape_hint}" if shape_hint else f"rank in {allowed}"
            raise ValueError(f"{name} must have {want}, got shape {x.shape}.")
    if min_examples and x.ndim >= 1 and x.shape[0] < min_examples:
        raise ValueError(
            f"{name} must have at least {min_examples} example(s) along its first axis, "
            f"got shape {x.shape}."
        )
    if not all_finite(x):
        raise ValueError(f"{name} contains NaN or inf; clean the data first.")
    return x


def all_finite(x: Any) -> bool:
    """False only if ``x`` is a concrete array holding NaN or inf (traced values pass).

    Evaluated eagerly even while an outer function is being traced (a concrete constant
    closed over by ``jax.jit`` or ``jax.grad`` is still checked).
    """
    if is_traced(x) or not jnp.issubdtype(jnp.result_type(x), jnp.inexact):
        return True
    with jax.ensure_compile_time_eval():
        return bool(jnp.all(jnp.isfinite(x)))


def real_array(x: Any, name: str, *, sign: str | None = None) -> jax.Array:
    """``x`` (an array or array-like) as a floating JAX array of real numbers.

    Integers and bools become the default float dtype (float64 under x64); strings, objects
    and complex numbers are a ``TypeError``. Concrete values must be finite, and with
    ``sign='nonnegative'`` (or ``'positive'``) ``>= 0`` (``> 0``); NaN fails every check.
    Traced values pass with their dtype checked only.
    """
    try:
        arr = jnp.asarray(x)
    except TypeError as err:
        raise TypeError(
            f"{name} must be an array of real numbers, got {type(x).__name__}; convert it with "
            "jnp.asarray first."
        ) from err
    if jnp.issubdtype(arr.dtype, jnp.complexfloating) or not (
        jnp.issubdtype(arr.dtype, jnp.number) or arr.dtype == jnp.bool_
    ):
        raise TypeError(
            f"{name} must hold real numbers, got dtype {arr.dtype}; take the real part or cast "
            f"it with {name}.astype(jnp.float32) (or float64)."
        )
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.result_type(float))
    if is_traced(arr):
        return arr
    host = np.asarray(arr)
    finite = np.isfinite(host)
    if not bool(np.all(finite)):
        bad = int(np.sum(~finite))
        raise ValueError(
            f"{name} contains NaN or inf ({bad} of its {host.size} entries); clean the data first."
        )
    if sign is not None:
        choice(sign, "sign", ("nonnegative", "positive"))
        ok = host > 0 if sign == "positive" else host >= 0
        if not bool(np.all(ok)):
            what = "positive" if sign == "positive" else "non-negative"
            raise ValueError(f"{name} must be {what}, got {x!r}.")
    return arr


def prng_key(key: Any, name: str = "key") -> jax.Array:
    """Check a PRNG key: ``jax.random.key(seed)`` or a legacy ``jax.random.PRNGKey(seed)``."""
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.ndim != 0:
            raise ValueError(
                f"{name} must be a single PRNG key, got a batch of shape {key.shape}; "
                "split it outside and vmap over the keys instead."
            )
        return key
    if isinstance(key, jax.Array | np.ndarray) and key.dtype == np.uint32 and key.shape == (2,):
        return key
    raise TypeError(
        f"{name} must be a PRNG key such as jax.random.key(0), got {key!r} ({type(key).__name__})."
    )


def function(fn: Any, name: str, signature: str = "") -> Callable:
    """Check that ``fn`` is callable; ``signature`` (e.g. ``"apply_fn(params, x)"``) hints."""
    if not callable(fn):
        hint = f" {signature}" if signature else ""
        raise TypeError(f"{name} must be a callable{hint}, got {type(fn).__name__}: {fn!r}.")
    return fn


def choice(value: Any, name: str, options: Iterable[Any]) -> Any:
    """Check that ``value`` is one of ``options``."""
    options = tuple(options)
    try:
        ok = value in options
    except TypeError:  # unhashable or incomparable
        ok = False
    if not ok:
        listed = ", ".join(repr(o) for o in options)
        raise ValueError(f"{name} must be one of {listed}; got {value!r}.")
    return value
