r"""Small real-ish benchmarks built on the host: MNIST-1D and scikit-learn's digits.

Neither downloads anything or writes to disk; both are host-side (NumPy), so they run
outside ``jax.jit``/``jax.vmap``.
"""

from __future__ import annotations

import math
import random

import jax
import jax.numpy as jnp
import numpy as np

from . import _dataset as _ds
from ._dataset import Dataset

_MNIST1D_DEFAULT_N = 5000  # mnist1d's default num_samples
_DIGITS_N = 1797  # images in sklearn.datasets.load_digits


def _missing(package: str, where: str) -> ImportError:
    return ImportError(
        f"nnlab.data.{where} needs the optional package {package!r}: pip install {package} "
        "(or pip install 'nnlab[data]')."
    )


def mnist1d(key: jax.Array, n: int | None = None, *, dtype=None) -> Dataset:
    r"""MNIST-1D: 10 classes of 1-D signals of length 40, generated locally (Greydanus 2020).

    Greydanus (2020; with Kobak 2024), arXiv:2011.14439: each example is one of 10 digit-like
    templates padded, scaled, translated, sheared, with correlated and white noise, subsampled
    to 40 points; the whole set is then standardised (mean 0, standard deviation 1 over all
    entries). Built with ``mnist1d.data.make_dataset`` and the package's default arguments,
    except the size and the seed, which comes from ``key``; nothing is downloaded or cached.
    The NumPy and ``random`` global states the package seeds are restored afterwards.

    Host-side: not jittable (``key`` must be concrete). Needs ``pip install mnist1d``.

    Args:
      key: PRNG key (seeds the generator).
      n: number of examples (default 5000, the package's default); classes are balanced to
        within one example, in random order.
      dtype: floating dtype (default: JAX's default float).

    Returns:
      :class:`Dataset` with ``x`` ``(n, 40)`` and one-hot ``y`` ``(n, 10)``. The package's own
      80/20 split is ``data.split(0.8)``.

    Example:
      >>> import jax
      >>> data = mnist1d(jax.random.key(0), 20)
      >>> data.x.shape, data.y.shape
      ((20, 40), (20, 10))
    """
    key = _ds.host_key(key, "mnist1d")
    n = _MNIST1D_DEFAULT_N if n is None else _ds.size(n, "n")
    dtype = _ds.float_dtype(dtype)
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as err:
        raise _missing("mnist1d", "mnist1d") from err
    args = get_dataset_args()
    args.num_samples = 10 * math.ceil(n / 10)  # make_dataset builds num_samples // 10 per class
    args.seed = int(jax.random.bits(key, (), jnp.uint32))
    np_state, py_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    try:
        built = make_dataset(args)
    finally:
        np.random.set_state(np_state)  # noqa: NPY002 (mnist1d seeds the global RNG)
        random.setstate(py_state)
    x = np.concatenate([built["x"], built["x_test"]])[:n]
    labels = np.concatenate([built["y"], built["y_test"]])[:n]
    return Dataset(jnp.asarray(x, dtype), _ds.one_hot(jnp.asarray(labels), 10, dtype))


def digits(key: jax.Array, n: int | None = None, *, dtype=None) -> Dataset:
    r"""The 8x8 handwritten digits bundled with scikit-learn, in random order.

    The UCI optical-recognition digits (Alpaydin & Kaynak 1998) as shipped with
    ``sklearn.datasets.load_digits``: 1797 images with integer intensities 0..16, here
    flattened to 64 features and divided by 16, so :math:`x \in [0, 1]^{64}`. Labels one-hot.
    No download.

    Host-side: not jittable (``key`` must be concrete). Needs ``pip install scikit-learn``.

    Args:
      key: PRNG key (the order: a uniformly random permutation).
      n: number of examples, at most 1797 (default all), drawn without replacement.
      dtype: floating dtype (default: JAX's default float).

    Returns:
      :class:`Dataset` with ``x`` ``(n, 64)`` in :math:`[0, 1]` and one-hot ``y`` ``(n, 10)``.

    Example:
      >>> import jax
      >>> data = digits(jax.random.key(0), 100)
      >>> data.x.shape, data.y.shape, float(data.x.max()) <= 1.0
      ((100, 64), (100, 10), True)
    """
    key = _ds.host_key(key, "digits")
    n = _DIGITS_N if n is None else _ds.size(n, "n")
    if n > _DIGITS_N:
        raise ValueError(f"n must be <= {_DIGITS_N} (the images in load_digits), got {n}.")
    dtype = _ds.float_dtype(dtype)
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise _missing("scikit-learn", "digits") from err
    images, labels = load_digits(return_X_y=True)
    order = np.asarray(jax.random.permutation(key, _DIGITS_N))[:n]
    x = jnp.asarray(images[order] / 16.0, dtype)
    return Dataset(x, _ds.one_hot(jnp.asarray(labels[order]), 10, dtype))
