"""Matrix-free kernel operators: ``K @ v`` block by block, never storing the ``N1 x N2`` kernel.

A :class:`KernelOperator` is a linear map ``v -> K v`` for a kernel matrix ``K`` of shape
``(N1, N2)``. It multiplies vectors ``(N2,)`` and blocks of vectors ``(N2, k)``
(:meth:`KernelOperator.mv`, also ``op @ v``), gives its diagonal, its transpose, a dense
copy when one fits (:meth:`KernelOperator.as_matrix`) and a ``lineax`` operator
(:meth:`KernelOperator.as_lineax`), so iterative solvers (``nnlab.predict`` with
``solver='cg'``, ``lineax.CG``) only ever hold ``O(N k)`` numbers plus one block.

Three kinds share that interface:

* :func:`kernel_operator`: the analytic NNGP or NTK of an nnlab architecture. Each product
  computes the kernel rows of a block of ``x1`` against all of ``x2`` and multiplies them
  by ``v`` at once; blocks are spread over devices (a ``jax.sharding.Mesh`` over the row
  axis, ``shard_map``), which after ``jax.distributed.initialize()`` means over the devices
  of every process (each process passes the same ``x1``, ``x2`` and ``v``).
* :func:`matrix_operator`: a stored kernel matrix.
* :func:`nnlab.empirical.ntk_operator`: the empirical NTK of any ``apply_fn`` through
  NTK-vector products ``J1 (J2^T v)``.

Operators are pytrees: they pass through ``jax.jit`` and ``jax.vmap`` (over ``v``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from nnlab import _checks
from nnlab._pytree import register_dataclass

from ._compute import (
    MIN_CHUNK_ROWS,
    _available_bytes,
    _forward,
    _forward_rows,
    check_devices,
    check_inputs,
    check_net,
    pair_bytes,
    resolve_diagonal_spatial,
)

Array = jax.Array

#: Largest working set one operator block may take (bytes); blocks are also kept under 1/8 of
#: the free memory of the first device.
BLOCK_BYTES = 1 << 30


class KernelOperator:
    """A kernel matrix ``K`` ``(N1, N2)`` known through its products ``K @ v``.

    Subclasses implement ``shape``, ``dtype``, ``_matmat(v)`` for ``v`` of shape ``(N2, k)``,
    ``T`` and ``diagonal()``.
    """

    symmetric: bool = False

    @property
    def shape(self) -> tuple[int, int]:
        raise NotImplementedError

    @property
    def dtype(self):
        raise NotImplementedError

    @property
    def T(self) -> KernelOperator:
        raise NotImplementedError

    def _matmat(self, v: Array) -> Array:
        raise NotImplementedError

    def diagonal(self) -> Array:
        """The diagonal ``K_ii`` ``(N,)`` of a square operator."""
        raise NotImplementedError

    def mv(self, v) -> Array:
        """``K @ v`` for ``v`` of shape ``(N2,)`` or ``(N2, k)``; gives ``(N1,)`` or ``(N1, k)``."""
        v = jnp.asarray(v)
        n1, n2 = self.shape
        if v.ndim not in (1, 2) or v.shape[0] != n2:
            raise ValueError(
                f"v must have shape ({n2},) or ({n2}, k) to multiply a {n1} x {n2} kernel "
                f"operator, got shape {v.shape}."
            )
        if not jnp.issubdtype(v.dtype, jnp.floating):
            raise TypeError(f"v must hold real floats, got dtype {v.dtype}.")
        v2 = v[:, None] if v.ndim == 1 else v
        out = self._matmat(v2.astype(jnp.promote_types(v2.dtype, self.dtype)))
        return out[:, 0] if v.ndim == 1 else out

    def __matmul__(self, v) -> Array:
        return self.mv(v)

    def as_matrix(self) -> Array:
        """The dense ``(N1, N2)`` matrix (memory ``N1 N2``; only for operators that fit)."""
        return self._matmat(jnp.eye(self.shape[1], dtype=self.dtype))

    def as_lineax(self):
        """This operator as a ``lineax.FunctionLinearOperator`` on vectors ``(N2,)``.

        A symmetric operator is tagged symmetric and positive semi-definite (kernels are), so
        ``lineax.CG`` accepts it.
        """
        import lineax as lx

        tags = (lx.symmetric_tag, lx.positive_semidefinite_tag) if self.symmetric else ()
        structure = jax.ShapeDtypeStruct((self.shape[1],), self.dtype)
        return lx.FunctionLinearOperator(self.mv, structure, tags=tags)

    def __repr__(self) -> str:
        n1, n2 = self.shape
        return f"{type(self).__name__}(shape=({n1}, {n2}), dtype={jnp.dtype(self.dtype).name})"


@dataclasses.dataclass(frozen=True, repr=False)
class MatrixKernelOperator(KernelOperator):
    """A stored kernel matrix as a :class:`KernelOperator` (``mv`` is a matmul)."""

    matrix: Array
    symmetric: bool = dataclasses.field(default=False, metadata={"static": True})

    @property
    def shape(self):
        return tuple(self.matrix.shape)

    @property
    def dtype(self):
        return self.matrix.dtype

    @property
    def T(self):
        return MatrixKernelOperator(self.matrix.T, self.symmetric)

    def _matmat(self, v):
        return self.matrix @ v

    def diagonal(self):
        return jnp.diagonal(self.matrix)

    def as_matrix(self):
        return self.matrix


register_dataclass(MatrixKernelOperator)


def matrix_operator(k, *, symmetric: bool | None = None) -> MatrixKernelOperator:
    """A stored kernel matrix ``k`` ``(N1, N2)`` as a :class:`KernelOperator`.

    Args:
      k: the kernel matrix (any real float array; converted to a JAX array once).
      symmetric: whether ``k`` is a symmetric PSD kernel (tags the lineax operator); None
        means ``k`` is square (the usual train-train kernel).

    Example:
      >>> import jax.numpy as jnp
      >>> op = matrix_operator(jnp.array([[2.0, 1.0], [1.0, 2.0]]))
      >>> op.mv(jnp.array([1.0, 0.0])).tolist()
      [2.0, 1.0]
    """
    k = _checks.real_array(k, "k")
    if k.ndim != 2:
        raise ValueError(f"k must be a kernel matrix (N1, N2), got shape {k.shape}.")
    if symmetric is None:
        symmetric = k.shape[0] == k.shape[1]
    symmetric = _checks.boolean(symmetric, "symmetric")
    if symmetric and k.shape[0] != k.shape[1]:
        raise ValueError(f"symmetric=True needs a square k, got shape {k.shape}.")
    return MatrixKernelOperator(k, symmetric)


class PointsOperator(KernelOperator):
    """A kernel between two point sets, the fields ``x1`` and ``x2`` of a subclass: its shape is
    ``(len(x1), len(x2))`` and its transpose swaps them."""

    @property
    def shape(self):
        return (self.x1.shape[0], self.x2.shape[0])

    @property
    def T(self):
        return dataclasses.replace(self, x1=self.x2, x2=self.x1)


def chunks(x: Array, rows: int) -> Array:
    """``x`` as ``(count, rows, ...)``, the last chunk padded by :func:`_pad_edge`."""
    count = -(-x.shape[0] // rows)
    return _pad_edge(x, count * rows).reshape(count, rows, *x.shape[1:])


@dataclasses.dataclass(frozen=True, repr=False)
class AnalyticKernelOperator(PointsOperator):
    """The analytic NNGP/NTK of an nnlab architecture, computed block by block on each product.

    Built by :func:`kernel_operator`; see there.
    """

    net: object
    x1: Array
    x2: Array
    get: str = dataclasses.field(metadata={"static": True})
    block_rows: int = dataclasses.field(metadata={"static": True})
    diagonal_spatial: bool = dataclasses.field(metadata={"static": True})
    mesh: Mesh | None = dataclasses.field(default=None, metadata={"static": True})
    symmetric: bool = dataclasses.field(default=False, metadata={"static": True})

    @property
    def dtype(self):
        return self.x1.dtype

    def _matmat(self, v):
        return _analytic_matmat(
            self.net, self.x1, self.x2, v, self.get, self.block_rows, self.diagonal_spatial,
            self.mesh,
        )  # fmt: skip

    def diagonal(self):
        if self.shape[0] != self.shape[1]:
            raise ValueError(f"diagonal() needs a square operator, got shape {self.shape}.")
        return _analytic_diagonal(self.net, self.x1, self.get, self.diagonal_spatial)

    def as_matrix(self):
        from ._compute import kernel

        x2 = None if self.symmetric else self.x2
        return kernel(self.net, self.x1, x2, self.get, diagonal_spatial=self.diagonal_spatial)


register_dataclass(AnalyticKernelOperator)


def _kernel_matrix(k, get: str) -> Array:
    mat = k.ntk if get == "ntk" else k.nngp
    if mat.ndim != 2:
        raise ValueError(
            f"kernel_operator needs a network with one output kernel per input pair, but this "
            f"one gives {get} blocks of shape {mat.shape} (a spatial output). End the network "
            "with Flatten/GlobalAvgPool and a Dense readout."
        )
    return mat


def _pad_edge(x: Array, n: int) -> Array:
    """Pad rows by repeating the last one (so padded rows are valid inputs, never NaN)."""
    if x.shape[0] == n:
        return x
    return jnp.concatenate([x, jnp.repeat(x[-1:], n - x.shape[0], axis=0)])


@functools.partial(jax.jit, static_argnums=(4, 5, 6, 7))
def _analytic_matmat(net, x1, x2, v, get, rows, diagonal_spatial, mesh):
    n1 = x1.shape[0]
    devices = 1 if mesh is None else mesh.size
    blocks = -(-n1 // (rows * devices))
    x1p = _pad_edge(x1, blocks * rows * devices)

    def local(net, xs, x2, v):
        def block(xa):
            k = _forward_rows(net, xa, x2, get == "ntk", diagonal_spatial)
            return _kernel_matrix(k, get) @ v

        out = jax.lax.map(block, xs.reshape(-1, rows, *xs.shape[1:]))
        return out.reshape(-1, v.shape[1])

    if mesh is None:
        out = local(net, x1p, x2, v)
    else:
        rows_spec, rep = PartitionSpec("rows"), PartitionSpec()
        x1p = jax.lax.with_sharding_constraint(x1p, NamedSharding(mesh, rows_spec))

        def sharded(net, xs, x2, v):
            return jax.lax.all_gather(local(net, xs, x2, v), "rows", tiled=True)

        out = jax.shard_map(
            sharded, mesh=mesh, in_specs=(rep, rows_spec, rep, rep), out_specs=rep,
            check_vma=False,
        )(net, x1p, x2, v)  # fmt: skip
    return out[:n1]


@functools.partial(jax.jit, static_argnums=(2, 3))
def _analytic_diagonal(net, x, get, diagonal_spatial):
    def one(xi):
        k = _forward(net, xi[None], xi[None], get == "ntk", diagonal_spatial)
        return _kernel_matrix(k, get)[0, 0]

    xs = chunks(x, min(x.shape[0], 256))
    return jax.lax.map(jax.vmap(one), xs).reshape(-1)[: x.shape[0]]


def block_rows_for(n1: int, n2: int, entry_bytes: int, devices: int = 1, device=None) -> int:
    """Rows of ``x1`` per operator block: the block's working set ``rows * n2 * entry_bytes``
    stays under :data:`BLOCK_BYTES` and 1/8 of the free memory of ``device``."""
    device = device or jax.local_devices()[0]
    budget = min(_available_bytes(device) // 8, BLOCK_BYTES)
    rows = max(MIN_CHUNK_ROWS, budget // max(1, n2 * entry_bytes))
    return int(min(rows, -(-n1 // devices)))


def kernel_operator(
    net,
    x1,
    x2=None,
    get: str = "ntk",
    *,
    block_rows: int | None = None,
    diagonal_spatial: bool | None = None,
    devices: Sequence | None = None,
) -> AnalyticKernelOperator:
    r"""The analytic NTK or NNGP of ``net`` between ``x1`` and ``x2`` as a matrix-free operator.

    ``op.mv(v)`` computes :math:`(K v)_i = \sum_j K(x_{1,i}, x_{2,j}) v_j` for ``v`` of
    shape ``(N2,)`` or ``(N2, k)``: the kernel rows of ``block_rows`` points of ``x1`` against
    all of ``x2`` are computed, multiplied by ``v`` and dropped, so memory is ``O(block_rows
    N2 + N k)`` and never ``N1 N2``. Each product costs one kernel evaluation of all
    ``N1 N2`` pairs (as :func:`nnlab.kernel`), so iterative solvers that need few products
    (``nnlab.predict`` with ``solver='cg'`` and a Nyström preconditioner) reach sizes whose
    kernel does not fit in memory. Entries equal those of :func:`nnlab.kernel`.

    Args:
      net: an nnlab architecture whose kernel is one number per input pair (a vector output:
        an MLP, or a CNN ending in Flatten/pooling and Dense).
      x1: inputs ``(N1, features)`` or ``(N1, *spatial, channels)``.
      x2: inputs ``(N2, ...)``; None means ``x1`` (the symmetric train-train kernel).
      get: ``'ntk'`` or ``'nngp'``.
      block_rows: rows of ``x1`` per block and device; None picks it from free memory
        (:func:`block_rows_for`: at most 1 GiB and 1/8 of free memory per block).
      diagonal_spatial: as in :func:`nnlab.kernel`.
      devices: devices to spread blocks over (default: ``jax.devices()``, every device of
        every process after ``jax.distributed.initialize()``; every process must then pass
        the same inputs). Products are returned replicated on all of them.

    Returns:
      An :class:`AnalyticKernelOperator` (a pytree: it can be passed into ``jax.jit``).

    Example:
      >>> import jax.numpy as jnp, nnlab
      >>> from nnlab import layers as nl
      >>> net = nl.serial(nl.Dense(1), nl.Relu(), nl.Dense(1))
      >>> x = jnp.linspace(-1.0, 1.0, 12).reshape(6, 2)
      >>> op = nnlab.kernel_operator(net, x, get="ntk")
      >>> v = jnp.ones(6)
      >>> bool(jnp.allclose(op @ v, nnlab.kernel(net, x, get="ntk") @ v, rtol=1e-5))
      True
    """
    check_net(net)
    _checks.choice(get, "get", ("ntk", "nngp"))
    symmetric = x2 is None
    x1, x2 = check_inputs(x1, x2)
    x2 = x1 if symmetric else x2
    diagonal_spatial = resolve_diagonal_spatial(net, diagonal_spatial, x1)
    devices = check_devices(devices) or jax.devices()
    mesh = None if len(devices) == 1 else Mesh(np.array(devices), ("rows",))
    if block_rows is None:
        entry = pair_bytes(x1, diagonal_spatial) * (8 if get == "ntk" else 5)
        mine = [d for d in devices if d.process_index == jax.process_index()]
        block_rows = block_rows_for(
            x1.shape[0], x2.shape[0], entry, len(devices), mine[0] if mine else None
        )
    else:
        block_rows = _checks.integer(block_rows, "block_rows", fix="Pass a positive int or None.")
    return AnalyticKernelOperator(net, x1, x2, get, block_rows, diagonal_spatial, mesh, symmetric)
