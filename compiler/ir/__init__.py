"""The intermediate representation: typed, frozen dataclasses for graphs, nodes, tensors and quantization."""

from .graph import Activation, Graph, Node, QuantParams, Tensor

__all__ = ["Activation", "Graph", "Node", "QuantParams", "Tensor"]
