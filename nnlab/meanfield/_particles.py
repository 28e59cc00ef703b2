r"""Mean-field two-layer networks as interacting particle systems.

The network ``f(x) = (1/N) Σ_i a_i σ(w_i·x)`` is the average of ``N`` particles
``θ_i = (a_i, w_i)``. For the loss ``L = (1/2P) Σ_μ (f(x_μ) - y_μ)²`` the mean-field time scaling
speeds each particle up by ``N``:

``dθ_i/dt = -N ∇_{θ_i} L = -(1/P) Σ_μ (f(x_μ) - y_μ) ∇_θ [a σ(w·x_μ)]|_{θ_i}``,

so that the empirical measure ``ρ_N = (1/N) Σ_i δ_{θ_i}`` converges as ``N → ∞`` to the solution of
a non-linear transport PDE, with ``O(N^{-1/2})`` fluctuations on finite time intervals (Mei,
Montanari & Nguyen 2018, arXiv:1804.06561; Chizat & Bach 2018, arXiv:1805.09545; Rotskoff &
Vanden-Eijnden 2018, arXiv:1805.00915). Gradient descent with step ``dt`` is the Euler scheme
of this flow; with ``batch_size`` it becomes (minibatch) SGD on the same scaling.

Memory: the ``(P, N)`` pre-activations are never formed at once; the data are processed in
chunks of ``chunk_size`` points (accumulated with ``lax.scan``), so memory is
``O(chunk_size · N + N · d)``.
"""

from __future__ import annotations

import functools
import math
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import _checks

Activation = Literal["relu", "tanh", "erf"]
_ACTIVATIONS = ("relu", "tanh", "erf")


class Particles(NamedTuple):
    """Particles ``θ_i = (a_i, w_i)`` of a mean-field two-layer network.

    Attributes:
      a: output weights, shape ``(N,)``.
      w: input weights, shape ``(N, d)``.
    """

    a: jax.Array
    w: jax.Array


class ParticleTrajectory(NamedTuple):
    """What :func:`particle_gradient_flow` records.

    Attributes:
      times: mean-field times ``t = step · dt``, shape ``(n_records,)``.
      loss: training loss ``(1/2P) Σ (f - y)²`` at those times (full batch), ``(n_records,)``.
      f_test: network outputs on ``x_test``, ``(n_records, n_test)`` (``(n_records, 0)``
        without ``x_test``).
      particles: the final :class:`Particles`.
    """

    times: jax.Array
    loss: jax.Array
    f_test: jax.Array
    particles: Particles


def _sigma(activation: str):
    if activation == "relu":
        return jax.nn.relu, lambda z: (z > 0).astype(z.dtype)
    if activation == "tanh":
        return jnp.tanh, lambda z: 1.0 - jnp.tanh(z) ** 2
    if activation == "erf":
        c = 2.0 / math.sqrt(math.pi)
        return jax.lax.erf, lambda z: c * jnp.exp(-(z**2))
    raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {activation!r}.")


def _check_int(value, argname: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{argname} must be an int, got {type(value).__name__} {value!r}.")
    if value < minimum:
        raise ValueError(f"{argname} must be an int >= {minimum}, got {value}.")
    return int(value)


def _check_finite(x, argname: str) -> jax.Array:
    return _checks.real_array(x, argname)


def _check_particles(particles) -> Particles:
    if not isinstance(particles, Particles):
        raise TypeError(
            f"particles must be a Particles(a, w) tuple, got {type(particles).__name__}; "
            "make one with init_particles."
        )
    a, w = _check_finite(particles.a, "particles.a"), _check_finite(particles.w, "particles.w")
    if a.ndim != 1 or w.ndim != 2 or w.shape[0] != a.shape[0]:
        raise ValueError(
            f"particles must have a of shape (N,) and w of shape (N, d); got a {a.shape}, "
            f"w {w.shape}."
        )
    return Particles(a, w)


def _check_inputs(x, d: int, argname: str) -> jax.Array:
    x = _check_finite(x, argname)
    if x.ndim != 2 or x.shape[1] != d:
        raise ValueError(
            f"{argname} must have shape (P, d) with d = {d} (the particles' input dimension), "
            f"got {x.shape}."
        )
    return x


def init_particles(key, n_particles: int, dim: int, *, a_std=1.0, w_std=1.0, dtype=None):
    r"""I.i.d. particles ``a_i ~ N(0, a_std²)``, ``w_i ~ N(0, w_std²/d · I_d)``.

    With inputs of norm ``√d`` the pre-activations ``w_i·x`` have variance ``w_std²``. The
    network output at initialisation has mean 0 and variance ``a_std² E[σ(w·x)²] / N``.

    Args:
      key: PRNG key.
      n_particles: ``N``.
      dim: input dimension ``d``.
      a_std, w_std: standard deviations.
      dtype: float dtype (default: JAX's default float).

    Returns:
      :class:`Particles` with ``a`` of shape ``(N,)`` and ``w`` of shape ``(N, d)``.

    Example:
      >>> p = init_particles(jax.random.key(0), 1000, 3)
      >>> p.a.shape, p.w.shape
      ((1000,), (1000, 3))
    """
    key = _checks.prng_key(key, "key")
    n_particles = _check_int(n_particles, "n_particles")
    dim = _check_int(dim, "dim")
    _checks.real(a_std, "a_std", minimum=0)
    _checks.real(w_std, "w_std", minimum=0)
    dtype = jnp.result_type(float) if dtype is None else dtype
    ka, kw = jax.random.split(key)
    a = a_std * jax.random.normal(ka, (n_particles,), dtype)
    w = (w_std / math.sqrt(dim)) * jax.random.normal(kw, (n_particles, dim), dtype)
    return Particles(a, w)


def _default_chunk(n_points: int, n_particles: int, chunk_size) -> int:
    if chunk_size is None:
        # About 2**22 pre-activations (16 MiB in float32) per chunk.
        chunk_size = max(1, 2**22 // max(n_particles, 1))
    else:
        chunk_size = _check_int(chunk_size, "chunk_size")
    chunk = min(chunk_size, n_points)
    while n_points % chunk:  # a divisor, so that chunks tile the data exactly
        chunk -= 1
    return chunk


def meanfield_apply(particles: Particles, x, *, activation: Activation = "relu", chunk_size=None):
    r"""Network output ``f(x) = (1/N) Σ_i a_i σ(w_i·x)``, computed in chunks of data points.

    Args:
      particles: :class:`Particles` ``(a (N,), w (N, d))``.
      x: inputs, shape ``(P, d)``.
      activation: ``'relu'``, ``'tanh'`` or ``'erf'``.
      chunk_size: data points per chunk (default: about ``2**22 / N``, a divisor of ``P``).

    Returns:
      Outputs of shape ``(P,)``.

    Example:
      >>> p = Particles(jnp.array([1.0, 3.0]), jnp.array([[1.0], [1.0]]))
      >>> meanfield_apply(p, jnp.array([[2.0], [-1.0]])).tolist()  # (1/2)(1 + 3) relu(x)
      [4.0, 0.0]
    """
    particles = _check_particles(particles)
    x = _check_inputs(x, particles.w.shape[1], "x")
    _sigma(activation)
    chunk = _default_chunk(x.shape[0], particles.a.shape[0], chunk_size)
    return _apply(particles, x, activation, chunk)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _apply(particles, x, activation, chunk):
    sigma, _ = _sigma(activation)
    xs = x.reshape(-1, chunk, x.shape[1])
    out = jax.lax.map(lambda xb: sigma(xb @ particles.w.T) @ particles.a, xs)
    return out.reshape(-1) / particles.a.shape[0]


def meanfield_velocity(
    particles: Particles, x, y, *, activation: Activation = "relu", chunk_size=None
):
    r"""Mean-field velocity ``-N ∇_θ L`` of every particle, and the loss.

    ``L = (1/2P) Σ_μ r_μ²`` with ``r_μ = f(x_μ) - y_μ``; the velocity of particle ``i`` is

    ``v_a = -(1/P) Σ_μ r_μ σ(w_i·x_μ)``,  ``v_w = -(1/P) Σ_μ r_μ a_i σ'(w_i·x_μ) x_μ``

    (Mei, Montanari & Nguyen 2018, arXiv:1804.06561). Computed in one pass over data chunks
    (each chunk holds all ``N`` particles, so its outputs are exact), never forming the
    ``(P, N)`` matrix.

    Args:
      particles: :class:`Particles`.
      x: inputs ``(P, d)``.
      y: targets ``(P,)``.
      activation: ``'relu'``, ``'tanh'`` or ``'erf'``.
      chunk_size: data points per chunk (default: about ``2**22 / N``).

    Returns:
      ``(velocity, loss)``: a :class:`Particles` of velocities and the scalar loss.

    Example:
      >>> p = init_particles(jax.random.key(0), 64, 2)
      >>> x = jax.random.normal(jax.random.key(1), (8, 2))
      >>> vel, loss = meanfield_velocity(p, x, jnp.ones(8))
      >>> vel.w.shape
      (64, 2)
    """
    particles = _check_particles(particles)
    x = _check_inputs(x, particles.w.shape[1], "x")
    y = _check_targets(y, x.shape[0])
    _sigma(activation)
    chunk = _default_chunk(x.shape[0], particles.a.shape[0], chunk_size)
    return _velocity(particles, x, y, activation, chunk)


def _check_targets(y, n: int) -> jax.Array:
    y = _check_finite(y, "y")
    if y.shape != (n,):
        raise ValueError(f"y must have shape ({n},) (one target per input), got {y.shape}.")
    return y


@functools.partial(jax.jit, static_argnums=(3, 4))
def _velocity(particles, x, y, activation, chunk):
    sigma, dsigma = _sigma(activation)
    a, w = particles
    n, p = a.shape[0], x.shape[0]
    xs = x.reshape(-1, chunk, x.shape[1])
    ys = y.reshape(-1, chunk)

    def accumulate(carry, batch):
        va, vw, sq = carry
        xb, yb = batch
        h = xb @ w.T  # (chunk, N)
        r = sigma(h) @ a / n - yb  # residuals (chunk,)
        va = va - r @ sigma(h)
        vw = vw - a[:, None] * ((dsigma(h) * r[:, None]).T @ xb)
        return (va, vw, sq + r @ r), None

    zero = (jnp.zeros_like(a), jnp.zeros_like(w), jnp.zeros((), a.dtype))
    (va, vw, sq), _ = jax.lax.scan(accumulate, zero, (xs, ys))
    return Particles(va / p, vw / p), 0.5 * sq / p


def particle_gradient_flow(
    particles: Particles,
    x,
    y,
    *,
    dt,
    n_steps: int,
    n_records: int = 50,
    x_test=None,
    activation: Activation = "relu",
    batch_size: int | None = None,
    key=None,
    chunk_size: int | None = None,
) -> ParticleTrajectory:
    r"""Euler scheme of the mean-field particle flow (full-batch GD), or minibatch SGD.

    ``θ_i ← θ_i + dt · v_i(θ)`` with the mean-field velocity of :func:`meanfield_velocity`
    (i.e. gradient descent on ``L`` with learning rate ``dt · N``), mean-field time
    ``t = step · dt`` (Mei, Montanari & Nguyen 2018, arXiv:1804.06561). With ``batch_size`` each
    step uses ``batch_size`` points drawn uniformly with replacement (online SGD when the data
    set is large). Compiled as one ``lax.scan``; ``vmap`` it over initialisations for seeds.

    Args:
      particles: initial :class:`Particles`.
      x: training inputs ``(P, d)``; y: targets ``(P,)``.
      dt: step size in mean-field time.
      n_steps: number of steps, a multiple of ``n_records - 1``.
      n_records: recorded times (including ``t = 0``), at least 2.
      x_test: optional test inputs ``(P_test, d)`` whose outputs are recorded.
      activation: ``'relu'``, ``'tanh'`` or ``'erf'``.
      batch_size: minibatch size for SGD (``None``: full batch).
      key: PRNG key, required with ``batch_size``.
      chunk_size: data points per chunk in the velocity (memory bound).

    Returns:
      :class:`ParticleTrajectory`.

    Example:
      >>> p = init_particles(jax.random.key(0), 256, 2)
      >>> x = jax.random.normal(jax.random.key(1), (16, 2))
      >>> traj = particle_gradient_flow(p, x, jnp.tanh(x[:, 0]), dt=0.1, n_steps=100,
      ...                               n_records=3)
      >>> bool(traj.loss[-1] < traj.loss[0])
      True
    """
    particles = _check_particles(particles)
    d = particles.w.shape[1]
    x = _check_inputs(x, d, "x")
    y = _check_targets(y, x.shape[0])
    if x_test is None:
        x_test = jnp.zeros((0, d), x.dtype)
    x_test = _check_inputs(x_test, d, "x_test")
    _sigma(activation)
    n_steps = _check_int(n_steps, "n_steps")
    n_records = _check_int(n_records, "n_records", minimum=2)
    if n_steps % (n_records - 1):
        raise ValueError(
            f"n_steps ({n_steps}) must be a multiple of n_records - 1 ({n_records - 1})."
        )
    if not isinstance(dt, jax.core.Tracer):
        if isinstance(dt, bool | str | bytes) or not (
            isinstance(dt, int | float | np.number) or jnp.ndim(dt) == 0
        ):
            raise TypeError(f"dt must be a positive number, got {dt!r}.")
        if not (math.isfinite(float(dt)) and float(dt) > 0):
            raise ValueError(f"dt must be a positive finite number, got {dt!r}.")
    n = particles.a.shape[0]
    if batch_size is None:
        chunk = _default_chunk(x.shape[0], n, chunk_size)
        if key is None:
            key = jax.random.key(0)  # unused: full-batch steps draw nothing
    else:
        batch_size = _check_int(batch_size, "batch_size")
        if key is None:
            raise ValueError("key is required with batch_size (minibatches are drawn with it).")
        key = _checks.prng_key(key, "key")
        chunk = _default_chunk(batch_size, n, chunk_size)
    test_chunk = _default_chunk(max(x_test.shape[0], 1), n, chunk_size)
    return _flow(
        particles,
        x,
        y,
        x_test,
        dt,
        key,
        activation,
        batch_size,
        chunk,
        test_chunk,
        n_steps // (n_records - 1),
        n_records,
    )


@functools.partial(jax.jit, static_argnums=tuple(range(6, 12)))
def _flow(
    particles, x, y, x_test, dt, key, activation, batch_size, chunk, test_chunk, per_rec, n_rec
):
    full_chunk = _default_chunk(x.shape[0], particles.a.shape[0], None)

    def step(p, k):
        if batch_size is None:
            vel, _ = _velocity(p, x, y, activation, chunk)
        else:
            idx = jax.random.randint(k, (batch_size,), 0, x.shape[0])
            vel, _ = _velocity(p, x[idx], y[idx], activation, chunk)
        return jax.tree.map(lambda t, v: t + dt * v, p, vel), None

    def observe(p):
        _, loss = _velocity(p, x, y, activation, full_chunk)
        if x_test.shape[0]:
            f = _apply(p, x_test, activation, test_chunk)
        else:
            f = jnp.zeros((0,), x.dtype)
        return loss, f

    def record(p, k):
        p, _ = jax.lax.scan(step, p, jax.random.split(k, per_rec))
        return p, observe(p)

    p_final, (losses, fs) = jax.lax.scan(record, particles, jax.random.split(key, n_rec - 1))
    loss0, f0 = observe(particles)
    times = dt * per_rec * jnp.arange(n_rec, dtype=x.dtype)
    return ParticleTrajectory(
        times,
        jnp.concatenate([loss0[None], losses]),
        jnp.concatenate([f0[None], fs]),
        p_final,
    )


def particle_density(particles: Particles, *, bins=40, a_range=None, w_range=None):
    r"""2-D histogram of the particles in ``(a, |w|)``: a snapshot of the empirical density.

    ``ρ_N(a, r) ≈ (1/N) #{i : a_i ∈ bin, |w_i| ∈ bin} / (bin area)`` (a normalised density,
    integrating to 1 over the ranges), the object whose ``N → ∞`` limit the mean-field PDE
    evolves (Mei, Montanari & Nguyen 2018, arXiv:1804.06561).

    Args:
      particles: :class:`Particles`.
      bins: number of bins per axis.
      a_range: ``(low, high)`` for ``a`` (default: the data range).
      w_range: ``(low, high)`` for ``|w|`` (default: the data range).

    Returns:
      ``(density, a_edges, r_edges)`` with ``density`` of shape ``(bins, bins)`` indexed
      ``[a_bin, r_bin]``.

    Example:
      >>> p = init_particles(jax.random.key(0), 1000, 3)
      >>> h, ae, re = particle_density(p, bins=10)
      >>> h.shape, ae.shape
      ((10, 10), (11,))
    """
    particles = _check_particles(particles)
    bins = _check_int(bins, "bins")
    for name, rng in (("a_range", a_range), ("w_range", w_range)):
        if rng is not None and (len(rng) != 2 or not float(rng[0]) < float(rng[1])):
            raise ValueError(f"{name} must be (low, high) with low < high, got {rng!r}.")
    r = jnp.linalg.norm(particles.w, axis=1)
    ranges = None
    if a_range is not None or w_range is not None:
        a_range = a_range or (float(particles.a.min()), float(particles.a.max()))
        w_range = w_range or (float(r.min()), float(r.max()))
        ranges = [list(a_range), list(w_range)]
    return jnp.histogram2d(particles.a, r, bins=bins, range=ranges, density=True)
