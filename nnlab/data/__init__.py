"""Datasets for experiments, all with one signature and explicit PRNG keys.

``name(key, n, *, <dataset parameters>, dtype=None) -> Dataset``: ``Dataset(x, y)`` holds
inputs ``x`` ``(n, d)`` (or ``(n, ...)``) and targets ``y`` ``(n, k)``, with
``.split(n_train)`` (a count or a fraction) and ``.to_train_data(x_probe=None, test=None)``
(:class:`nnlab.train.Data`). ``dtype=None`` is JAX's default float (float64 under x64).
Generators drawing from a key with static sizes are jittable; :func:`mnist1d` and
:func:`digits` are built on the host. See ``docs/data.md``.
"""

from ._benchmarks import digits as digits
from ._benchmarks import mnist1d as mnist1d
from ._dataset import Dataset as Dataset
from ._deeplinear import hierarchical as hierarchical
from ._deeplinear import low_rank_teacher as low_rank_teacher
from ._gaussian import gaussian as gaussian
from ._gaussian import gaussian_mixture as gaussian_mixture
from ._gaussian import sphere as sphere
from ._modular import modular_arithmetic as modular_arithmetic
from ._parity import parity as parity
from ._parity import parity_support as parity_support
from ._teacher import linear_teacher as linear_teacher
from ._teacher import single_index_target as single_index_target
from ._teacher import teacher_student as teacher_student

__all__ = [
    "Dataset",
    "digits",
    "gaussian",
    "gaussian_mixture",
    "hierarchical",
    "linear_teacher",
    "low_rank_teacher",
    "mnist1d",
    "modular_arithmetic",
    "parity",
    "parity_support",
    "single_index_target",
    "sphere",
    "teacher_student",
]
