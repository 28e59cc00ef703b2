r"""Input-output mode decomposition and the projection of a weight product onto it.

Data convention: ``x`` is ``(P, n_in)`` and ``y`` is ``(P, n_out)`` (rows are samples), so
:math:`\Sigma_{xx} = x^\top x / P` and :math:`\Sigma_{yx} = y^\top x / P`. A network maps
:math:`x \mapsto W_D \cdots W_1 x` with :math:`W_1` of shape ``(n_1, n_in)``; the layers of
:func:`~nnlab.deeplinear.network` store :math:`W_l^\top` (``x @ W``), so the list of a
parameter tuple is ``[p["W"].T for p in params]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from nnlab import _checks


class Modes(NamedTuple):
    r"""The SVD :math:`\Sigma_{yx}\,\Sigma_{xx}^{-1/2} = U\,\mathrm{diag}(s)\,V^\top`.

    Attributes:
      s: mode strengths :math:`s_\alpha`, descending, shape ``(r,)`` with
        :math:`r = \min(n_{in}, n_{out})` (or the ``rank`` asked for).
      u: output directions (columns), shape ``(n_out, r)``.
      v: input directions (columns, in whitened input space), shape ``(n_in, r)``.
      whitening: the symmetric :math:`\Sigma_{xx}^{-1/2}` (pseudo-inverse square root), shape
        ``(n_in, n_in)``; ``x @ whitening`` has :math:`\Sigma_{xx} = I` on the span of the data.
        The identity when ``whiten=False``.
    """

    s: jax.Array
    u: jax.Array
    v: jax.Array
    whitening: jax.Array


def _check_data(x, y):
    x = _checks.real_array(x, "x")
    y = _checks.real_array(y, "y")
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D (n_samples, n_in), got shape {x.shape}.")
    if y.ndim != 2:
        raise ValueError(f"y must be 2-D (n_samples, n_out), got shape {y.shape}.")
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must have the same number of samples (rows): x has shape {x.shape}, "
            f"y has shape {y.shape}."
        )
    if x.shape[0] == 0:
        raise ValueError("x and y have no samples (0 rows).")
    dtype = jnp.result_type(x, y)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(float)
    return x.astype(dtype), y.astype(dtype)


def correlations(x, y):
    r"""Input and input-output correlations :math:`\Sigma_{xx} = x^\top x/P`, :math:`\Sigma_{yx}
    = y^\top x/P` (Saxe et al. 2013, arXiv:1312.6120, eq. 2).

    Args:
      x: inputs, shape ``(P, n_in)``.
      y: targets, shape ``(P, n_out)``.

    Returns:
      ``(sigma_xx, sigma_yx)`` of shapes ``(n_in, n_in)`` and ``(n_out, n_in)``.

    Example:
      >>> import jax.numpy as jnp
      >>> sxx, syx = correlations(jnp.eye(2), jnp.array([[1.0], [0.0]]))
      >>> syx.tolist()
      [[0.5, 0.0]]
    """
    x, y = _check_data(x, y)
    p = x.shape[0]
    return x.T @ x / p, y.T @ x / p


def mode_decomposition(
    x, y, *, whiten: bool = True, rcond: float | None = None, rank: int | None = None
) -> Modes:
    r"""Modes of the input-output correlation, :math:`\Sigma_{yx}\Sigma_{xx}^{-1/2} = U S V^\top`.

    Saxe, McClelland & Ganguli (2013), arXiv:1312.6120, eq. (3). With whitened inputs
    :math:`\tilde x = \Sigma_{xx}^{-1/2} x` the loss
    :math:`L = \frac1{2P}\sum_\mu\lVert y_\mu - W\tilde x_\mu\rVert^2` has gradient
    :math:`W - \Sigma_{yx}\Sigma_{xx}^{-1/2}` in the product :math:`W`, so each mode
    :math:`(s_\alpha, u_\alpha, v_\alpha)` is learnt independently (see :func:`mode_dynamics`).
    Train on ``x @ modes.whitening`` for the theory to apply.

    Args:
      x: inputs, shape ``(P, n_in)``.
      y: targets, shape ``(P, n_out)``.
      whiten: whiten the inputs first (default). With ``False`` the SVD is of
        :math:`\Sigma_{yx}` itself and ``whitening`` is the identity.
      rcond: eigenvalues of :math:`\Sigma_{xx}` below ``rcond * max eigenvalue`` are treated as
        zero in the pseudo-inverse square root (default ``n_in * eps``).
      rank: keep only the ``rank`` strongest modes (default: all
        :math:`\min(n_{in}, n_{out})`), e.g. the nonzero modes of a low-rank teacher.

    Returns:
      :class:`Modes` ``(s, u, v, whitening)``.

    Example:
      >>> import jax.numpy as jnp
      >>> m = mode_decomposition(2.0 * jnp.eye(2), jnp.array([[3.0, 0.0], [0.0, 1.0]]))
      >>> [round(float(v), 4) for v in m.s]  # 3/sqrt(2), 1/sqrt(2)
      [2.1213, 0.7071]
    """
    sigma_xx, sigma_yx = correlations(x, y)
    n_in = sigma_xx.shape[0]
    if rcond is not None:
        _checks.real(rcond, "rcond", minimum=0, fix="rcond is a relative eigenvalue cutoff.")
    if whiten:
        evals, evecs = jnp.linalg.eigh(sigma_xx)
        eps = jnp.finfo(evals.dtype).eps
        cutoff = (n_in * eps if rcond is None else rcond) * jnp.max(evals)
        inv_sqrt = jnp.where(evals > cutoff, 1.0 / jnp.sqrt(jnp.where(evals > cutoff, evals, 1)), 0)
        whitening = (evecs * inv_sqrt[None, :]) @ evecs.T
    else:
        whitening = jnp.eye(n_in, dtype=sigma_xx.dtype)
    u, s, vt = jnp.linalg.svd(sigma_yx @ whitening, full_matrices=False)
    if rank is not None:
        rank = _checks.integer(rank, "rank")
        if rank > s.shape[0]:
            raise ValueError(
                f"rank must be <= min(n_in, n_out) = {s.shape[0]} (the number of modes), "
                f"got {rank}."
            )
        u, s, vt = u[:, :rank], s[:rank], vt[:rank]
    return Modes(s=s, u=u, v=vt.T, whitening=whitening)


def weight_product(weights: Sequence[jax.Array]) -> jax.Array:
    r"""The end-to-end map :math:`W_D \cdots W_1` of a list ``[W_1, ..., W_D]``.

    Each :math:`W_l` has shape ``(..., n_l, n_{l-1})``; leading axes (seeds, times) must agree.

    Example:
      >>> import jax.numpy as jnp
      >>> weight_product([jnp.ones((3, 2)), jnp.ones((1, 3))]).tolist()
      [[3.0, 3.0]]
    """
    weights = _check_weights(weights)
    out = weights[0]
    for w in weights[1:]:
        out = w @ out
    return out


def _check_weights(weights):
    if isinstance(weights, jax.Array) or not isinstance(weights, Sequence) or not weights:
        raise TypeError(
            "weights must be a non-empty list [W_1, ..., W_D] of matrices, got "
            f"{type(weights).__name__}."
        )
    weights = [_checks.real_array(w, f"weights[{i}]") for i, w in enumerate(weights)]
    for i, w in enumerate(weights):
        if w.ndim < 2:
            raise ValueError(f"weights[{i}] must be at least 2-D, got shape {w.shape}.")
    lead = weights[0].shape[:-2]
    for i in range(1, len(weights)):
        prev, w = weights[i - 1], weights[i]
        if w.shape[-1] != prev.shape[-2]:
            raise ValueError(
                f"weights[{i}] (shape {w.shape}) does not compose with weights[{i - 1}] "
                f"(shape {prev.shape}): expected weights[{i}].shape[-1] == {prev.shape[-2]}."
            )
        if w.shape[:-2] != lead:
            raise ValueError(
                f"weights must share their leading (batch) axes: weights[0] has {lead}, "
                f"weights[{i}] has {w.shape[:-2]}."
            )
    return weights


def project_modes(weights: Sequence[jax.Array], u, v) -> jax.Array:
    r"""Effective mode strengths :math:`u_\alpha = u_\alpha^\top W_D \cdots W_1 v_\alpha`.

    Saxe et al. (2013), arXiv:1312.6120: the strength of mode :math:`\alpha` in the network's
    end-to-end map (exactly the balanced-solution variable :math:`u = a^D` for an aligned
    initialisation).

    Args:
      weights: ``[W_1, ..., W_D]``, shapes ``(..., n_l, n_{l-1})`` with common leading axes.
      u: output directions, shape ``(n_out, r)`` (e.g. ``Modes.u[:, :r]``).
      v: input directions, shape ``(n_in, r)``.

    Returns:
      shape ``(..., r)``.

    Example:
      >>> import jax.numpy as jnp
      >>> w = [jnp.diag(jnp.array([2.0, 3.0]))]
      >>> project_modes(w, jnp.eye(2), jnp.eye(2)).tolist()
      [2.0, 3.0]
    """
    w = weight_product(weights)
    u = _checks.real_array(u, "u")
    v = _checks.real_array(v, "v")
    if u.ndim != 2 or v.ndim != 2 or u.shape[1] != v.shape[1]:
        raise ValueError(
            f"u and v must be 2-D (n_out, r) and (n_in, r) with the same r, got shapes {u.shape} "
            f"and {v.shape}."
        )
    if u.shape[0] != w.shape[-2] or v.shape[0] != w.shape[-1]:
        raise ValueError(
            f"the weight product has shape {w.shape[-2:]} (n_out, n_in) but u has shape "
            f"{u.shape} and v has shape {v.shape}; expected u.shape[0] == {w.shape[-2]} and "
            f"v.shape[0] == {w.shape[-1]}."
        )
    return jnp.einsum("ia,...ij,ja->...a", u, w, v)
