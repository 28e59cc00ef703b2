"""Infinite-width kernels: the ``Kernel`` pytree and ``kernel(net, x1, x2)``."""

from ._compute import auto_batch_size as auto_batch_size
from ._compute import kernel as kernel
from ._compute import requires_full_spatial as requires_full_spatial
from ._kernel import Kernel as Kernel
from ._kernel import input_kernel as input_kernel
from ._operator import AnalyticKernelOperator as AnalyticKernelOperator
from ._operator import KernelOperator as KernelOperator
from ._operator import MatrixKernelOperator as MatrixKernelOperator
from ._operator import kernel_operator as kernel_operator
from ._operator import matrix_operator as matrix_operator

__all__ = [
    "AnalyticKernelOperator",
    "Kernel",
    "KernelOperator",
    "MatrixKernelOperator",
    "auto_batch_size",
    "input_kernel",
    "kernel",
    "kernel_operator",
    "matrix_operator",
    "requires_full_spatial",
]
