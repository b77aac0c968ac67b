"""The intermediate representation: typed, frozen dataclasses for graphs, nodes, tensors and quantization."""

from .graph import Activation, Graph, Node, QuantParams, Tensor
from .region import LocalWindow, Region

__all__ = ["Activation", "Graph", "LocalWindow", "Node", "QuantParams", "Region", "Tensor"]
