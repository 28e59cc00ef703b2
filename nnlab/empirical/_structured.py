"""Structured-derivative eNTK: never form the per-example weight gradient of a Dense layer.

For a weight ``W`` entering the network only through ``Y = X W_eff`` with
``W_eff = c * W`` (up to transposes, reshapes and dtype casts), the per-example
gradient of output ``o`` is ``dW = c * X_n^T G_{n,o}`` with ``G = d f_o / d Y``.
Its contribution to the eNTK is therefore

    Theta_W[n, m, o, o'] = c^2 sum_{t,s} (X_n X_m^T)[t, s] (G_{n,o} G_{m,o'}^T)[t, s],

which costs ``N1 N2 T^2 (d_in + d_out)`` instead of ``N1 N2 d_in d_out``
(``T`` = rows of ``X`` per example, 1 for an MLP). This is the structured
derivatives idea of Novak, Sohl-Dickstein & Schoenholz (2022, arXiv:2206.08720),
implemented here on public JAX APIs: the function is traced to a jaxpr with
``jax.make_jaxpr``, ``dot_general`` equations whose weight operand comes from a
parameter leaf are found, and ``G`` is read off as the cotangent of a zero
"probe" added to their outputs in a re-evaluation of the jaxpr. Every other
leaf (biases, convolution kernels, weights used more than once or in any other
way) falls back to the per-example Jacobian restricted to those leaves, which is
computed in the same backward pass.

Requires batch independence: example ``i``'s output depends only on example ``i``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jcore

from ._contract import contract_jacobians, output_subscripts

_PASS_THROUGH = {"convert_element_type", "reshape", "transpose", "copy", "copy_p"}


@dataclasses.dataclass(frozen=True)
class DenseUse:
    """A ``dot_general`` whose weight operand is ``scale * leaf`` (up to isometries)."""

    eqn: int  # index of the equation in the jaxpr
    leaf: int  # index of the parameter leaf
    scale: float  # c in W_eff = c * W
    x_pos: int  # 0 if the activation is the lhs operand, 1 if it is the rhs
    x_contract: tuple[int, ...]  # contracting dims of the activation operand
    t: int  # rows of the activation per example (product of its free dims)
    d_in: int
    d_out: int


@dataclasses.dataclass(frozen=True)
class Plan:
    """Result of analysing the per-example jaxpr of ``apply_fn``."""

    closed: Any  # ClosedJaxpr of (leaves..., x) -> out, traced for one example
    dense: tuple[DenseUse, ...]
    fallback: tuple[int, ...]  # leaf indices handled by the Jacobian path
    eligible: tuple[DenseUse, ...]  # all factorisable uses, before the cost model


def _scalar_constant(v, constvals) -> float | None:
    """The value of ``v`` if it is a scalar constant (literal or constvar), else None."""
    if isinstance(v, jcore.Literal):
        val = v.val
    elif v in constvals:
        val = constvals[v]
    else:
        return None
    try:
        arr = np.asarray(val)
    except Exception:  # a tracer closed over by apply_fn: not a constant
        return None
    if arr.shape != () or not np.issubdtype(arr.dtype, np.number):
        return None
    return float(arr)


def _fold_scalar(eqn, constvals) -> None:
    """Evaluate a scalar equation whose inputs are all constants (e.g. ``1.5 / sqrt(5)``)."""
    if len(eqn.outvars) != 1 or eqn.outvars[0].aval.shape != () or eqn.params.get("jaxpr"):
        return
    vals = []
    for v in eqn.invars:
        c = _scalar_constant(v, constvals)
        if c is None:
            return
        vals.append(np.asarray(c, dtype=v.aval.dtype))
    try:
        out = eqn.primitive.bind(*vals, **eqn.params)
        constvals[eqn.outvars[0]] = float(np.asarray(out))
    except Exception:  # not foldable eagerly: leave it unknown
        return


def make_plan(apply_fn, params, x_shape, x_dtype) -> Plan:
    """Trace ``apply_fn`` on one example and find the Dense uses of each parameter leaf."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    n_leaves = len(leaves)

    def flat_fn(leaves, x):
        return apply_fn(jax.tree_util.tree_unflatten(treedef, leaves), x)

    specs = [jax.ShapeDtypeStruct(jnp.shape(l), jnp.result_type(l)) for l in leaves]
    closed = jax.make_jaxpr(flat_fn)(specs, jax.ShapeDtypeStruct((1, *x_shape), x_dtype))
    jaxpr = closed.jaxpr
    constvals = dict(zip(jaxpr.constvars, closed.consts))

    uses: dict[Any, int] = {}
    for eqn in jaxpr.eqns:
        for v in eqn.invars:
            if not isinstance(v, jcore.Literal):
                uses[v] = uses.get(v, 0) + 1
    for v in jaxpr.outvars:
        if not isinstance(v, jcore.Literal):
            uses[v] = uses.get(v, 0) + 1

    chain: dict[Any, tuple[int, float]] = {
        v: (i, 1.0) for i, v in enumerate(jaxpr.invars[:n_leaves])
    }
    chain_vars: dict[int, list[Any]] = {i: [v] for i, v in enumerate(jaxpr.invars[:n_leaves])}
    bad: set[int] = set()
    found: dict[int, list[DenseUse]] = {}

    for k, eqn in enumerate(jaxpr.eqns):
        name = eqn.primitive.name
        ins = eqn.invars
        in_chain = [j for j, v in enumerate(ins) if not isinstance(v, jcore.Literal) and v in chain]
        if not in_chain:
            _fold_scalar(eqn, constvals)
            continue
        if len(in_chain) == 1 and len(eqn.outvars) == 1:
            j = in_chain[0]
            leaf, scale = chain[ins[j]]
            other = ins[1 - j] if len(ins) == 2 else None
            new = None
            if name in _PASS_THROUGH and len(ins) == 1:
                new = scale
            elif name == "neg":
                new = -scale
            elif name == "mul" and len(ins) == 2:
                c = _scalar_constant(other, constvals)
                new = None if c is None else scale * c
            elif name == "div" and len(ins) == 2 and j == 0:
                c = _scalar_constant(other, constvals)
                new = None if c is None or c == 0 else scale / c
            if new is not None:
                out = eqn.outvars[0]
                chain[out] = (leaf, new)
                chain_vars[leaf].append(out)
                continue
            if name == "dot_general":
                use = _dense_use(k, eqn, j, leaf, scale)
                if use is not None:
                    found.setdefault(leaf, []).append(use)
                    continue
        for j in in_chain:
            bad.add(chain[ins[j]][0])

    dense, fallback, eligible = [], [], []
    for i in range(n_leaves):
        ok = (
            i not in bad
            and len(found.get(i, [])) == 1
            and all(uses.get(v, 0) == 1 for v in chain_vars[i])
            and jnp.issubdtype(jnp.result_type(leaves[i]), jnp.floating)
        )
        if ok:
            u = found[i][0]
            eligible.append(u)
            # cost model per leaf: structured is N1 N2 T^2 (d_in + d_out), Jacobian N1 N2 d_in d_out
            ok = u.t * u.t * (u.d_in + u.d_out) <= u.d_in * u.d_out
        if ok:
            dense.append(found[i][0])
        else:
            fallback.append(i)
    return Plan(closed, tuple(dense), tuple(fallback), tuple(eligible))


def _dense_use(k, eqn, w_pos, leaf, scale) -> DenseUse | None:
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    if lb or rb:
        return None
    x_pos = 1 - w_pos
    x_aval = eqn.invars[x_pos].aval
    w_aval = eqn.invars[w_pos].aval
    x_contract = tuple(lc if x_pos == 0 else rc)
    w_contract = tuple(rc if x_pos == 0 else lc)
    t = math.prod(d for i, d in enumerate(x_aval.shape) if i not in x_contract)
    d_in = math.prod(x_aval.shape[i] for i in x_contract)
    d_out = math.prod(d for i, d in enumerate(w_aval.shape) if i not in w_contract)
    return DenseUse(k, leaf, scale, x_pos, x_contract, t, d_in, d_out)


def _evaluate(closed, leaves, x, probes: dict[int, Any], record: dict[int, int]):
    """Evaluate the jaxpr, adding ``probes[k]`` to equation ``k``'s output and recording
    operand ``record[k]`` of equation ``k``."""
    jaxpr = closed.jaxpr
    env: dict[Any, Any] = {}

    def read(v):
        return v.val if isinstance(v, jcore.Literal) else env[v]

    for v, val in zip(jaxpr.constvars, closed.consts):
        env[v] = val
    for v, val in zip(jaxpr.invars, [*leaves, x]):
        env[v] = val
    recorded = {}
    for k, eqn in enumerate(jaxpr.eqns):
        invals = [read(v) for v in eqn.invars]
        bind_params = eqn.primitive.get_bind_params(eqn.params)
        subfuns = ()
        if isinstance(bind_params, tuple):  # older JAX: (subfuns, params)
            subfuns, bind_params = bind_params
        outs = eqn.primitive.bind(*subfuns, *invals, **bind_params)
        if not eqn.primitive.multiple_results:
            outs = [outs]
        if k in probes:
            outs = [outs[0] + probes[k]]
        if k in record:
            recorded[k] = invals[record[k]]
        for v, val in zip(eqn.outvars, outs):
            if not isinstance(v, jcore.DropVar):
                env[v] = val
    return read(jaxpr.outvars[0]), recorded


def features(plan: Plan, params, x, out_shape):
    """Per-example activations ``X``, cotangents ``G`` and fallback Jacobians for a batch.

    Returns ``(xs, gs, jacs)``: ``xs[u]`` is ``(N, T, d_in)``, ``gs[u]`` is
    ``(N, *out, T, d_out)`` for each Dense use ``u``; ``jacs[i]`` is ``(N, *out, *leaf_i)``.
    """
    leaves = jax.tree_util.tree_leaves(params)
    closed = plan.closed
    eqns = closed.jaxpr.eqns
    o = math.prod(out_shape)

    def one(xn):
        xn = xn[None]
        probes0 = {
            u.eqn: jnp.zeros(eqns[u.eqn].outvars[0].aval.shape, eqns[u.eqn].outvars[0].aval.dtype)
            for u in plan.dense
        }
        fb0 = {i: leaves[i] for i in plan.fallback}
        record = {u.eqn: u.x_pos for u in plan.dense}

        def fwd(probes, fb):
            full = [fb.get(i, l) for i, l in enumerate(leaves)]
            out, rec = _evaluate(closed, full, xn, probes, record)
            return out[0], rec

        out, vjp_fn, rec = jax.vjp(fwd, probes0, fb0, has_aux=True)
        basis = jnp.eye(o, dtype=out.dtype).reshape((o, *out_shape))
        g_probes, g_fb = jax.vmap(vjp_fn)(basis)
        return rec, g_probes, g_fb

    rec, g_probes, g_fb = jax.vmap(one)(x)
    n = x.shape[0]
    xs, gs = [], []
    for u in plan.dense:
        xa = rec[u.eqn]  # (N, *x_shape) of the activation operand
        free = [i for i in range(xa.ndim - 1) if i not in u.x_contract]
        xa = jnp.transpose(xa, (0, *[1 + i for i in free], *[1 + i for i in u.x_contract]))
        xs.append(xa.reshape(n, u.t, u.d_in))
        g = g_probes[u.eqn]  # (N, O, *y_shape); y dims = lhs free then rhs free
        y_nd = g.ndim - 2
        n_x_free = len(free)
        n_w_free = y_nd - n_x_free
        if u.x_pos == 1:  # y = (W free..., X free...): bring X free dims first
            perm = (*range(2 + n_w_free, 2 + y_nd), *range(2, 2 + n_w_free))
            g = jnp.transpose(g, (0, 1, *perm))
        gs.append(g.reshape((n, *out_shape, u.t, u.d_out)))
    jacs = {i: g_fb[i].reshape((n, *out_shape, *jnp.shape(leaves[i]))) for i in plan.fallback}
    return xs, gs, jacs


def kernel_from_features(plan: Plan, f1, f2, out_ndim, trace, diag):
    """Sum the Dense-use and fallback contributions to the eNTK block."""
    xs1, gs1, j1 = f1
    xs2, gs2, j2 = f2
    s1, s2, res, _ = output_subscripts(out_ndim, trace, diag)
    total = None
    for u, xa, xb, ga, gb in zip(plan.dense, xs1, xs2, gs1, gs2):
        if u.t == 1:
            xx = xa[:, 0] @ xb[:, 0].T  # (N1, N2)
            gg = jnp.einsum(f"n{s1}j,m{s2}j->nm{res}", ga[..., 0, :], gb[..., 0, :])
            xx = xx.reshape(xx.shape + (1,) * (gg.ndim - 2))
            term = (u.scale * u.scale) * (xx * gg)
        else:
            xx = jnp.einsum("nti,msi->nmts", xa, xb)
            gg = jnp.einsum(f"n{s1}tj,m{s2}sj->nm{res}ts", ga, gb)
            term = (u.scale * u.scale) * jnp.einsum(f"nm{res}ts,nmts->nm{res}", gg, xx)
        total = term if total is None else total + term
    for i in plan.fallback:
        term = contract_jacobians(j1[i], j2[i], out_ndim, trace, diag)
        total = term if total is None else total + term
    return total
