r"""Width parameterizations of MLPs (standard, NTK, muP, mean-field) as abc exponents.

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

Constant factors: ``W_std`` (and ``1/sqrt(d)`` for the input layer, ``d`` the input
dimension) scale the initial values in 'standard', the multiplier in 'ntk' (so both coincide
with :class:`nnlab.layers.Dense`), and in muP the initial values where ``a = 0`` and the
multiplier elsewhere; mean-field places them as muP does, so the two train identically.
Biases are
``b_std · n^{-a} β`` with ``β ~ N(0, n^{-2b})``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnlab import layers as nl
from nnlab.layers._base import check_rank, layer, static

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
    "scale_learning_rates",
]

Parameterization = Literal["standard", "ntk", "mup", "meanfield"]
PARAMETERIZATIONS = ("standard", "ntk", "mup", "meanfield")
Activation = Literal["relu", "tanh", "erf", "identity"]
_ACTIVATIONS = {
    "relu": (jax.nn.relu, nl.Relu),
    "tanh": (jnp.tanh, nl.Tanh),
    "erf": (jax.scipy.special.erf, nl.Erf),
    "identity": (lambda z: z, None),
}
ROLES = ("input", "hidden", "output", "hidden_bias", "output_bias")


class ABC(NamedTuple):
    """Exponents of one parameter: ``W = n^{-a} w``, ``w ~ N(0, n^{-2b})``, rate ``η n^{-c}``."""

    a: float
    b: float
    c: float


_H = 0.5
ABC_TABLE: dict[str, dict[str, ABC]] = {
    "standard": dict(
        zip(ROLES, (ABC(0, 0, 0), ABC(0, _H, 0), ABC(0, _H, 0), ABC(0, 0, 0), ABC(0, 0, 0)))
    ),
    "ntk": dict(
        zip(ROLES, (ABC(0, 0, 0), ABC(_H, 0, 0), ABC(_H, 0, 0), ABC(0, 0, 0), ABC(0, 0, 0)))
    ),
    "mup": dict(
        zip(ROLES, (ABC(-_H, _H, 0), ABC(0, _H, 0), ABC(_H, _H, 0), ABC(-_H, _H, 0), ABC(0, 0, 0)))
    ),
}
ABC_TABLE["meanfield"] = {
    role: ABC(e.a + _H, e.b - _H, e.c - 2 * _H) for role, e in ABC_TABLE["mup"].items()
}


def abc(parameterization: Parameterization, role: str) -> ABC:
    """The abc exponents of ``role`` (one of :data:`ROLES`) in ``parameterization``."""
    check_parameterization(parameterization)
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}.")
    return ABC_TABLE[parameterization][role]


def check_parameterization(value) -> None:
    if value not in PARAMETERIZATIONS:
        raise ValueError(f"parameterization must be one of {PARAMETERIZATIONS}, got {value!r}.")


@layer
class MLP:
    """A ``depth``-hidden-layer MLP of width ``width`` in an abc parameterization.

    Layer ``l`` computes ``h_l = φ(m_l · h_{l-1} w_l + b_l)`` with the multiplier ``m_l`` and
    init scale of ``w_l`` from :data:`ABC_TABLE` (see the module docstring); the output layer
    has no nonlinearity. For 'ntk' and 'standard' this is ``serial(Dense, act, ..., Dense)``
    and :meth:`kernel` gives its NNGP/NTK; muP and mean-field have no kernel limit (their
    features move at infinite width), so :meth:`kernel` refuses them.

    Args:
      width: hidden width ``n`` (the scaling variable).
      depth: number of hidden layers (>= 1).
      out: output dimension.
      activation: 'relu', 'tanh', 'erf' or 'identity'.
      W_std, b_std: weight and bias scales (``b_std=None``: no biases).
      parameterization: 'standard', 'ntk', 'mup' or 'meanfield'.

    Example:
      >>> import jax
      >>> net = MLP(width=64, depth=2, parameterization="mup")
      >>> _, params = net.init(jax.random.key(0), (5, 3))
      >>> net.apply(params, jax.numpy.ones((5, 3))).shape
      (5, 1)
    """

    width: int = static()
    depth: int = static(default=2)
    out: int = static(default=1)
    activation: Activation = static(default="relu")
    W_std: float = static(default=1.0)
    b_std: float | None = static(default=None)
    parameterization: Parameterization = static(default="mup")

    def __post_init__(self):
        for name in ("width", "depth", "out"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"MLP: {name} must be a positive int, got {v!r}.")
        if self.activation not in _ACTIVATIONS:
            raise ValueError(
                f"MLP: activation must be one of {tuple(_ACTIVATIONS)}, got {self.activation!r}."
            )
        check_parameterization(self.parameterization)

    def _roles(self):
        return ["input"] + ["hidden"] * (self.depth - 1) + ["output"]

    def _scales(self, role: str, fan_in: int):
        """(multiplier, init std) of a weight matrix of ``role``."""
        e = abc(self.parameterization, role)
        n = self.width
        const = self.W_std / math.sqrt(fan_in) if role == "input" else self.W_std
        mult, std = n ** (-e.a), n ** (-e.b)
        # Constants sit in the init when the weight is used as is (a = 0, as Dense does);
        # mean-field follows muP's placement so that the θ-shift symmetry holds exactly.
        ref = "mup" if self.parameterization == "meanfield" else self.parameterization
        in_init = ref == "standard" or (ref != "ntk" and abc(ref, role).a == 0)
        if in_init:
            return mult, std * const
        return mult * const, std

    def _bias_role(self, i):
        return "output_bias" if i == self.depth else "hidden_bias"

    def init(self, key, input_shape):
        check_rank("MLP", input_shape, (2,), "(N, d)")
        dims = [input_shape[-1]] + [self.width] * self.depth + [self.out]
        params = []
        for i, role in enumerate(self._roles()):
            kw, kb, key = jax.random.split(key, 3)
            _, std = self._scales(role, dims[i])
            w = std * jax.random.normal(kw, (dims[i], dims[i + 1]))
            b = None
            if self.b_std is not None:
                b = self.width ** (-abc(self.parameterization, self._bias_role(i)).b) * (
                    jax.random.normal(kb, (dims[i + 1],))
                )
            params.append({"W": w, "b": b})
        return (input_shape[0], self.out), params

    def features(self, params, x):
        """Post-activation hidden features ``[h_1, ..., h_depth]`` and the output, a list."""
        if x.ndim != 2 or x.shape[1] != params[0]["W"].shape[0]:
            raise ValueError(
                f"MLP: x must have shape (N, {params[0]['W'].shape[0]}), got {x.shape}."
            )
        phi = _ACTIVATIONS[self.activation][0]
        out = []
        h = x
        for i, role in enumerate(self._roles()):
            mult, _ = self._scales(role, params[i]["W"].shape[0])
            z = mult * (h @ params[i]["W"])
            if params[i]["b"] is not None:
                e = abc(self.parameterization, self._bias_role(i))
                b = self.b_std * self.width ** (-e.a) * params[i]["b"]
                z = z + jnp.broadcast_to(b, z.shape)
            h = z if i == self.depth else phi(z)
            out.append(h)
        return out

    def apply(self, params, x):
        return self.features(params, x)[-1]

    def lr_multipliers(self, params):
        """Per-parameter learning-rate factors ``n^{-c}``, a pytree like ``params``."""
        mults = []
        for i, role in enumerate(self._roles()):
            cw = abc(self.parameterization, role).c
            cb = abc(self.parameterization, self._bias_role(i)).c
            mults.append(
                {
                    "W": float(self.width ** (-cw)),
                    "b": None if params[i]["b"] is None else float(self.width ** (-cb)),
                }
            )
        return mults

    def as_serial(self):
        """The equivalent ``nnlab.layers.serial`` network ('ntk' and 'standard' only)."""
        if self.parameterization not in ("ntk", "standard"):
            raise ValueError(
                f"MLP: parameterization {self.parameterization!r} has no nnlab.layers "
                "equivalent and no kernel limit (features move at infinite width); use 'ntk' "
                "or 'standard' for kernels."
            )
        act = _ACTIVATIONS[self.activation][1]
        b = 0.0 if self.b_std is None else self.b_std
        layers = []
        for _ in range(self.depth):
            layers.append(nl.Dense(self.width, self.W_std, b, self.parameterization))
            if act is not None:
                layers.append(act())
        layers.append(nl.Dense(self.out, self.W_std, b, self.parameterization))
        return nl.serial(*layers)

    def kernel(self, k):
        return self.as_serial().kernel(k)


def scale_learning_rates(multipliers) -> optax.GradientTransformation:
    """Multiply each update leaf by its factor (e.g. :meth:`MLP.lr_multipliers`).

    Chain it after an SGD step, ``optax.chain(optax.sgd(η), scale_learning_rates(m))``, to
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

    For each width an ensemble of ``seeds`` MLPs is trained ``steps`` SGD steps (MSE,
    ``½·mean``, per-layer rates ``lr · n^{-c}``) and ``RMS(h_l(θ_t) − h_l(θ_0))`` is
    averaged over seeds (Yang et al. 2022, arXiv:2203.03466, §D "coordinate check"). A
    feature-learning parameterization keeps the hidden updates Θ(1) (slope ≈ 0); NTK's
    vanish like ``n^{-1/2}`` (Yang & Hu 2021, arXiv:2011.14522).

    Args:
      widths: increasing positive ints.
      x, y: inputs ``(N, d)`` and targets ``(N, out)``.
      key: PRNG key for the initialisations.
      parameterization: 'standard', 'ntk', 'mup' or 'meanfield'.
      depth, activation, W_std: of the :class:`MLP`.
      lr, steps, seeds: SGD rate, number of steps and ensemble size per width.

    Returns:
      A :class:`CoordCheck`.
    """
    from nnlab.train import Data, train_ensemble

    check_parameterization(parameterization)
    widths = [int(w) for w in widths]
    if len(widths) < 2:
        raise ValueError(f"widths needs at least two values to fit a slope, got {widths}.")
    y = y if y.ndim == 2 else y[:, None]
    init_rms, delta_rms = [], []
    for w in widths:
        net = MLP(w, depth, y.shape[1], activation, W_std, None, parameterization)
        _, p_shape = net.init(jax.random.key(0), x.shape)
        mults = net.lr_multipliers(p_shape)
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
        h0 = jax.vmap(net.features, in_axes=(0, None))(params0, x)
        ht = jax.vmap(net.features, in_axes=(0, None))(rec.params, x)
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
