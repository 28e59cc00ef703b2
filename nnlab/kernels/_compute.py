"""``kernel(net, x1, x2)``: analytic NNGP/NTK of an architecture, in blocks, over devices."""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from nnlab import _checks as checks

from ._kernel import Array, Kernel, input_kernel

GETS = ("nngp", "ntk")


def _parse_get(get) -> tuple[tuple[str, ...], bool]:
    single = isinstance(get, str)
    items = (get,) if single else tuple(get)
    if not items or any(g not in GETS for g in items):
        raise ValueError(f"get must be 'nngp', 'ntk' or a tuple of them, got {get!r}.")
    return items, single


def _check_input(name: str, x) -> Array:
    return checks.finite_array(
        x,
        name,
        ndim=(2, 3, 4, 5),
        shape_hint="(N, features) or (N, *spatial, channels) with at most 3 spatial dimensions",
    )


def check_net(net) -> None:
    if not all(hasattr(net, m) for m in ("init", "apply", "kernel")):
        raise TypeError(
            f"net must be an nnlab layer with init/apply/kernel, got {type(net).__name__}."
        )


def check_inputs(x1, x2):
    """Checked ``(x1, x2)`` (``x2`` may be None) with equal trailing shapes and one dtype."""
    x1 = _check_input("x1", x1)
    if x2 is not None:
        x2 = _check_input("x2", x2)
        if x2.shape[1:] != x1.shape[1:]:
            raise ValueError(
                f"x2 must have the same trailing shape as x1 {x1.shape[1:]}, got {x2.shape[1:]}."
            )
        dtype = jnp.promote_types(x1.dtype, x2.dtype)
        x1, x2 = x1.astype(dtype), x2.astype(dtype)
    return x1, x2


def check_devices(devices) -> list | None:
    """``devices`` as a non-empty list of ``jax.Device`` (or None)."""
    if devices is None:
        return None
    try:
        devices = list(devices)
    except TypeError:
        raise TypeError(
            f"devices must be a list of jax devices (or None), got {devices!r}."
        ) from None
    if not devices:
        raise ValueError(
            f"devices must be a non-empty list of jax devices (or None for all local "
            f"devices), got {devices!r}."
        )
    if not all(isinstance(d, jax.Device) for d in devices):
        raise TypeError(f"devices must hold jax.Device objects, got {devices!r}.")
    return devices


def resolve_diagonal_spatial(net, diagonal_spatial, x1) -> bool:
    """``diagonal_spatial`` checked, or chosen (full covariances only if a layer needs them)."""
    full_needed = requires_full_spatial(net)
    if diagonal_spatial is None:
        return not full_needed
    diagonal_spatial = checks.boolean(
        diagonal_spatial, "diagonal_spatial", fix="None chooses automatically."
    )
    if diagonal_spatial and full_needed and x1.ndim > 2:
        raise ValueError(
            "diagonal_spatial=True is impossible: a pooling layer in net needs "
            "covariances between positions. Pass None or False."
        )
    return diagonal_spatial


def pair_bytes(x1, diagonal_spatial: bool) -> int:
    """Bytes of one (x1, x2) pair's kernel entry: itemsize times the spatial pairs kept."""
    spatial = math.prod(x1.shape[1:-1])
    return x1.dtype.itemsize * (spatial if diagonal_spatial else spatial * spatial)


def requires_full_spatial(net) -> bool:
    """Whether any layer in ``net`` needs covariances between different positions."""
    if getattr(type(net), "needs_full_spatial", False):
        return True
    return any(requires_full_spatial(sub) for sub in getattr(net, "layers", ()))


def _forward(net, x1, x2, compute_ntk: bool, diagonal_spatial: bool) -> Kernel:
    k = net.kernel(input_kernel(x1, x2, compute_ntk=compute_ntk, diagonal_spatial=diagonal_spatial))
    if not isinstance(k, Kernel):
        raise ValueError(
            "the network ends in several branches; merge them with FanInSum or "
            "FanInConcat before computing its kernel."
        )
    # Per-branch kernels (after a final FanInConcat) are internal to the layer recursion;
    # the row-chunked and blocked paths merge only the mixed fields.
    return k.replace(branches=None)


# Entries (rows x N2 x spatial pairs) per row chunk on CPU: ~0.5 MB per float32 array, so the
# dozens of elementwise passes of a deep kernel recursion run in cache instead of streaming from
# memory (about 2x faster on CPU for N = 2000 MLPs; see benchmarks/kernels.py). Accelerators
# get no chunks: their parallelism needs the whole array, and a sequential loop over thousands
# of small chunks made an N = 20000 GPU kernel 40x slower than one pass.
CHUNK_ENTRIES = 1 << 17
# At least this many rows per chunk: every chunk recomputes x2's own covariance (cov2), which
# costs as much as one row of the cross kernel, so this caps that overhead at 25%.
MIN_CHUNK_ROWS = 4


def _forward_rows(net, x1, x2, compute_ntk: bool, diagonal_spatial: bool) -> Kernel:
    """``_forward`` over row chunks of ``x1`` (``lax.map``); the same numbers, cache-sized work."""
    n1 = x1.shape[0]
    xb = x1 if x2 is None else x2
    if jax.default_backend() != "cpu":
        return _forward(net, x1, x2, compute_ntk, diagonal_spatial)
    spatial = math.prod(x1.shape[1:-1])
    pairs = spatial if diagonal_spatial else spatial * spatial
    rows = max(MIN_CHUNK_ROWS, CHUNK_ENTRIES // (xb.shape[0] * pairs))
    if rows >= n1:
        return _forward(net, x1, x2, compute_ntk, diagonal_spatial)
    chunks = -(-n1 // rows)
    xs = _pad_rows(x1, chunks * rows).reshape(chunks, rows, *x1.shape[1:])
    ks = jax.lax.map(lambda xa: _forward(net, xa, xb, compute_ntk, diagonal_spatial), xs)

    def merge(a):
        return a.reshape(chunks * rows, *a.shape[2:])[:n1]

    return ks.replace(
        nngp=merge(ks.nngp),
        ntk=None if ks.ntk is None else merge(ks.ntk),
        cov1=merge(ks.cov1),
        cov2=ks.cov2[0],
    )


@functools.partial(jax.jit, static_argnums=(3, 4, 5))
def _forward_jit(net, x1, x2, compute_ntk, diagonal_spatial, keep_nngp=True):
    # Dropping the output NNGP inside jit lets XLA never write it (the NTK recursion needs
    # only the NNGP of the layers below), so get='ntk' does not hold a second N1 x N2 array.
    k = _forward_rows(net, x1, x2, compute_ntk, diagonal_spatial)
    return k if keep_nngp else k.replace(nngp=None)


@functools.partial(jax.jit, donate_argnums=0)
def _put(out, block, i, j):
    start = (i, j) + (0,) * (out.ndim - 2)
    return jax.lax.dynamic_update_slice(out, block, start)


def _put_host(out: np.ndarray, block, i, j) -> np.ndarray:
    out[i : i + block.shape[0], j : j + block.shape[1]] = np.asarray(block)
    return out


def _available_bytes(device) -> int:
    if device.platform == "cpu":
        try:
            return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return 8 << 30
    stats = device.memory_stats() or {}
    return int(stats.get("bytes_limit", 16 << 30)) - int(stats.get("bytes_in_use", 0))


def auto_batch_size(n1: int, n2: int, entry_bytes: int, device=None) -> int | None:
    """Rows per block so that one block's working set uses at most 1/4 of free memory.

    ``entry_bytes`` is the memory one (x1, x2) pair needs while a block is in
    flight (itemsize × spatial size × live temporaries). ``None`` means one block.
    """
    device = device or jax.local_devices()[0]
    budget = min(_available_bytes(device) // 4, 4 << 30)
    if n1 * n2 * entry_bytes <= budget:
        return None
    return max(16, int(math.sqrt(budget / entry_bytes)))


def _transpose_pairs(a: Array, spatial_ndim: int, diagonal: bool) -> Array:
    """Swap the roles of x1 and x2 in an (N1, N2, ...) kernel array."""
    axes = [1, 0]
    if diagonal or spatial_ndim == 0:
        axes += list(range(2, a.ndim))
    else:
        for p in range(spatial_ndim):
            axes += [3 + 2 * p, 2 + 2 * p]
    return jnp.transpose(a, axes)


def _pad_rows(x: Array, n: int) -> Array:
    return x if x.shape[0] == n else jnp.pad(x, [(0, n - x.shape[0])] + [(0, 0)] * (x.ndim - 1))


def kernel(
    net,
    x1,
    x2=None,
    get: str | Sequence[str] = ("nngp", "ntk"),
    *,
    batch_size: int | None = None,
    diagonal_spatial: bool | None = None,
    devices: Sequence | None = None,
    store_on_device: bool = True,
):
    """Infinite-width NNGP and/or NTK of ``net`` between ``x1`` and ``x2``.

    The NNGP is the covariance ``E[f(x1) f(x2)]`` of the outputs over random
    initialisations at infinite width (Lee et al. 2018, arXiv:1711.00165); the
    NTK is ``Θ(x1, x2) = Σ_θ ∂f(x1)/∂θ ∂f(x2)/∂θ``, which is deterministic at
    infinite width and constant during training (Jacot et al. 2018,
    arXiv:1806.07572). Both are per output unit.

    Args:
      net: an nnlab layer or combinator (``serial(...)``).
      x1: inputs of shape (N1, features) or (N1, *spatial, channels) (NHWC).
      x2: inputs of shape (N2, ...) with the same trailing shape, or None for x1
        against itself.
      get: 'nngp', 'ntk', or a tuple of them.
      batch_size: rows of x1 and x2 per block. None picks it from free memory
        (one block when everything fits). Blocks make the memory needed
        independent of N beyond the output itself.
      diagonal_spatial: keep only same-position covariances for spatial inputs;
        None chooses automatically (full covariances only if a pooling layer
        needs them).
      devices: devices to spread row blocks over (default: all local devices).
      store_on_device: False accumulates the output in host RAM (NumPy arrays), block by
        block, for outputs larger than device memory (neural-tangents' option of the same
        name); device memory then holds one block. Not under ``jit``.

    Returns:
      An array of shape (N1, N2, ...) if ``get`` is a string, else a
      :class:`Kernel` whose ``nngp``/``ntk`` fields hold the requested arrays
      (``ntk`` is None when not requested).

    Example:
      >>> import jax.numpy as jnp, nnlab
      >>> from nnlab import layers as nl
      >>> net = nl.serial(nl.Dense(1, W_std=2**0.5), nl.Relu(), nl.Dense(1))
      >>> nnlab.kernel(net, jnp.eye(3), get="nngp").shape
      (3, 3)
    """
    check_net(net)
    gets, single = _parse_get(get)
    x1, x2 = check_inputs(x1, x2)
    if batch_size is not None:
        batch_size = checks.integer(batch_size, "batch_size", fix="Pass a positive int or None.")
    diagonal_spatial = resolve_diagonal_spatial(net, diagonal_spatial, x1)
    devices = check_devices(devices)
    compute_ntk = "ntk" in gets

    tracing = isinstance(x1, jax.core.Tracer) or isinstance(x2, jax.core.Tracer)
    store_on_device = checks.boolean(store_on_device, "store_on_device")
    if tracing and not store_on_device:
        raise ValueError(
            "store_on_device=False writes NumPy arrays, which jax.jit cannot trace; call "
            "nnlab.kernel outside jit or keep store_on_device=True."
        )
    devs = devices if devices is not None else jax.local_devices()
    if tracing:
        devs = devs[:1]
    n1 = x1.shape[0]
    n2 = n1 if x2 is None else x2.shape[0]
    if batch_size is None and not tracing:
        entry = pair_bytes(x1, diagonal_spatial)
        batch_size = auto_batch_size(n1, n2, entry * (8 if compute_ntk else 5), devs[0])
        batch_size = _cap_for_output(batch_size, n1, n2, entry)
    b1 = n1 if batch_size is None else min(batch_size, n1)
    b2 = n2 if batch_size is None else min(batch_size, n2)
    keep_nngp = "nngp" in gets
    if b1 >= n1 and b2 >= n2 and len(devs) == 1 and store_on_device:
        k = (
            _forward_rows(net, x1, x2, compute_ntk, diagonal_spatial)
            if tracing
            else _forward_jit(net, x1, x2, compute_ntk, diagonal_spatial, keep_nngp)
        )
    else:
        k = _blocked(
            net, x1, x2, b1, b2, devs, compute_ntk, diagonal_spatial, keep_nngp, store_on_device
        )
    if single:
        return k.nngp if gets[0] == "nngp" else k.ntk
    k = k if keep_nngp else k.replace(nngp=None)
    return k if compute_ntk else k.replace(ntk=None)


#: Outputs at least this large (bytes) are computed in blocks of at most 1/4 of their rows and
#: columns, so a block's arrays (and its mirrored copy) add at most ~0.2x to the output's memory.
LARGE_OUTPUT_BYTES = 256 << 20


def _cap_for_output(batch_size: int | None, n1: int, n2: int, pair_bytes: int) -> int | None:
    """``batch_size`` capped at a quarter of the larger side when the output is large."""
    if n1 * n2 * pair_bytes < LARGE_OUTPUT_BYTES:
        return batch_size
    quarter = max(MIN_CHUNK_ROWS, -(-max(n1, n2) // 4))
    return quarter if batch_size is None else min(batch_size, quarter)


def _balanced_blocks(n: int, rows: int, multiple: int) -> tuple[int, int]:
    """``(block, count)``: the fewest blocks of at most ``rows`` (rounded up to ``multiple``)
    rows that cover ``n``, made as equal as possible, so padding stays under one block's
    rounding (``count * multiple`` rows) instead of up to a whole block."""
    rows = math.ceil(rows / multiple) * multiple
    count = math.ceil(n / rows)
    block = math.ceil(math.ceil(n / count) / multiple) * multiple
    return block, math.ceil(n / block)


def _blocked(
    net, x1, x2, b1, b2, devs, compute_ntk, diagonal_spatial, keep_nngp=True, on_device=True
) -> Kernel:
    """Compute the kernel block by block (x1 rows sharded over ``devs``).

    Blocks are balanced (:func:`_balanced_blocks`) and the inputs padded to whole blocks, but
    each block is cropped before it is written, so the output is allocated at its exact size
    ``(n1, n2, ...)`` and never copied: peak memory is the output plus one block (two when the
    kernel is symmetric: a block and its transpose).
    """
    symmetric = x2 is None
    xb = x1 if symmetric else x2
    nd = len(devs)
    n1, n2 = x1.shape[0], xb.shape[0]
    if symmetric:
        b1, nb1 = _balanced_blocks(n1, max(b1, b2), nd)
        b2, nb2 = b1, nb1
    else:
        b1, nb1 = _balanced_blocks(n1, b1, nd)
        b2, nb2 = _balanced_blocks(n2, b2, 1)
    x1p, x2p = _pad_rows(x1, nb1 * b1), _pad_rows(xb, nb2 * b2)

    place_rows = place_rep = lambda a: a
    if nd > 1:
        # Each block's x1 rows are split over the devices; jit follows the input shardings,
        # so every device computes its rows of the block against the whole x2 block.
        mesh = Mesh(np.array(devs), ("rows",))
        rows, rep = NamedSharding(mesh, PartitionSpec("rows")), NamedSharding(mesh, PartitionSpec())
        place_rows = functools.partial(jax.device_put, device=rows)
        place_rep = functools.partial(jax.device_put, device=rep)
        net = place_rep(net)

    zeros, put = (jnp.zeros, _put) if on_device else (np.zeros, _put_host)
    out = {}
    cov1_blocks, cov2_blocks = [None] * nb1, [None] * nb2
    for i in range(nb1):
        xa = place_rows(x1p[i * b1 : (i + 1) * b1])
        r0, r1 = i * b1, min((i + 1) * b1, n1)
        for j in range(i if symmetric else 0, nb2):
            xb_j = place_rep(x2p[j * b2 : (j + 1) * b2])
            c0, c1 = j * b2, min((j + 1) * b2, n2)
            kb = _forward_jit(net, xa, xb_j, compute_ntk, diagonal_spatial, keep_nngp)
            if not out:
                names = ("nngp",) * keep_nngp + ("ntk",) * compute_ntk
                out = {
                    name: zeros((n1, n2, *getattr(kb, name).shape[2:]), kb.cov1.dtype)
                    for name in names
                }
                proto = kb
            for name in out:
                tile = getattr(kb, name)[: r1 - r0, : c1 - c0]
                out[name] = put(out[name], tile, r0, c0)
                if symmetric and j > i:  # the mirrored block below the diagonal
                    mirror = _transpose_pairs(tile, kb.spatial_ndim, kb.diagonal_spatial)
                    out[name] = put(out[name], mirror, c0, r0)
            if j == (i if symmetric else 0):
                cov1_blocks[i] = kb.cov1
            if i == 0 or (symmetric and i == j):
                cov2_blocks[j] = kb.cov2
    cov1 = jnp.concatenate(cov1_blocks)[:n1]
    cov2 = cov1 if symmetric else jnp.concatenate(cov2_blocks)[:n2]
    return proto.replace(nngp=out.get("nngp"), ntk=out.get("ntk"), cov1=cov1, cov2=cov2)
