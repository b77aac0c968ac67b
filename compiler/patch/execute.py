"""Patch-by-patch execution of the int8 graph in numpy: the specification of the generated patch loop.

Each stage op runs on region buffers with the same integer kernels as layer-by-layer execution; a
window op whose buffer is larger than it needs has it cropped (the C kernel does the same with a
negative padding). Patched output must equal layer-by-layer output byte for byte. With several chains a
patch runs the one a compile-time table names, or the one a check of its own values picks at run time
(VDPC: a probe chain runs first, :data:`Probe`), exactly as the generated patch loop does.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..arith.bitwidth import storage_dtype
from ..ir import Graph, Node
from ..ops import op_def
from ..quant.simulate import eval_node, node_inputs, run_nodes
from .planner import PatchPlan, local_window, np_region


#: a run-time dispatch as the simulator sees it: (probe chain, choose, resume): each patch first runs the probe
#: chain, then ``choose(values)`` (the probe's region values by tensor) names the chain it takes; another chain
#: than the probe runs from the start (resume None) or, resume = (k, tensor), takes over the probe's region of
#: ``tensor`` and runs its nodes from the k-th on, as the generated code does
Probe = tuple[int, Callable[[dict[str, np.ndarray]], int], "tuple[int, str] | None"]


def run_stage(graph: Graph, plan: PatchPlan, x: np.ndarray, integer: bool = True,
              chains: tuple[tuple[Node, ...], ...] | None = None,
              chain_of_patch: tuple[int, ...] | None = None, probe: Probe | None = None,
              taken: list[int] | None = None) -> np.ndarray:
    """The stage output, assembled patch by patch. ``chains``: the alternative node chains of the patch
    loop (default: the stage's nodes), ``chain_of_patch[p]`` the one patch p runs (default: chain 0), or,
    decided per patch from the values, ``probe`` (see :data:`Probe`). ``taken``, when given, receives the
    chain each patch ran, in patch order."""
    split = plan.split
    whole = np.zeros(graph.tensors[split].shape, storage_dtype(graph.tensors[split].bits) if integer else np.float32)
    chains = chains or (tuple(graph.nodes[: plan.stage_len]),)
    for p, regs in enumerate(plan.regions):
        if probe is not None:
            vals = _run_patch(graph, plan, x, p, chains[probe[0]], integer)
            chain = probe[1](vals)
            if chain != probe[0]:
                if probe[2] is None:
                    vals = _run_patch(graph, plan, x, p, chains[chain], integer)
                else:
                    k, tensor = probe[2]
                    vals = _run_patch(graph, plan, x, p, chains[chain][k:], integer, {tensor: vals[tensor]})
        else:
            chain = chain_of_patch[p] if chain_of_patch is not None else 0
            vals = _run_patch(graph, plan, x, p, chains[chain], integer)
        if taken is not None:
            taken.append(chain)
        r = regs[split]
        whole[:, r.top : r.bottom, r.left : r.right, :] = vals[split]
    return whole


def _run_patch(graph: Graph, plan: PatchPlan, x: np.ndarray, p: int, chain: tuple[Node, ...],
               integer: bool, given: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Patch ``p`` through the nodes of ``chain``: every region value it computes, by tensor. ``given``: region
    values already computed (a chain resumed from a probe's), else the patch's input region."""
    regs = plan.regions[p]
    inp = graph.inputs[0]
    vals = dict(given) if given is not None else {inp: np_region(x, regs[inp])}
    for node in chain:
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
    return vals


def run_int_patched(graph: Graph, plan: PatchPlan, feeds: dict[str, np.ndarray],
                    chains: tuple[tuple[Node, ...], ...] | None = None,
                    chain_of_patch: tuple[int, ...] | None = None, probe: Probe | None = None,
                    taken: list[int] | None = None) -> dict[str, np.ndarray]:
    """Whole model: the stage patch by patch (``chains``/``chain_of_patch``/``probe``/``taken`` as in
    run_stage), then the rest layer by layer (int8, bit-exact)."""
    x = np.asarray(feeds[graph.inputs[0]]).reshape(graph.tensors[graph.inputs[0]].shape)
    split_value = run_stage(graph, plan, x, True, chains, chain_of_patch, probe, taken)
    values = run_nodes(graph, graph.nodes[plan.stage_len :], {plan.split: split_value}, integer=True)
    return {o: values[o] for o in graph.outputs}
