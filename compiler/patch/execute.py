"""Patch-by-patch execution of the int8 graph in numpy: the specification of the generated patch loop.

Each stage op runs on region buffers with the same integer kernels as layer-by-layer execution; a
window op whose buffer is larger than it needs has it cropped (the C kernel does the same with a
negative padding). Patched output must equal layer-by-layer output byte for byte.
"""

from __future__ import annotations

import numpy as np

from ..arith.bitwidth import storage_dtype
from ..ir import Graph, Node
from ..ops import op_def
from ..quant.simulate import eval_node, node_inputs, run_nodes
from .planner import PatchPlan, local_window, np_region


def run_stage(graph: Graph, plan: PatchPlan, x: np.ndarray, integer: bool = True,
              chains: tuple[tuple[Node, ...], ...] | None = None,
              chain_of_patch: tuple[int, ...] | None = None) -> np.ndarray:
    """The stage output, assembled patch by patch. ``chains``: the alternative node chains of the patch
    loop (default: the stage's nodes), ``chain_of_patch[p]`` the one patch p runs (default: chain 0)."""
    split = plan.split
    whole = np.zeros(graph.tensors[split].shape, storage_dtype(graph.tensors[split].bits) if integer else np.float32)
    inp = graph.inputs[0]
    chains = chains or (tuple(graph.nodes[: plan.stage_len]),)
    for p, regs in enumerate(plan.regions):
        vals = {inp: np_region(x, regs[inp])}
        for node in chains[chain_of_patch[p] if chain_of_patch is not None else 0]:
            ins = node_inputs(graph, node, vals)
            lw = local_window(graph, plan, node, p)
            if lw is not None:  # the op's own padding in this patch (negative: a start offset)
                node, ins[0] = op_def(node).patch_local_node(node, lw, ins[0])
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


def run_int_patched(graph: Graph, plan: PatchPlan, feeds: dict[str, np.ndarray],
                    chains: tuple[tuple[Node, ...], ...] | None = None,
                    chain_of_patch: tuple[int, ...] | None = None) -> dict[str, np.ndarray]:
    """Whole model: the stage patch by patch (``chains``/``chain_of_patch`` as in run_stage), then the rest
    layer by layer (int8, bit-exact)."""
    x = np.asarray(feeds[graph.inputs[0]]).reshape(graph.tensors[graph.inputs[0]].shape)
    split_value = run_stage(graph, plan, x, True, chains, chain_of_patch)
    values = run_nodes(graph, graph.nodes[plan.stage_len :], {plan.split: split_value}, integer=True)
    return {o: values[o] for o in graph.outputs}
