"""Front ends: model files -> IR graphs, checked (``check_graph``) before any later stage sees them."""

from ..ir import Graph
from ..ops import op_def
from .onnx import load_onnx


def check_graph(graph: Graph) -> Graph:
    """Validate an imported graph: ``Graph.validate`` (structure, finite constants, quantization
    parameters, sizes) and every node's shapes recomputed by its op (which also checks the op's
    attributes, raising UserError for a model that contradicts them). A recomputed shape that differs
    from the stored one is a front-end bug (ValueError). Returns the graph."""
    graph.validate()
    for n in graph.nodes:
        in_shapes = [graph.tensors[i].shape if i else () for i in n.inputs]
        got = [tuple(s) for s in op_def(n).infer_shapes(n, in_shapes)]
        want = [tuple(graph.tensors[o].shape) for o in n.outputs]
        if got != want:
            raise ValueError(f"node '{n.name}' ({n.op}): stored output shapes {want} but the op computes {got}")
    return graph


__all__ = ["check_graph", "load_onnx"]
