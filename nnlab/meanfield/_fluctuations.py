r"""Finite-N fluctuations of mean-field networks across initialisations.

At initialisation ``f_N(x) = (1/N) Σ_i a_i σ(w_i·x)`` is an average of ``N`` i.i.d. terms, so
``Var f_N(x) = E[a²] E[σ(w·x)²] / N`` exactly; along training the particle system stays within
``O(N^{-1/2})`` of its ``N → ∞`` limit on finite time intervals (Mei, Montanari & Nguyen 2018,
arXiv:1804.06561; Rotskoff & Vanden-Eijnden 2018, arXiv:1805.00915).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import _checks
from nnlab import layers as nl
from nnlab.record import Record

from ._particles import ParticleTrajectory, activation_layer, meanfield_network


def init_output_variance(x, n_particles: int, *, activation="relu", W_std=1.0) -> jnp.ndarray:
    r"""``Var f_N(x) = E[a²] E[σ(w·x)²] / N`` of :func:`meanfield_network` at initialisation.

    ``a ~ N(0, 1)`` and ``w ~ N(0, W_std²/d I)``, so ``E[a²] E[σ(w·x)²]`` is the NNGP at
    ``(x, x)`` of the same architecture in the NTK parameterization,
    ``serial(Dense(·, W_std, b_std=None), σ, Dense(1, b_std=None))`` (:func:`nnlab.kernel`:
    closed forms for ReLU and erf, quadrature for tanh).

    Args:
      x: inputs ``(P, d)``.
      n_particles: the width ``N``.
      activation, W_std: as in :func:`meanfield_network`.

    Returns:
      ``(P,)`` variances.

    Example:
      >>> import jax.numpy as jnp
      >>> x = jnp.array([[1.0, -2.0, 0.5]])
      >>> round(float(init_output_variance(x, 10)[0]), 6)  # ReLU: |x|² / (2 d N)
      0.0875
    """
    from nnlab import kernel

    x = _checks.finite_array(x, "x", ndim=2, shape_hint="(P, d)")
    n = _checks.integer(n_particles, "n_particles")
    _checks.real(W_std, "W_std", positive=True)
    net = nl.serial(
        nl.Dense(1, W_std=W_std, b_std=None), activation_layer(activation), nl.Dense(1, b_std=None)
    )
    return jnp.diagonal(kernel(net, x, get="nngp")) / n


def seed_fluctuations(traj: ParticleTrajectory, reference: ParticleTrajectory | None = None):
    r"""The spread of the outputs across seeds, and their distance to a reference.

    From ``outputs`` ``(..., 'seed', ..., 'time', 'probe')`` of :func:`particle_gradient_flow`:

    * ``std`` ``(..., 'time')``: ``sqrt(mean_x Var_seeds f(x))``, the RMS over probe points of
      the sample standard deviation across seeds (``ddof = 1``);
    * ``distance`` ``(..., 'seed', ..., 'time')`` (with ``reference``): ``sqrt(mean_x (f(x) −
      f̄_ref(x))²)`` per seed, with ``f̄_ref`` the reference's seed mean (``('seed', 'time',
      'probe')``, e.g. a much wider network) on the same probes and times.

    Returns:
      A :class:`nnlab.Record` with the trajectory's coordinates and time unit.
    """
    if not isinstance(traj, Record) or "outputs" not in traj:
        raise TypeError("traj must be a ParticleTrajectory with outputs (run it with x_probe).")
    dims = traj.dims_of("outputs")
    if "seed" not in dims:
        raise ValueError(f"traj needs a 'seed' axis to measure fluctuations, it has {dims}.")
    f = np.asarray(traj.outputs)
    s = dims.index("seed")
    std_dims = tuple(d for d in dims if d not in ("seed", "probe"))
    out = {"std": (std_dims, np.sqrt(np.mean(np.var(f, axis=s, ddof=1), axis=-1)))}
    if reference is not None:
        if not isinstance(reference, Record) or "outputs" not in reference:
            raise TypeError("reference must be a ParticleTrajectory with outputs.")
        if reference.dims_of("outputs") != ("seed", "time", "probe"):
            raise ValueError(
                "reference outputs must have dims ('seed', 'time', 'probe') (one width), got "
                f"{reference.dims_of('outputs')}."
            )
        f_ref = np.asarray(reference.outputs).mean(axis=0)
        if f_ref.shape != f.shape[-2:]:
            raise ValueError(
                f"reference has {f_ref.shape} (time, probe) outputs, traj {f.shape[-2:]}; use "
                "the same probes and records."
            )
        out["distance"] = (dims[:-1], np.sqrt(np.mean((f - f_ref) ** 2, axis=-1)))
    axes = {d for v in out.values() for d in v[0]}
    coords = {a: c for a, c in traj.coords.items() if a in axes}
    return Record(out, coords, traj.meta)


def sample_init_output_std(key, x, widths, *, n_seeds: int, activation="relu", W_std=1.0):
    r"""Monte Carlo of :func:`init_output_variance`: the spread of untrained networks.

    For each width ``N``, ``n_seeds`` untrained :func:`meanfield_network` s (keys
    ``split(k_N, n_seeds)``, ``k_N = split(key, len(widths))[i]``) give
    ``sqrt(mean_x Var_seeds f_N(x))`` (``ddof = 1``), which is
    ``sqrt(mean_x E[a²] E[σ(w·x)²] / N)`` up to a relative sampling error of at most
    ``1/sqrt(2 (n_seeds − 1))`` (the bound for fully correlated points).

    Args:
      key: PRNG key.
      x: inputs ``(P, d)``.
      widths: the widths ``N``.
      n_seeds: untrained networks per width (at least 2).
      activation, W_std: as in :func:`meanfield_network`.

    Returns:
      A :class:`nnlab.Record` with ``std`` over ``'width'``.

    Example:
      >>> import jax
      >>> x = jax.random.normal(jax.random.key(1), (8, 3))
      >>> rec = sample_init_output_std(jax.random.key(0), x, [16, 64], n_seeds=256)
      >>> exact = jnp.sqrt(jnp.mean(init_output_variance(x, 1))) / jnp.sqrt(rec.coord("width"))
      >>> bool(jnp.all(jnp.abs(rec["std"] / exact - 1) < 0.2))  # 1/sqrt(2 * 255) = 4.4%
      True
    """
    x = _checks.finite_array(x, "x", ndim=2, shape_hint="(P, d)")
    widths = [_checks.integer(n, "widths") for n in np.atleast_1d(np.asarray(widths))]
    n_seeds = _checks.integer(n_seeds, "n_seeds", minimum=2)
    stds = []
    for k, n in zip(jax.random.split(key, len(widths)), widths):
        net = meanfield_network(n, activation=activation, W_std=W_std)
        keys = jax.random.split(k, n_seeds)
        f0 = jax.jit(jax.vmap(lambda k, net=net: net.apply(net.init(k, x.shape)[1], x)[:, 0]))(keys)
        stds.append(np.sqrt(np.mean(np.var(np.asarray(f0), axis=0, ddof=1))))
    return Record({"std": ("width", np.array(stds))}, {"width": np.asarray(widths, np.float64)})
