"""Greedy-by-size arena planner, as TFLite Micro's GreedyMemoryPlanner:

- every activation tensor is a buffer alive from the step that writes it to the last step reading it
  (graph inputs from step 0, graph outputs to the end);
- a reshape's output is its input's buffer (an alias); an elementwise op may write its output over an
  input that dies at that step (in place);
- buffers are placed largest first, each at the lowest offset where it overlaps no already placed
  buffer whose lifetime intersects its own.
Kernel scratch (what the layer's kernel call declares, ``KernelCall.scratch_bytes``: e.g. the depthwise
kernel's per-channel accumulators) is a buffer alive only during its layer, placed like any other. Peak SRAM = the arena size.

Sizes are storage bytes (``Tensor.nbytes``): a packed int4 / int2 feature map takes ceil(C * bits / 8)
bytes per pixel. In place also needs the same dtype: the in-place kernels write each output element over
its own input element, which equal sizes alone do not promise (a one-channel int4 map and a one-channel
int8 map both take a byte per pixel, with different layouts inside it).
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
    #: buffers of different groups never live at the same time although their steps overlap (the
    #: mutually exclusive chains of a patch loop: one patch runs one chain), so they may share bytes
    group: int | None = None


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
        """Bytes of activation buffers alive at each step (the memory profile). Buffers of mutually exclusive
        groups (a patch loop's chains: one patch runs one of them) never live together: a step counts the
        buffers of no group plus the largest group's."""
        out = []
        for s in range(self.steps):
            alive = [b for b in self.buffers if b.first <= s <= b.last]
            groups: dict[int, int] = {}
            for b in alive:
                if b.group is not None:
                    groups[b.group] = groups.get(b.group, 0) + b.size
            out.append(sum(b.size for b in alive if b.group is None) + max(groups.values(), default=0))
        return out


def _align(x: int) -> int:
    return (x + ALIGN - 1) // ALIGN * ALIGN


def place_buffers(buffers: list[tuple]) -> list[Buffer]:
    """Greedy by size: (name, bytes, first step, last step[, exclusive group]) -> placed buffers."""
    sizes = {b[0]: _align(b[1]) for b in buffers}
    first = {b[0]: b[2] for b in buffers}
    last = {b[0]: b[3] for b in buffers}
    group = {b[0]: (b[4] if len(b) > 4 else None) for b in buffers}

    def conflict(b: Buffer, r: str) -> bool:
        exclusive = b.group is not None and group[r] is not None and b.group != group[r]
        return not (b.last < first[r] or last[r] < b.first or exclusive)

    placed: list[Buffer] = []
    for r in sorted(sizes, key=lambda r: (-sizes[r], first[r], r)):
        overlapping = sorted((b for b in placed if conflict(b, r)), key=lambda b: b.offset)
        offset = 0
        for b in overlapping:
            if offset + sizes[r] <= b.offset:
                break
            offset = max(offset, _align(b.offset + b.size))
        placed.append(Buffer(r, sizes[r], first[r], last[r], offset, group[r]))
    return placed


def scratch_buffer(node, chain: int = 0) -> str:
    """Name of a layer's scratch buffer: it lives only while that layer runs (as TFLite Micro plans them);
    ``chain`` > 0: the copy of an alternative chain of a patch loop."""
    return f"{node.outputs[0]}@scratch" + (f"{chain}" if chain > 0 else "")


def scratch_buffers(graph: Graph, nodes, first_step: int, chain: int | None = None, board=None) -> list[tuple]:
    """(name, bytes, step, step, group) of each layer's kernel scratch (``KernelCall.scratch_bytes`` of the
    implementation its op chooses for ``board``, a Board or an ``ops.kernel.KernelTarget`` (board and kernel
policy); None: portable), ``nodes`` running from ``first_step``;
    ``chain``: they belong to that chain of a patch loop (its exclusive group)."""
    out = []
    for step, n in enumerate(nodes, start=first_step):
        if op_def(n).alias:  # no kernel runs
            continue
        size = op_def(n).kernel(n, graph, board).scratch_bytes
        if size:
            out.append((scratch_buffer(n, chain or 0), size, step, step, chain))
    return out


def plan_memory(graph: Graph, board=None) -> ArenaPlan:
    """The layer-by-layer arena plan of ``graph`` (kernel scratch as the implementations chosen for
    ``board`` (a Board or a KernelTarget) declare it; None: the portable ones)."""
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
                t_in, t_out = graph.tensors[i], graph.tensors[out]
                if t_in.nbytes != t_out.nbytes or t_in.dtype != t_out.dtype:
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
                           + scratch_buffers(graph, graph.nodes, 0, board=board))
    activations = max((b.offset + b.size for b in placed), default=0)
    offsets = {b.name: b.offset for b in placed}
    all_offsets = {t: offsets[root(t)] for t in roots}
    all_offsets.update({b.name: b.offset for b in placed if b.name.endswith("@scratch")})
    return ArenaPlan(
        tuple(sorted(placed, key=lambda b: (b.first, b.name))), all_offsets, {t: root(t) for t in roots},
        activations, n_steps + 1,
    )
