"""The empirical NTK as a matrix-free operator: ``Θ v = J1 (J2^T v)`` by NTK-vector products."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from nnlab._pytree import register_dataclass
from nnlab.kernels._operator import PointsOperator, chunks

from . import _validate
from ._ntk import _ntk, output_shape

#: Default rows of ``x1``/``x2`` per chunk of an NTK-vector product.
DEFAULT_ROWS = 512


@dataclasses.dataclass(frozen=True, repr=False)
class EmpiricalNTKOperator(PointsOperator):
    """The empirical NTK of ``apply_fn`` at ``params`` between ``x1`` and ``x2``, matrix-free.

    Built by :func:`ntk_operator`; see there.
    """

    params: object
    x1: jax.Array
    x2: jax.Array
    apply_fn: object = dataclasses.field(metadata={"static": True})
    outputs: int = dataclasses.field(metadata={"static": True})
    scalar_output: bool = dataclasses.field(metadata={"static": True})
    rows: int = dataclasses.field(metadata={"static": True})
    symmetric: bool = dataclasses.field(default=False, metadata={"static": True})

    @property
    def dtype(self):
        return jnp.result_type(*jax.tree_util.tree_leaves(self.params))

    def _flat_apply(self, params, x):
        return self.apply_fn(params, x).reshape(x.shape[0], self.outputs)

    def _matmat(self, v):
        return _ntk_matmat(self, v)

    def diagonal(self):
        if self.shape[0] != self.shape[1]:
            raise ValueError(f"diagonal() needs a square operator, got shape {self.shape}.")
        return _ntk_diagonal(self)

    def as_matrix(self):
        trace = () if self.scalar_output else (-1,)
        x2 = None if self.symmetric else self.x2
        return _ntk(self.apply_fn, self.params, self.x1, x2, "auto", trace, (), None, True)


register_dataclass(EmpiricalNTKOperator)


@jax.jit
def _ntk_matmat(op: EmpiricalNTKOperator, v):
    o, dtype = op.outputs, op.dtype
    eye = jnp.eye(o, dtype=dtype)
    n2 = op.x2.shape[0]
    xs2 = chunks(op.x2, op.rows)
    # zero cotangents on the padded rows: they add nothing to J2^T v
    vs = jnp.pad(v.astype(dtype), [(0, xs2.shape[0] * op.rows - n2), (0, 0)])
    vs = vs.reshape(xs2.shape[0], op.rows, v.shape[1])

    def pull(acc, chunk):
        # W[c, q] = sum_j v[j, c] * grad f_q(x2_j): one vjp per column c and output q
        xc, vc = chunk
        _, vjp = jax.vjp(lambda p: op._flat_apply(p, xc), op.params)
        cot = vc.T[:, None, :, None] * eye[None, :, None, :]  # (k, o, rows, o)
        w = jax.vmap(jax.vmap(lambda c: vjp(c)[0]))(cot)
        return jax.tree_util.tree_map(jnp.add, acc, w), None

    zeros = jax.tree_util.tree_map(
        lambda p: jnp.zeros((v.shape[1], o, *jnp.shape(p)), dtype), op.params
    )
    w, _ = jax.lax.scan(pull, zeros, (xs2, vs))

    def push(xc):
        # (J1 W[c, q])_q averaged over q: the traced (mean over outputs) NTK times v
        _, jvp = jax.linearize(lambda p: op._flat_apply(p, xc), op.params)
        out = jax.vmap(jax.vmap(jvp))(w)  # (k, o, rows, o)
        return jnp.mean(jnp.diagonal(out, axis1=1, axis2=3), axis=-1).T  # (rows, k)

    out = jax.lax.map(push, chunks(op.x1, op.rows))
    return out.reshape(-1, v.shape[1])[: op.x1.shape[0]]


@jax.jit
def _ntk_diagonal(op: EmpiricalNTKOperator):
    def one(xi):
        jac = jax.jacrev(lambda p: op._flat_apply(p, xi[None])[0])(op.params)
        sq = sum(jnp.sum(j.reshape(op.outputs, -1) ** 2, axis=1) for j in jax.tree.leaves(jac))
        return jnp.mean(sq)

    rows = min(op.rows, op.x1.shape[0])
    return jax.lax.map(jax.vmap(one), chunks(op.x1, rows)).reshape(-1)[: op.x1.shape[0]]


def ntk_operator(apply_fn, params, x1, x2=None, *, batch_size: int | None = None):
    r"""The empirical NTK of ``apply_fn`` at ``params`` as a matrix-free :class:`KernelOperator`.

    .. math:: (\hat\Theta v)_i = \frac{1}{k} \sum_{q=1}^{k}
        \nabla_\theta f_q(x_{1,i}) \cdot \sum_j v_j \nabla_\theta f_q(x_{2,j})

    computed as NTK-vector products: a vjp ``J2^T v`` per output ``q`` and column of ``v``,
    then a jvp ``J1 (J2^T v)`` (never a Jacobian of the batch and never the ``N1 x N2``
    kernel). The kernel is the one of :func:`empirical_ntk` with its default
    ``trace_axes=(-1,)``: the mean over the ``k`` outputs of ``apply_fn(params, x)`` of shape
    ``(N, k)``, or the kernel of the single output when it has shape ``(N,)``. One product with
    a block ``v`` of ``r`` columns costs ``r k`` vjps over ``x2`` and ``r k`` jvps over ``x1``,
    chunked over ``batch_size`` rows.

    Args:
      apply_fn: ``apply_fn(params, x) -> (N,)`` or ``(N, k)``; each example's output must
        depend only on that example (chunks are independent).
      params: parameter pytree (float leaves).
      x1: inputs ``(N1, ...)``.
      x2: inputs ``(N2, ...)``; None means ``x1``.
      batch_size: rows per chunk (default :data:`DEFAULT_ROWS`).

    Example:
      >>> import jax.numpy as jnp
      >>> from nnlab.empirical import empirical_ntk
      >>> f = lambda p, x: jnp.tanh(x @ p["w"]) @ p["v"]
      >>> p = {"w": jnp.ones((3, 4)) / 2, "v": jnp.ones((4, 2))}
      >>> x = jnp.linspace(-1.0, 1.0, 15).reshape(5, 3)
      >>> op = ntk_operator(f, p, x)
      >>> bool(jnp.allclose(op @ jnp.ones(5), empirical_ntk(f, p, x) @ jnp.ones(5), rtol=1e-5))
      True
    """
    _validate.function(apply_fn)
    x1, x2 = _validate.inputs(x1, x2)
    _validate.float_params(params)
    _validate.nonempty_params(params)
    batch_size = _validate.optional_batch_size(batch_size)
    symmetric = x2 is None
    x2 = x1 if symmetric else x2
    out = output_shape(apply_fn, params, x1)
    if len(out) > 1:
        raise ValueError(
            f"ntk_operator needs outputs of shape (N,) or (N, k), but apply_fn gives "
            f"(N, *{out}); reshape them to (N, {math.prod(out)}) inside apply_fn."
        )
    rows = min(batch_size or DEFAULT_ROWS, max(x1.shape[0], x2.shape[0]))
    return EmpiricalNTKOperator(
        params, x1, x2, apply_fn, math.prod(out), len(out) == 0, rows, symmetric
    )
