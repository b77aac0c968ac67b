"""Float-graph clean-ups, each a pure Graph -> Graph function, run by ``canonicalize`` in one list, after
``ops.check_supported`` has asked every imported node's op whether it supports it.

- fold_affine: per-channel scale/shift (BatchNorm, Mul/Add by a channel vector; imported as 1x1
  depthwise convs) folded into the preceding conv / depthwise / fully connected weights and bias.
- fold_pad: a zero Pad over H, W in front of a conv becomes the conv's own padding.
- fuse_activation: Relu / Relu6 / Clip folded into the producer's output clamp.
- merge_reshapes: reshape chains collapse; reshapes that change nothing disappear.
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from ..ir import Graph, Node, Tensor
from ..ops import check_supported, op_def
from ..ops.spatial import Window


def _single_consumer(graph: Graph, tensor: str) -> Node | None:
    cons = graph.consumers(tensor)
    if len(cons) == 1 and not graph.is_graph_output(tensor):
        return cons[0]
    return None


def _is_affine(node: Node) -> bool:
    if node.op != "depthwise_conv2d":
        return False
    a = node.attrs
    return a.window == Window((1, 1)) and a.activation.is_identity


def _rewire(graph: Graph, remove: Node, keep: Node, new_keep: Node) -> Graph:
    """Drop ``remove`` (which consumed ``keep``'s output); ``new_keep`` now writes remove's output."""
    nodes = []
    for n in graph.nodes:
        if n is remove:
            continue
        nodes.append(new_keep if n is keep else n)
    return graph.replace(nodes=tuple(nodes)).pruned()


def fold_affine(graph: Graph) -> Graph:
    changed = True
    while changed:
        changed = False
        for node in graph.nodes:
            if not _is_affine(node) or graph.tensors[node.inputs[1]].shape[-1] != graph.tensors[node.inputs[0]].shape[-1]:
                continue
            prod = graph.producer(node.inputs[0])
            if prod is None or prod.op not in ("conv2d", "depthwise_conv2d", "fully_connected"):
                continue
            if not prod.attrs.activation.is_identity or _single_consumer(graph, node.inputs[0]) is not node:
                continue
            scale = graph.tensors[node.inputs[1]].data.reshape(-1).astype(np.float64)
            shift = graph.tensors[node.inputs[2]].data.astype(np.float64)
            w = graph.tensors[prod.inputs[1]].data.astype(np.float64)
            b = graph.tensors[prod.inputs[2]].data.astype(np.float64)
            if prod.op == "depthwise_conv2d":
                if w.shape[-1] != scale.shape[0]:
                    continue
                w2 = w * scale
            else:
                if w.shape[0] != scale.shape[0]:
                    continue
                w2 = w * scale.reshape((-1,) + (1,) * (w.ndim - 1))
            b2 = b * scale + shift
            w_t, b_t, s_t = graph.tensors[prod.inputs[1]], graph.tensors[prod.inputs[2]], graph.tensors[node.inputs[2]]
            pure_add = bool(np.all(scale == 1.0))
            # exact integers of a pre-quantized model survive a pure bias add (MatMul + Add(int32 bias))
            w_keep = (w_t.qdata, w_t.quant) if pure_add else (None, None)
            b_qdata = None
            if pure_add and s_t.qdata is not None and (b_t.qdata is not None or not np.any(b)):
                b_qdata = s_t.qdata.astype(np.int64) + (b_t.qdata.astype(np.int64) if b_t.qdata is not None else 0)
            wt = Tensor(prod.inputs[1] + "_f", w.shape, "float32", w2.astype(np.float32), w_keep[1], None, w_keep[0])
            bt = Tensor(prod.inputs[2] + "_f", b.shape, "float32", b2.astype(np.float32), None, None, b_qdata)
            new_prod = prod.replace(
                inputs=(prod.inputs[0], wt.name, bt.name), outputs=node.outputs,
                source=prod.source + "+" + node.source,
            )
            graph = _rewire(graph.with_tensors([wt, bt]), node, prod, new_prod)
            changed = True
            break
    return graph


def fold_pad(graph: Graph) -> Graph:
    changed = True
    while changed:
        changed = False
        for node in graph.nodes:
            if node.op != "pad" or node.attrs.value != 0.0 or len(node.attrs.pads) != 4:
                continue
            p = node.attrs.pads
            if p[0] != (0, 0) or p[3] != (0, 0):
                continue
            cons = _single_consumer(graph, node.outputs[0])
            if cons is None or cons.op not in ("conv2d", "depthwise_conv2d") or cons.inputs[0] != node.outputs[0]:
                continue
            w = cons.attrs.window
            pads = (w.pads[0] + p[1][0], w.pads[1] + p[2][0], w.pads[2] + p[1][1], w.pads[3] + p[2][1])
            import dataclasses

            new_cons = cons.replace(
                inputs=(node.inputs[0],) + cons.inputs[1:],
                attrs=dataclasses.replace(cons.attrs, window=dataclasses.replace(w, pads=pads)),
                source="Pad+" + cons.source,
            )
            nodes = tuple(new_cons if n is cons else n for n in graph.nodes if n is not node)
            graph = graph.replace(nodes=nodes).pruned()
            changed = True
            break
    return graph


def _is_clamp(node: Node) -> bool:
    return node.op == "unary" and node.attrs.fn == "identity"


def fuse_activation(graph: Graph) -> Graph:
    import dataclasses

    changed = True
    while changed:
        changed = False
        for node in graph.nodes:
            if not _is_clamp(node):
                continue
            prod = graph.producer(node.inputs[0])
            if prod is None or not op_def(prod).fuses_activation or _single_consumer(graph, node.inputs[0]) is not node:
                continue
            act = prod.attrs.activation.then(node.attrs.activation)
            new_prod = prod.replace(
                attrs=dataclasses.replace(prod.attrs, activation=act), outputs=node.outputs,
                source=prod.source + "+" + node.source,
            )
            graph = _rewire(graph, node, prod, new_prod)
            changed = True
            break
    return graph


def merge_reshapes(graph: Graph) -> Graph:
    changed = True
    while changed:
        changed = False
        for node in graph.nodes:
            if node.op != "reshape":
                continue
            src = graph.tensors[node.inputs[0]]
            prod = graph.producer(node.inputs[0])
            if prod is not None and prod.op == "reshape" and _single_consumer(graph, node.inputs[0]) is node:
                new_node = node.replace(inputs=prod.inputs)
                nodes = tuple(new_node if n is node else n for n in graph.nodes if n is not prod)
                graph = graph.replace(nodes=nodes).pruned()
                changed = True
                break
            out = node.outputs[0]
            if src.shape == graph.tensors[out].shape and not graph.is_graph_output(out):
                nodes = tuple(
                    n.replace(inputs=tuple(node.inputs[0] if i == out else i for i in n.inputs))
                    for n in graph.nodes if n is not node
                )
                graph = graph.replace(nodes=nodes).pruned()
                changed = True
                break
    return graph


def eliminate_dead_nodes(graph: Graph) -> Graph:
    needed = set(graph.outputs)
    keep = []
    for n in reversed(graph.nodes):
        if any(o in needed for o in n.outputs):
            keep.append(n)
            needed.update(i for i in n.inputs if i)
    return graph.replace(nodes=tuple(reversed(keep))).pruned()


PIPELINE = (eliminate_dead_nodes, merge_reshapes, fold_pad, fold_affine, fuse_activation, merge_reshapes)


def canonicalize(graph: Graph) -> Graph:
    """Refuse what the ops do not support (``ops.check_supported``: every node as imported, before any
    pass folds it into another), then run the float clean-up passes in order."""
    check_supported(graph)
    with np.errstate(over="ignore", invalid="ignore"):  # a fold that overflows float32 is caught below
        for p in PIPELINE:
            graph = p(graph)
    for name, t in graph.tensors.items():
        if t.is_const and t.data.dtype.kind == "f" and not np.all(np.isfinite(t.data)):
            raise UserError(f"constant '{name}' becomes infinite or NaN when folded into its layer (its weights or "
                            "BatchNormalization parameters are too large for float32); fix the model's parameters")
    return graph
