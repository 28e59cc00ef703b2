"""Infinite-width kernels: the ``Kernel`` pytree and ``kernel(net, x1, x2)``."""

from ._compute import auto_batch_size as auto_batch_size
from ._compute import kernel as kernel
from ._compute import requires_full_spatial as requires_full_spatial
from ._kernel import Kernel as Kernel
from ._kernel import input_kernel as input_kernel

__all__ = ["Kernel", "auto_batch_size", "input_kernel", "kernel", "requires_full_spatial"]
