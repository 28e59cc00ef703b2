"""Deterministic descriptions ("fingerprints") of a training configuration.

A sweep stores, next to each finished point, a fingerprint of everything that determines
its result, so that a later call with a *different* configuration cannot silently reuse it.
The fingerprint is a dict ``component -> {"digest": sha256, "summary": short text}``;
two configurations match when every digest matches.

:func:`describe` turns an arbitrary Python object into a canonical string without memory
addresses, so it is the same in every process:

* numbers, strings, ``None``: their ``repr`` (floats exactly);
* arrays (NumPy or JAX, PRNG keys through their key data): shape, dtype and a sha256 of the
  bytes;
* containers, NamedTuples, dataclasses and objects with a ``__dict__``: their type and
  contents, recursively;
* functions: module and qualified name, defaults, the contents of their closure cells
  (this is where ``optax.sgd(0.1)`` keeps its ``0.1``), and for functions defined outside
  the libraries (jax, optax, flax, numpy, nnlab, ...) their bytecode, constants and the
  globals they name. Library functions are identified by name only, so upgrading a library
  does not invalidate a sweep; their closures are still read.

A description is a best effort: a value hidden where it cannot be read (a C extension's
state, a global of a library function) is not seen. That is why sweeps also fingerprint
what the configuration *does* where it is cheap (parameter tree structure and shapes, output
shape, the data's bytes).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import types
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

_LIBRARIES = (
    "jax",
    "jaxlib",
    "numpy",
    "optax",
    "flax",
    "chex",
    "scipy",
    "nnlab",
    "builtins",
    "functools",
    "operator",
    "math",
    "typing",
    "equinox",
)
_MAX_DEPTH = 24


def _is_library(module: str | None) -> bool:
    if not module:
        return True
    return module.split(".")[0] in _LIBRARIES


def array_digest(a: Any) -> str:
    """``shape dtype sha256`` of an array's bytes (PRNG keys through their key data)."""
    if isinstance(a, jax.Array) and jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
        impl = str(jax.random.key_impl(a))
        a = jax.random.key_data(a)
        prefix = f"key<{impl}>"
    else:
        prefix = ""
    try:
        host = np.ascontiguousarray(np.asarray(a))
    except Exception:  # a non-addressable multi-host array: shape and dtype only
        return f"{prefix}array{tuple(a.shape)}{a.dtype}:unreadable"
    h = hashlib.sha256(host.tobytes()).hexdigest()[:32]
    return f"{prefix}array{host.shape}{host.dtype}:{h}"


def _code(code: types.CodeType, seen, depth) -> str:
    consts = []
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            consts.append(_code(c, seen, depth + 1))
        else:
            consts.append(_describe(c, seen, depth + 1))
    body = hashlib.sha256(code.co_code).hexdigest()[:16]
    name = getattr(code, "co_qualname", code.co_name)
    return f"code({name},{body},[{','.join(consts)}],{code.co_names})"


def _function(fn: types.FunctionType, seen, depth) -> str:
    module = getattr(fn, "__module__", None)
    parts = [f"fn {module}.{fn.__qualname__}"]
    if fn.__defaults__:
        parts.append("defaults=" + _describe(fn.__defaults__, seen, depth + 1))
    if fn.__kwdefaults__:
        parts.append("kwdefaults=" + _describe(fn.__kwdefaults__, seen, depth + 1))
    cells = []
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True):
        try:
            value = cell.cell_contents
        except ValueError:  # empty cell
            value = "<empty>"
        cells.append(f"{name}=" + _describe(value, seen, depth + 1))
    if cells:
        parts.append("closure{" + ",".join(cells) + "}")
    if not _is_library(module):
        parts.append(_code(fn.__code__, seen, depth + 1))
        names = []
        for name in _global_names(fn.__code__):
            if name in fn.__globals__:
                names.append(f"{name}=" + _describe(fn.__globals__[name], seen, depth + 1))
        if names:
            parts.append("globals{" + ",".join(names) + "}")
    return "(" + " ".join(parts) + ")"


def _global_names(code: types.CodeType) -> list[str]:
    names = list(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names += _global_names(c)
    return sorted(set(names))


def _describe(obj: Any, seen: dict, depth: int) -> str:
    if depth > _MAX_DEPTH:
        return f"<deep {type(obj).__qualname__}>"
    if obj is None or isinstance(obj, bool | int | str | bytes):
        return repr(obj)
    if isinstance(obj, float):
        return repr(obj) if math.isfinite(obj) else f"float({obj!r})"
    if isinstance(obj, complex | np.generic):
        return f"{type(obj).__name__}({obj!r})"
    if isinstance(obj, types.ModuleType):
        return f"module {obj.__name__}"
    if isinstance(obj, type):
        return f"type {obj.__module__}.{obj.__qualname__}"
    if isinstance(obj, np.ndarray | jax.Array):
        if isinstance(obj, jax.core.Tracer):
            return f"tracer{obj.shape}{obj.dtype}"
        return array_digest(obj)
    if isinstance(obj, jax.ShapeDtypeStruct):
        return f"struct{obj.shape}{obj.dtype}"
    ident = id(obj)
    if ident in seen:  # on the current path (a cycle) or already described
        done = seen[ident][1]
        return "<cycle>" if done is None else done
    seen[ident] = [obj, None]  # holding obj keeps its id from being reused meanwhile
    text = _describe_container(obj, seen, depth)
    seen[ident][1] = text
    return text


def _describe_container(obj: Any, seen: dict, depth: int) -> str:
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # NamedTuple
        items = ",".join(f"{f}={_describe(getattr(obj, f), seen, depth + 1)}" for f in obj._fields)
        return f"{type(obj).__qualname__}({items})"
    if isinstance(obj, list | tuple):
        return f"{type(obj).__name__}[" + ",".join(_describe(v, seen, depth + 1) for v in obj) + "]"
    if isinstance(obj, set | frozenset):
        return "set{" + ",".join(sorted(_describe(v, seen, depth + 1) for v in obj)) + "}"
    if isinstance(obj, dict):
        items = sorted(
            (_describe(k, seen, depth + 1), _describe(v, seen, depth + 1)) for k, v in obj.items()
        )
        return "{" + ",".join(f"{k}:{v}" for k, v in items) + "}"
    if isinstance(obj, functools.partial):
        return (
            f"partial({_describe(obj.func, seen, depth + 1)},"
            f"{_describe(obj.args, seen, depth + 1)},{_describe(obj.keywords, seen, depth + 1)})"
        )
    if isinstance(obj, types.MethodType):
        return f"method {obj.__func__.__qualname__} of {_describe(obj.__self__, seen, depth + 1)}"
    if isinstance(obj, types.FunctionType):
        return _function(obj, seen, depth)
    if isinstance(obj, types.BuiltinFunctionType | types.BuiltinMethodType):
        return f"builtin {getattr(obj, '__module__', '')}.{obj.__qualname__}"
    wrapped = getattr(obj, "__wrapped__", None)
    if wrapped is not None and callable(obj):  # jax.jit, functools.wraps
        return f"wrapped {type(obj).__qualname__}({_describe(wrapped, seen, depth + 1)})"
    name = f"{type(obj).__module__}.{type(obj).__qualname__}"
    if dataclasses.is_dataclass(obj):
        fields = ",".join(
            f"{f.name}={_describe(getattr(obj, f.name, None), seen, depth + 1)}"
            for f in dataclasses.fields(obj)
        )
        return f"{name}({fields})"
    state = getattr(obj, "__dict__", None)
    if isinstance(state, dict):
        return f"{name}{_describe(state, seen, depth + 1)}"
    slots = getattr(type(obj), "__slots__", None)
    if slots:
        slots = (slots,) if isinstance(slots, str) else slots
        vals = ",".join(f"{s}={_describe(getattr(obj, s, None), seen, depth + 1)}" for s in slots)
        return f"{name}({vals})"
    text = repr(obj)
    return name if " at 0x" in text else f"{name}:{text}"


def describe(obj: Any) -> str:
    """A canonical, address-free string for ``obj`` (see the module docstring)."""
    return _describe(obj, {}, 0)


def digest(obj: Any) -> str:
    """sha256 (hex, 32 characters) of :func:`describe`."""
    return hashlib.sha256(describe(obj).encode()).hexdigest()[:32]


def find_nan(obj: Any, name: str) -> None:
    """Raise ``ValueError`` naming ``name`` if a NaN float is held anywhere in ``obj``.

    Used on optimizers: ``optax.sgd(float('nan'))`` keeps the NaN in a closure cell, where
    the walk of :func:`describe` reaches it.
    """
    text = describe(obj)
    if "float(nan)" in text or "float64(nan)" in text or "float32(nan)" in text:
        raise ValueError(
            f"{name} holds a NaN setting (e.g. a NaN learning rate such as "
            "optax.sgd(float('nan'))); pass finite hyperparameters."
        )


def component(value: Any, summary: str | None = None) -> dict:
    """One fingerprint entry: the digest of ``value`` and a short readable summary."""
    text = describe(value)
    if summary is None:
        summary = text if len(text) <= 120 else text[:117] + "..."
    return {"digest": hashlib.sha256(text.encode()).hexdigest()[:32], "summary": summary}


def to_json(fingerprint: dict) -> str:
    return json.dumps(fingerprint, sort_keys=True)


def from_json(text: str) -> dict:
    return json.loads(text)


def differences(stored: dict, current: dict) -> list[str]:
    """Human-readable lines naming the components whose digests differ."""
    lines = []
    for key in sorted(set(stored) | set(current)):
        a, b = stored.get(key), current.get(key)
        if a is None or b is None:
            lines.append(
                f"{key}: {'missing' if a is None else a['summary']} on disk, "
                f"{'missing' if b is None else b['summary']} now"
            )
        elif a["digest"] != b["digest"]:
            lines.append(f"{key}: {a['summary']} on disk, {b['summary']} now")
    return lines
