"""Arena planning for a patched schedule: the per-patch region buffers of the stage (reused by every
patch), its cropped copies, the stage output whole, then the rest of the graph layer by layer. This is
patch logic built on the memory planner (memory/ knows nothing of patches)."""

from __future__ import annotations

from ..ir import Graph, Node
from ..memory.planner import ArenaPlan, place_buffers, plan_memory, scratch_buffers
from .execute import SubPatches
from .planner import PatchPlan, crop_buffer


def region_buffer(tensor: str, chain: int = 0) -> str:
    """Name of the per-patch buffer of a stage tensor in a patched plan (in chain ``chain`` of the loop)."""
    return f"{tensor}@patch" + (f"{chain}" if chain > 0 else "")


def _max_region_bytes(graph: Graph, plan: PatchPlan, tensor: str, layout_of: str | None = None) -> int:
    """``planner.max_region_bytes``, the pixel size looked up once (the joint search sizes many plans)."""
    pixel = graph.tensors[layout_of or tensor].pixel_bytes
    return max(reg[tensor].h * reg[tensor].w for reg in plan.regions) * pixel


def rest_memory_plan(graph: Graph, stage_len: int, board=None) -> ArenaPlan:
    """The layer-by-layer plan of what follows a stage of ``stage_len`` layers (from its output on), which
    :func:`plan_memory_patched` places after the loop; the same for every grid of that split."""
    split = graph.nodes[stage_len - 1].outputs[0]
    return plan_memory(graph.replace(nodes=tuple(graph.nodes[stage_len:]), inputs=(split,)), board)


def plan_memory_patched(graph: Graph, plan: PatchPlan, chains: int | tuple[tuple[Node, ...], ...] = 1,
                        board=None, sub: SubPatches | None = None, rest_plan: ArenaPlan | None = None) -> ArenaPlan:
    """Arena for a patched schedule: per-patch region buffers (reused by every patch) for the stage,
    the stage output whole, then the rest layer by layer. Steps: 0 fills the input patch, 1..k run the
    stage, k+1 stores the patch into the whole stage output, k+2.. run the rest.

    With ``chains`` > 1 the loop holds that many alternative chains (a patch runs one of them): each has
    its own region, crop and scratch buffers, in its own exclusive group, so the chains share bytes.
    ``chains`` may also be a tuple of node tuples, each chain's own nodes (one per stage node, in order: a
    low-bit chain's copy of the stage with its own tensors, whose regions are in ``plan``); each chain's
    buffers are then sized by its own tensors (packed maps take their packed bytes).
    ``board``: a Board or an ``ops.kernel.KernelTarget`` whose kernels' scratch is planned (None: portable).
    ``sub``: chain ``sub.chain`` runs its patches as sub-patches (``patch.execute.plan_sub_patches``): its region
    and crop buffers are sized by the sub-patches' regions (still in that chain's exclusive group).
    ``rest_plan``: :func:`rest_memory_plan` of this split, when the caller plans many grids of one split."""
    k = plan.stage_len
    stage, rest = graph.nodes[:k], graph.nodes[k:]
    if isinstance(chains, int):
        chain_nodes = tuple(tuple(stage) for _ in range(chains))
    else:
        chain_nodes = tuple(tuple(c) for c in chains)
        if not chain_nodes or any(len(c) != k for c in chain_nodes):
            raise ValueError(f"each chain of the patch loop holds one node per stage node ({k})")
        chains = len(chain_nodes)
    inp, split = graph.inputs[0], plan.split
    end = k + 2 + len(rest)
    buffers = []
    if not plan.input_by_patch:
        buffers.append((inp, graph.tensors[inp].nbytes, 0, k + 1))
    group = (lambda c: None) if chains == 1 else (lambda c: c)
    if sub is not None and not 0 <= sub.chain < chains:
        raise ValueError(f"the sub-patches' chain {sub.chain} is not one of the loop's {chains}")
    for c, nodes in enumerate(chain_nodes):
        cplan = sub.plan if sub is not None and sub.chain == c else plan
        last_in_stage: dict[str, int] = {}
        for step, n in enumerate(nodes, start=1):
            for i in n.inputs:
                if i and not graph.tensors[i].is_const:
                    last_in_stage[i] = step
        last_in_stage[split] = k + 1
        produced_at = {inp: 0}
        for step, n in enumerate(nodes, start=1):
            produced_at[n.outputs[0]] = step
        for t, f in produced_at.items():
            buffers.append((region_buffer(t, c), _max_region_bytes(graph, cplan, t), f, last_in_stage.get(t, f), group(c)))
        for j, slot in cplan.crops:
            node = nodes[j]
            size = _max_region_bytes(graph, cplan, node.outputs[0], layout_of=node.inputs[slot])
            buffers.append((crop_buffer(graph, plan, j, slot, c), size, j + 1, j + 1, group(c)))
        buffers += scratch_buffers(graph, nodes, 1, group(c), board)
    last_read: dict[str, int] = {}
    for step, n in enumerate(rest, start=k + 2):
        for i in n.inputs:
            if i and not graph.tensors[i].is_const:
                last_read[i] = step
    for o in graph.outputs:
        last_read[o] = end
    # the rest: reuse the layer-by-layer logic on the sub-graph that starts at the stage output
    sub_plan = rest_plan if rest_plan is not None else rest_memory_plan(graph, k, board)
    # the stage output lives until its last reader, views of it included (a flatten before the classifier
    # runs no kernel: the layer after it reads the stage output's bytes), which the rest's own plan knows
    split_last = max([last_read.get(split, k + 1)] + [b.last + k + 2 for b in sub_plan.buffers if b.name == split])
    buffers.append((split, graph.tensors[split].nbytes, 0, split_last))
    for b in sub_plan.buffers:
        if b.name == split or b.name.endswith("@scratch"):
            continue
        buffers.append((b.name, graph.tensors[b.name].nbytes, b.first + k + 2, b.last + k + 2))
    buffers += scratch_buffers(graph, rest, k + 2, board=board)
    placed = place_buffers(buffers)
    offsets = {b.name: b.offset for b in placed}
    all_offsets = dict(offsets)
    for t, r in sub_plan.roots.items():
        if t != split and r in offsets:
            all_offsets[t] = offsets[r]
        elif r == split:
            all_offsets[t] = offsets[split]
    roots = {t: (r if r in offsets else split) for t, r in sub_plan.roots.items()}
    roots.update({b: b for b in offsets})
    activations = max(b.offset + b.size for b in placed)
    return ArenaPlan(tuple(sorted(placed, key=lambda b: (b.first, b.name))), all_offsets, roots, activations, end + 1)
