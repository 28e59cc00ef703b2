r"""Curvature matrices of a training loss as matrix-free linear operators on flat vectors.

A :class:`CurvatureOperator` is ``v ↦ M v`` for a symmetric ``P x P`` matrix ``M`` (the
Hessian or the Gauss-Newton matrix of ``L(θ) = loss(apply_fn(θ, X), Y)``), acting on the
flat vector of the selected parameters (:func:`jax.flatten_util.ravel_pytree` order); the
empirical NTK (:func:`nnlab.curvature.ntk_operator`) acts on flat output vectors instead.
Products are computed without forming ``M``: forward-over-reverse for the Hessian
(Pearlmutter 1994), jvp / vjp through the network for the Gauss-Newton matrix (Schraudolph
2002), accumulated over chunks of the data with ``lax.scan`` so that the memory does not
grow with the number of examples.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from nnlab import _checks
from nnlab.train import make_loss


class CurvatureOperator(NamedTuple):
    """A symmetric linear operator ``v ↦ M v`` on flat vectors.

    Attributes:
      matvec: ``(P,) -> (P,)``, the product with the matrix.
      dim: ``P``, the number of selected parameters (or of outputs, for the eNTK).
      dtype: dtype of the flat vectors.
      unravel: ``(P,) -> params`` pytree, zero on the leaves that are not selected (so an
        eigenvector is a direction in the full parameter space); for the eNTK, ``(P,) ->``
        the outputs' shape ``(N, *out)``.
    """

    matvec: Callable[[jax.Array], jax.Array]
    dim: int
    dtype: Any
    unravel: Callable[[jax.Array], Any]


def hvp(loss_fn: Callable[[Any], jax.Array], params: Any, tangent: Any) -> Any:
    r"""Hessian-vector product ``H v = ∂/∂ε ∇L(θ + ε v)|₀`` by forward-over-reverse.

    ``jax.jvp`` of ``jax.grad(loss_fn)`` (Pearlmutter 1994, "Fast exact multiplication by
    the Hessian"); the cost is a small constant times one gradient and no ``P x P`` matrix
    is formed.

    Args:
      loss_fn: scalar function of the parameter pytree.
      params: the point ``θ``.
      tangent: ``v``, a pytree like ``params``.

    Returns:
      ``H v``, a pytree like ``params``.

    Example:
      >>> import jax.numpy as jnp
      >>> hvp(lambda p: jnp.sum(p**3), jnp.array([1.0, 2.0]), jnp.array([1.0, 0.0])).tolist()
      [6.0, 0.0]
    """
    return jax.jvp(jax.grad(loss_fn), (params,), (tangent,))[1]


def _selection_mask(params, wrt) -> list[bool]:
    leaves_with_path, _ = jax.tree_util.tree_flatten_with_path(params)
    if wrt is None:
        return [True] * len(leaves_with_path)
    if callable(wrt):
        return [bool(wrt(path, leaf)) for path, leaf in leaves_with_path]
    accepted = (
        "wrt must be None (all leaves), a predicate wrt(path, leaf) -> bool, or a pytree of "
        "bools with the structure of params (or a prefix of it, e.g. [True, False] for the "
        "first of two layers)"
    )
    if isinstance(wrt, str | bytes):
        raise TypeError(
            f"{accepted}; got the string {wrt!r}. To select leaves by name use a predicate, e.g. "
            f"wrt=lambda path, leaf: {wrt!r} in jax.tree_util.keystr(path)."
        )
    bad = [m for m in jax.tree_util.tree_leaves(wrt) if not _is_bool(m)]
    if bad:
        raise TypeError(f"{accepted}; got {wrt!r}, whose leaf {bad[0]!r} is not a bool.")
    try:
        full = jax.tree_util.tree_map(
            lambda m, sub: jax.tree_util.tree_map(lambda _: bool(m), sub), wrt, params
        )
    except (ValueError, TypeError) as err:
        raise ValueError(
            "wrt must be None, a predicate wrt(path, leaf) -> bool or a pytree of bools with "
            f"the structure of params (or a prefix of it); it did not match params: {err}"
        ) from None
    return [bool(m) for m in jax.tree_util.tree_leaves(full)]


def _is_bool(m) -> bool:
    if isinstance(m, bool | np.bool_):
        return True
    return (
        isinstance(m, jax.Array | np.ndarray)
        and m.dtype == np.bool_
        and m.ndim == 0
        and not _checks.is_traced(m)
    )


def restrict(params: Any, wrt=None):
    r"""Split ``params`` into the flat vector of the selected leaves and a way back.

    Per-layer / per-block curvature is the curvature of ``θ_S ↦ L(θ_S, θ_{¬S})`` with the
    other leaves held fixed, i.e. the ``S x S`` block of the full matrix.

    Args:
      params: parameter pytree.
      wrt: ``None`` (all leaves), a predicate ``wrt(path, leaf) -> bool`` on the key paths of
        :func:`jax.tree_util.tree_flatten_with_path`, or a pytree of bools with the
        structure of ``params`` (or a prefix of it, e.g. one bool per layer).

    Returns:
      ``(flat, merge, unravel)``: the selected leaves raveled to ``(P,)``, ``merge(flat) ->
      params`` with the other leaves as in ``params``, and ``unravel(flat) -> params`` with
      zeros elsewhere.

    Raises:
      TypeError: for any other ``wrt`` (a string such as ``'W'``, an int, a pytree with
        non-bool leaves): select leaves by name with a predicate on ``keystr(path)``.
      ValueError: when a bool pytree does not match ``params`` or selects no leaf.
    """
    leaves, treedef = jax.tree_util.tree_flatten(params)
    mask = _selection_mask(params, wrt)
    chosen = [leaf for leaf, m in zip(leaves, mask, strict=True) if m]
    if not chosen:
        raise ValueError(f"wrt={wrt!r} selects no leaf of params; select at least one.")
    flat, unravel_chosen = ravel_pytree(chosen)

    def fill(flat_sub, others):
        it = iter(unravel_chosen(flat_sub))
        return treedef.unflatten([next(it) if m else o for o, m in zip(others, mask, strict=True)])

    def merge(flat_sub):
        return fill(flat_sub, leaves)

    def unravel(flat_sub):
        return fill(flat_sub, [jnp.zeros_like(leaf) for leaf in leaves])

    return flat, merge, unravel


def check_examples(name: str, a) -> None:
    """``a`` is an array with a non-empty leading example axis and (if concrete) finite."""
    if not hasattr(a, "shape") or not hasattr(a, "dtype"):
        raise TypeError(f"{name} must be an array, got {type(a).__name__}.")
    if a.ndim < 1:
        raise ValueError(f"{name} must have a leading example axis, got shape {a.shape}.")
    if a.shape[0] == 0:
        raise ValueError(f"{name} must have at least one example, got shape {a.shape}.")
    if (
        not _checks.is_traced(a)
        and jnp.issubdtype(a.dtype, jnp.inexact)
        and not bool(np.all(np.isfinite(np.asarray(a))))
    ):
        raise ValueError(f"{name} contains NaN or inf; clean the data first.")


def _check_data(x, y):
    check_examples("x", x)
    check_examples("y", y)
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must have the same number of examples, got {x.shape[0]} and {y.shape[0]}."
        )


def _chunks(n, batch_size):
    """Full chunks of ``batch_size`` and the size of the remainder (0 if none)."""
    if batch_size is None:
        return 1, n, 0
    batch_size = _checks.integer(batch_size, "batch_size", fix="Pass a positive int or None.")
    b = min(batch_size, n)
    return n // b, b, n % b


def _accumulate(per_chunk, x, y, batch_size, normalization, dim, dtype):
    r"""``Σ_c w_c · per_chunk(x_c, y_c)`` over data chunks, ``w_c = n_c / n`` for a mean loss.

    Full chunks run in a ``lax.scan`` (memory of one chunk); a remainder chunk, if any, is
    one more call.
    """
    n = x.shape[0]
    n_full, b, rest = _chunks(n, batch_size)
    weight = (lambda m: m / n) if normalization == "mean" else (lambda m: 1.0)
    if n_full == 1 and rest == 0:
        return per_chunk(x, y) * weight(n)
    xs = x[: n_full * b].reshape(n_full, b, *x.shape[1:])
    ys = y[: n_full * b].reshape(n_full, b, *y.shape[1:])

    def body(acc, xy):
        return acc + per_chunk(*xy), None

    acc, _ = jax.lax.scan(body, jnp.zeros((dim,), dtype), (xs, ys))
    acc = acc * weight(b)
    if rest:
        acc = acc + per_chunk(x[n_full * b :], y[n_full * b :]) * weight(rest)
    return acc


def _loss_operator(product, apply_fn, params, x, y, loss, loss_normalization, wrt, batch_size):
    r"""The operator ``v ↦ Σ_c w_c product(ℓ, f_c, θ, v, y_c)`` over data chunks ``c``.

    ``ℓ`` is the loss of :func:`nnlab.train.make_loss`, ``f_c(q)`` the network's outputs on
    chunk ``c`` at the flat selected parameters ``q`` and ``θ`` the point; ``product`` returns
    one chunk's matrix-vector product.
    """
    if not callable(apply_fn):
        raise TypeError(f"apply_fn must be callable, got {type(apply_fn).__name__}.")
    _check_data(x, y)
    if batch_size is not None:
        batch_size = _checks.integer(batch_size, "batch_size", fix="Pass a positive int or None.")
    _chunks(x.shape[0], batch_size)
    loss_fn = make_loss(loss, loss_normalization)
    flat, merge, unravel = restrict(params, wrt)

    def matvec(v):
        def per_chunk(xc, yc):
            return product(loss_fn, lambda q: apply_fn(merge(q), xc), flat, v, yc)

        return _accumulate(per_chunk, x, y, batch_size, loss_normalization, flat.size, flat.dtype)

    return CurvatureOperator(matvec, int(flat.size), flat.dtype, unravel)


def _hessian_product(loss_fn, f, flat, v, y):
    return hvp(lambda q: loss_fn(f(q), y), flat, v)


def _gauss_newton_product(loss_fn, f, flat, v, y):
    out, jv = jax.jvp(f, (flat,), (v,))
    h_jv = hvp(lambda g: loss_fn(g, y), out, jv)
    _, vjp = jax.vjp(f, flat)
    return vjp(h_jv)[0]


def hessian_operator(
    apply_fn: Callable[[Any, jax.Array], jax.Array],
    params: Any,
    x: jax.Array,
    y: jax.Array,
    *,
    loss="mse",
    loss_normalization="mean",
    wrt=None,
    batch_size: int | None = None,
) -> CurvatureOperator:
    r"""The Hessian ``H = ∇²_θ L`` of ``L(θ) = loss(apply_fn(θ, X), Y)`` as an operator.

    ``H v`` by forward-over-reverse (:func:`hvp`). With ``batch_size`` the data are split into
    chunks and ``H v = Σ_c (n_c/n) H_c v`` for a mean loss (``Σ_c H_c v`` for a sum), in a
    ``lax.scan``: memory is that of one chunk's HVP. A custom ``loss`` callable must then be
    a mean (or sum) over examples for the chunking to be exact.

    Args:
      apply_fn: ``apply_fn(params, x) -> (N, *out)``.
      params: parameter pytree at which the Hessian is taken.
      x, y: inputs ``(N, ...)`` and targets ``(N, ...)``.
      loss: ``'mse'`` (``½ (1/n) Σ ‖f − y‖²``), ``'xent'`` or ``loss(f, y) -> scalar``; the
        same conventions as :func:`nnlab.train.make_loss`.
      loss_normalization: ``'mean'`` or ``'sum'`` over examples.
      wrt: subset of the parameters (see :func:`restrict`); the result is the block of the
        Hessian of those parameters, the others held fixed.
      batch_size: examples per chunk; ``None`` uses all at once.

    Returns:
      A :class:`CurvatureOperator`.

    Example:
      >>> import jax.numpy as jnp
      >>> f = lambda p, x: x @ p
      >>> op = hessian_operator(f, jnp.zeros((2, 1)), jnp.eye(2), jnp.ones((2, 1)))
      >>> op.matvec(jnp.array([1.0, 0.0])).tolist()  # H = XᵀX / n
      [0.5, 0.0]
    """
    return _loss_operator(
        _hessian_product, apply_fn, params, x, y, loss, loss_normalization, wrt, batch_size
    )


def gauss_newton_operator(
    apply_fn: Callable[[Any, jax.Array], jax.Array],
    params: Any,
    x: jax.Array,
    y: jax.Array,
    *,
    loss="mse",
    loss_normalization="mean",
    wrt=None,
    batch_size: int | None = None,
) -> CurvatureOperator:
    r"""The generalised Gauss-Newton matrix ``G = Jᵀ (∇²_f ℓ) J`` as an operator.

    ``J = ∂ vec f(θ, X)/∂θ`` and ``∇²_f ℓ`` is the Hessian of the loss in the outputs
    (Schraudolph 2002). ``G v`` is a jvp (``J v``), an output-space Hessian-vector product and
    a vjp, never forming ``J``. It is the Hessian minus the term with second derivatives of
    the network, and positive semi-definite for a convex loss. For ``loss='mse'`` with mean
    normalisation ``G = JᵀJ / n``, whose nonzero eigenvalues are those of the empirical NTK
    ``J Jᵀ`` (:func:`ntk_operator`) divided by ``n`` (Jacot et al. 2018, arXiv:1806.07572);
    for cross-entropy ``∇²_f ℓ`` is ``(diag p − p pᵀ)/n`` per example.

    Args: as :func:`hessian_operator`.

    Returns:
      A :class:`CurvatureOperator`.
    """
    return _loss_operator(
        _gauss_newton_product, apply_fn, params, x, y, loss, loss_normalization, wrt, batch_size
    )


def matrix_operator(matrix: jax.Array) -> CurvatureOperator:
    r"""A dense symmetric ``(P, P)`` matrix as a :class:`CurvatureOperator` (for testing).

    A concrete matrix must be finite and symmetric: ``max|M − Mᵀ| <= √ε · max|M|`` (``ε``
    the machine epsilon of its dtype, so 3.5e-4 in float32 and 1.5e-8 in float64: far above
    the rounding of a matrix that is symmetric in exact arithmetic, such as ``X Xᵀ``, and far
    below a real asymmetry); otherwise a ``ValueError``. Traced matrices (under ``jit``) are
    not checked. Integer matrices are cast to the default float.

    Example:
      >>> import jax.numpy as jnp
      >>> matrix_operator(jnp.eye(3)).dim
      3
    """
    if not hasattr(matrix, "shape") or not hasattr(matrix, "dtype"):
        raise TypeError(
            f"matrix must be a square 2-D array, got {type(matrix).__name__}; convert it with "
            "jnp.asarray first."
        )
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(f"matrix must be a square 2-D array, got shape {matrix.shape}.")
    matrix = jnp.asarray(matrix)
    if jnp.issubdtype(matrix.dtype, jnp.complexfloating) or not (
        jnp.issubdtype(matrix.dtype, jnp.number) or matrix.dtype == jnp.bool_
    ):
        raise TypeError(f"matrix must hold real numbers, got dtype {matrix.dtype}.")
    if not jnp.issubdtype(matrix.dtype, jnp.floating):
        matrix = matrix.astype(jnp.result_type(float))
    if not _checks.is_traced(matrix):
        if not bool(np.all(np.isfinite(np.asarray(matrix)))):
            raise ValueError("matrix contains NaN or inf; pass a finite symmetric matrix.")
        host = np.asarray(matrix)
        size = float(np.max(np.abs(host)))
        asym = float(np.max(np.abs(host - host.T)))
        tol = math.sqrt(float(jnp.finfo(matrix.dtype).eps))
        if not asym <= tol * size:
            raise ValueError(
                f"matrix is not symmetric: max|M − Mᵀ| = {asym:.3g} for max|M| = {size:.3g} "
                f"(tolerance √ε = {tol:.2g} relative). Curvature operators are symmetric; pass "
                "(M + M.T) / 2 if the asymmetry is rounding."
            )
    return CurvatureOperator(lambda v: matrix @ v, int(matrix.shape[0]), matrix.dtype, lambda v: v)


def dense(op: CurvatureOperator) -> jax.Array:
    """Materialise the ``(P, P)`` matrix of ``op`` by ``P`` products (small models only)."""
    check_operator(op)
    return jax.lax.map(op.matvec, jnp.eye(op.dim, dtype=op.dtype)).T


def check_operator(op) -> None:
    if not isinstance(op, CurvatureOperator):
        raise TypeError(
            "op must be a CurvatureOperator (from hessian_operator, gauss_newton_operator, "
            f"ntk_operator or matrix_operator), got {type(op).__name__}."
        )
