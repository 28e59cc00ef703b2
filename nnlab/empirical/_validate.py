"""Argument checks for the empirical kernels and the Taylor models.

Built on :mod:`nnlab._checks`. Three checks are specific to functions of parameters:

* :func:`float_params`: every leaf of ``params`` must be a float array, because every leaf is
  differentiated. A Flax NNX ``nnx.split(model)`` state also holds ``RngKey``/``RngCount``
  leaves (a PRNG key and a ``uint32`` counter); the message says how to split them off.
* :func:`analyze`: trace ``apply_fn`` once with :func:`jax.make_jaxpr` on abstract values
  (shapes and dtypes only, so it works on tracers under ``jit``/``vmap``) to read the output
  shape and to find out whether the output *depends on* any leaf of ``params`` at all, by a
  backward liveness pass over the jaxpr (descending into nested ``jit``/``custom_jvp``/
  ``custom_vjp``/``checkpoint`` calls; any other sub-jaxpr, e.g. ``scan``, ``cond``,
  ``while``, conservatively counts its operands as used). A function that ignores its
  ``params`` argument, such as the Flax NNX closure ``lambda p, x: model(x)``, has an
  identically zero NTK; it is refused at trace time with a message naming the cause.
* :func:`check_nonzero`: when the kernel is concrete (not traced), an all-zero kernel from
  non-empty ``params`` is refused too (params that are used but do not move the output:
  ``stop_gradient``, multiplication by zero, ...). Under ``jit`` this value check cannot run;
  the structural check above still does.
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp
from jax.extend import core as jcore

from nnlab import _checks

NNX_FIX = (
    "for Flax NNX use `graphdef, params, rest = nnx.split(model, nnx.Param, ...)` and "
    "`apply_fn = lambda p, x: nnx.merge(graphdef, p, rest)(x)`; for Flax linen pass "
    "`model.apply` with `variables = model.init(key, x)`"
)

# call-like primitives whose sub-jaxpr maps operands and results one to one
_CALLS = {
    "jit",
    "pjit",
    "closed_call",
    "core_call",
    "custom_jvp_call",
    "custom_vjp_call",
    "custom_vjp_call_jaxpr",
    "checkpoint",
    "remat",
}
_SUBJAXPR_KEYS = ("jaxpr", "call_jaxpr", "fun_jaxpr")


def function(fn: Any, name: str = "apply_fn") -> Any:
    """``fn`` must be callable as ``fn(params, x)``."""
    return _checks.function(fn, name, "fn(params, x)")


def optional_batch_size(batch_size: Any) -> int | None:
    if batch_size is None:
        return None
    return _checks.integer(batch_size, "batch_size", fix="Pass a positive int or None.")


def input_array(x: Any, name: str, *, batched: bool = True) -> jax.Array:
    """An array without NaN/inf; with ``batched`` it needs a leading batch axis of size >= 1."""
    if batched and hasattr(x, "ndim") and x.ndim < 1:
        raise ValueError(
            f"{name} must have a leading batch axis, got shape {x.shape}; pass {name}[None] "
            "for a single example."
        )
    # integer inputs (token ids for an embedding) are valid, so no floating requirement
    return _checks.finite_array(x, name, floating=False, shape_hint="(N, ...)")


def inputs(x1: Any, x2: Any, name1: str = "x1", name2: str = "x2"):
    """``x1`` (and ``x2`` unless ``None``) as checked arrays with matching example shapes."""
    x1 = input_array(x1, name1)
    if x2 is not None:
        x2 = input_array(x2, name2)
        if x1.shape[1:] != x2.shape[1:]:
            raise ValueError(
                f"{name1} and {name2} must have the same per-example shape, got "
                f"{name1}.shape={x1.shape} and {name2}.shape={x2.shape}"
            )
    return x1, x2


def _is_float_leaf(leaf: Any) -> bool:
    if isinstance(leaf, bool):
        return False
    if isinstance(leaf, float):
        return True
    dtype = getattr(leaf, "dtype", None)
    if dtype is None:
        return False
    try:
        return bool(jnp.issubdtype(dtype, jnp.floating))
    except TypeError:
        return False


def _describe(leaf: Any) -> str:
    dtype = getattr(leaf, "dtype", None)
    return str(dtype) if dtype is not None else type(leaf).__name__


def float_params(params: Any, name: str = "params") -> None:
    """Every leaf of ``params`` must be a float array (each leaf is differentiated)."""
    flat, _ = jax.tree_util.tree_flatten_with_path(params)
    bad = [(p, leaf) for p, leaf in flat if not _is_float_leaf(leaf)]
    if not bad:
        return
    listed = ", ".join(
        f"{jax.tree_util.keystr(p) or '<root>'} ({_describe(leaf)})" for p, leaf in bad[:6]
    )
    more = f" and {len(bad) - 6} more" if len(bad) > 6 else ""
    raise TypeError(
        f"{name} has non-float leaves, which cannot be differentiated: {listed}{more}. Pass "
        f"only the float parameters as {name}: for a Flax NNX model use "
        "`graphdef, params, rest = nnx.split(model, nnx.Param, ...)` and "
        "`apply_fn = lambda p, x: nnx.merge(graphdef, p, rest)(x)` (nnx.split(model) alone "
        "also returns the RngKey/RngCount state); otherwise close over the integer leaves "
        "inside apply_fn or cast them to a float dtype."
    )


def has_leaves(params: Any) -> bool:
    return len(jax.tree_util.tree_leaves(params)) > 0


def nonempty_params(params: Any, name: str = "params") -> None:
    if not has_leaves(params):
        raise ValueError(
            f"{name} has no array leaves (got {params!r}); the NTK of a function without "
            f"parameters is zero. Pass the parameter pytree that apply_fn differentiates."
        )


def _sub_jaxpr(eqn):
    if eqn.primitive.name not in _CALLS:
        return None
    for key in _SUBJAXPR_KEYS:
        sub = eqn.params.get(key)
        if sub is None:
            continue
        sub = getattr(sub, "jaxpr", sub)  # ClosedJaxpr -> Jaxpr
        if not isinstance(sub, jcore.Jaxpr):
            return None
        if len(sub.invars) == len(eqn.invars) and len(sub.outvars) == len(eqn.outvars):
            return sub
        return None
    return None


def _live_inputs(jaxpr, live_out) -> list[bool]:
    """Which ``jaxpr.invars`` the live outputs depend on (backward liveness, conservative)."""
    live: set = set()
    for v, keep in zip(jaxpr.outvars, live_out):
        if keep and not isinstance(v, jcore.Literal):
            live.add(v)
    for eqn in reversed(jaxpr.eqns):
        outs = [not isinstance(v, jcore.DropVar) and v in live for v in eqn.outvars]
        if not any(outs):
            continue
        sub = _sub_jaxpr(eqn)
        used = _live_inputs(sub, outs) if sub is not None else [True] * len(eqn.invars)
        for v, u in zip(eqn.invars, used):
            if u and not isinstance(v, jcore.Literal):
                live.add(v)
    return [v in live for v in jaxpr.invars]


def _spec(a: Any):
    if isinstance(a, jax.ShapeDtypeStruct):
        return a
    if isinstance(a, bool | numbers.Number):
        a = jnp.asarray(a)
    return jax.ShapeDtypeStruct(jnp.shape(a), a.dtype)


def analyze(apply_fn, params, x, *, name: str = "apply_fn", require_use: bool = True):
    """Per-example output shape of ``apply_fn(params, x)``; refuses a params-ignoring function.

    Returns ``out`` with ``apply_fn(params, x).shape == (N, *out)``. With ``require_use`` and
    non-empty ``params``, raises ValueError if the output depends on no leaf of ``params``.
    """
    leaves, treedef = jax.tree_util.tree_flatten(params)

    def flat_fn(leaves, x):
        return apply_fn(jax.tree_util.tree_unflatten(treedef, leaves), x)

    closed, out = jax.make_jaxpr(flat_fn, return_shape=True)([_spec(a) for a in leaves], _spec(x))
    if not hasattr(out, "shape"):
        raise TypeError(
            f"{name} must return a single array, got {type(out).__name__}; "
            "wrap it to select one output"
        )
    if len(out.shape) < 1 or out.shape[0] != x.shape[0]:
        raise ValueError(
            f"{name} must map a batch of {x.shape[0]} inputs to outputs of shape "
            f"({x.shape[0]}, ...), got output shape {out.shape}"
        )
    if 0 in out.shape[1:]:
        raise ValueError(f"{name} returned an empty output of shape {out.shape}")
    if require_use and leaves:
        live = _live_inputs(closed.jaxpr, [True] * len(closed.jaxpr.outvars))
        if not any(live[: len(leaves)]):
            raise ValueError(
                f"{name} ignores params: its output depends on none of the "
                f"{len(leaves)} leaves of the params passed (checked on its jaxpr), so "
                "every derivative, and the NTK, is identically zero. This happens when "
                f"{name} closes over a model instead of using its first argument, e.g. "
                f"`lambda p, x: model(x)`. Make {name} use p: {NNX_FIX}."
            )
    return tuple(out.shape[1:])


def check_nonzero(k, params, *, what: str, name: str = "apply_fn", hint: str = "") -> None:
    """Refuse a concrete, identically zero kernel computed from non-empty ``params``."""
    if _checks.is_traced(k) or not has_leaves(params):
        return
    if bool(jnp.any(k != 0)):
        return
    raise ValueError(
        f"The {what} is identically zero: the output of {name} does not move with params "
        f"at these inputs. Likely cause: {name} ignores params (e.g. `lambda p, x: "
        f"model(x)`; {NNX_FIX}). Other causes: jax.lax.stop_gradient on the parameters, "
        f"all-zero weights, activations whose derivative is zero at every input, or a "
        f"batch-coupled apply_fn (e.g. centring over the batch) evaluated one example at a "
        f"time with batch_independent=True{hint}."
    )
