r"""Width parameterizations (standard, NTK, muP, mean-field) as abc exponents.

Yang & Hu 2021 ("Tensor Programs IV: Feature Learning in Infinite-Width Neural Networks",
arXiv:2011.14522) write every layer's weights as ``W = n^{-a} w`` with trainable
``w ~ N(0, n^{-2b})`` and SGD learning rate ``η n^{-c}``, where ``n`` is the width. Per
role (input layer from the fixed input dimension, hidden layers, output layer, biases):

==========  ==============  ================  ==============  ==============  ===============
param.      input (a,b,c)   hidden            output          hidden bias     output bias
==========  ==============  ================  ==============  ==============  ===============
standard    (0, 0, 0)       (0, ½, 0)         (0, ½, 0)       (0, 0, 0)       (0, 0, 0)
ntk         (0, 0, 0)       (½, 0, 0)         (½, 0, 0)       (0, 0, 0)       (0, 0, 0)
mup         (−½, ½, 0)      (0, ½, 0)         (½, ½, 0)       (−½, ½, 0)      (0, 0, 0)
meanfield   (0, 0, −1)      (½, 0, −1)        (1, 0, −1)      (0, 0, −1)      (½, −½, −1)
==========  ==============  ================  ==============  ==============  ===============

'meanfield' is muP moved along the symmetry ``(a, b, c) → (a + θ, b − θ, c − 2θ)`` with
``θ = ½`` (Yang & Hu 2021, §3), which leaves the function and its SGD trajectory unchanged;
for one hidden layer it is the mean-field scaling of Mei, Montanari & Nguyen 2018
(arXiv:1804.06561): ``f = (1/n) Σ_i a_i σ(w_i · x)`` trained at rate ``η n``. muP and
mean-field learn features (hidden-activation updates Θ(1) in width); NTK and standard
parameterizations do not (updates ``O(1/sqrt(n))``; standard at ``c = 0`` is unstable).

The table is data (:data:`ABC_TABLE`) that :class:`nnlab.layers.Dense` and
:class:`nnlab.layers.Conv` read: each takes ``parameterization`` and ``role`` ('input',
'hidden', 'output'), so one network definition covers all four (see ``Dense`` for where
the constants ``W_std`` and ``1/sqrt(fan_in)`` sit). :func:`mlp` builds such a network;
:func:`nnlab.layers.lr_multipliers` gives its per-parameter rates ``n^{-c}``::

    net = mlp(width=256, parameterization="mup")
    _, params = net.init(key, x.shape)
    tx = optax.chain(optax.sgd(lr), scale_learning_rates(lr_multipliers(net, params)))
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnlab import _checks as checks
from nnlab import layers as nl
from nnlab.layers._abc import (
    ABC,
    ABC_TABLE,
    PARAMETERIZATIONS,
    ROLES,
    Parameterization,
    abc,
    check_parameterization,
    lr_multipliers,
)

__all__ = [
    "ABC",
    "ABC_TABLE",
    "MLP",
    "PARAMETERIZATIONS",
    "ROLES",
    "Activation",
    "CoordCheck",
    "Parameterization",
    "abc",
    "check_parameterization",
    "coord_check",
    "hidden_features",
    "lr_multipliers",
    "mlp",
    "scale_learning_rates",
]

Activation = Literal["relu", "tanh", "erf", "identity"]
_ACTIVATIONS = {"relu": nl.Relu, "tanh": nl.Tanh, "erf": nl.Erf, "identity": None}


def mlp(
    width: int,
    depth: int = 2,
    out: int = 1,
    activation: Activation = "relu",
    W_std: float = 1.0,
    b_std: float | None = None,
    parameterization: Parameterization = "mup",
) -> nl.Serial:
    """A ``depth``-hidden-layer MLP of width ``width`` in an abc parameterization.

    ``serial(Dense(width, role='input'), φ, Dense(width, role='hidden'), φ, ...,
    Dense(out, role='output'))``, every Dense in ``parameterization`` with ``W_std`` and
    ``b_std`` (exponents from :data:`ABC_TABLE`). For 'ntk' and 'standard' ``nnlab.kernel``
    gives its NNGP/NTK; muP and mean-field have no kernel limit (their features move at
    infinite width), so the kernel is an error. ``MLP`` is the same function.

    Args:
      width: hidden width ``n`` (the scaling variable).
      depth: number of hidden layers (>= 1).
      out: output dimension.
      activation: 'relu', 'tanh', 'erf' or 'identity' (no activation layer).
      W_std, b_std: weight and bias scales (``b_std=None``: no biases).
      parameterization: 'standard', 'ntk', 'mup' or 'meanfield'.

    Example:
      >>> import jax
      >>> net = mlp(width=64, depth=2, parameterization="mup")
      >>> _, params = net.init(jax.random.key(0), (5, 3))
      >>> net.apply(params, jax.numpy.ones((5, 3))).shape
      (5, 1)
      >>> [m["W"] for m in lr_multipliers(net, params) if m]
      [1.0, 1.0, 1.0]
    """
    width = checks.integer(width, "mlp: width")
    depth = checks.integer(depth, "mlp: depth")
    out = checks.integer(out, "mlp: out")
    checks.choice(activation, "mlp: activation", _ACTIVATIONS)
    check_parameterization(parameterization, "mlp")
    checks.real(W_std, "mlp: W_std")
    if b_std is not None:
        checks.real(b_std, "mlp: b_std", fix="Pass None for no biases.")
    act = _ACTIVATIONS[activation]

    def dense(size, role):
        return nl.Dense(size, W_std, b_std, parameterization, role)

    layers = []
    for i in range(depth):
        layers.append(dense(width, "input" if i == 0 else "hidden"))
        if act is not None:
            layers.append(act())
    layers.append(dense(out, "output"))
    return nl.serial(*layers)


MLP = mlp


def hidden_features(net: nl.Serial, params, x: jax.Array) -> list[jax.Array]:
    """Post-activation hidden features and the output of a serial network, a list.

    The features are what each Dense or Conv layer after the first reads (for
    :func:`mlp`: ``[h_1, ..., h_depth]``, the outputs of the activations; with activation
    'identity' the pre-activations); the last entry is the network's output. Only the
    top level of ``net`` is walked. Works under ``jax.jit``/``jax.vmap``.

    Example:
      >>> import jax
      >>> net = mlp(width=16, depth=2)
      >>> _, params = net.init(jax.random.key(0), (4, 3))
      >>> [h.shape for h in hidden_features(net, params, jax.numpy.ones((4, 3)))]
      [(4, 16), (4, 16), (4, 1)]
    """
    if not isinstance(net, nl.Serial):
        raise TypeError(
            f"hidden_features: net must be an nnlab.layers.serial network, got "
            f"{type(net).__name__}."
        )
    if not isinstance(params, tuple | list) or len(params) != len(net.layers):
        raise ValueError(
            f"hidden_features: params must hold one entry per layer ({len(net.layers)}); "
            "pass the params that net.init returned."
        )
    feats, seen_affine, h = [], False, x
    for lyr, p in zip(net.layers, params):
        if isinstance(lyr, nl.Dense | nl.Conv):
            if seen_affine:
                feats.append(h)
            seen_affine = True
        h = lyr.apply(p, h)
    feats.append(h)
    return feats


def scale_learning_rates(multipliers) -> optax.GradientTransformation:
    """Multiply each update leaf by its factor (e.g. from :func:`lr_multipliers`).

    Chain it after an SGD step,
    ``optax.chain(optax.sgd(η), scale_learning_rates(lr_multipliers(net, params)))``, to
    train with the per-layer rates ``η n^{-c}`` that the abc table implies for SGD (Yang &
    Hu 2021, arXiv:2011.14522). Adaptive optimizers need other exponents (Yang et al. 2022,
    arXiv:2203.03466, Table 3); they are not covered here.
    """

    def init(params):
        return optax.EmptyState()

    def update(updates, state, params=None):
        scaled = jax.tree_util.tree_map(lambda u, m: u * m, updates, multipliers)
        return scaled, state

    return optax.GradientTransformation(init, update)


@dataclasses.dataclass(frozen=True)
class CoordCheck:
    """Activation sizes versus width (NumPy arrays; layer axis = hidden layers then output).

    Attributes:
      widths: ``(W,)``.
      init_rms: ``(W, depth + 1)`` RMS of each layer's activations at initialisation.
      delta_rms: ``(W, depth + 1)`` RMS of their change after ``steps`` SGD steps.
      delta_slope: ``(depth + 1,)`` fitted log-log slope of ``delta_rms`` versus width
        (0 when updates are Θ(1), −½ in the NTK parameterization).
      init_slope: ``(depth + 1,)`` the same for ``init_rms``.
    """

    widths: np.ndarray
    init_rms: np.ndarray
    delta_rms: np.ndarray
    delta_slope: np.ndarray
    init_slope: np.ndarray


def _slopes(widths, values):
    logw = np.log(np.asarray(widths, dtype=float))
    return np.polyfit(logw, np.log(values), 1)[0]


def coord_check(
    widths,
    x,
    y,
    *,
    key,
    parameterization: Parameterization,
    depth: int = 2,
    activation: Activation = "relu",
    lr: float = 0.1,
    steps: int = 3,
    seeds: int = 4,
    W_std: float = 1.0,
) -> CoordCheck:
    r"""Coordinate check: RMS of each layer's activations and of their updates versus width.

    For each width an ensemble of ``seeds`` :func:`mlp` networks is trained ``steps`` SGD
    steps (MSE, ``½·mean``, per-layer rates ``lr · n^{-c}``) and
    ``RMS(h_l(θ_t) − h_l(θ_0))`` of the :func:`hidden_features` is averaged over seeds (Yang
    et al. 2022, arXiv:2203.03466, §D "coordinate check"). A feature-learning
    parameterization keeps the hidden updates Θ(1) (slope ≈ 0); NTK's vanish like
    ``n^{-1/2}`` (Yang & Hu 2021, arXiv:2011.14522).

    Args:
      widths: increasing positive ints.
      x, y: inputs ``(N, d)`` and targets ``(N, out)``.
      key: PRNG key for the initialisations.
      parameterization: 'standard', 'ntk', 'mup' or 'meanfield'.
      depth, activation, W_std: of the :func:`mlp`.
      lr, steps, seeds: SGD rate, number of steps and ensemble size per width.

    Returns:
      A :class:`CoordCheck`.
    """
    from nnlab.train import Data, train_ensemble

    check_parameterization(parameterization, "coord_check")
    widths = [int(w) for w in widths]
    if len(widths) < 2:
        raise ValueError(f"widths needs at least two values to fit a slope, got {widths}.")
    y = y if y.ndim == 2 else y[:, None]
    init_rms, delta_rms = [], []
    for w in widths:
        net = mlp(w, depth, y.shape[1], activation, W_std, None, parameterization)
        _, p_shape = net.init(jax.random.key(0), x.shape)
        mults = lr_multipliers(net, p_shape)
        keys = jax.random.split(key, seeds)
        rec = train_ensemble(
            net.apply,
            lambda k, net=net: net.init(k, x.shape)[1],
            Data(x, y),
            optimizer=optax.chain(optax.sgd(lr), scale_learning_rates(mults)),
            seeds=keys,
            steps=steps,
            log_every=steps,
        )
        params0 = jax.vmap(lambda k, net=net: net.init(k, x.shape)[1])(keys)
        features = jax.vmap(lambda p, net=net: hidden_features(net, p, x))
        h0, ht = features(params0), features(rec.params)
        init_rms.append([float(jnp.sqrt(jnp.mean(a**2))) for a in h0])
        delta_rms.append([float(jnp.sqrt(jnp.mean((b - a) ** 2))) for a, b in zip(h0, ht)])
    init_rms, delta_rms = np.asarray(init_rms), np.asarray(delta_rms)
    return CoordCheck(
        widths=np.asarray(widths),
        init_rms=init_rms,
        delta_rms=delta_rms,
        delta_slope=np.array([_slopes(widths, delta_rms[:, i]) for i in range(depth + 1)]),
        init_slope=np.array([_slopes(widths, init_rms[:, i]) for i in range(depth + 1)]),
    )
