"""Patch planning: for a split tensor s and an n x n grid over it, the exact region of every tensor of
the per-patch stage that each output patch needs.

Regions are back-propagated from the stage output through each op (kernel, stride, dilation, padding;
clipped to the tensor, so padding exists only at the image border). A tensor read by several ops gets
the bounding box of what they need. A window op whose input buffer is larger than it needs reads it
with a negative padding (a start offset): no copy, no branch. An elementwise op (add, mul, lookup,
channel concat) whose operand buffer is larger than its output region reads a cropped copy (``crops``):
unifying the regions instead would grow them through every residual skip until they cover the map.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from ..ir import Graph, LocalWindow, Node, Region
from ..ops import op_def


@dataclass(frozen=True)
class PatchPlan:
    """The per-patch stage: ``stage`` nodes (graph order) computed patch by patch on an n x n grid of
    ``split`` (the stage output, held whole); ``regions[p][tensor]`` is each tensor's region in patch p."""

    split: str
    stage_len: int  # the stage is graph.nodes[:stage_len]
    grid: int
    row_bounds: tuple[int, ...]
    col_bounds: tuple[int, ...]
    regions: tuple[dict[str, Region], ...]
    input_by_patch: bool
    macs_layerwise: int  # of the stage, computed whole
    macs_patched: int  # of the stage, summed over patches
    macs_model: int  # of the whole model, layer by layer
    crops: tuple[tuple[int, int], ...] = ()  # (stage layer, input slot) read through a cropped copy

    @property
    def overhead(self) -> float:
        """Recomputed MACs as a fraction of the whole model's MACs layer by layer (as MCUNetV2 reports it)."""
        return (self.macs_patched - self.macs_layerwise) / self.macs_model if self.macs_model else 0.0

    @property
    def patches(self) -> int:
        return len(self.regions)



def _split_bounds(size: int, n: int) -> tuple[int, ...]:
    # as even as possible; the first patches take the extra row (uneven edges)
    edges = [0]
    for k in range(n):
        edges.append(edges[-1] + size // n + (1 if k < size % n else 0))
    return tuple(edges)


def patch_problem(node: Node, graph: Graph) -> str | None:
    """Why ``node`` cannot run in the per-patch stage (None when it can): 4-D maps in and out, and the
    op's own patch rule (global pooling, FC, softmax, reshape... end the stage)."""
    out = graph.tensors[node.outputs[0]]
    acts = [graph.tensors[i] for i in node.inputs if i and not graph.tensors[i].is_const]
    if len(out.shape) != 4 or any(len(t.shape) != 4 for t in acts):
        return "it does not work on 4-D maps"
    return op_def(node).patch_problem(node, graph)


def patchable(node: Node, graph: Graph) -> bool:
    return patch_problem(node, graph) is None


def candidate_splits(graph: Graph) -> list[int]:
    """Stage lengths k such that nodes[:k] are patchable, read only the graph input from outside, and
    hand exactly one tensor (the output of nodes[k-1]) to the rest of the graph."""
    out = []
    nodes = graph.nodes
    for k in range(1, len(nodes) + 1):
        if not patchable(nodes[k - 1], graph):
            break
        stage = nodes[:k]
        produced = {o for n in stage for o in n.outputs}
        if graph.inputs[0] not in {i for n in stage for i in n.inputs}:
            continue
        if len(graph.tensors[graph.inputs[0]].shape) != 4:
            break
        split = nodes[k - 1].outputs[0]
        crossing = {i for n in nodes[k:] for i in n.inputs if i in produced} | (produced & set(graph.outputs))
        if crossing - {split}:
            continue
        if any(graph.inputs[0] in n.inputs for n in nodes[k:]):
            continue  # the rest reads the model input too: it would have to stay whole
        if split in graph.outputs or not nodes[k:]:
            continue
        external = {i for n in stage for i in n.inputs if i and not graph.tensors[i].is_const} - produced
        if external - {graph.inputs[0]}:
            continue
        out.append(k)
    return out


def _topological(graph: Graph, stage: tuple[Node, ...]) -> bool:
    """Every activation a stage node reads is the graph's input or made by an earlier stage node."""
    made = set(graph.inputs)
    for node in stage:
        if any(i and not graph.tensors[i].is_const and i not in made for i in node.inputs):
            return False
        made.update(node.outputs)
    return True


def _regions_for_patch(graph: Graph, stage: tuple[Node, ...], split: str, target: Region,
                       ordered: bool = False) -> dict[str, Region]:
    """Each stage tensor's region for ``target`` of ``split``: back-propagated to a fixed point. ``ordered``: the
    stage is topologically ordered (:func:`_topological`), so one pass in reverse order reaches it (a node's output
    region is complete once every later node, all its readers, has added to it; a second pass adds nothing)."""
    need: dict[str, Region] = {split: target}
    while True:
        before = dict(need)
        for node in reversed(stage):
            r = need.get(node.outputs[0])
            if r is None:
                continue
            for i in node.inputs:
                if i and not graph.tensors[i].is_const:
                    need[i] = op_def(node).patch_input_region(node, graph, r, i).union(need.get(i))
        if ordered or need == before:
            return need


def node_macs_region(node: Node, graph: Graph, out: Region) -> int:
    full = op_def(node).macs(node, graph)
    shape = graph.tensors[node.outputs[0]].shape
    return int(round(full * (out.h * out.w) / (shape[1] * shape[2])))


#: plans already made, per graph: {graph: (stamp, {(k, n, input_by_patch): plan})}. The stamp is what a plan is
#: computed from (the graph's nodes, its tensors, inputs and outputs, all immutable objects compared by identity):
#: a graph whose tensors dict was changed in place since gets its plans computed again
_PLANS: "weakref.WeakKeyDictionary[Graph, tuple[tuple, dict]]" = weakref.WeakKeyDictionary()


def _stamp(graph: Graph) -> tuple:
    return graph.nodes, tuple(graph.tensors.items()), graph.inputs, graph.outputs


def plan_patches(graph: Graph, k: int, n: int, input_by_patch: bool = False) -> PatchPlan:
    """The plan for stage nodes[:k] on an n x n grid of its output (made once per graph and arguments: the patch
    search, QuantMCU's joint search and the sub-patches plan the same candidates; a plan is immutable)."""
    stamp = _stamp(graph)
    entry = _PLANS.get(graph)
    if entry is None or entry[0] != stamp:
        entry = (stamp, {})
        _PLANS[graph] = entry
    key = (int(k), int(n), bool(input_by_patch))
    plan = entry[1].get(key)
    if plan is None:
        plan = entry[1][key] = _plan_patches(graph, *key)
    return plan


def _plan_patches(graph: Graph, k: int, n: int, input_by_patch: bool) -> PatchPlan:
    stage = graph.nodes[:k]
    split = stage[-1].outputs[0]
    _, h, w, _ = graph.tensors[split].shape
    n_rows, n_cols = min(n, h), min(n, w)
    rows, cols = _split_bounds(h, n_rows), _split_bounds(w, n_cols)
    ordered = _topological(graph, stage)
    regions = []
    for i in range(n_rows):
        for j in range(n_cols):
            regions.append(_regions_for_patch(graph, stage, split, Region(rows[i], cols[j], rows[i + 1], cols[j + 1]),
                                              ordered))
    layer = sum(op_def(nd).macs(nd, graph) for nd in stage)
    patched = sum(node_macs_region(nd, graph, r[nd.outputs[0]]) for r in regions for nd in stage)
    total = sum(op_def(nd).macs(nd, graph) for nd in graph.nodes)
    return PatchPlan(split, k, n, rows, cols, tuple(regions), input_by_patch, layer, patched, total,
                     crop_operands(graph, stage, regions))


def crop_operands(graph: Graph, stage, regions) -> tuple[tuple[int, int], ...]:
    """(stage layer, input slot) of every elementwise operand whose region in some patch is larger than its
    layer's output region: it is read through a cropped copy (``PatchPlan.crops``)."""
    crops = []
    for j, nd in enumerate(stage):
        if not op_def(nd).patch_crops_operands:
            continue
        for slot, i in enumerate(nd.inputs):
            if i and not graph.tensors[i].is_const and any(r[i] != r[nd.outputs[0]] for r in regions):
                crops.append((j, slot))
    return tuple(crops)


def crop_buffer(graph: Graph, plan: "PatchPlan", j: int, slot: int, chain: int = 0) -> str:
    """Name of the cropped copy of stage layer j's operand ``slot`` (per chain of the patch loop)."""
    return f"{graph.nodes[j].inputs[slot]}@crop{j}" + (f".{chain}" if chain > 0 else "")


def local_window(graph: Graph, plan: PatchPlan, node: Node, p: int) -> LocalWindow | None:
    """How ``node`` runs in patch p (buffer and region sizes, local padding), or None for an op with no
    padding (it computes its output region from operands of that region)."""
    rin, rout = plan.regions[p][node.inputs[0]], plan.regions[p][node.outputs[0]]
    pads = op_def(node).patch_local_pads(node, rin, rout)
    if pads is None:
        return None
    return LocalWindow(rin.h, rin.w, rout.h, rout.w, *pads)


def region_bytes(graph: Graph, tensor: str, r: Region) -> int:
    """Bytes of region ``r`` of NHWC map ``tensor`` in its storage layout: r.h * r.w pixels of
    ``pixel_bytes`` each (channels innermost, packed int4 / int2 pixels padded to a whole byte)."""
    return r.h * r.w * graph.tensors[tensor].pixel_bytes


def max_region_bytes(graph: Graph, plan: PatchPlan, tensor: str, layout_of: str | None = None) -> int:
    """The largest region of ``tensor`` over the patches, in bytes of ``layout_of``'s pixels when given
    (a cropped copy of an operand has the output's region and the operand's channels and bits)."""
    return max(region_bytes(graph, layout_of or tensor, reg[tensor]) for reg in plan.regions)


def np_region(x: np.ndarray, r: Region) -> np.ndarray:
    return x[:, r.top : r.bottom, r.left : r.right, :]
