r"""Mean-field two-layer networks: the particle system is an nnlab network trained by train.

The network (Mei, Montanari & Nguyen 2018, arXiv:1804.06561; Chizat & Bach 2018,
arXiv:1805.09545; Rotskoff & Vanden-Eijnden 2018, arXiv:1805.00915) is

``serial(Dense(N, W_std, b_std=None, parameterization='meanfield', role='input'), σ,
Dense(1, b_std=None, parameterization='meanfield', role='output'))``,

whose parameters are ``W1`` ``(d, N)`` and ``W2`` ``(N, 1)``, both ``N(0, 1)`` at
initialisation (the 'meanfield' rule of :class:`nnlab.layers.Dense`: ``a = 0, b = 0``, the
constant ``W_std/√d`` in the input layer's multiplier, ``1/N`` in the output layer's). Its
output is the average of ``N`` particles ``θ_i = (a_i, w_i)``,

``f(x) = (1/N) Σ_i a_i σ(w_i·x)``,  ``a_i = W2[i, 0]``,  ``w_i = (W_std/√d) W1[:, i]``,

so ``a_i ~ N(0, 1)`` and ``w_i ~ N(0, W_std²/d · I_d)``. ``lr_multipliers`` gives both layers
the rate factor ``N`` (``c = −1``), so ``optax.chain(optax.sgd(lr), scale_learning_rates(...))``
on ``L = (1/2P) Σ_μ (f(x_μ) − y_μ)²`` is the Euler scheme, step ``dt = lr``, of the mean-field
flow in the raw coordinates ``(W2[i], W1[:, i])``, ``dθ_i/dt = −N ∇_{θ_i} L``. In the particle
coordinates ``(a_i, w_i)`` this reads (``r_μ = f(x_μ) − y_μ``)

``da_i/dt = −(1/P) Σ_μ r_μ σ(w_i·x_μ)``,
``dw_i/dt = −m (1/P) Σ_μ r_μ a_i σ'(w_i·x_μ) x_μ``,  ``m = W_std²/d``:

the flow of Mei et al. with the constant mobility ``m`` on the input weights. With
``W_std = √d`` (``w_i ~ N(0, I_d)``), ``m = 1`` and it is that flow exactly. Either way the
empirical measure ``(1/N) Σ_i δ_{θ_i}`` has an ``N → ∞`` limit (a transport PDE) with
``O(N^{-1/2})`` fluctuations on finite time intervals. Time is the mean-field time
``t = lr · steps``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnlab import _checks
from nnlab import layers as nl
from nnlab.parameterization import scale_learning_rates
from nnlab.record import Record, stack
from nnlab.train import Data, train, train_ensemble

Activation = Literal["relu", "tanh", "erf"]
_ACTIVATIONS = {"relu": nl.Relu, "tanh": nl.Tanh, "erf": nl.Erf}


class ParticleTrajectory(Record):
    r"""What :func:`particle_gradient_flow` records (``*lead`` = ``('width',)``, ``('seed',)``,
    ``('width', 'seed')`` or nothing).

    * ``loss`` ``(*lead, 'time')``: training loss ``(1/2P) Σ_μ (f(x_μ) − y_μ)²``;
    * ``outputs`` ``(*lead, 'time', 'probe')``: ``f`` on the probe inputs (only with
      ``x_probe``);
    * ``a`` ``(*lead, 'particle')`` and ``w`` ``(*lead, 'particle', 'dim')``: the final
      particles (not for several widths, whose particle axes differ);
    * ``diverged`` ``(*lead,)``.

    ``time`` is the mean-field time ``t = lr · steps`` (``meta['time_unit'] == 'time'``).
    """


def activation_layer(activation):
    """``'relu'``, ``'tanh'``, ``'erf'`` as an nnlab layer (a layer is returned as it is)."""
    if isinstance(activation, str):
        return _ACTIVATIONS[_checks.choice(activation, "activation", tuple(_ACTIVATIONS))]()
    if hasattr(activation, "init") and hasattr(activation, "apply"):
        return activation
    raise TypeError(
        f"activation must be one of {tuple(_ACTIVATIONS)} or an nnlab activation layer, got "
        f"{activation!r}."
    )


def meanfield_network(n_particles: int, *, activation="relu", W_std=1.0) -> nl.Serial:
    r"""The mean-field two-layer network ``f(x) = (1/N) Σ_i a_i σ(w_i·x)`` as an nnlab network.

    ``serial(Dense(N, W_std, b_std=None, parameterization='meanfield', role='input'), σ,
    Dense(1, b_std=None, parameterization='meanfield', role='output'))``; the map from its
    parameters to the particles ``(a_i, w_i)`` is in the module docstring and
    :func:`particles`.

    Args:
      n_particles: the width ``N``.
      activation: ``'relu'``, ``'tanh'``, ``'erf'`` (``erf(z)``) or an nnlab activation layer.
      W_std: input-layer scale: ``w_i ~ N(0, W_std²/d · I_d)`` at initialisation.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> net = meanfield_network(4)
      >>> _, params = net.init(jax.random.key(0), (2, 3))
      >>> a, w = particles(params)
      >>> x = jnp.ones((2, 3))
      >>> f = jnp.mean(a[None, :] * jax.nn.relu(x @ w.T), axis=1)  # (1/N) Σ_i a_i σ(w_i·x)
      >>> bool(jnp.allclose(net.apply(params, x)[:, 0], f))
      True
    """
    n_particles = _checks.integer(n_particles, "n_particles")
    _checks.real(W_std, "W_std", positive=True, fix="It is the input-layer weight scale.")
    act = activation_layer(activation)

    def dense(out, role, scale):
        return nl.Dense(out, W_std=scale, b_std=None, parameterization="meanfield", role=role)

    return nl.serial(dense(n_particles, "input", W_std), act, dense(1, "output", 1.0))


def particles(params, *, W_std=1.0) -> tuple[jax.Array, jax.Array]:
    r"""The particles ``(a, w)`` of :func:`meanfield_network` parameters.

    ``a_i = W2[i, 0]`` and ``w_i = (W_std/√d) W1[:, i]``, so that ``f(x) = (1/N) Σ_i a_i
    σ(w_i·x)``. Leading (seed) axes of the parameters are kept.

    Returns:
      ``a`` of shape ``(..., N)`` and ``w`` of shape ``(..., N, d)``.
    """
    if not (isinstance(params, tuple | list) and len(params) == 3):
        raise TypeError(
            "params must be the (input layer, activation, output layer) parameters of "
            f"meanfield_network, got {type(params).__name__}."
        )
    w1, w2 = params[0]["W"], params[2]["W"]
    d = w1.shape[-2]
    return w2[..., 0], jnp.swapaxes(w1, -1, -2) * (W_std / np.sqrt(d))


def check_schedule(n_steps, n_records, seeds):
    """``n_steps`` a multiple of ``n_records - 1`` (records at equal intervals), ``seeds``."""
    n_steps = _checks.integer(n_steps, "n_steps", fix="It is the number of updates.")
    n_records = _checks.integer(n_records, "n_records", minimum=2)
    if n_steps % (n_records - 1):
        raise ValueError(
            f"n_steps ({n_steps}) must be a multiple of n_records - 1 ({n_records - 1})."
        )
    return n_steps, n_records, None if seeds is None else _checks.integer(seeds, "seeds")


def _check_data(x, y, x_probe) -> Data:
    x = _checks.finite_array(x, "x", ndim=2, shape_hint="(P, d)")
    y = _checks.finite_array(y, "y", ndim=(1, 2), shape_hint="(P,) or (P, 1)")
    if y.shape[0] != x.shape[0] or y.shape[1:] not in ((), (1,)):
        raise ValueError(
            f"y must have shape ({x.shape[0]},) or ({x.shape[0]}, 1) (one target per input), "
            f"got {y.shape}."
        )
    if x_probe is not None:
        x_probe = _checks.finite_array(x_probe, "x_probe", ndim=2, shape_hint="(P_probe, d)")
        if x_probe.shape[1] != x.shape[1]:
            raise ValueError(
                f"x_probe must have shape (P_probe, {x.shape[1]}) (the inputs' dimension), "
                f"got {x_probe.shape}."
            )
    return Data(x, y.reshape(-1, 1), x_probe=x_probe)


def particle_gradient_flow(
    key,
    x,
    y,
    *,
    n_particles: int | Sequence[int],
    lr,
    n_steps: int,
    n_records: int = 50,
    seeds: int | None = None,
    x_probe=None,
    activation="relu",
    W_std=1.0,
    batch_size: int | None = None,
) -> ParticleTrajectory:
    r"""Train :func:`meanfield_network` with :func:`nnlab.train.train` at the mean-field rates.

    ``optax.chain(optax.sgd(lr), scale_learning_rates(lr_multipliers(net, params)))`` (rate
    ``lr · N`` on every weight) on ``L = (1/2P) Σ_μ (f(x_μ) − y_μ)²``: the Euler scheme of the
    mean-field particle flow with step ``dt = lr`` (module docstring; Mei, Montanari &
    Nguyen 2018, arXiv:1804.06561), or minibatch SGD on the same scaling with ``batch_size``.
    One run (``seeds=None``: initialised from ``key``, minibatches from
    ``fold_in(key, 1)``) or ``seeds`` runs as one :func:`nnlab.train.train_ensemble`
    (member ``s`` is the one run with key ``jax.random.split(key, seeds)[s]``). A sequence
    of widths runs one ensemble per width (width ``j`` with key ``split(key, n_widths)[j]``;
    :func:`nnlab.train.width_sweep` cannot, since the rates depend on the width), stacked
    along ``'width'``. One run works under ``jax.jit``/``jax.vmap``; ``seeds`` does not
    (:func:`nnlab.train.train_ensemble` lays out its members on the host).

    Args:
      key: PRNG key.
      x: training inputs ``(P, d)``; y: targets ``(P,)`` or ``(P, 1)``.
      n_particles: the width ``N``, or a sequence of widths.
      lr: the mean-field time step ``dt > 0``.
      n_steps: number of steps, a multiple of ``n_records - 1``.
      n_records: recorded times including ``t = 0`` (at least 2).
      seeds: number of independent initialisations (a ``'seed'`` axis), or ``None``.
      x_probe: inputs ``(P_probe, d)`` whose outputs are recorded (``outputs``).
      activation, W_std: as in :func:`meanfield_network`.
      batch_size: minibatch size (``None``: full batch).

    Returns:
      :class:`ParticleTrajectory` over ``time = lr · step``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> x = jax.random.normal(jax.random.key(1), (16, 2))
      >>> traj = particle_gradient_flow(jax.random.key(0), x, jnp.tanh(x[:, 0]),
      ...     n_particles=256, lr=0.1, n_steps=100, n_records=3)
      >>> traj.time.tolist(), bool(traj.loss[-1] < traj.loss[0])
      ([0.0, 5.0, 10.0], True)
    """
    key = _checks.prng_key(key, "key")
    data = _check_data(x, y, x_probe)
    _checks.real(lr, "lr", positive=True, fix="It is the mean-field time step dt.")
    n_steps, n_records, seeds = check_schedule(n_steps, n_records, seeds)

    def run(n, k):
        net = meanfield_network(n, activation=activation, W_std=W_std)

        def init_fn(k):
            return net.init(k, data.x_train.shape)[1]

        mults = nl.lr_multipliers(net, jax.eval_shape(init_fn, k))
        settings = dict(
            optimizer=optax.chain(optax.sgd(lr), scale_learning_rates(mults)),
            steps=n_steps,
            log_every=n_steps // (n_records - 1),
            batch_size=batch_size,
            divergence_factor=None,  # only a non-finite loss or update is a divergence
        )
        if seeds is None:
            return train(net.apply, init_fn(k), data, key=jax.random.fold_in(k, 1), **settings)
        return train_ensemble(net.apply, init_fn, data, seeds=seeds, key=k, **settings)

    def variables(rec, lead):
        out = {"loss": ((*lead, "time"), rec.train_loss), "diverged": (lead, rec.diverged)}
        if rec.probe_outputs is not None:
            out["outputs"] = ((*lead, "time", "probe"), rec.probe_outputs[..., 0])
        return out

    def times(rec):
        return lr * jnp.asarray(rec.step, data.x_train.dtype)

    meta = {"time_unit": "time"}
    if isinstance(n_particles, int | np.integer):
        rec = run(_checks.integer(n_particles, "n_particles"), key)
        a, w = particles(rec.params, W_std=W_std)
        lead = rec.axes
        out = {**variables(rec, lead), "a": ((*lead, "particle"), a)}
        out["w"] = ((*lead, "particle", "dim"), w)
        return ParticleTrajectory(out, coords={**rec.coords, "time": times(rec)}, meta=meta)
    widths = [_checks.integer(n, "n_particles") for n in n_particles]
    recs = [run(n, k) for n, k in zip(widths, jax.random.split(key, len(widths)))]
    parts = [Record(variables(r, r.axes), {**r.coords, "time": times(r)}, meta) for r in recs]
    return ParticleTrajectory._from_record(stack(parts, "width", widths))


def particle_density(a, w, *, bins=40, a_range=None, w_range=None):
    r"""2-D histogram of the particles in ``(a, |w|)``: a snapshot of the empirical density.

    ``ρ_N(a, r) ≈ (1/N) #{i : a_i ∈ bin, |w_i| ∈ bin} / (bin area)`` (a normalised density,
    integrating to 1 over the ranges), the object whose ``N → ∞`` limit the mean-field PDE
    evolves (Mei, Montanari & Nguyen 2018, arXiv:1804.06561).

    Args:
      a: output weights ``(N,)``; w: input weights ``(N, d)`` (e.g. from :func:`particles`).
      bins: number of bins per axis.
      a_range: ``(low, high)`` for ``a`` (default: the data range).
      w_range: ``(low, high)`` for ``|w|`` (default: the data range).

    Returns:
      ``(density, a_edges, r_edges)`` with ``density`` of shape ``(bins, bins)`` indexed
      ``[a_bin, r_bin]``.

    Example:
      >>> import jax
      >>> a, w = particles(meanfield_network(1000).init(jax.random.key(0), (1, 3))[1])
      >>> h, ae, re = particle_density(a, w, bins=10)
      >>> h.shape, ae.shape
      ((10, 10), (11,))
    """
    a = _checks.finite_array(a, "a", ndim=1, shape_hint="(N,)")
    w = _checks.finite_array(w, "w", ndim=2, shape_hint="(N, d)")
    if w.shape[0] != a.shape[0]:
        raise ValueError(f"w must have shape ({a.shape[0]}, d) to match a, got {w.shape}.")
    bins = _checks.integer(bins, "bins")
    for name, rng in (("a_range", a_range), ("w_range", w_range)):
        if rng is not None and (len(rng) != 2 or not float(rng[0]) < float(rng[1])):
            raise ValueError(f"{name} must be (low, high) with low < high, got {rng!r}.")
    r = jnp.linalg.norm(w, axis=1)
    ranges = None
    if a_range is not None or w_range is not None:
        a_range = a_range or (float(a.min()), float(a.max()))
        w_range = w_range or (float(r.min()), float(r.max()))
        ranges = [list(a_range), list(w_range)]
    return jnp.histogram2d(a, r, bins=bins, range=ranges, density=True)
