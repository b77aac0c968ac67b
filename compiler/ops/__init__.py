"""One module per op family; importing this package fills the registry."""

from . import conv, data_movement, elementwise, fully_connected, mean, pack, pooling, prelu, resize, unary  # noqa: F401
from .base import REGISTRY, KernelCall, OpDef, op_def

__all__ = ["REGISTRY", "KernelCall", "OpDef", "op_def"]
