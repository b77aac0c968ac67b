"""One module per op family; importing this package fills the registries (ops, and the kernels they call)."""

from . import conv, data_movement, elementwise, fully_connected, mean, outlier_check, pack, pooling, prelu, resize, unary  # noqa: F401
from .base import REGISTRY, OpDef, check_supported, op_def
from .kernel import KERNELS, Access, Kernel, KernelArgs, KernelCall, KernelCost

__all__ = ["KERNELS", "REGISTRY", "Access", "Kernel", "KernelArgs", "KernelCall", "KernelCost", "OpDef", "check_supported", "op_def"]
