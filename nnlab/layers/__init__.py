"""Layers with one definition for finite and infinite width.

Every layer has ``init(key, input_shape) -> (output_shape, params)``,
``apply(params, x) -> y`` and ``kernel(k) -> k`` (see :mod:`nnlab.kernels`).
:class:`Dense` and :class:`Conv` take a width ``parameterization`` ('standard', 'ntk',
'mup', 'meanfield') and a ``role``; :func:`lr_multipliers` gives a network's per-layer SGD
rate factors (see :mod:`nnlab.parameterization`).
"""

from ._abc import lr_multipliers as lr_multipliers
from ._base import Layer as Layer
from ._combinators import FanInConcat as FanInConcat
from ._combinators import FanInSum as FanInSum
from ._combinators import FanOut as FanOut
from ._combinators import Identity as Identity
from ._combinators import Parallel as Parallel
from ._combinators import Serial as Serial
from ._combinators import parallel as parallel
from ._combinators import repeat as repeat
from ._combinators import serial as serial
from ._conv import Conv as Conv
from ._dense import Dense as Dense
from ._erf import Erf as Erf
from ._gaussian import Gaussian as Gaussian
from ._gelu import Gelu as Gelu
from ._layernorm import LayerNorm as LayerNorm
from ._monomial import Monomial as Monomial
from ._pooling import AvgPool as AvgPool
from ._pooling import Flatten as Flatten
from ._pooling import GlobalAvgPool as GlobalAvgPool
from ._quadrature import Elementwise as Elementwise
from ._quadrature import Sigmoid as Sigmoid
from ._quadrature import Softplus as Softplus
from ._quadrature import Swish as Swish
from ._quadrature import Tanh as Tanh
from ._quadrature import gauss_hermite_kernel as gauss_hermite_kernel
from ._relu_family import ABRelu as ABRelu
from ._relu_family import Abs as Abs
from ._relu_family import LeakyRelu as LeakyRelu
from ._relu_family import Relu as Relu
from ._step import Sign as Sign
from ._step import Step as Step
from ._trig import Cos as Cos
from ._trig import Rbf as Rbf
from ._trig import Sin as Sin

__all__ = [
    "ABRelu",
    "Abs",
    "AvgPool",
    "Conv",
    "Cos",
    "Dense",
    "Elementwise",
    "Erf",
    "FanInConcat",
    "FanInSum",
    "FanOut",
    "Flatten",
    "Gaussian",
    "Gelu",
    "GlobalAvgPool",
    "Identity",
    "Layer",
    "LayerNorm",
    "LeakyRelu",
    "Monomial",
    "Parallel",
    "Rbf",
    "Relu",
    "Serial",
    "Sigmoid",
    "Sign",
    "Sin",
    "Softplus",
    "Step",
    "Swish",
    "Tanh",
    "gauss_hermite_kernel",
    "lr_multipliers",
    "parallel",
    "repeat",
    "serial",
]
