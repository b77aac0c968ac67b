"""Front ends: model files -> IR graphs."""

from .onnx import load_onnx

__all__ = ["load_onnx"]
