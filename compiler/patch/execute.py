"""Patch-by-patch execution of the int8 graph in numpy: the specification of the generated patch loop.

Each stage op runs on region buffers with the same integer kernels as layer-by-layer execution; a
window op whose buffer is larger than it needs has it cropped (the C kernel does the same with a
negative padding). Patched output must equal layer-by-layer output byte for byte.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..ir import Graph, Node
from ..ops.data_movement import PadAttrs
from ..ops.spatial import Window
from ..quant.simulate import eval_node, node_inputs, run_nodes
from .planner import WINDOW_OPS, PatchPlan, local_window, np_region


def _local_node(graph: Graph, plan: PatchPlan, node: Node, p: int, x: np.ndarray) -> tuple[Node, np.ndarray]:
    """The node as it runs in patch p, and its (cropped) first input."""
    lw = local_window(graph, plan, node, p)
    if node.op == "pad":
        pads = node.attrs.pads
        after_h = lw.out_h - lw.in_h - lw.pad_top
        after_w = lw.out_w - lw.in_w - lw.pad_left
        local = PadAttrs((pads[0], (lw.pad_top, after_h), (lw.pad_left, after_w), pads[3]), node.attrs.value)
        return node.replace(attrs=local), x
    win = node.attrs.window
    pt, pl = lw.pad_top, lw.pad_left
    if pt < 0:
        x, pt = x[:, -pt:], 0
    if pl < 0:
        x, pl = x[:, :, -pl:], 0
    eff = [(win.kernel[a] - 1) * win.dilation[a] + 1 for a in range(2)]
    pb = (lw.out_h - 1) * win.stride[0] + eff[0] - x.shape[1] - pt
    pr = (lw.out_w - 1) * win.stride[1] + eff[1] - x.shape[2] - pl
    if pb < 0:
        x, pb = x[:, : x.shape[1] + pb], 0
    if pr < 0:
        x, pr = x[:, :, : x.shape[2] + pr], 0
    local = Window(win.kernel, win.stride, win.dilation, (pt, pl, pb, pr))
    return node.replace(attrs=dataclasses.replace(node.attrs, window=local)), x


def run_stage(graph: Graph, plan: PatchPlan, x: np.ndarray, integer: bool = True) -> np.ndarray:
    """The stage output, assembled patch by patch."""
    split = plan.split
    whole = np.zeros(graph.tensors[split].shape, np.int8 if integer else np.float32)
    inp = graph.inputs[0]
    for p, regs in enumerate(plan.regions):
        vals = {inp: np_region(x, regs[inp])}
        for j, node in enumerate(graph.nodes[: plan.stage_len]):
            ins = node_inputs(graph, node, vals)
            if node.op in WINDOW_OPS or node.op == "pad":
                node, ins[0] = _local_node(graph, plan, node, p, ins[0])
            else:
                ro = regs[node.outputs[0]]
                for slot, i in enumerate(node.inputs):
                    if i and not graph.tensors[i].is_const and regs[i] != ro:  # cropped copy of a larger buffer
                        ri = regs[i]
                        ins[slot] = ins[slot][:, ro.top - ri.top : ro.bottom - ri.top, ro.left - ri.left : ro.right - ri.left]
            out = eval_node(graph, node, ins, integer)[0]
            r = regs[node.outputs[0]]
            if out.shape[1:3] != (r.h, r.w):
                raise AssertionError(f"patch {p}: {node.name} gave {out.shape}, region {r}")
            vals[node.outputs[0]] = out
        r = regs[split]
        whole[:, r.top : r.bottom, r.left : r.right, :] = vals[split]
    return whole


def run_int_patched(graph: Graph, plan: PatchPlan, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Whole model: the stage patch by patch, then the rest layer by layer (int8, bit-exact)."""
    x = np.asarray(feeds[graph.inputs[0]]).reshape(graph.tensors[graph.inputs[0]].shape)
    split_value = run_stage(graph, plan, x)
    values = run_nodes(graph, graph.nodes[plan.stage_len :], {plan.split: split_value}, integer=True)
    return {o: values[o] for o in graph.outputs}
