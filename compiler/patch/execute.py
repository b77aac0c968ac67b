"""Patch-by-patch execution of the int8 graph in numpy: the specification of the generated patch loop.

Each stage op runs on region buffers with the same integer kernels as layer-by-layer execution; a
window op whose buffer is larger than it needs has it cropped (the C kernel does the same with a
negative padding). Patched output must equal layer-by-layer output byte for byte. With several chains a
patch runs the one a compile-time table names, or the one a check of its own values picks at run time
(VDPC: a probe chain runs first, :data:`Probe`), exactly as the generated patch loop does. The outlier chain of a
run-time dispatch may run a patch as sub-patches (:class:`SubPatches`, :func:`plan_sub_patches`): each a tile of
the patch's output tile with its own back-propagated regions, from the input up, so that its buffers are those
of a finer grid (QuantMCU: the 8-bit chain fits the arena the low-bit chain's packed maps need).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..arith.bitwidth import storage_dtype
from ..ir import Graph, Node, Region
from ..ops import op_def
from ..quant.simulate import eval_node, node_inputs, run_nodes
from .planner import (
    PatchPlan,
    _regions_for_patch,
    _topological,
    _split_bounds,
    crop_operands,
    local_window,
    node_macs_region,
    np_region,
)


@dataclass(frozen=True)
class SubPatches:
    """Chain ``chain`` of a patch loop runs each patch it takes as sub-patches: ``plan`` holds the regions of
    every sub-patch (patch-major: the sub-patches of patch p are ``of_patch[p]``, row-major inside it); their
    stage-output tiles tile patch p's exactly (uneven where ``factor`` does not divide it). ``factor``: s, the
    s x s split of each patch (fewer where a patch's tile has fewer rows or columns than s)."""

    plan: PatchPlan
    of_patch: tuple[tuple[int, ...], ...]
    factor: int
    chain: int = 0


def plan_sub_patches(graph: Graph, plan: PatchPlan, factor: int, chain: int = 0,
                     cache: dict | None = None) -> SubPatches:
    """Each patch of ``plan`` split into ``factor`` x ``factor`` sub-patches: its stage-output tile cut as evenly
    as possible (the first rows and columns take the extra one, as plan_patches cuts the map), each sub-tile's
    regions back-propagated through the stage like a patch's. The sub plan's grid is ``factor`` x the plan's; its
    ``crops`` are the operands some sub-patch reads through a cropped copy (they may differ from the plan's).

    Parameters
    ----------
    graph, plan : Graph, PatchPlan
        The quantized graph and the patch plan (its stage is ``graph.nodes[:plan.stage_len]``).
    factor : int
        s >= 1 (1: each patch is its own single sub-patch).
    chain : int
        The chain of the loop that runs them (the run-time dispatch's outlier chain).
    cache : dict, optional
        Regions already back-propagated, by (stage length, stage-output tile): a search planning many grids
        and factors of one stage passes one dict (tiles of different plans often coincide).

    Returns
    -------
    SubPatches
    """
    if factor < 1:
        raise ValueError("a patch splits into s x s sub-patches, s >= 1")
    stage = tuple(graph.nodes[: plan.stage_len])
    split = plan.split
    ordered = _topological(graph, stage)
    regions, of_patch = [], []
    for regs in plan.regions:
        t = regs[split]
        rows = [t.top + b for b in _split_bounds(t.h, min(factor, t.h))]
        cols = [t.left + b for b in _split_bounds(t.w, min(factor, t.w))]
        first = len(regions)
        for i in range(len(rows) - 1):
            for j in range(len(cols) - 1):
                tile = Region(rows[i], cols[j], rows[i + 1], cols[j + 1])
                key = (plan.stage_len, tile)
                if cache is None or key not in cache:
                    regs_q = _regions_for_patch(graph, stage, split, tile, ordered)
                    if cache is None:
                        regions.append(regs_q)
                        continue
                    cache[key] = regs_q
                regions.append(cache[key])
        of_patch.append(tuple(range(first, len(regions))))
    row_bounds = tuple(sorted({regs[split].top for regs in regions} | {regs[split].bottom for regs in regions}))
    col_bounds = tuple(sorted({regs[split].left for regs in regions} | {regs[split].right for regs in regions}))
    macs = {}  # the tiles of one size have the same MACs per layer
    for r in regions:
        for nd in stage:
            o = r[nd.outputs[0]]
            if (nd.name, o.h, o.w) not in macs:
                macs[(nd.name, o.h, o.w)] = node_macs_region(nd, graph, o)
    patched = sum(macs[(nd.name, r[nd.outputs[0]].h, r[nd.outputs[0]].w)] for r in regions for nd in stage)
    sub = PatchPlan(split, plan.stage_len, plan.grid * factor, row_bounds, col_bounds, tuple(regions),
                    plan.input_by_patch, plan.macs_layerwise, patched, plan.macs_model,
                    crop_operands(graph, stage, regions))
    return SubPatches(sub, tuple(of_patch), factor, chain)


#: a run-time dispatch as the simulator sees it: (probe chain, choose, resume): each patch first runs the probe
#: chain, then ``choose(values)`` (the probe's region values by tensor) names the chain it takes; another chain
#: than the probe runs from the start (resume None) or, resume = (k, tensor), takes over the probe's region of
#: ``tensor`` and runs its nodes from the k-th on, as the generated code does
Probe = tuple[int, Callable[[dict[str, np.ndarray]], int], "tuple[int, str] | None"]


def run_stage(graph: Graph, plan: PatchPlan, x: np.ndarray, integer: bool = True,
              chains: tuple[tuple[Node, ...], ...] | None = None,
              chain_of_patch: tuple[int, ...] | None = None, probe: Probe | None = None,
              taken: list[int] | None = None, sub: SubPatches | None = None) -> np.ndarray:
    """The stage output, assembled patch by patch. ``chains``: the alternative node chains of the patch
    loop (default: the stage's nodes), ``chain_of_patch[p]`` the one patch p runs (default: chain 0), or,
    decided per patch from the values, ``probe`` (see :data:`Probe`). ``taken``, when given, receives the
    chain each patch ran, in patch order. ``sub``: a patch the probe sends to chain ``sub.chain`` runs as its
    sub-patches instead, each from the input up (no resume: the probe's values are dropped), each writing its
    tile of the stage output."""
    split = plan.split
    whole = np.zeros(graph.tensors[split].shape, storage_dtype(graph.tensors[split].bits) if integer else np.float32)
    chains = chains or (tuple(graph.nodes[: plan.stage_len]),)
    for p, regs in enumerate(plan.regions):
        if probe is not None:
            vals = _run_patch(graph, plan, x, p, chains[probe[0]], integer)
            chain = probe[1](vals)
            if sub is not None and chain == sub.chain and chain != probe[0]:
                for q in sub.of_patch[p]:
                    qv = _run_patch(graph, sub.plan, x, q, chains[chain], integer)
                    r = sub.plan.regions[q][split]
                    whole[:, r.top : r.bottom, r.left : r.right, :] = qv[split]
                if taken is not None:
                    taken.append(chain)
                continue
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
                    taken: list[int] | None = None, sub: SubPatches | None = None) -> dict[str, np.ndarray]:
    """Whole model: the stage patch by patch (``chains``/``chain_of_patch``/``probe``/``taken``/``sub`` as in
    run_stage), then the rest layer by layer (int8, bit-exact)."""
    x = np.asarray(feeds[graph.inputs[0]]).reshape(graph.tensors[graph.inputs[0]].shape)
    split_value = run_stage(graph, plan, x, True, chains, chain_of_patch, probe, taken, sub)
    values = run_nodes(graph, graph.nodes[plan.stage_len :], {plan.split: split_value}, integer=True)
    return {o: values[o] for o in graph.outputs}
