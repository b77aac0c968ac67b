"""The schedule: the model as the generated code runs it, between planning and code generation.

A :class:`Schedule` is an optional patch loop (the per-patch stage of patch-based inference), then the
rest of the graph as one :class:`Chain`. The loop holds one or more chains that each compute the stage
for one patch, and a :class:`Dispatch` naming the chain each patch runs (today's compiler builds one
chain; per-patch mixed precision runs an 8-bit chain or a packed low-bit one per patch). A
:class:`Step` is one kernel call: the node, the kernel implementation chosen for it (``KernelCall``:
template, values, scratch) and the activation tensors it reads and writes; ``buffer(tensor)`` names the
arena buffer a tensor occupies during that step (a chain's own region buffers inside the loop).

The memory planner (buffers of mutually exclusive chains may share bytes), the simulators (layer by
layer and patch by patch), code generation and the report consume it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..ir import Graph, Node
from ..ops import KernelCall, op_def
from ..patch.execute import run_int_patched
from ..patch.memory import region_buffer
from ..patch.planner import PatchPlan
from ..quant.simulate import run_int


@dataclass(frozen=True)
class Step:
    """One kernel call. ``index`` is the layer number (per-layer hooks, report and bench rows); ``chain``
    the chain it belongs to inside the patch loop (-1: outside the loop, layer by layer)."""

    index: int
    node: Node
    kernel: KernelCall
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    chain: int = -1

    @property
    def in_loop(self) -> bool:
        return self.chain >= 0

    def buffer(self, tensor: str) -> str:
        """The arena buffer holding ``tensor`` while this step runs."""
        return region_buffer(tensor, self.chain) if self.in_loop else tensor


@dataclass(frozen=True)
class Chain:
    """Steps run in order (on one patch inside the loop, on whole tensors outside it)."""

    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Dispatch:
    """The chain each patch runs, decided at compile time (``chain_of_patch[p]``)."""

    chain_of_patch: tuple[int, ...]

    def chain(self, patch: int) -> int:
        return self.chain_of_patch[patch]


@dataclass(frozen=True)
class PatchLoop:
    """The per-patch stage: ``plan`` (split, grid, regions) and the chains that compute it per patch.
    Without a dispatch every patch runs chain 0."""

    plan: PatchPlan
    chains: tuple[Chain, ...]
    dispatch: Dispatch | None = None

    def chain_of(self, patch: int) -> int:
        return self.dispatch.chain(patch) if self.dispatch is not None else 0


@dataclass(frozen=True)
class Schedule:
    graph: Graph
    loop: PatchLoop | None
    rest: Chain

    def steps(self) -> Iterator[Step]:
        """Every step: the loop's chains in order, then the rest."""
        if self.loop is not None:
            for chain in self.loop.chains:
                yield from chain.steps
        yield from self.rest.steps

    @property
    def layers(self) -> tuple[Step, ...]:
        """One step per layer (chain 0 inside the loop), in execution order: what report and bench list."""
        first = self.loop.chains[0].steps if self.loop is not None else ()
        return tuple(first) + self.rest.steps


def _step(graph: Graph, node: Node, index: int, chain: int, board) -> Step:
    acts = tuple(i for i in node.inputs if i and not graph.tensors[i].is_const)
    return Step(index, node, op_def(node).kernel(node, graph, board), acts, tuple(node.outputs), chain)


def build_schedule(graph: Graph, patch: PatchPlan | None = None, chains: int = 1,
                   dispatch: Dispatch | None = None, board=None) -> Schedule:
    """The schedule for ``graph``: layer by layer, or the stage of ``patch`` in a loop of ``chains``
    chains (the same nodes; alias nodes run no kernel and are left out) with ``dispatch``; each step's
    kernel is the implementation its op chooses for ``board`` (a ``boards.Board``; None: portable)."""
    if dispatch is not None:
        if patch is None or len(dispatch.chain_of_patch) != patch.patches:
            raise ValueError("a dispatch names one chain per patch of the loop")
        if any(not 0 <= c < chains for c in dispatch.chain_of_patch):
            raise ValueError(f"a dispatch names chains 0..{chains - 1}")
    k = patch.stage_len if patch is not None else 0
    index, loop_steps, rest = 0, [], []
    for j, node in enumerate(graph.nodes):
        if op_def(node).alias:
            continue
        if j < k:
            loop_steps.append((node, index))
        else:
            rest.append(_step(graph, node, index, -1, board))
        index += 1
    loop = None
    if patch is not None:
        loop = PatchLoop(patch, tuple(Chain(tuple(_step(graph, n, i, c, board) for n, i in loop_steps)) for c in range(chains)),
                         dispatch)
    return Schedule(graph, loop, Chain(tuple(rest)))


def run_schedule_int(schedule: Schedule, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The integer simulator of ``schedule``: each patch through the chain its dispatch names, then the
    rest layer by layer; equals the generated C byte for byte."""
    graph, loop = schedule.graph, schedule.loop
    if loop is None:
        return run_int(graph, feeds)
    chains = tuple(tuple(st.node for st in ch.steps) for ch in loop.chains)
    dispatch = tuple(loop.chain_of(p) for p in range(loop.plan.patches))
    return run_int_patched(graph, loop.plan, feeds, chains, dispatch)
