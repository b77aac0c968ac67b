"""QuantMCU's entry point: ``plan_quantmcu`` plans the method on a patched stage (docs/quantmcu.md).

Given 8-bit patching's plan under the SRAM budget (split and grid): the calibration samples are split
(:func:`vdqs.split_calibration`: a ``holdout`` share spread over them guards, the rest calibrate), VDPC sets the
outlier check on the calibration part (``plan_vdpc``; with the check location ``auto``, ``vdpc.choose_location``
picks the input or the first map first, and everything after looks there), VDQS chooses the bits of the low-bit chain with its
guard (``vdqs.vdqs``) on that plan; then the joint search (``search.choose_joint``) picks (split, grid,
sub-patches) with those bits under the budget, fewest expected instructions first (a user-forced plan keeps its
split and grid), and its winner is taken when it keeps the guard's floor on the held-back samples (its outlier
patches differ, so the quality is measured again; else the searched plan stays). :func:`evaluate_plan` makes the
choice concrete: the dispatching patch loop and its arena (``lowbit_schedule``), BitOPs and the feature maps as
report.json lists them. A note says when the plan is expected to run more instructions than 8-bit patching.
"""

from __future__ import annotations

import dataclasses
import time
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from ..ir import Graph
from ..memory import ArenaPlan
from ..ops import op_def
from ..patch.planner import PatchPlan
from ..schedule.schedule import Schedule
from .lowbit import LowbitChain, lowbit_only_schedule, lowbit_schedule, stage_bitops_taken
from .options import FeatureMapChoice, QuantmcuOptions, QuantmcuResult
from .stats import stage_maps, stage_stats
from .vdpc import VdpcPlan, choose_location, plan_vdpc
from ..patch.search import GRIDS
from .search import SUBS, JointChoice, build_joint, choose_joint
from .vdqs import (
    VdqsResult,
    fast_outputs,
    guard_value,
    held_back,
    output_quality,
    split_calibration,
    stage_values,
    vdqs,
)


@dataclass(frozen=True, eq=False)
class PlanEvaluation:
    """A (plan, bits) made concrete: ``plan`` the chain's patch plan (the low-bit maps' regions added),
    ``schedule`` / ``arena`` the dispatching patch loop and its arena plan; stage BitOPs of 8-bit patching on the
    same plan and of this loop (expectations over the calibration samples' chains), the same over the whole
    model (the layers after the stage at 8 x 8 bits x their MACs); the stage's maps as the chain holds them."""

    plan: PatchPlan
    chain: LowbitChain
    schedule: Schedule
    arena: ArenaPlan
    bitops_8bit: float
    bitops: float
    bitops_model_8bit: float
    bitops_model: float
    feature_maps: tuple[FeatureMapChoice, ...]
    flash_bytes: int


def rest_bitops(graph: Graph, plan: PatchPlan) -> float:
    """BitOPs of the layers after the per-patch stage, run whole at 8-bit weights x 8-bit inputs."""
    return float(sum(op_def(n).macs(n, graph) for n in graph.nodes[plan.stage_len:]) * 64)


def feature_maps(graph: Graph, plan: PatchPlan, vdpc: VdpcPlan, chain: LowbitChain) -> tuple[FeatureMapChoice, ...]:
    """Every 8-bit map of the stage (its input, each map it makes, its output) as the low-bit chain holds it:
    its bits, its scales (one, or one per channel) and zero point; the map the check reads flagged (none when the
    check cannot fire: the plan has no check)."""
    out = []
    for m in stage_maps(graph, plan):
        b = chain.bits.get(m, 8)
        if b < 8:
            q = chain.quant[m]
            per = chain.channel_scales.get(m)
            scales = tuple(float(s) for s in per) if per is not None else (q.s,)
        else:
            q = graph.tensors[m].quant
            scales = (q.s,)
        out.append(FeatureMapChoice(m, int(b), scales, int(q.zp), m == vdpc.checked))
    return tuple(out)


def evaluate_plan(graph: Graph, plan: PatchPlan, vdpc: VdpcPlan, chain: LowbitChain, target=None,
                  sub_patches: int = 1) -> PlanEvaluation:
    """The dispatching patch loop of ``chain`` on ``plan`` and what it costs.

    Parameters
    ----------
    graph, plan : Graph, PatchPlan
        The quantized graph and the patch plan (the 8-bit chain).
    vdpc : VdpcPlan
        The check; its decisions on the calibration samples weigh the BitOPs.
    chain : LowbitChain
        The low-bit chain (``build_lowbit_chain`` on ``plan``).
    target : KernelTarget or Board, optional
        The kernels the loop calls (None: portable).
    sub_patches : int
        s > 1: an outlier patch's 8-bit chain runs as s x s sub-patches (``lowbit_schedule``); not read when the
        check never fires (``vdpc.never_fires``): then the loop is the low-bit chain alone (``lowbit_only_schedule``).

    Returns
    -------
    PlanEvaluation
    """
    if vdpc.never_fires:
        # the check cannot flag a patch: every patch runs the low-bit chain (chain 1), fixed at compile time
        schedule, arena = lowbit_only_schedule(chain, target)
        taken = [[1] * plan.patches for _ in range(max(len(vdpc.outlier_patches), 1))]
    else:
        schedule, arena = lowbit_schedule(chain, vdpc, target, sub_patches)
        d = schedule.loop.dispatch
        taken = [[d.outlier_chain if o else d.inlier_chain for o in row] for row in np.asarray(vdpc.outlier_patches)]
    b8, b = stage_bitops_taken(schedule, taken)
    rest = rest_bitops(graph, plan)
    return PlanEvaluation(chain.plan, chain, schedule, arena, b8, b, b8 + rest, b + rest,
                          feature_maps(graph, plan, vdpc, chain), int(chain.flash_bytes))


def search_notes(graph: Graph, search: VdqsResult) -> tuple[str, ...]:
    """What the user should know about the search's outcome, one line each."""
    def name(m):
        return graph.tensors[m].origin or m

    # the reason without the layer's own fix (which names a bitwidth the search cannot give: the maps are calibrated
    # one by one)
    # a map a pooling / pad layer makes refuses bits of its own but follows its lowered input (the chain's bits)
    notes = [f"QuantMCU: map '{name(m)}' stays at {search.bits[m]} bits, its layers refuse lower: {why.split('; fix:')[0]}"
             for m, why in search.skipped.items() if search.chain.bits.get(m, 8) == 8]
    notes += [f"QuantMCU: map '{name(m)}' follows its pooled / padded input '{name(r)}' at {search.chain.bits[m]} bits "
              "(the layer keeps its input's params)" for m, r in search.chain.follows.items()]
    if search.frozen:
        notes.append("QuantMCU: the guard kept " + ", ".join(f"'{name(m)}' at {search.bits[m]} bits" for m in search.frozen)
                     + " (a lower bitwidth broke its floor on the held-back samples)")
    if all(b == 8 for b in search.bits.values()):
        notes.append("QuantMCU: every feature map stays at 8 bits (nothing lower kept the guard's floor, or nothing "
                     "can be lowered): the low-bit chain is the 8-bit one; a lower --qm-floor or a --qm-check-at "
                     "input lets more maps go low")
    return tuple(notes)


def result_of(options: QuantmcuOptions, base_plan: PatchPlan, vdpc: VdpcPlan, search: VdqsResult,
              evaluation: PlanEvaluation, seconds: float, base_bitops: float | None = None,
              sub_patches: int = 1, graph: Graph | None = None, calib_samples: int = 0,
              holdout_samples: int = 0, extra_notes: tuple[str, ...] = (),
              expected_instructions: tuple[float | None, float | None] = (None, None)) -> QuantmcuResult:
    """The :class:`QuantmcuResult` of a searched (plan, bits): ``base_plan`` is 8-bit patching's own plan under
    the same budget and ``base_bitops`` its stage BitOPs (None: ``base_plan`` is the plan evaluated)."""
    ev = evaluation
    notes = (search_notes(graph, search) if graph is not None else ()) + tuple(extra_notes)
    return QuantmcuResult(
        options=options, schedule=ev.schedule, arena=ev.arena, plan=ev.plan, base_plan=base_plan,
        sub_patches=sub_patches, vdpc=vdpc, feature_maps=ev.feature_maps,
        outlier_patch_share=vdpc.outlier_patch_share, bitops_8bit=ev.bitops_8bit, bitops=ev.bitops,
        bitops_model_8bit=ev.bitops_model_8bit, bitops_model=ev.bitops_model,
        bitops_8bit_own_plan=ev.bitops_8bit if base_bitops is None else base_bitops,
        quality=dict(search.quality), search_seconds=seconds, entropy_only=dict(search.entropy_only),
        entropy_only_quality=dict(search.entropy_only_quality), steps=search.steps, flash_bytes=ev.flash_bytes,
        chain=ev.chain, notes=notes, holdout_samples=holdout_samples, calib_samples=calib_samples,
        expected_instructions=expected_instructions[0], expected_instructions_8bit=expected_instructions[1])


def plan_quantmcu(graph: Graph, plan: PatchPlan, calib_q: np.ndarray, options: QuantmcuOptions, target=None,
                  budget: int | None = None, progress=None, fixed: bool = False,
                  synthetic: bool = False) -> QuantmcuResult:
    """QuantMCU on ``plan``'s stage: VDPC, VDQS with its guard, the final low-bit chain and its patch loop.

    Parameters
    ----------
    graph : Graph
        The quantized graph.
    plan : PatchPlan
        The patch plan (split, grid); 8-bit patching's own choice under the budget.
    calib_q : numpy.ndarray
        int8 [N, ...] calibration inputs in the model input's physical layout (``api.quantize_input``); the last
        ``options.holdout`` share is held back for the guard.
    options : QuantmcuOptions
        The method's options.
    target : KernelTarget or Board, optional
        The kernels the generated loop calls (None: portable).
    budget : int, optional
        The SRAM budget in bytes. Given, the joint search (``search.choose_joint``) picks (split, grid, sub-patches)
        with the searched bits under it, fewest expected instructions first; its winner replaces ``plan`` when it
        keeps the guard's floor on the held-back samples (measured again: its outlier patches differ). None: ``plan``
        as given. The caller checks that the arena fits.
    progress : mcucompile.progress.Progress, optional
        Where the long steps show.
    fixed : bool
        The user forced ``plan`` (--split / --patches): the joint search keeps its split and grid and chooses the
        sub-patches only.
    synthetic : bool
        ``calib_q`` are not the user's inputs (no --calib: random or uniform samples): the notes and the refusal
        say to give --calib with real inputs.

    Returns
    -------
    QuantmcuResult
        ``search_seconds``: the whole of this call (statistics, VDPC, VDQS, the final chain and loop).

    Raises
    ------
    UserError
        Too few calibration samples, a check location the stage does not allow (VDPC), every calibration patch
        an outlier patch.
    """
    if plan is None:
        raise ValueError("plan_quantmcu needs a patch plan (the caller refuses a model that is not patched)")

    def step(label):
        return progress.step(label) if progress is not None else nullcontext()

    t0 = time.perf_counter()
    calib_q = np.asarray(calib_q)
    cal, held = split_calibration(calib_q, options.holdout)
    given, place_notes = options, []
    with step("QuantMCU: outlier check (VDPC)"):
        values = stage_values(graph, plan, cal)  # the 8-bit stage on the calibration part, once: VDPC's and VDQS's
        if options.vdpc.location == "auto":
            stats = stage_stats(graph, plan, cal, values)
            where, bounds = choose_location(graph, plan, cal, options.vdpc, min(options.bits), stats)
            # every later step (VDQS, the joint search, its winner's check) looks where auto chose
            options = dataclasses.replace(options, vdpc=where)
            place = {"input": "the stage input", "first_map": "the first map"}
            place_notes.append(f"QuantMCU: --qm-check-at auto checks {place[where.location]} (with every map it may "
                               f"lower at {min(options.bits)} bits the stage would save " + ", ".join(
                                   f"{bounds[pl]:.2f}x checking {place[pl]}" for pl in bounds) + ")")
            vdpc = plan_vdpc(graph, plan, cal, options.vdpc, stats)
        else:
            vdpc = plan_vdpc(graph, plan, cal, options.vdpc, values=values)
    if vdpc.outlier_patches.all():
        fix = ("give --calib with real inputs (these were synthetic), or drop --qm-outlier-param (its default is "
               "capped at a 50% outlier share)" if synthetic else
               "a higher --qm-outlier-param (or drop it: the default is capped at a 50% outlier share), or more "
               "(and more varied) calibration data")
        raise UserError(f"every calibration patch is an outlier patch at the VDPC threshold {vdpc.threshold}, so the "
                        f"low-bit chain has nothing to be calibrated on; fix: {fix}")
    note = vdpc.note(synthetic, graph.tensors[vdpc.tensor].origin or vdpc.tensor)
    if note is not None:
        place_notes.append(note)
    # every later step (VDQS, the joint search's candidates, its winner) checks against this very threshold: the
    # cap's quantile depends on the grid, and the guard judges the bits at this value
    options = dataclasses.replace(options, vdpc=dataclasses.replace(options.vdpc, fixed_threshold=vdpc.threshold))
    with step("QuantMCU: bitwidth search (VDQS)"):
        search = vdqs(graph, plan, vdpc, cal, held, options, values)
    sub = options.sub_patches or 1
    chosen, notes = plan, []
    if options.guard != "off" and search.held_patches and search.held_inlier_patches == 0:
        # every held-back patch runs 8-bit: every candidate equals the 8-bit model there and passes
        notes.append(f"QuantMCU: on the {len(held)} held-back calibration samples every patch is an outlier patch, so "
                     "the guard measured nothing (every step passed); give more varied --calib data or a higher "
                     "--qm-outlier-param")
    elif options.guard != "off" and len(held) < 20:
        notes.append(f"QuantMCU: the guard judged the bits on {len(held)} held-back calibration samples; with fewer "
                     "than about 20 one input decides a step: give more --calib data (a few hundred)")
    # with every map at 8 bits both chains are the 8-bit stage: no plan can use less memory than 8-bit patching's
    if budget is not None and any(b < 8 for b in search.bits.values()):
        with step("QuantMCU: joint plan search (split, grid, sub-patches)"):
            # the chain's bits: a pooled map follows its lowered input there (VDQS's own state leaves it at 8)
            joint = choose_joint(graph, budget, target, search.chain.bits, options.vdpc, cal,
                                 splits=[plan.stage_len] if fixed else None,
                                 grids=(plan.grid,) if fixed else GRIDS,
                                 subs=SUBS if options.sub_patches is None else (options.sub_patches,),
                                 input_by_patch=plan.input_by_patch)
        taken = _joint_outcome(graph, plan, sub, joint, options, cal, held, target, values, search.held)
        if isinstance(taken, str):
            notes.append(taken)
        elif taken is not None:
            chosen, sub, vdpc, quality, chain, note = taken
            search = dataclasses.replace(search, chain=chain, quality=quality)
            notes.append(note)
        if any(b < 8 for b in search.chain.bits.values()):
            notes += _speed_notes(plan, chosen, sub, joint)
        win, base = _priced(joint, chosen.stage_len, chosen.grid, sub), _priced(joint, plan.stage_len, plan.grid)
        expected = (win.instructions if win is not None and win.instructions > 0 else None,
                    base.instructions_8bit if base is not None else None)
    else:
        expected = (None, None)
    if vdpc.never_fires:
        sub = 1  # no outlier patch to run as sub-patches
    with step("QuantMCU: the patch loop with both chains"):
        evaluation = evaluate_plan(graph, chosen, vdpc, search.chain, target, sub)
    notes = place_notes + notes
    return result_of(given, plan, vdpc, search, evaluation, time.perf_counter() - t0,
                     base_bitops=float(plan.macs_patched * 64), sub_patches=sub, graph=graph,
                     calib_samples=len(cal), holdout_samples=len(held), extra_notes=tuple(notes),
                     expected_instructions=expected)


def _joint_outcome(graph: Graph, plan: PatchPlan, sub: int, joint: JointChoice, options: QuantmcuOptions,
                   cal: np.ndarray, held: np.ndarray, target, values=None, held_run=None):
    """The joint search's winner when it differs from (``plan``, ``sub``) and keeps the guard's floor on the
    held-back samples (its outlier patches differ from the searched plan's, so its quality is measured again):
    (plan, sub-patches, VDPC, the search result with the winner's chain and quality, a note); else None.
    ``values`` / ``held_run``: the 8-bit stage on ``cal`` and the 8-bit run of ``held`` on ``plan`` (what the
    winner's check, calibration and guard reuse)."""
    if not joint.fits or joint.plan is None:
        return None
    if (joint.plan.stage_len, joint.plan.grid, joint.sub_patches) == (plan.stage_len, plan.grid, sub):
        return None
    vdpc_j, chain_j, _, _ = build_joint(graph, joint, options.vdpc, cal, target, options.clipping, options.per_channel,
                                        values)
    if all(b == 8 for b in chain_j.bits.values()):
        # a stage too short to hold any of the lowered maps: its two chains would both be 8-bit, i.e. 8-bit
        # patching on a plan its own search did not take
        return (f"QuantMCU: the joint search's {joint.plan.grid}x{joint.plan.grid} patches over "
                f"{joint.plan.stage_len} layers lower no map: kept 8-bit patching's {plan.grid}x{plan.grid} patches "
                f"over {plan.stage_len} layers")
    hb = held_back(graph, joint.plan, vdpc_j, held, held_run)
    quality = output_quality(graph, list(hb.outputs8), fast_outputs(chain_j, hb))
    # a check that cannot fire leaves no outlier patch to run as sub-patches (evaluate_plan drops them)
    where = f"{joint.plan.grid}x{joint.plan.grid} patches over {joint.plan.stage_len} layers" + (
        f", outlier patches as {joint.sub_patches}x{joint.sub_patches} sub-patches"
        if joint.sub_patches > 1 and not vdpc_j.never_fires else "")
    if options.guard != "off" and guard_value(quality, options.guard) < options.guard_floor:
        return (f"QuantMCU: the joint search's {where} missed the guard's floor on the held-back samples "
                f"({options.guard} lower bound {guard_value(quality, options.guard):.3g} < {options.guard_floor:g}): "
                "kept 8-bit patching's "
                f"{plan.grid}x{plan.grid} patches over {plan.stage_len} layers")
    return (joint.plan, joint.sub_patches, vdpc_j, quality, chain_j,
            f"QuantMCU: the joint search took {where} ({joint.peak:,} B, ~{joint.instructions / 1e6:.2f} M "
            f"instructions expected) over 8-bit patching's {plan.grid}x{plan.grid} patches over {plan.stage_len} layers")


def _priced(joint: JointChoice, stage_len: int, grid: int, s: int | None = None):
    """The joint search's priced candidate of (split, grid[, s]), or None."""
    return next((c for c in joint.tried if c.refused is None and (c.stage_len, c.grid) == (stage_len, grid)
                 and (s is None or c.sub_patches == s) and c.instructions_8bit > 0), None)


def _speed_notes(plan: PatchPlan, chosen: PatchPlan, sub: int, joint: JointChoice) -> list[str]:
    """A note when the QuantMCU plan taken (``chosen``, ``sub``) is expected to run more instructions than 8-bit
    patching's own ``plan`` (on cores without a sub-byte dot product the packed kernels cost about what int8 ones
    do per MAC, plus unpacking: the low bits pay off in time only through less recomputed halo)."""
    win, base = _priced(joint, chosen.stage_len, chosen.grid, sub), _priced(joint, plan.stage_len, plan.grid)
    if win is not None and win.instructions <= 0:
        win = None
    if win is None or base is None or win.instructions <= 1.005 * base.instructions_8bit:
        return []
    return [f"QuantMCU: its plan is expected to run {100 * (win.instructions / base.instructions_8bit - 1):.0f}% more "
            f"instructions than 8-bit patching ({win.instructions / 1e6:.2f} M against {base.instructions_8bit / 1e6:.2f} M "
            "estimated): on this core the packed kernels cost more than the recomputed halo they save; it saves "
            "BitOPs, not time"]
