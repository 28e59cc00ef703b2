r"""Full-batch gradient descent on deep linear networks, vmapped over seeds.

Loss (Saxe, McClelland & Ganguli 2013, arXiv:1312.6120, eq. 1 up to normalisation):

.. math::
    L = \frac{1}{2P}\sum_\mu \lVert y_\mu - W_D\cdots W_1 x_\mu\rVert^2
      = \tfrac12\operatorname{tr}(W\Sigma_{xx}W^\top) - \operatorname{tr}(W\Sigma_{yx}^\top)
        + \tfrac12\operatorname{tr}\Sigma_{yy},\qquad W = W_D\cdots W_1,

so one step is :math:`W_l \leftarrow W_l - \eta\,\partial L/\partial W_l` and only the
correlations enter (the cost per step does not depend on :math:`P`). With whitened inputs this
is the Euler discretisation of :func:`~nnlab.deeplinear.mode_dynamics` with :math:`\tau = 1/\eta`
and time counted in steps.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from nnlab import _checks

from ._modes import Modes, _check_data, correlations, mode_decomposition, project_modes

Init = Literal["aligned", "orthogonal", "random"]
_INITS = ("aligned", "orthogonal", "random")


class Simulation(NamedTuple):
    """Output of :func:`simulate`.

    Attributes:
      steps: logged step numbers, ``(n_log,)``, starting at 0 (the time axis, :math:`t` in units
        where :math:`\\tau = 1/\\eta`).
      mode_strengths: :math:`u_\\alpha^\\top W_D\\cdots W_1 v_\\alpha` at the logged steps,
        ``(n_seeds, n_log, r)``.
      loss: the training loss at the logged steps, ``(n_seeds, n_log)``.
      weights: the final ``[W_1, ..., W_D]``, each with a leading seed axis.
    """

    steps: jax.Array
    mode_strengths: jax.Array
    loss: jax.Array
    weights: list[jax.Array]


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    return int(value)


def _check_widths(widths) -> tuple[int, ...]:
    if isinstance(widths, (int, np.integer)) or not isinstance(widths, Sequence):
        raise TypeError(
            f"widths must be a sequence (n_in, n_1, ..., n_out), got {type(widths).__name__}."
        )
    widths = tuple(widths)
    if len(widths) < 2:
        raise ValueError(f"widths must have at least 2 entries (n_in, n_out), got {widths!r}.")
    for i, w in enumerate(widths):
        _check_int(w, f"widths[{i}]", 1)
    return tuple(int(w) for w in widths)


def _check_scale(init_scale) -> None:
    _checks.real(init_scale, "init_scale", minimum=0, fix="init_scale is the per-layer scale a0.")


def init_weights(
    key: jax.Array,
    widths: Sequence[int],
    *,
    init: Init = "aligned",
    init_scale=1e-2,
    u=None,
    v=None,
    dtype=None,
) -> list[jax.Array]:
    r"""Initial weights ``[W_1, ..., W_D]`` of a deep linear network, ``W_l`` ``(n_l, n_{l-1})``.

    * ``'aligned'`` (the balanced, decoupled initial condition of Saxe et al. 2013,
      arXiv:1312.6120, Sec. 3): with :math:`r` orthonormal mode pairs ``u`` ``(n_out, r)``,
      ``v`` ``(n_in, r)`` and random orthonormal hidden frames :math:`Q_l` ``(n_l, r)``,
      :math:`W_1 = a_0 Q_1 V^\top`, :math:`W_l = a_0 Q_l Q_{l-1}^\top`,
      :math:`W_D = a_0 U Q_{D-1}^\top`; every layer carries :math:`a_0` = ``init_scale`` on each
      mode, so :math:`W_D\cdots W_1 = a_0^D U V^\top` and :math:`u_\alpha(0) = a_0^D` (choose
      ``init_scale = u0 ** (1 / depth)``). Needs :math:`r \le \min_l n_l`; pass the first
      ``r`` modes, e.g. ``u=modes.u[:, :r]``.
    * ``'orthogonal'``: :math:`W_l = a_0 \times` a Haar-random (semi-)orthogonal matrix.
    * ``'random'``: i.i.d. :math:`(W_l)_{ij} \sim \mathcal N(0, a_0^2/n_{l-1})`.

    Args:
      key: PRNG key.
      widths: ``(n_in, n_1, ..., n_{D-1}, n_out)``; the depth is ``len(widths) - 1``.
      init: ``'aligned'``, ``'orthogonal'`` or ``'random'``.
      init_scale: per-layer scale :math:`a_0 \ge 0` (small for the saddle-to-saddle regime).
      u, v: mode directions, required for ``'aligned'``.
      dtype: floating dtype (default: JAX's default float).

    Returns:
      list of ``len(widths) - 1`` matrices.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> ws = init_weights(jax.random.key(0), (3, 5, 2), init="aligned", init_scale=0.1,
      ...                   u=jnp.eye(2), v=jnp.eye(3)[:, :2])
      >>> [w.shape for w in ws]
      [(5, 3), (2, 5)]
      >>> bool(jnp.allclose(ws[1] @ ws[0], 0.01 * jnp.eye(2, 3), atol=1e-6))
      True
    """
    key = _checks.prng_key(key, "key")
    widths = _check_widths(widths)
    if init not in _INITS:
        raise ValueError(f"init must be one of {_INITS}, got {init!r}.")
    _check_scale(init_scale)
    dtype = jnp.result_type(float) if dtype is None else dtype
    depth = len(widths) - 1
    keys = jax.random.split(key, depth)
    scale = jnp.asarray(init_scale, dtype)
    if init == "random":
        return [
            scale * jax.random.normal(k, (n_out, n_in), dtype) / np.sqrt(n_in)
            for k, n_in, n_out in zip(keys, widths[:-1], widths[1:])
        ]
    if init == "orthogonal":
        out = []
        for k, n_in, n_out in zip(keys, widths[:-1], widths[1:]):
            q = jax.random.orthogonal(k, max(n_in, n_out), dtype=dtype)
            out.append(scale * q[:n_out, :n_in])
        return out
    if u is None or v is None:
        raise ValueError("init='aligned' needs the mode directions u (n_out, r) and v (n_in, r).")
    u = jnp.asarray(u, dtype)
    v = jnp.asarray(v, dtype)
    if u.ndim != 2 or v.ndim != 2 or u.shape[1] != v.shape[1]:
        raise ValueError(
            f"u and v must be 2-D (n_out, r) and (n_in, r) with the same r, got shapes {u.shape} "
            f"and {v.shape}."
        )
    if u.shape[0] != widths[-1] or v.shape[0] != widths[0]:
        raise ValueError(
            f"u must have n_out = {widths[-1]} rows and v n_in = {widths[0]} rows (from widths "
            f"{widths}), got shapes {u.shape} and {v.shape}."
        )
    r = u.shape[1]
    if r > min(widths):
        raise ValueError(
            f"init='aligned' with r = {r} modes needs every width >= r, got widths {widths}; "
            f"pass fewer modes (u[:, :k], v[:, :k]) or wider hidden layers."
        )
    frames = (
        [v]
        + [jax.random.orthogonal(k, n, dtype=dtype)[:, :r] for k, n in zip(keys[1:], widths[1:-1])]
        + [u]
    )
    return [scale * frames[l + 1] @ frames[l].T for l in range(depth)]


def _loss(weights, sigma_xx, sigma_yx, half_tr_yy):
    w = weights[0]
    for m in weights[1:]:
        w = m @ w
    return 0.5 * jnp.sum((w @ sigma_xx) * w) - jnp.sum(w * sigma_yx) + half_tr_yy


@functools.partial(jax.jit, static_argnames=("widths", "init", "n_log", "log_every"))
def _run(
    keys,
    sigma_xx,
    sigma_yx,
    half_tr_yy,
    u,
    v,
    u_init,
    v_init,
    lr,
    init_scale,
    *,
    widths,
    init,
    n_log,
    log_every,
):
    grad = jax.grad(_loss)

    def one_seed(k):
        w0 = init_weights(
            k, widths, init=init, init_scale=init_scale, u=u_init, v=v_init, dtype=sigma_xx.dtype
        )

        def step(ws, _):
            g = grad(ws, sigma_xx, sigma_yx, half_tr_yy)
            return [w - lr * gw for w, gw in zip(ws, g)], None

        def record(ws):
            return project_modes(ws, u, v), _loss(ws, sigma_xx, sigma_yx, half_tr_yy)

        def block(ws, _):
            ws, _ = lax.scan(step, ws, None, length=log_every)
            return ws, record(ws)

        first = record(w0)
        ws, (modes, losses) = lax.scan(block, w0, None, length=n_log)
        modes = jnp.concatenate([first[0][None], modes], axis=0)
        losses = jnp.concatenate([first[1][None], losses], axis=0)
        return modes, losses, ws

    return jax.vmap(one_seed)(keys)


def simulate(
    key: jax.Array,
    x,
    y,
    hidden_widths: Sequence[int],
    *,
    lr,
    n_steps: int,
    log_every: int = 1,
    n_seeds: int = 1,
    init: Init = "aligned",
    init_scale=1e-2,
    modes: Modes | None = None,
    n_aligned: int | None = None,
) -> Simulation:
    r"""Train deep linear networks by full-batch gradient descent and record their mode strengths.

    Minimises :math:`L = \frac1{2P}\sum_\mu\lVert y_\mu - W_D\cdots W_1x_\mu\rVert^2` with
    :math:`W_l \leftarrow W_l - \eta\,\partial L/\partial W_l` (a ``jit``-compiled
    ``lax.scan``, ``vmap``-ped over ``n_seeds`` independent initialisations), and records the
    effective mode strengths :func:`project_modes` every ``log_every`` steps. With whitened
    inputs (:math:`\Sigma_{xx} = I`, e.g. ``x @ modes.whitening``), ``init='aligned'`` and small
    :math:`\eta`, mode :math:`\alpha` follows
    :func:`~nnlab.deeplinear.mode_dynamics` ``(s_α, init_scale**D, steps, tau=1/lr, depth=D)``
    (Saxe, McClelland & Ganguli 2013, arXiv:1312.6120).

    Args:
      key: PRNG key (split into ``n_seeds`` keys).
      x: inputs ``(P, n_in)``.
      y: targets ``(P, n_out)``.
      hidden_widths: ``(n_1, ..., n_{D-1})``; ``()`` gives a single layer (:math:`D = 1`).
      lr: learning rate :math:`\eta > 0` (may be traced, e.g. under ``vmap``).
      n_steps: number of gradient steps, a multiple of ``log_every``.
      log_every: record every this many steps (step 0 is always recorded).
      n_seeds: number of independent initialisations.
      init: ``'aligned'`` (balanced, decoupled), ``'orthogonal'`` or ``'random'``
        (see :func:`init_weights`).
      init_scale: per-layer scale :math:`a_0` (for ``'aligned'``, :math:`u_\alpha(0) = a_0^D`).
      modes: the modes to align with and to project on; default
        ``mode_decomposition(x, y, whiten=False)`` (the modes of the data as given).
      n_aligned: how many leading modes ``init='aligned'`` initialises (default: as many as the
        narrowest layer allows); the others start at exactly 0.

    Returns:
      :class:`Simulation` ``(steps, mode_strengths, loss, weights)`` with
      ``mode_strengths`` ``(n_seeds, n_steps // log_every + 1, r)``, ``r = len(modes.s)``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from nnlab.deeplinear import hierarchical_data, mode_dynamics, mode_decomposition
      >>> data = hierarchical_data(2)
      >>> m = mode_decomposition(data.x, data.y)
      >>> sim = simulate(jax.random.key(0), data.x, data.y, (8,), lr=0.01, n_steps=1000,
      ...                log_every=100, init_scale=0.1, modes=m)
      >>> theory = mode_dynamics(m.s[None, :], 0.01, sim.steps[:, None], tau=100.0, depth=2)
      >>> bool(jnp.allclose(sim.mode_strengths[0], theory, rtol=0.05, atol=1e-3))
      True
    """
    key = _checks.prng_key(key, "key")
    x, y = _check_data(x, y)
    if isinstance(hidden_widths, int | np.integer | str) or not isinstance(hidden_widths, Sequence):
        raise TypeError(
            f"hidden_widths must be a sequence of widths such as (8,) or () for a single layer, "
            f"got {hidden_widths!r}."
        )
    hidden = _check_widths((1, *hidden_widths, 1))[1:-1] if len(hidden_widths) else ()
    n_steps = _check_int(n_steps, "n_steps", 0)
    log_every = _check_int(log_every, "log_every", 1)
    n_seeds = _check_int(n_seeds, "n_seeds", 1)
    if n_steps % log_every:
        raise ValueError(
            f"n_steps must be a multiple of log_every, got n_steps={n_steps}, "
            f"log_every={log_every}."
        )
    if init not in _INITS:
        raise ValueError(f"init must be one of {_INITS}, got {init!r}.")
    _checks.real(lr, "lr", positive=True, fix="lr is the learning rate η.")
    _check_scale(init_scale)
    widths = (x.shape[1], *hidden, y.shape[1])
    if modes is None:
        modes = mode_decomposition(x, y, whiten=False)
    elif not isinstance(modes, Modes):
        raise TypeError(
            f"modes must be a Modes from mode_decomposition, got {type(modes).__name__}."
        )
    u = jnp.asarray(modes.u, x.dtype)
    v = jnp.asarray(modes.v, x.dtype)
    if u.ndim != 2 or v.ndim != 2 or u.shape[0] != widths[-1] or v.shape[0] != widths[0]:
        raise ValueError(
            f"modes.u must be (n_out={widths[-1]}, r) and modes.v (n_in={widths[0]}, r), got "
            f"shapes {u.shape} and {v.shape}."
        )
    r_max = min(u.shape[1], *widths)
    n_aligned = r_max if n_aligned is None else _check_int(n_aligned, "n_aligned", 1)
    if init == "aligned" and n_aligned > r_max:
        raise ValueError(
            f"n_aligned must be <= {r_max} (the number of modes and the narrowest width), "
            f"got {n_aligned}."
        )
    sigma_xx, sigma_yx = correlations(x, y)
    half_tr_yy = 0.5 * jnp.sum(y * y) / x.shape[0]
    keys = jax.random.split(key, n_seeds)
    strengths, losses, weights = _run(
        keys,
        sigma_xx,
        sigma_yx,
        half_tr_yy,
        u,
        v,
        u[:, :n_aligned],
        v[:, :n_aligned],
        jnp.asarray(lr, x.dtype),
        jnp.asarray(init_scale, x.dtype),
        widths=widths,
        init=init,
        n_log=n_steps // log_every,
        log_every=log_every,
    )
    steps = jnp.arange(n_steps // log_every + 1) * log_every
    return Simulation(steps=steps, mode_strengths=strengths, loss=losses, weights=list(weights))
