"""The schedule: the model as the generated code runs it, between planning and code generation.

A :class:`Schedule` is an optional patch loop (the per-patch stage of patch-based inference), then the
rest of the graph as one :class:`Chain`. The loop holds one or more chains that each compute the stage
for one patch, and the dispatch that picks the chain of each patch: a :class:`Dispatch` names it at
compile time; a :class:`RuntimeDispatch` (QuantMCU's value-driven patch classification, VDPC) decides it per
patch and per inference, by an outlier check (``ops/outlier_check.py``) of one region of the patch: the
common chain runs as the probe up to the map it checks, then every other patch goes on with the probe and
an outlier patch switches to the 8-bit chain: it takes over the probe's checked region (moved into its own
buffer; the chains' buffers are exclusive and may overlap, hence a memmove) and runs on from there, or,
when a later layer also reads another map the probe made before the check, runs from the start. The outlier
chain may instead run such a patch as s x s sub-patches (``PatchLoop.sub``: each a tile of the patch's output
tile with its own regions, from the input up, the probe's work dropped), so that its buffers are those of a
finer grid and fit the arena the low-bit chain's packed maps need (QuantMCU's memory saving). Today's
compiler builds one chain; per-patch mixed precision runs an 8-bit chain or a packed low-bit one. A
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
from ..ops.outlier_check import check_kernel, check_node, outlier_decision
from ..patch.execute import SubPatches, run_int_patched
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
class RuntimeDispatch:
    """The chain of each patch decided on the device, per inference (VDPC): a patch whose region of
    ``tensor`` (the stage input, or a map of the stage, 8-bit) holds a value with |q - zero_point| >
    ``threshold`` runs ``outlier_chain`` (the 8-bit one), every other patch ``inlier_chain``, which is
    also the probe: it runs first, up to the layer that makes ``tensor``."""

    tensor: str
    zero_point: int
    threshold: int
    outlier_chain: int
    inlier_chain: int

    def __post_init__(self):
        if self.outlier_chain == self.inlier_chain:
            raise ValueError("a run-time dispatch chooses between two different chains")

    def choose(self, region: np.ndarray) -> int:
        """The chain a patch takes given its region of ``tensor`` (int8 values)."""
        outlier = outlier_decision(region, self.zero_point, self.threshold)
        return self.outlier_chain if outlier else self.inlier_chain


@dataclass(frozen=True)
class CheckStep:
    """The outlier check of a :class:`RuntimeDispatch` in the patch loop: ``node`` describes it
    (``ops.outlier_check.check_node``), ``kernel`` the implementation for the board; it runs after the first
    ``after`` steps of the probe chain ``chain`` (0: right after the patch's input region is in place) on that
    chain's region buffer of the checked tensor. ``resume``: an outlier patch's chain takes over the checked
    region and runs on from step ``after`` (no later step reads another tensor of the first ``after`` steps or
    the input); else it runs from the start."""

    node: Node
    kernel: KernelCall
    chain: int
    after: int
    resume: bool = True

    @property
    def tensor(self) -> str:
        return self.node.inputs[0]

    def buffer(self) -> str:
        """The arena buffer the check reads."""
        return region_buffer(self.tensor, self.chain)


@dataclass(frozen=True)
class PatchLoop:
    """The per-patch stage: ``plan`` (split, grid, regions) and the chains that compute it per patch.
    Without a dispatch every patch runs chain 0; with a :class:`RuntimeDispatch`, ``check`` is its check.
    ``sub``: the run-time dispatch's outlier chain runs each patch it takes as the sub-patches
    ``sub.of_patch[p]`` of ``sub.plan`` (from the start: the check then never resumes), None: as the patch."""

    plan: PatchPlan
    chains: tuple[Chain, ...]
    dispatch: Dispatch | RuntimeDispatch | None = None
    check: CheckStep | None = None
    sub: SubPatches | None = None

    @property
    def sub_plan(self) -> PatchPlan | None:
        """The regions of every sub-patch (None: no sub-patches)."""
        return self.sub.plan if self.sub is not None else None

    @property
    def sub_patches_of(self) -> tuple[tuple[int, ...], ...] | None:
        """The sub-patch indices (into ``sub_plan``) of each patch (None: no sub-patches)."""
        return self.sub.of_patch if self.sub is not None else None

    def plan_of(self, chain: int) -> PatchPlan:
        """The regions chain ``chain`` runs on: the sub-patches' for the chain that runs them, else the patches'."""
        return self.sub.plan if self.sub is not None and self.sub.chain == chain else self.plan

    @property
    def runtime(self) -> bool:
        """Whether the chains are chosen on the device from the values (a :class:`RuntimeDispatch`)."""
        return isinstance(self.dispatch, RuntimeDispatch)

    def chain_of(self, patch: int) -> int:
        """The chain patch ``patch`` runs when the dispatch is fixed at compile time."""
        if self.runtime:
            raise ValueError("a run-time dispatch has no fixed chain per patch: run_schedule_int(..., taken=) "
                             "gives the chains an input takes")
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


def build_schedule(graph: Graph, patch: PatchPlan | None = None,
                   chains: int | tuple[tuple[Node, ...], ...] = 1,
                   dispatch: Dispatch | RuntimeDispatch | None = None, board=None,
                   sub: SubPatches | None = None) -> Schedule:
    """The schedule for ``graph``: layer by layer, or the stage of ``patch`` in a loop of ``chains``
    chains with ``dispatch``: an int, that many copies of the stage's nodes, or a tuple of node tuples, each
    chain's own nodes (a low-bit chain's copy of the stage: one node per stage node, in the same order, so
    layer numbers and cropped operands line up; its tensors are in ``graph`` and in the plan's regions).
    Alias nodes run no kernel and are left out. Each step's kernel is the implementation its op chooses for
    ``board`` (a ``boards.Board``; None: portable), and so is a run-time dispatch's check. ``sub``: the run-time
    dispatch's outlier chain runs its patches as these sub-patches (``patch.execute.plan_sub_patches``, whose
    ``chain`` must be that outlier chain)."""
    k = patch.stage_len if patch is not None else 0
    if isinstance(chains, int):
        chain_nodes = tuple(tuple(graph.nodes[:k]) for _ in range(chains))
    else:
        chain_nodes = tuple(tuple(c) for c in chains)
        if patch is None or not chain_nodes or any(len(c) != k for c in chain_nodes):
            raise ValueError(f"each chain of the patch loop holds one node per stage node ({k})")
        chains = len(chain_nodes)
    if isinstance(dispatch, RuntimeDispatch):
        if patch is None:
            raise ValueError("a run-time dispatch needs a patch loop")
        if not (0 <= dispatch.outlier_chain < chains and 0 <= dispatch.inlier_chain < chains):
            raise ValueError(f"a run-time dispatch names chains 0..{chains - 1}")
    elif dispatch is not None:
        if patch is None or len(dispatch.chain_of_patch) != patch.patches:
            raise ValueError("a dispatch names one chain per patch of the loop")
        if any(not 0 <= c < chains for c in dispatch.chain_of_patch):
            raise ValueError(f"a dispatch names chains 0..{chains - 1}")
    if sub is not None:
        if not isinstance(dispatch, RuntimeDispatch) or sub.chain != dispatch.outlier_chain:
            raise ValueError("sub-patches are run by the outlier chain of a run-time dispatch")
        if len(sub.of_patch) != patch.patches or sub.plan.stage_len != k or sub.plan.split != patch.split:
            raise ValueError("the sub-patches are not those of the loop's patch plan")
    index, loop_steps, rest = 0, [], []
    for j, node in enumerate(graph.nodes):
        if op_def(node).alias:
            continue
        if j < k:
            loop_steps.append((j, index))
        else:
            rest.append(_step(graph, node, index, -1, board))
        index += 1
    loop = None
    if patch is not None:
        built = tuple(Chain(tuple(_step(graph, chain_nodes[c][j], i, c, board) for j, i in loop_steps))
                      for c in range(chains))
        check = None
        if isinstance(dispatch, RuntimeDispatch):
            check = _check_step(graph, patch, built[dispatch.inlier_chain], dispatch, board, sub is None)
        loop = PatchLoop(patch, built, dispatch, check, sub)
    return Schedule(graph, loop, Chain(tuple(rest)))


def _check_step(graph: Graph, patch: PatchPlan, probe: Chain, dispatch: RuntimeDispatch, board,
                may_resume: bool = True) -> CheckStep:
    """Where the probe chain stops for the check: after the step that writes the checked tensor. ``may_resume``
    False: the outlier chain runs from the start whatever it reads (its sub-patches have their own regions)."""
    if dispatch.tensor == graph.inputs[0]:
        after = 0
    else:
        makers = [k for k, st in enumerate(probe.steps) if dispatch.tensor in st.writes]
        if not makers:
            raise ValueError(f"the checked tensor '{dispatch.tensor}' is neither the input nor a map of the stage")
        after = makers[0] + 1
        if dispatch.tensor == patch.split:
            raise ValueError("the check must look at a map the patch makes before the stage output")
    node = check_node(graph, dispatch.tensor, dispatch.zero_point, dispatch.threshold)
    made_before = {graph.inputs[0]} | {w for st in probe.steps[:after] for w in st.writes}
    later_reads = {r for st in probe.steps[after:] for r in st.reads}
    resume = may_resume and not (later_reads & (made_before - {dispatch.tensor}))
    return CheckStep(node, check_kernel(node, graph, board), dispatch.inlier_chain, after, resume)


def run_schedule_int(schedule: Schedule, feeds: dict[str, np.ndarray],
                     taken: list[int] | None = None) -> dict[str, np.ndarray]:
    """The integer simulator of ``schedule``: each patch through the chain its dispatch names (or, with a
    run-time dispatch, the chain its check picks from this input's values, as the device decides), then
    the rest layer by layer; equals the generated C byte for byte. ``taken``, when given, receives the
    chain each patch ran (what the generated code's ``patch_chain`` hook reports)."""
    graph, loop = schedule.graph, schedule.loop
    if loop is None:
        return run_int(graph, feeds)
    chains = tuple(tuple(st.node for st in ch.steps) for ch in loop.chains)
    if loop.runtime:
        d: RuntimeDispatch = loop.dispatch
        ck = loop.check
        probe = (d.inlier_chain, lambda values: d.choose(values[d.tensor]), (ck.after, d.tensor) if ck.resume else None)
        return run_int_patched(graph, loop.plan, feeds, chains, probe=probe, taken=taken, sub=loop.sub)
    dispatch = tuple(loop.chain_of(p) for p in range(loop.plan.patches))
    return run_int_patched(graph, loop.plan, feeds, chains, dispatch, taken=taken)
