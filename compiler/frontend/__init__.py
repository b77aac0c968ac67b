"""Front ends: model files -> IR graphs, checked (``check_graph``) before any later stage sees them."""

from ..errors import UserError
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


def check_single_sample(graph: Graph) -> None:
    """The compiled library runs one sample per inference: every model input of rank 2 or more must
    have batch size 1 on its first (logical) axis. The front ends accept other batches (the float IR
    path and the ONNX node tests evaluate them); compiling needs this check."""
    for name in graph.inputs:
        logical = list(graph.logical_shape(name))
        if len(logical) > 1 and logical[0] != 1:
            origin = graph.tensors[name].origin or name
            raise UserError(f"input '{origin}' has batch size {logical[0]} (shape {logical}); mcucompile compiles "
                            "batch-1 models (one sample per inference): re-export with batch 1 or pass "
                            f"--input-shape {origin}=1,{','.join(map(str, logical[1:]))}")


__all__ = ["check_graph", "check_single_sample", "load_onnx"]
