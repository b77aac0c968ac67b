"""Choose how the first stage runs: layer by layer, or which split layer and grid.

Two objectives (``optimize``):

- ``"speed"`` (the default): the fastest plan that fits the SRAM budget. Layer by layer when it fits
  (it recomputes nothing and calls each kernel once); otherwise, among the patch plans that fit, the
  one with the fewest instructions estimated by the cost model (``cost.py``). With the input filled
  patch by patch (``input_by_patch``) the input must never be whole, so only patch plans qualify.
- ``"memory"``: the lowest peak SRAM, recomputation overhead as the tie-breaker, whatever it costs.

When nothing fits, both report the lowest peak found, so that the fit error can name it. Every
candidate tried is kept for the report, with its peak and estimated instructions, and so is what the
other objective would have chosen, so the summary can say what switching would give.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserError
from ..ir import Graph
from ..memory.planner import ArenaPlan, plan_memory
from .memory import plan_memory_patched
from .cost import estimate_instructions, kernel_of
from .planner import PatchPlan, candidate_splits, plan_patches

GRIDS = (2, 3, 4, 5, 6, 7, 8)
OBJECTIVES = ("speed", "memory")


@dataclass(frozen=True)
class Candidate:
    """One (split, grid) the search tried."""

    stage_len: int
    grid: int
    peak: int
    overhead: float
    instructions: int  # estimated by the cost model


@dataclass(frozen=True)
class PlanOutcome:
    """A plan as an objective picks it: ``grid`` 0 means layer by layer."""

    stage_len: int
    grid: int
    peak: int
    instructions: int  # estimated by the cost model
    overhead: float
    fits: bool  # peak within the budget

    @property
    def layerwise(self) -> bool:
        return self.grid == 0

    def describe(self) -> str:
        """'layer by layer' or '5x5 patches over 12 layers'."""
        return "layer by layer" if self.layerwise else f"{self.grid}x{self.grid} patches over {self.stage_len} layers"


@dataclass(frozen=True)
class PatchChoice:
    """The plan taken (``plan`` None: layer by layer), its arena, and how it was chosen."""

    plan: PatchPlan | None
    arena: ArenaPlan
    layerwise_peak: int
    tried: tuple[Candidate, ...]
    optimize: str  # the objective: "speed" or "memory"
    budget: int  # SRAM bytes the plan had to fit in
    chosen: PlanOutcome  # the plan taken, as estimated
    alternative: PlanOutcome | None  # what the other objective would take (None: the plan was forced or off)
    layerwise_instructions: int  # estimated, layer by layer
    max_overhead: float | None = None  # the cap on recomputed MACs the search honoured


def _outcome(stage_len: int, grid: int, peak: int, instructions: int, overhead: float, budget: int) -> PlanOutcome:
    return PlanOutcome(stage_len, grid, peak, instructions, overhead, peak <= budget)


def choose_patching(graph: Graph, budget: int, mode: str = "auto", split: int | None = None, grid: int | None = None,
                    max_overhead: float | None = None, input_by_patch: bool = False,
                    optimize: str = "speed", board=None) -> PatchChoice:
    """Pick the execution plan of ``graph`` for an SRAM ``budget`` (bytes).

    Parameters
    ----------
    graph : the quantized graph
    budget : SRAM bytes the arena must fit in (the board's, or a tighter --sram-limit)
    mode : "auto" (search), "off" (layer by layer) or "forced" (``split`` nodes, ``grid`` x ``grid``)
    split, grid : the forced plan
    max_overhead : skip plans recomputing more than this fraction of the model's MACs
    input_by_patch : the application fills each input patch (the whole input never sits in SRAM)
    optimize : "speed" (fastest plan that fits) or "memory" (lowest peak)
    board : the target, a Board or an ``ops.kernel.KernelTarget`` (board and kernel policy; None: the portable
        kernels); its kernels' scratch and costs are planned for

    Returns
    -------
    PatchChoice: the plan, its arena, every candidate tried, and what the other objective would take.
    """
    if optimize not in OBJECTIVES:
        raise UserError(f"optimize={optimize!r} is not an objective; use 'speed' (the fastest plan that fits) or "
                        "'memory' (the lowest peak SRAM)")
    kernels = tuple(kernel_of(n, graph, board) for n in graph.nodes)
    layerwise = plan_memory(graph, board)
    lw_instr = estimate_instructions(graph, None, kernels).total
    lw = _outcome(0, 0, layerwise.arena_size, lw_instr, 0.0, budget)
    if mode == "off":
        return PatchChoice(None, layerwise, layerwise.arena_size, (), optimize, budget, lw, None, lw_instr, max_overhead)
    splits = candidate_splits(graph)
    if mode == "forced":
        if split not in splits:
            raise UserError(f"--split {split} is not a valid split point; valid: {splits or 'none (the first op is not patchable)'} "
                            "(the number of layers in the per-patch stage)")
        plan = plan_patches(graph, split, grid, input_by_patch)
        arena = plan_memory_patched(graph, plan, board=board)
        instr = estimate_instructions(graph, plan, kernels).total
        c = Candidate(split, grid, arena.arena_size, plan.overhead, instr)
        forced = _outcome(split, grid, arena.arena_size, instr, plan.overhead, budget)
        return PatchChoice(plan, arena, layerwise.arena_size, (c,), optimize, budget, forced, None, lw_instr,
                           max_overhead)
    tried: list[Candidate] = []
    lowest: tuple[tuple, PatchPlan, ArenaPlan, Candidate] | None = None  # (peak, overhead)
    fastest: tuple[tuple, PatchPlan, ArenaPlan, Candidate] | None = None  # (instructions, peak), among those that fit
    for k in splits:
        h, w = graph.tensors[graph.nodes[k - 1].outputs[0]].shape[1:3]
        for n in GRIDS:
            if n > min(h, w):
                break
            plan = plan_patches(graph, k, n, input_by_patch)
            if max_overhead is not None and plan.overhead > max_overhead:
                continue
            arena = plan_memory_patched(graph, plan, board=board)
            c = Candidate(k, n, arena.arena_size, plan.overhead, estimate_instructions(graph, plan, kernels).total)
            tried.append(c)
            key = (c.peak, c.overhead)
            if lowest is None or key < lowest[0]:
                lowest = (key, plan, arena, c)
            key = (c.instructions, c.peak, c.overhead)
            if c.peak <= budget and (fastest is None or key < fastest[0]):
                fastest = (key, plan, arena, c)

    def pick(best) -> tuple[PatchPlan | None, ArenaPlan, PlanOutcome]:
        if best is None:
            return None, layerwise, lw
        _, plan, arena, c = best
        return plan, arena, _outcome(c.stage_len, c.grid, c.peak, c.instructions, c.overhead, budget)

    # memory: the lowest peak, unless patching does not lower it
    by_memory = pick(lowest if lowest is not None and lowest[0][0] < layerwise.arena_size else None)
    # speed: layer by layer when it fits (no recomputation; but it holds the input whole, which
    # input_by_patch rules out); else the fastest plan that fits; else as memory (the lowest peak)
    if lw.fits and not input_by_patch:
        by_speed = pick(None)
    elif fastest is not None:
        by_speed = pick(fastest)
    else:
        by_speed = by_memory
    taken, other = (by_speed, by_memory) if optimize == "speed" else (by_memory, by_speed)
    return PatchChoice(taken[0], taken[1], layerwise.arena_size, tuple(tried), optimize, budget, taken[2], other[2],
                       lw_instr, max_overhead)
