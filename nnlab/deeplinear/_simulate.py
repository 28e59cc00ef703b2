r"""Deep linear networks as nnlab networks, trained by :func:`nnlab.train.train_ensemble`.

The network is ``serial(Dense(n_1, W_std, b_std=None, parameterization='standard'), ...,
Dense(n_out, ...))`` without activations: :math:`f(x) = W_D\cdots W_1 x`, the layer
``Dense`` storing :math:`W_l^\top` (``(n_{l-1}, n_l)``, as ``x @ W``). Full-batch gradient
descent (``optax.sgd(lr)``) on nnlab.train's loss
:math:`L = \frac{1}{2P}\sum_\mu \lVert y_\mu - W_D\cdots W_1 x_\mu\rVert^2` is the convention
of Saxe, McClelland & Ganguli (2014, arXiv:1312.6120, eq. 1 up to normalisation): with
whitened inputs it is the Euler discretisation of :func:`~nnlab.deeplinear.mode_dynamics` with
:math:`\tau = 1/\eta` and time counted in steps, so no rate conversion is needed.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnlab import _checks
from nnlab import layers as nl
from nnlab.train import Data, train_ensemble

from ._modes import Modes, _check_data, mode_decomposition
from ._theory import ModeTrajectory

Init = Literal["aligned", "orthogonal", "random"]
_INITS = ("aligned", "orthogonal", "random")


def _check_widths(widths, name: str = "widths") -> tuple[int, ...]:
    if isinstance(widths, int | np.integer | str) or not isinstance(widths, Sequence):
        raise TypeError(f"{name} must be a sequence of ints, got {widths!r}.")
    return tuple(_checks.integer(w, f"{name}[{i}]") for i, w in enumerate(widths))


def _check_W_std(W_std) -> None:
    _checks.real(W_std, "W_std", minimum=0, fix="W_std is the per-layer weight scale.")


def network(widths: Sequence[int], *, W_std=1.0) -> nl.Serial:
    r"""The deep linear network ``serial(Dense(n_1), ..., Dense(n_D))``, no biases.

    Every layer is ``Dense(n_l, W_std, b_std=None, parameterization='standard')``: its own
    ``init`` draws :math:`(W_l)_{ij} \sim \mathcal N(0, W_\mathrm{std}^2/n_{l-1})` (the
    ``'random'`` initialisation of :func:`init_params`), and ``apply`` is ``x @ W``.

    Args:
      widths: the layer widths ``(n_1, ..., n_{D-1}, n_out)``; the depth is ``len(widths)``.
      W_std: weight scale of the layers' own initialisation.

    Example:
      >>> import jax
      >>> net = network((5, 2), W_std=0.1)
      >>> _, params = net.init(jax.random.key(0), (4, 3))
      >>> [p["W"].shape for p in params], net.apply(params, jax.numpy.ones((4, 3))).shape
      ([(3, 5), (5, 2)], (4, 2))
    """
    widths = _check_widths(widths)
    if not widths:
        raise ValueError("widths must name at least one layer (n_out,), got ().")
    _check_W_std(W_std)
    return nl.serial(
        *(nl.Dense(n, W_std=W_std, b_std=None, parameterization="standard") for n in widths)
    )


def init_params(
    key: jax.Array,
    widths: Sequence[int],
    *,
    init: Init = "aligned",
    W_std=1e-2,
    u=None,
    v=None,
    dtype=None,
) -> tuple[dict, ...]:
    r"""Initial parameters of :func:`network` ``(widths[1:])``: ``({'W': W_1ᵀ, 'b': None}, ...)``.

    * ``'aligned'`` (the balanced, decoupled initial condition of Saxe et al. 2014,
      arXiv:1312.6120, Sec. 3): with :math:`r` orthonormal mode pairs ``u`` ``(n_out, r)``,
      ``v`` ``(n_in, r)`` and random orthonormal hidden frames :math:`Q_l` ``(n_l, r)``,
      :math:`W_1 = a_0 Q_1 V^\top`, :math:`W_l = a_0 Q_l Q_{l-1}^\top`,
      :math:`W_D = a_0 U Q_{D-1}^\top` with :math:`a_0` = ``W_std``: every layer carries
      :math:`a_0` on each mode, so :math:`W_D\cdots W_1 = a_0^D U V^\top` and
      :math:`u_\alpha(0) = a_0^D` (choose ``W_std = u0 ** (1 / depth)``). Needs
      :math:`r \le \min_l n_l`; pass the first ``r`` modes, e.g. ``u=modes.u[:, :r]``.
    * ``'orthogonal'``: :math:`W_l = a_0 \times` a Haar-random (semi-)orthogonal matrix.
    * ``'random'``: the network's own ``'standard'`` initialisation,
      :math:`(W_l)_{ij} \sim \mathcal N(0, W_\mathrm{std}^2/n_{l-1})`.

    Args:
      key: PRNG key.
      widths: ``(n_in, n_1, ..., n_{D-1}, n_out)``; the depth is ``len(widths) - 1``.
      init: ``'aligned'``, ``'orthogonal'`` or ``'random'``.
      W_std: per-layer weight scale :math:`a_0 \ge 0` (small for the saddle-to-saddle regime).
      u, v: mode directions, required for ``'aligned'``.
      dtype: floating dtype (default: JAX's default float).

    Returns:
      the parameter tuple of ``network(widths[1:])``, ``W`` of layer ``l`` of shape
      ``(n_{l-1}, n_l)``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> ps = init_params(jax.random.key(0), (3, 5, 2), init="aligned", W_std=0.1,
      ...                  u=jnp.eye(2), v=jnp.eye(3)[:, :2])
      >>> [p["W"].shape for p in ps]
      [(3, 5), (5, 2)]
      >>> bool(jnp.allclose(ps[0]["W"] @ ps[1]["W"], 0.01 * jnp.eye(3, 2), atol=1e-6))
      True
    """
    key = _checks.prng_key(key, "key")
    widths = _check_widths(widths)
    if len(widths) < 2:
        raise ValueError(f"widths must have at least 2 entries (n_in, n_out), got {widths!r}.")
    init = _checks.choice(init, "init", _INITS)
    _check_W_std(W_std)
    dtype = jnp.result_type(float) if dtype is None else dtype
    scale = jnp.asarray(W_std, dtype)
    if init == "random":
        _, params = network(widths[1:], W_std=W_std).init(key, (1, widths[0]))
        return jax.tree_util.tree_map(lambda w: w.astype(dtype), params)
    keys = jax.random.split(key, len(widths) - 1)
    if init == "orthogonal":
        mats = [  # W_l = a0 Q[:n_l, :n_{l-1}], stored transposed
            jax.random.orthogonal(k, max(n_in, n_out), dtype=dtype)[:n_out, :n_in].T
            for k, n_in, n_out in zip(keys, widths[:-1], widths[1:])
        ]
        return tuple({"W": scale * m, "b": None} for m in mats)
    if u is None or v is None:
        raise ValueError("init='aligned' needs the mode directions u (n_out, r) and v (n_in, r).")
    u, v = jnp.asarray(u, dtype), jnp.asarray(v, dtype)
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
    hidden = [
        jax.random.orthogonal(k, n, dtype=dtype)[:, :r] for k, n in zip(keys[1:], widths[1:-1])
    ]
    frames = [v, *hidden, u]
    return tuple({"W": scale * a @ b.T, "b": None} for a, b in itertools.pairwise(frames))


def _mode_strength(u, v):
    """Observable :math:`u_\\alpha^\\top f(v_\\alpha)`, the end-to-end map read by apply."""

    def fn(apply_fn, params, params0, data):
        return jnp.einsum("ai,ia->a", apply_fn(params, v.T), u)

    return fn


def _check_lr(lr):
    if np.ndim(lr) == 0:
        return _checks.real(lr, "lr", positive=True, fix="lr is the learning rate η.")
    lr = _checks.real_array(lr, "lr")
    if lr.ndim != 1 or lr.shape[0] < 1 or not bool(jnp.all(jnp.isfinite(lr) & (lr > 0))):
        raise ValueError(
            f"lr must be a positive rate or a non-empty 1-D array of positive, finite rates, "
            f"got {np.asarray(lr)!r}."
        )
    return lr


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
    W_std=1e-2,
    modes: Modes | None = None,
    n_aligned: int | None = None,
) -> ModeTrajectory:
    r"""Train deep linear networks by full-batch gradient descent and record their mode strengths.

    Builds :func:`network` ``(hidden_widths + (n_out,))`` and trains it with
    :func:`nnlab.train.train_ensemble` and ``optax.sgd(lr)`` on
    :math:`L = \frac1{2P}\sum_\mu\lVert y_\mu - W_D\cdots W_1x_\mu\rVert^2`, from
    :func:`init_params` for each of ``n_seeds`` keys (and each rate if ``lr`` is an array:
    one compiled program for the whole grid). Every ``log_every`` steps it logs the mode
    strengths :math:`u_\alpha^\top W_D\cdots W_1 v_\alpha`, read through the network's
    ``apply`` on the inputs :math:`v_\alpha`, and the loss. With whitened inputs
    (:math:`\Sigma_{xx} = I`, e.g. ``x @ modes.whitening``), ``init='aligned'`` and small
    :math:`\eta`, mode :math:`\alpha` follows :func:`~nnlab.deeplinear.mode_trajectory`
    ``(s, W_std**D, steps, depth=D, tau=1/lr)`` (Saxe, McClelland & Ganguli 2014,
    arXiv:1312.6120). Matmuls run at ``'highest'`` precision (no TF32 on GPUs).

    Args:
      key: PRNG key (split into ``n_seeds`` keys).
      x: inputs ``(P, n_in)``.
      y: targets ``(P, n_out)``.
      hidden_widths: ``(n_1, ..., n_{D-1})``; ``()`` gives a single layer (:math:`D = 1`).
      lr: learning rate :math:`\eta > 0`, or a 1-D array of rates (an ``'lr'`` axis).
      n_steps: number of gradient steps, a multiple of ``log_every``.
      log_every: record every this many steps (step 0 is always recorded).
      n_seeds: number of independent initialisations.
      init: ``'aligned'`` (balanced, decoupled), ``'orthogonal'`` or ``'random'``
        (see :func:`init_params`).
      W_std: per-layer weight scale :math:`a_0` (for ``'aligned'``, :math:`u_\alpha(0) =
        a_0^D`).
      modes: the modes to align with and to project on; default
        ``mode_decomposition(x, y, whiten=False)`` (the modes of the data as given).
      n_aligned: how many leading modes ``init='aligned'`` initialises (default: as many as the
        narrowest layer allows); the others start at exactly 0.

    Returns:
      :class:`ModeTrajectory` with ``mode_strength`` ``('seed', ['lr',] 'time', 'mode')``,
      ``loss``, ``weight_product`` ``(..., 'out', 'in')``, ``diverged`` and ``s``; ``time``
      coordinates are the logged steps (``time_unit='step'``).

    Example:
      >>> import jax
      >>> from nnlab.deeplinear import hierarchical_data, mode_decomposition, mode_trajectory
      >>> from nnlab.evaluate import Comparison
      >>> data = hierarchical_data(2)
      >>> m = mode_decomposition(data.x, data.y)
      >>> sim = simulate(jax.random.key(0), data.x, data.y, (8,), lr=0.01, n_steps=1000,
      ...                log_every=100, W_std=0.1, modes=m)
      >>> theory = mode_trajectory(m.s, 0.01, sim.time, depth=2, tau=100.0, time_unit="step")
      >>> c = Comparison.from_records("u", theory, sim, "mode_strength", tolerance=0.02)
      >>> sim.dims_of("mode_strength"), bool(c.passed)
      (('seed', 'time', 'mode'), True)
    """
    key = _checks.prng_key(key, "key")
    x, y = _check_data(x, y)
    if isinstance(hidden_widths, int | np.integer | str) or not isinstance(hidden_widths, Sequence):
        raise TypeError(
            f"hidden_widths must be a sequence of widths such as (8,) or () for a single layer, "
            f"got {hidden_widths!r}."
        )
    hidden = _check_widths(hidden_widths, "hidden_widths")
    n_steps = _checks.integer(n_steps, "n_steps")
    log_every = _checks.integer(log_every, "log_every")
    n_seeds = _checks.integer(n_seeds, "n_seeds")
    if n_steps % log_every:
        raise ValueError(
            f"n_steps must be a multiple of log_every, got n_steps={n_steps}, "
            f"log_every={log_every}."
        )
    init = _checks.choice(init, "init", _INITS)
    lr = _check_lr(lr)
    _check_W_std(W_std)
    widths = (x.shape[1], *hidden, y.shape[1])
    if modes is None:
        modes = mode_decomposition(x, y, whiten=False)
    elif not isinstance(modes, Modes):
        raise TypeError(
            f"modes must be a Modes from mode_decomposition, got {type(modes).__name__}."
        )
    u, v = jnp.asarray(modes.u, x.dtype), jnp.asarray(modes.v, x.dtype)
    if u.ndim != 2 or v.ndim != 2 or u.shape[0] != widths[-1] or v.shape[0] != widths[0]:
        raise ValueError(
            f"modes.u must be (n_out={widths[-1]}, r) and modes.v (n_in={widths[0]}, r), got "
            f"shapes {u.shape} and {v.shape}."
        )
    r_max = min(u.shape[1], *widths)
    n_aligned = r_max if n_aligned is None else _checks.integer(n_aligned, "n_aligned")
    if init == "aligned" and n_aligned > r_max:
        raise ValueError(
            f"n_aligned must be <= {r_max} (the number of modes and the narrowest width), "
            f"got {n_aligned}."
        )
    net = network(widths[1:], W_std=W_std)
    init_fn = functools.partial(
        init_params,
        widths=widths,
        init=init,
        W_std=W_std,
        u=u[:, :n_aligned],
        v=v[:, :n_aligned],
        dtype=x.dtype,
    )
    swept = np.ndim(lr) == 1
    rec = train_ensemble(
        net.apply,
        init_fn,
        Data(x, y),
        optimizer=(lambda lr: optax.sgd(lr)) if swept else optax.sgd(lr),
        hyperparams={"lr": lr} if swept else None,
        seeds=n_seeds,
        key=key,
        steps=n_steps,
        log_every=log_every,
        observables={"mode_strength": _mode_strength(u, v)},
        precision="highest",
    )
    lead = rec.axes
    product = functools.reduce(jnp.matmul, [p["W"] for p in rec.params])
    return ModeTrajectory(
        {
            "mode_strength": ((*lead, "time", "mode"), rec.observables["mode_strength"]),
            "loss": ((*lead, "time"), rec.train_loss),
            "weight_product": ((*lead, "out", "in"), jnp.swapaxes(product, -1, -2)),
            "diverged": (lead, rec.diverged),
            "s": ("mode", modes.s),
        },
        coords={**rec.coords, "time": rec.step, "mode": np.arange(u.shape[1])},
        meta={"time_unit": "step"},
    )
