"""Greedy-by-size arena planner, as TFLite Micro's GreedyMemoryPlanner:

- every activation tensor is a buffer alive from the step that writes it to the last step reading it
  (graph inputs from step 0, graph outputs to the end);
- a reshape's output is its input's buffer (an alias); an elementwise op may write its output over an
  input that dies at that step (in place);
- buffers are placed largest first, each at the lowest offset where it overlaps no already placed
  buffer whose lifetime intersects its own.
Kernel scratch (the depthwise kernel's per-channel accumulators) is a buffer alive only during its
layer, placed like any other. Peak SRAM = the arena size.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ir import Graph
from ..ops import op_def

ALIGN = 16


@dataclass(frozen=True)
class Buffer:
    name: str
    size: int
    first: int
    last: int
    offset: int


@dataclass(frozen=True)
class ArenaPlan:
    """Where every activation tensor lives: ``offsets[tensor]`` bytes into the arena."""

    buffers: tuple[Buffer, ...]
    offsets: dict[str, int]
    roots: dict[str, str]  # tensor -> the buffer it lives in (itself unless aliased / in place)
    activations_size: int  # end of the last buffer (activations and layer scratch)
    steps: int = 0

    @property
    def arena_size(self) -> int:
        return _align(self.activations_size)

    def live_bytes(self) -> list[int]:
        """Bytes of activation buffers alive at each step (the memory profile)."""
        return [sum(b.size for b in self.buffers if b.first <= s <= b.last) for s in range(self.steps)]


def _align(x: int) -> int:
    return (x + ALIGN - 1) // ALIGN * ALIGN


def place_buffers(buffers: list[tuple[str, int, int, int]]) -> list[Buffer]:
    """Greedy by size: (name, bytes, first step, last step) -> placed buffers."""
    sizes = {name: _align(size) for name, size, _, _ in buffers}
    first = {name: f for name, _, f, _ in buffers}
    last = {name: la for name, _, _, la in buffers}
    placed: list[Buffer] = []
    for r in sorted(sizes, key=lambda r: (-sizes[r], first[r], r)):
        overlapping = sorted((b for b in placed if not (b.last < first[r] or last[r] < b.first)), key=lambda b: b.offset)
        offset = 0
        for b in overlapping:
            if offset + sizes[r] <= b.offset:
                break
            offset = max(offset, _align(b.offset + b.size))
        placed.append(Buffer(r, sizes[r], first[r], last[r], offset))
    return placed


def scratch_buffer(node) -> str:
    """Name of a layer's scratch buffer: it lives only while that layer runs (as TFLite Micro plans them)."""
    return f"{node.outputs[0]}@scratch"


def _scratch_buffers(graph: Graph, nodes, first_step: int) -> list[tuple[str, int, int, int]]:
    out = []
    for step, n in enumerate(nodes, start=first_step):
        size = op_def(n).scratch_bytes(n, graph)
        if size:
            out.append((scratch_buffer(n), size, step, step))
    return out


def plan_memory(graph: Graph) -> ArenaPlan:
    roots: dict[str, str] = {}
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    n_steps = len(graph.nodes)

    def root(name: str) -> str:
        while roots.get(name, name) != name:
            name = roots[name]
        return name

    for name in graph.inputs:
        roots[name] = name
        first[name] = 0
        last[name] = 0
    remaining_uses: dict[str, int] = {}
    for n in graph.nodes:
        for i in n.inputs:
            if i and not graph.tensors[i].is_const:
                remaining_uses[i] = remaining_uses.get(i, 0) + 1
    # last step each tensor (not buffer) is read
    last_read: dict[str, int] = {}
    for step, n in enumerate(graph.nodes):
        for i in n.inputs:
            if i and not graph.tensors[i].is_const:
                last_read[i] = step
    for o in graph.outputs:
        last_read[o] = n_steps

    # which tensors share each root, to know when a root buffer really dies
    members: dict[str, set[str]] = {}
    for step, n in enumerate(graph.nodes):
        d = op_def(n)
        out = n.outputs[0]
        target = None
        if d.alias:
            target = root(n.inputs[0])
        elif d.inplace:
            for i in n.inputs:
                if not i or graph.tensors[i].is_const:
                    continue
                r = root(i)
                if graph.tensors[i].nbytes != graph.tensors[out].nbytes:
                    continue
                # the whole buffer must die here: no other member of it read later, not an output
                if any(last_read.get(m, -1) > step for m in members.get(r, {r}) | {i}):
                    continue
                if any(m in graph.outputs for m in members.get(r, {r})):
                    continue
                if r in graph.inputs:
                    continue
                target = r
                break
        for o in n.outputs:
            if target is not None and o == out:
                roots[o] = target
                members.setdefault(target, {target}).add(o)
            else:
                roots[o] = o
                members.setdefault(o, {o})
                first[o] = step
                last[o] = step
    for t, step in last_read.items():
        r = root(t)
        last[r] = max(last.get(r, 0), step)
    for name in graph.inputs:
        members.setdefault(name, {name})

    placed = place_buffers([(r, graph.tensors[r].nbytes, first[r], last[r]) for r in first]
                           + _scratch_buffers(graph, graph.nodes, 0))
    activations = max((b.offset + b.size for b in placed), default=0)
    offsets = {b.name: b.offset for b in placed}
    all_offsets = {t: offsets[root(t)] for t in roots}
    all_offsets.update({b.name: b.offset for b in placed if b.name.endswith("@scratch")})
    return ArenaPlan(
        tuple(sorted(placed, key=lambda b: (b.first, b.name))), all_offsets, {t: root(t) for t in roots},
        activations, n_steps + 1,
    )


def region_buffer(tensor: str) -> str:
    """Name of the per-patch buffer of a stage tensor in a patched plan."""
    return f"{tensor}@patch"


def plan_memory_patched(graph: Graph, plan) -> ArenaPlan:
    """Arena for a patched schedule: per-patch region buffers (reused by every patch) for the stage,
    the stage output whole, then the rest layer by layer. Steps: 0 fills the input patch, 1..k run the
    stage, k+1 stores the patch into the whole stage output, k+2.. run the rest."""
    from ..patch.planner import max_region_bytes

    k = plan.stage_len
    stage, rest = graph.nodes[:k], graph.nodes[k:]
    inp, split = graph.inputs[0], plan.split
    end = k + 2 + len(rest)
    buffers = []
    if not plan.input_by_patch:
        buffers.append((inp, graph.tensors[inp].nbytes, 0, k + 1))
    last_in_stage: dict[str, int] = {}
    for step, n in enumerate(stage, start=1):
        for i in n.inputs:
            if i and not graph.tensors[i].is_const:
                last_in_stage[i] = step
    last_in_stage[split] = k + 1
    produced_at = {inp: 0}
    for step, n in enumerate(stage, start=1):
        produced_at[n.outputs[0]] = step
    for t, f in produced_at.items():
        buffers.append((region_buffer(t), max_region_bytes(graph, plan, t), f, last_in_stage.get(t, f)))
    from ..patch.planner import crop_buffer

    for j, slot in plan.crops:
        node = stage[j]
        buffers.append((crop_buffer(graph, plan, j, slot), max_region_bytes(graph, plan, node.outputs[0])
                        // graph.tensors[node.outputs[0]].shape[3] * graph.tensors[node.inputs[slot]].shape[3], j + 1, j + 1))
    last_read: dict[str, int] = {}
    for step, n in enumerate(rest, start=k + 2):
        for i in n.inputs:
            if i and not graph.tensors[i].is_const:
                last_read[i] = step
    for o in graph.outputs:
        last_read[o] = end
    buffers.append((split, graph.tensors[split].nbytes, 0, last_read.get(split, k + 1)))
    # the rest: reuse the layer-by-layer logic on the sub-graph that starts at the stage output
    sub = graph.replace(nodes=tuple(rest), inputs=(split,))
    sub_plan = plan_memory(sub)
    for b in sub_plan.buffers:
        if b.name == split or b.name.endswith("@scratch"):
            continue
        buffers.append((b.name, graph.tensors[b.name].nbytes, b.first + k + 2, b.last + k + 2))
    buffers += _scratch_buffers(graph, stage, 1) + _scratch_buffers(graph, rest, k + 2)
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
