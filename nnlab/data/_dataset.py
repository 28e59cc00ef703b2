"""The :class:`Dataset` every generator returns, and the argument checks they share."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import _checks

_STATIC = "sizes fix array shapes: pass them as Python ints (static arguments under jax.jit)."


class Dataset(NamedTuple):
    """Inputs ``x`` ``(n, d)`` (or ``(n, ...)``) and targets ``y`` ``(n, k)``; rows are examples.

    A NamedTuple, hence a pytree: it can be returned from ``jax.jit`` and mapped with
    ``jax.tree.map``. ``k = 0`` (``y`` of shape ``(n, 0)``) marks unlabelled inputs.

    Example:
      >>> import jax
      >>> data = Dataset(jax.numpy.zeros((5, 2)), jax.numpy.ones((5, 1)))
      >>> train, test = data.split(3)
      >>> train.x.shape, test.y.shape
      ((3, 2), (2, 1))
    """

    x: jax.Array
    y: jax.Array

    def split(self, n_train: int | float) -> tuple[Dataset, Dataset]:
        """``(train, test)``: the first ``n_train`` examples and the rest, in stored order.

        ``n_train`` is a count ``1 <= n_train < n`` or a fraction ``0 < n_train < 1`` of the
        ``n`` examples (rounded to the nearest count). Generators draw examples in random
        order, so the split is random (the generator's key picks it).
        """
        n = int(np.shape(self.x)[0])
        if isinstance(n_train, float | np.floating):
            fraction = _checks.real(n_train, "n_train", fix="Pass a count or a fraction in (0, 1).")
            if not 0.0 < float(fraction) < 1.0:
                raise ValueError(f"n_train as a fraction must lie in (0, 1), got {n_train}.")
            count = round(float(fraction) * n)
            if not 1 <= count <= n - 1:
                raise ValueError(
                    f"n_train = {n_train} of {n} examples rounds to {count}; both parts need at "
                    "least one example: choose a fraction further from 0 and 1."
                )
        else:
            count = _checks.integer(n_train, "n_train", fix="Pass a count or a fraction in (0, 1).")
            if count >= n:
                raise ValueError(
                    f"n_train must be < n = {n} (the test part needs an example), got {count}."
                )
        return (
            Dataset(self.x[:count], self.y[:count]),
            Dataset(self.x[count:], self.y[count:]),
        )

    def to_train_data(self, x_probe: Any = None, test: Dataset | None = None):
        """This dataset as :class:`nnlab.train.Data` (``test`` gives ``x_test``/``y_test``)."""
        from nnlab.train import Data

        if test is None:
            return Data(x_train=self.x, y_train=self.y, x_probe=x_probe)
        if not isinstance(test, Dataset):
            raise TypeError(
                f"test must be a nnlab.data.Dataset (or None), got {type(test).__name__}; "
                "build one with Dataset(x_test, y_test)."
            )
        return Data(x_train=self.x, y_train=self.y, x_test=test.x, y_test=test.y, x_probe=x_probe)


def float_dtype(dtype: Any) -> Any:
    """``dtype`` checked to be floating; ``None`` is JAX's default float (float64 under x64)."""
    if dtype is None:
        return jnp.result_type(float)
    try:
        ok = jnp.issubdtype(dtype, jnp.floating)
    except TypeError:
        ok = False
    if not ok:
        raise TypeError(
            f"dtype must be a floating dtype such as jnp.float32 or jnp.float64 (or None for "
            f"JAX's default), got {dtype!r}."
        )
    return jnp.dtype(dtype)


def size(value: Any, name: str, *, minimum: int = 1) -> int:
    """A static size (``n``, ``d``, ``k``, ...) as a Python int ``>= minimum``."""
    return _checks.integer(value, name, minimum=minimum, fix=_STATIC)


def key(value: Any) -> jax.Array:
    """The PRNG key argument."""
    return _checks.prng_key(value, "key")


def host_key(value: Any, where: str) -> jax.Array:
    """A concrete PRNG key for a generator that runs on the host (not under ``jax.jit``)."""
    value = key(value)
    if _checks.is_traced(value):
        raise TypeError(
            f"{where} builds its data on the host (NumPy), so it cannot run under jax.jit or "
            "jax.vmap: call it outside the transformed function and pass the arrays in."
        )
    return value


def as_targets(y: Any, n: int, dtype: Any, name: str = "target(x)") -> jax.Array:
    """Targets returned by a user function as ``(n, k)`` (a ``(n,)`` vector becomes ``(n, 1)``)."""
    if not hasattr(y, "shape") or not hasattr(y, "dtype"):
        raise TypeError(f"{name} must return an array, got {type(y).__name__}.")
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[0] != n:
        raise ValueError(f"{name} must return shape ({n},) or ({n}, k), got shape {y.shape}.")
    return jnp.asarray(y).astype(dtype)


def one_hot(labels: Any, n_classes: int, dtype: Any) -> jax.Array:
    """``(n, n_classes)`` one-hot rows of integer ``labels``."""
    return jax.nn.one_hot(labels, n_classes, dtype=dtype)
