r"""Yang & Hu's abc exponents per role, and the scales they give one Dense or Conv layer.

Yang & Hu 2021 ("Tensor Programs IV: Feature Learning in Infinite-Width Neural Networks",
arXiv:2011.14522) write every layer's weights as ``W = n^{-a} w`` with trainable
``w ~ N(0, n^{-2b})`` and SGD learning rate ``η n^{-c}``, where ``n`` is the width.
:data:`ABC_TABLE` holds the exponents per parameterization and role (printed as a table in
:mod:`nnlab.parameterization`, which re-exports it); 'meanfield' is 'mup' moved along
``(a, b, c) → (a + θ, b − θ, c − 2θ)`` with ``θ = ½`` (Yang & Hu 2021, §3), which leaves
the function and its SGD trajectory unchanged.

The width of one layer: ``n = out`` (its fan-out) for role 'input', whose fan-in is the
fixed input dimension, and ``n = C_in`` (the input channels, not times the filter size) for
'hidden' and 'output'. The input and hidden layers' biases follow 'hidden_bias', the
output layer's 'output_bias'.

Constant factors in 'mup' and 'meanfield' (:func:`feature_learning_scales`): the weights
carry ``W_std / sqrt(R)`` with the receptive size ``R`` that does not grow with ``n``:
``R = fan_in`` for role 'input' (``C_in · prod(filter)`` for Conv), ``R = prod(filter)``
otherwise (1 for Dense). It sits in the initial values where muP has ``a = 0`` (hidden
layers) and in the multiplier elsewhere; mean-field places it as muP does, so the θ-shift
maps one onto the other exactly. Biases are ``b_std · n^{-a} β`` with ``β ~ N(0, n^{-2b})``.
"""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple

import jax

Parameterization = Literal["standard", "ntk", "mup", "meanfield"]
PARAMETERIZATIONS = ("standard", "ntk", "mup", "meanfield")
FEATURE_LEARNING = ("mup", "meanfield")
Role = Literal["input", "hidden", "output"]
LAYER_ROLES = ("input", "hidden", "output")
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


def _prefix(where: str) -> str:
    return f"{where}: " if where else ""


def check_parameterization(value: Any, where: str = "") -> None:
    """Raise a ValueError unless ``value`` is one of :data:`PARAMETERIZATIONS`."""
    if not isinstance(value, str) or value not in PARAMETERIZATIONS:
        raise ValueError(
            f"{_prefix(where)}parameterization must be one of {PARAMETERIZATIONS}, got {value!r}."
        )


def check_role(value: Any, where: str = "") -> None:
    """Raise a ValueError unless ``value`` is a layer role ('input', 'hidden', 'output')."""
    if not isinstance(value, str) or value not in LAYER_ROLES:
        raise ValueError(
            f"{_prefix(where)}role must be one of {LAYER_ROLES} (the layer's place in the "
            f"network: first, in between, last), got {value!r}."
        )


def abc(parameterization: Parameterization, role: str) -> ABC:
    """The abc exponents of ``role`` (one of :data:`ROLES`) in ``parameterization``.

    Example:
      >>> abc("meanfield", "output")
      ABC(a=1.0, b=0.0, c=-1.0)
    """
    check_parameterization(parameterization)
    if not isinstance(role, str) or role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}.")
    return ABC_TABLE[parameterization][role]


def bias_role(role: str) -> str:
    """'output_bias' for the output layer, 'hidden_bias' for input and hidden layers."""
    return "output_bias" if role == "output" else "hidden_bias"


def layer_width(role: str, channels_in: int, out: int) -> int:
    """The width ``n`` of a layer: ``out`` for role 'input', ``channels_in`` otherwise."""
    return out if role == "input" else channels_in


class Scales(NamedTuple):
    """What ``apply`` multiplies by and what ``init`` draws, for 'mup'/'meanfield'."""

    w_mult: Any  # y = w_mult · (x w) ...
    w_init: Any  # w = w_init · N(0, 1)
    b_mult: Any  # ... + b_mult · β  (None without a bias)
    b_init: float  # β = b_init · N(0, 1)


def feature_learning_scales(
    parameterization: str, role: str, n: int, W_std, b_std, receptive: int
) -> Scales:
    """Multipliers and init scales of a 'mup'/'meanfield' affine layer of width ``n``.

    ``n^{-a}`` multiplies, ``n^{-b}`` initialises; ``W_std / sqrt(receptive)`` joins the
    initial values where muP's ``a`` is 0 and the multiplier elsewhere (module docstring).
    """
    e = ABC_TABLE[parameterization][role]
    eb = ABC_TABLE[parameterization][bias_role(role)]
    const = W_std if receptive == 1 else W_std / math.sqrt(receptive)
    mult, std = n ** (-e.a), n ** (-e.b)
    if ABC_TABLE["mup"][role].a == 0:
        w_mult, w_init = mult, std * const
    else:
        w_mult, w_init = mult * const, std
    b_mult = None if b_std is None else b_std * n ** (-eb.a)
    return Scales(w_mult, w_init, b_mult, n ** (-eb.b))


def lr_factors(parameterization: str, role: str, n: int) -> tuple[float, float]:
    """SGD learning-rate factors ``n^{-c}`` of a layer's weights and bias."""
    e = ABC_TABLE[parameterization][role]
    eb = ABC_TABLE[parameterization][bias_role(role)]
    return float(n ** (-e.c)), float(n ** (-eb.c))


def no_kernel_error(name: str, parameterization: str) -> ValueError:
    """The error ``kernel`` raises for a feature-learning parameterization."""
    return ValueError(
        f"{name}: parameterization {parameterization!r} has no kernel limit: it learns "
        "features, so the NTK is not fixed during training (hidden features move Θ(1) at "
        "infinite width), and at initialization the output NNGP vanishes like 1/n (Yang & "
        "Hu 2021, arXiv:2011.14522). Use parameterization 'ntk' or 'standard' for kernels."
    )


def lr_multipliers(net: Any, params: Any) -> Any:
    """Per-parameter SGD rate factors ``n^{-c}`` of a network, a pytree like ``params``.

    Walks ``serial``/``parallel`` combinators; a layer with an ``lr_multipliers(params)``
    method (:class:`Dense`, :class:`Conv`) gives its own factors, every other layer 1.0 per
    parameter (activations and pooling have none). Use with
    ``optax.chain(optax.sgd(lr), nnlab.parameterization.scale_learning_rates(m))``.

    Example:
      >>> import jax
      >>> from nnlab import layers as nl
      >>> net = nl.serial(
      ...     nl.Dense(64, parameterization="meanfield", role="input"), nl.Relu(),
      ...     nl.Dense(1, parameterization="meanfield", role="output"))
      >>> _, params = net.init(jax.random.key(0), (2, 3))
      >>> lr_multipliers(net, params)
      ({'W': 64.0, 'b': 64.0}, (), {'W': 64.0, 'b': 64.0})
    """
    from ._combinators import Parallel, Serial

    if isinstance(net, Serial | Parallel):
        if not isinstance(params, tuple | list) or len(params) != len(net.layers):
            got = f"{len(params)} entries" if isinstance(params, tuple | list) else params
            raise ValueError(
                f"lr_multipliers: params must hold one entry per layer ({len(net.layers)}), "
                f"got {got}; pass the params that net.init returned."
            )
        return tuple(lr_multipliers(lyr, p) for lyr, p in zip(net.layers, params))
    own = getattr(net, "lr_multipliers", None)
    if callable(own):
        return own(params)
    return jax.tree_util.tree_map(lambda _: 1.0, params)
