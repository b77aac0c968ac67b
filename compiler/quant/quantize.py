"""Float IR -> int8 IR with TFLite's integer scheme (per-channel weights, per-tensor activations)."""

from __future__ import annotations

import dataclasses

from ..ir import Graph
from ..ops import op_def
from ..ops.base import QuantContext


def quantize_graph(graph: Graph, ranges: dict[str, tuple[float, float]]) -> Graph:
    """Quantize every node; activation params come from ``ranges`` (see quant.calibrate)."""
    ctx = QuantContext(graph, ranges)
    for name in graph.inputs:
        ctx.quant[name] = ctx.from_range(name)
    nodes = []
    for n in graph.nodes:
        nodes.extend(op_def(n).quantize(n, ctx))
    tensors = dict(graph.tensors)
    tensors.update(ctx.new_tensors)
    for name, q in ctx.quant.items():
        t = tensors[name]
        if not t.is_const:
            tensors[name] = dataclasses.replace(t, dtype="int8", quant=q)
    return graph.replace(nodes=tuple(nodes), tensors=tensors).pruned()

