"""Choose the split layer and the grid: minimise peak SRAM within the budget, recomputation overhead as
the tie-breaker, optionally capped. Every candidate tried is kept for the report."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserError
from ..ir import Graph
from ..memory.planner import ArenaPlan, plan_memory, plan_memory_patched
from .planner import PatchPlan, candidate_splits, plan_patches

GRIDS = (2, 3, 4, 5, 6, 7, 8)


@dataclass(frozen=True)
class Candidate:
    stage_len: int
    grid: int
    peak: int
    overhead: float


@dataclass(frozen=True)
class PatchChoice:
    plan: PatchPlan | None  # None: layer by layer
    arena: ArenaPlan
    layerwise_peak: int
    tried: tuple[Candidate, ...]


def choose_patching(graph: Graph, budget: int, mode: str = "auto", split: int | None = None, grid: int | None = None,
                    max_overhead: float | None = None, input_by_patch: bool = False) -> PatchChoice:
    """``mode``: "auto" (search), "off" (layer by layer) or "forced" (``split`` nodes, ``grid``)."""
    layerwise = plan_memory(graph)
    if mode == "off":
        return PatchChoice(None, layerwise, layerwise.arena_size, ())
    splits = candidate_splits(graph)
    if mode == "forced":
        if split not in splits:
            raise UserError(f"--split {split} is not a valid split point; valid: {splits or 'none (the first op is not patchable)'} "
                            "(the number of layers in the per-patch stage)")
        plan = plan_patches(graph, split, grid, input_by_patch)
        arena = plan_memory_patched(graph, plan)
        c = Candidate(split, grid, arena.arena_size, plan.overhead)
        return PatchChoice(plan, arena, layerwise.arena_size, (c,))
    tried: list[Candidate] = []
    best: tuple[int, float, PatchPlan, ArenaPlan] | None = None
    for k in splits:
        h, w = graph.tensors[graph.nodes[k - 1].outputs[0]].shape[1:3]
        for n in GRIDS:
            if n > min(h, w):
                break
            plan = plan_patches(graph, k, n, input_by_patch)
            if max_overhead is not None and plan.overhead > max_overhead:
                continue
            arena = plan_memory_patched(graph, plan)
            tried.append(Candidate(k, n, arena.arena_size, plan.overhead))
            key = (arena.arena_size, plan.overhead)
            if best is None or key < best[:2]:
                best = (arena.arena_size, plan.overhead, plan, arena)
    if best is None or best[0] >= layerwise.arena_size:
        return PatchChoice(None, layerwise, layerwise.arena_size, tuple(tried))
    return PatchChoice(best[2], best[3], layerwise.arena_size, tuple(tried))
