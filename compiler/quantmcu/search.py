"""The joint patch search of QuantMCU: (split, grid, sub-patches) chosen together under the SRAM budget, with the
low-bit chain's smaller buffers in view (docs/quantmcu.md, "memory and schedule, jointly").

On Cortex-M4/M7 a 4- or 2-bit map costs about as many instructions per MAC as an 8-bit one (the packed kernels
unpack to 16-bit lanes before SMLAD): the low bits pay off in time only through what their smaller buffers
allow, larger and fewer patches under the same budget, hence less recomputed halo. An outlier patch runs the
8-bit chain and must fit the same arena: it runs as s x s sub-patches of itself (``PatchLoop.sub``), so the
8-bit chain's buffers are those of the finer grid; the extra halo is paid on the outlier patches only.

For each candidate (split k, grid n, s) :func:`choose_joint`:

- sizes the two chains exactly as ``lowbit_schedule`` lays them out (``plan_memory_patched`` with both chains,
  the 8-bit one on the sub-patches when s > 1), the low-bit chain's maps by their packed bytes. Calibration is
  slow and changes no size, so the sizes come from a **sizing chain**: the low-bit chain's nodes and tensors
  with placeholder params of the right dtypes (``_sizing_chain``), used only for sizes and kernel choice (the
  packed kernels and their scratch follow the bitwidths), never for code; only the winner is calibrated
  (:func:`build_joint`);
- prices the expected instructions with the cost model (``patch/cost.py``: each chain's layers on each patch,
  the packed kernels by their own declared cost terms, the input copies and pastes, the check by its kernel's
  measured terms) weighted per patch by the share of calibration inputs on which the check flags that patch
  at that grid (the threshold of the VDPC rule is the same for every candidate: it is a percentile or sigma of
  the checked map's values over the whole maps);
- keeps the candidates whose peak fits the budget and takes the fewest expected instructions (tie: the lower
  peak, then the shorter stage, the smaller grid, the smaller s).

A check that cannot fire (threshold ``MAX_THRESHOLD``, the same for every candidate) is dropped, as
``lowbit_only_schedule`` drops it: each candidate is sized and priced as the low-bit chain alone on every patch
(no 8-bit chain, no check, no sub-patches), and the checked map may go low with the others.

Every candidate is kept in the result, with the reason when one could not be built (``refused``).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from ..arith.bitwidth import qrange
from ..errors import UserError
from ..ir import Graph, Node, QuantParams
from ..ir.graph import int_dtype
from ..ops.base import op_def
from ..ops.kernel import Geometry
from ..ops.outlier_check import MAX_THRESHOLD, check_kernel, check_node
from ..patch.cost import (
    chain_patch_instructions,
    coefficient_table,
    copy_features,
    estimate_instructions,
    kernel_of,
    patch_copy_instructions,
)
from ..patch.execute import SubPatches, plan_sub_patches
from ..patch.memory import plan_memory_patched, rest_memory_plan
from ..patch.planner import PatchPlan, candidate_splits, plan_patches
from ..patch.search import GRIDS
from .blas import run_batched
from .lowbit import (
    BITS,
    LowbitChain,
    _requantized,
    build_lowbit_chain,
    inlier_counts,
    lowbit_name,
    lowbit_only_schedule,
    lowbit_schedule,
)
from .stats import stage_maps
from .vdpc import VdpcOptions, VdpcPlan, checked_map, plan_vdpc
from .vdqs import extend_stage_values

#: samples per batch of the checked map's run (as vdqs.BATCH)
_BATCH = 25

#: sub-patch factors tried by default (1: an outlier patch runs as itself)
SUBS = (1, 2, 3)


@dataclass(frozen=True)
class JointCandidate:
    """One (split, grid, s) the joint search tried.

    ``stage_len``, ``grid``, ``sub_patches``: the plan (stage = the first ``stage_len`` layers, an n x n grid of
    its output, outlier patches as s x s sub-patches); ``bits``: the stage maps the low-bit chain lowers and
    their bits; ``peak``: the activation arena with both chains (bytes); ``instructions``: expected per
    inference (the cost model, the check included), over the calibration inputs' patch chains;
    ``instructions_8bit``: the same split and grid with 8-bit patching alone; ``outlier_share``: of the
    patches, on the calibration inputs; ``fits``: peak within the budget; ``refused``: why the candidate could
    not be built (then peak and instructions are 0)."""

    stage_len: int
    grid: int
    sub_patches: int
    bits: tuple[tuple[str, int], ...]
    peak: int
    instructions: float
    instructions_8bit: float
    outlier_share: float
    fits: bool
    refused: str | None = None


@dataclass(frozen=True, eq=False)
class JointChoice:
    """What :func:`choose_joint` picked, and everything it tried.

    ``plan``: the winner's patch plan of the 8-bit graph (None when no candidate could be built);
    ``sub_patches``: its s; ``bits``: the bitwidths of the winner's stage maps (what ``build_lowbit_chain``
    takes); ``peak`` and ``instructions``: its estimated arena and expected instructions; ``fits``: False when
    no candidate fits the budget (the winner is then the lowest peak found, for the error message);
    ``checked``, ``threshold``: the map VDPC checks and its threshold (the same for every candidate);
    ``tried``: every candidate, in the order tried; ``seconds``: the search time; ``notes``: bitwidths given
    that the search could not honour (the checked map stays 8-bit)."""

    plan: PatchPlan | None
    sub_patches: int
    bits: dict[str, int]
    peak: int
    instructions: float
    fits: bool
    budget: int
    checked: str
    threshold: int
    tried: tuple[JointCandidate, ...]
    seconds: float
    notes: tuple[str, ...] = ()

    @property
    def winner(self) -> JointCandidate | None:
        """The candidate taken (None: none could be built)."""
        if self.plan is None:
            return None
        return next(c for c in self.tried if c.refused is None and (c.stage_len, c.grid, c.sub_patches) ==
                    (self.plan.stage_len, self.plan.grid, self.sub_patches))


def _stage_bits(graph: Graph, plan: PatchPlan, checked: str, bits: dict[str, int]) -> dict[str, int]:
    """The bits of the maps a candidate's stage lowers: those named in ``bits`` below 8 that the stage makes
    (not its output, not the checked map)."""
    maps = [m for m in stage_maps(graph, plan) if m not in (graph.inputs[0], plan.split, checked)]
    return {m: int(bits[m]) for m in maps if int(bits.get(m, 8)) < 8}


def _sizing_chain(graph: Graph, plan: PatchPlan, low: dict[str, int]) -> tuple[Graph, PatchPlan, tuple[Node, ...]]:
    """The low-bit chain's graph, plan and nodes with **placeholder** params (the 8-bit scale stretched to the
    bits' range, zero point qmin): the right tensors, dtypes, packed sizes and kernels (the packed kernels and
    their scratch follow the bitwidths, not the params), for sizing and pricing only, never for code. Raises the
    UserError ``build_lowbit_chain`` would for a layer the low bits cannot reach."""
    tensors = dict(graph.tensors)
    renamed = {}
    for m, b in low.items():
        t = tensors[m]
        qmin, qmax = qrange(b)
        q = QuantParams.per_tensor(float(t.quant.s) * 255.0 / (qmax - qmin), qmin, b)
        new = dataclasses.replace(t, name=lowbit_name(m, b), dtype=int_dtype(b), quant=q)
        tensors[new.name] = new
        renamed[m] = new.name
    nodes = []
    for n in graph.nodes[: plan.stage_len]:
        if op_def(n).alias and (set(n.inputs) | set(n.outputs)) & set(renamed):
            raise UserError(f"layer '{n.name}' ({n.op}) is a view of its input; fix: keep its maps at 8 bits")
        node, extra = _requantized(n, graph, tensors, renamed)
        for t in extra:
            tensors[t.name] = t
        nodes.append(node)
    g = graph.replace(tensors=tensors)
    return g, _with_chain_regions(plan, renamed), tuple(nodes)


def _with_chain_regions(plan: PatchPlan, renamed: dict[str, str]) -> PatchPlan:
    """``plan`` with the chain's own tensors given their maps' regions (as ``build_lowbit_chain`` does)."""
    regions = tuple({**r, **{renamed[m]: r[m] for m in renamed}} for r in plan.regions)
    return dataclasses.replace(plan, regions=regions)


def _live_floor(arena, exclusive_chain: int) -> int:
    """The most bytes live at one step among the buffers outside chain ``exclusive_chain``'s group: they are
    pairwise non-exclusive, so every placement needs that many, whatever that chain's buffers are (a lower bound
    on the peak of any sub-patch factor, which changes only that chain's buffers)."""
    others = [b for b in arena.buffers if b.group != exclusive_chain]
    steps = {b.first for b in others}
    return max((sum(b.size for b in others if b.first <= t <= b.last) for t in steps), default=0)


def _checked_deviation(graph: Graph, checked: str, zero_point: int, calib_q: np.ndarray) -> np.ndarray:
    """int32 [samples, H, W]: max over channels of |q - zp| of the checked map on each calibration input (the
    map computed layer by layer: patched values equal it on every region)."""
    inp = graph.inputs[0]
    shape = graph.tensors[inp].shape
    if checked == inp:
        q = np.asarray(calib_q).reshape((-1,) + tuple(shape[1:])).astype(np.int32)
        return np.abs(q - zero_point).max(axis=-1)
    upto = next(j for j, n in enumerate(graph.nodes) if checked in n.outputs) + 1
    xs = np.asarray(calib_q).reshape((-1,) + tuple(shape[1:]))
    out = []
    for a in range(0, len(xs), _BATCH):  # a batch of samples at once: run_batched equals run_nodes per sample
        chunk = xs[a : a + _BATCH]
        for d in run_batched(graph, graph.nodes[:upto], {inp: chunk}, len(chunk)):
            out.append(np.abs(np.asarray(d[checked], np.int32)[0] - zero_point).max(axis=-1))
    return np.stack(out)


def _outlier_flags(plan: PatchPlan, checked: str, dev: np.ndarray, threshold: int) -> np.ndarray:
    """bool [samples, patches]: the patches the check flags on each calibration input at this plan."""
    flags = np.zeros((len(dev), plan.patches), bool)
    for p, regs in enumerate(plan.regions):
        r = regs[checked]
        flags[:, p] = dev[:, r.top : r.bottom, r.left : r.right].reshape(len(dev), -1).max(axis=1) > threshold
    return flags


def _check_position(nodes: tuple[Node, ...], graph: Graph, checked: str) -> tuple[int, bool]:
    """(after, resume) of the check in the probe chain ``nodes``, as ``schedule._check_step`` places it."""
    if checked == graph.inputs[0]:
        after = 0
    else:
        after = next(j for j, n in enumerate(nodes) if checked in n.outputs) + 1
    made_before = {graph.inputs[0]} | {o for n in nodes[:after] for o in n.outputs}
    later = {i for n in nodes[after:] for i in n.inputs if i}
    return after, not (later & (made_before - {checked}))


def _expected_stage(cl, c8, io, check, share, after: int, resume: bool, move,
                    sub: tuple[SubPatches, list, list] | None) -> float:
    """Expected instructions of the dispatching stage: per patch, the inlier path or the outlier path weighted
    by the patch's outlier share (see the module docstring)."""
    total = 0.0
    for p in range(len(cl)):
        (cin, paste), probe = io[p], sum(cl[p][:after])
        inlier = cin + sum(cl[p]) + paste + check[p]
        if sub is not None:
            s, c8s, ios = sub
            outlier = cin + probe + check[p] + sum(ios[q][0] + sum(c8s[q]) + ios[q][1] for q in s.of_patch[p])
        elif resume:
            outlier = cin + probe + check[p] + move[p] + sum(c8[p][after:]) + paste
        else:
            outlier = cin + probe + check[p] + cin + sum(c8[p]) + paste
        total += (1.0 - share[p]) * inlier + share[p] * outlier
    return total


def choose_joint(graph: Graph, budget: int, target, bits: dict[str, int], vdpc_options: VdpcOptions,
                 calib_q: np.ndarray, splits: list[int] | None = None, grids: tuple[int, ...] = GRIDS,
                 subs: tuple[int, ...] = SUBS, input_by_patch: bool = False) -> JointChoice:
    """Pick (split, grid, sub-patches) for QuantMCU under an SRAM ``budget``: fewest expected instructions
    among the candidates whose two-chain arena fits (tie: lower peak).

    Parameters
    ----------
    graph : Graph
        The quantized (8-bit) graph.
    budget : int
        SRAM bytes the activation arena must fit in.
    target : Board | KernelTarget | None
        The kernels' target (scratch, costs, the check's implementation); None: portable.
    bits : dict
        {map name: 8 | 4 | 2} for the low-bit chain (e.g. VDQS's choice); a candidate's stage lowers the maps it
        makes that are named below 8, except its output and the checked map (they stay 8-bit); maps not named
        stay 8-bit.
    vdpc_options : VdpcOptions
        The check's rule, parameter and location (the threshold is calibrated once on ``calib_q``).
    calib_q : numpy.ndarray
        int8 [N, ...] calibration inputs (physical layout): the outlier patch share of every candidate.
    splits : list of int, optional
        Stage lengths to try (default: every valid split, ``candidate_splits``).
    grids, subs : tuple of int
        Grids n (n x n patches) and sub-patch factors s to try.
    input_by_patch : bool
        The application fills each input region (the input is never whole).

    Returns
    -------
    JointChoice
        The winner and every candidate tried. Calibrate the winner with :func:`build_joint`.
    """
    t0 = time.perf_counter()
    for b in bits.values():
        if b not in BITS:
            raise UserError(f"bitwidth {b} in the joint search: fix: use one of {list(BITS)}")
    if any(s < 1 for s in subs) or any(n < 1 for n in grids):
        raise UserError("the joint search's grids and sub-patch factors are >= 1; fix: give positive integers")
    valid = candidate_splits(graph)
    splits = valid if splits is None else list(splits)
    if not splits or any(k not in valid for k in splits):
        raise UserError(f"split(s) {splits} not valid for patching; valid: {valid or 'none'}; fix: pick among them")
    # the check and its threshold: the same map and rule for every candidate (a percentile or sigma over the
    # whole maps), calibrated once on the shortest stage that makes the checked map before its output
    ref = None
    for k in sorted(valid):
        try:
            plan0 = plan_patches(graph, k, 2, input_by_patch)
            checked = checked_map(graph, plan0, vdpc_options.location)
        except UserError:
            continue
        if vdpc_options.fixed_threshold is not None and len(calib_q):
            # the threshold given: plan_vdpc would measure the stage's statistics only to return it
            ref = (checked, int(vdpc_options.fixed_threshold), int(graph.tensors[checked].quant.zp))
        else:
            v = plan_vdpc(graph, plan0, calib_q, vdpc_options)
            ref = (v.tensor, v.threshold, v.zero_point)
        break
    if ref is None:
        raise UserError("no patched stage makes a map VDPC can check; fix: check location 'input'")
    checked, threshold, zp = ref
    # a check that cannot fire is dropped (lowbit_only_schedule): one chain, the low-bit one, on every patch; the
    # checked map may go low with the rest, and there is no outlier patch to run as sub-patches
    never = threshold >= MAX_THRESHOLD
    if never:
        subs = (1,)
    longest = plan_patches(graph, max(splits), 1, input_by_patch)
    known = set(stage_maps(graph, longest))
    unknown = sorted(m for m in bits if m not in known)
    if unknown:
        raise UserError(f"bitwidths given for {unknown}, which no candidate stage makes as an 8-bit map; fix: name "
                        "maps of the patched stage (quantmcu.stage_maps)")
    notes = []
    if int(bits.get(graph.inputs[0], 8)) < 8:
        notes.append(f"'{graph.inputs[0]}' is the model input: kept at 8 bits")
    if int(bits.get(checked, 8)) < 8 and not never:
        notes.append(f"'{checked}' is the map VDPC checks: kept at 8 bits")
    dev = None if never else _checked_deviation(graph, checked, zp, calib_q)
    kernels8_all = tuple(kernel_of(n, graph, target) for n in graph.nodes)
    tried: list[JointCandidate] = []
    best = None  # (key, candidate, plan)
    lowest = None
    for k in splits:
        h, w = graph.tensors[graph.nodes[k - 1].outputs[0]].shape[1:3]
        plan_k = plan_patches(graph, k, 1, input_by_patch)  # the stage's maps (one patch: cheap)
        # what every plan of this stage holds whole at once (the input, unless filled by patch, and the stage
        # output): when that alone exceeds the budget no grid or factor can fit
        whole = graph.tensors[plan_k.split].nbytes + (0 if input_by_patch else graph.tensors[graph.inputs[0]].nbytes)
        if whole > budget:
            held = "the stage output" if input_by_patch else "the whole input and the stage output"
            tried.append(JointCandidate(k, 0, 0, (), whole, 0.0, 0.0, 0.0, False,
                                        f"{held} alone take {whole} B > {budget} B"))
            continue
        low = _stage_bits(graph, plan_k, None if never else checked, bits)
        bits_t = tuple(sorted(low.items()))
        made = {o for n in graph.nodes[:k] for o in n.outputs}
        why = None
        if not never and checked != graph.inputs[0] and (checked not in made or checked == plan_k.split):
            why = f"the checked map '{checked}' is not made inside this stage before its output"
        else:
            try:
                g2, _, nodes_low = _sizing_chain(graph, plan_k, low)
            except UserError as e:
                why = str(e)
        if why is not None:
            for n in grids:
                if n <= min(h, w):
                    for s in subs:
                        tried.append(JointCandidate(k, n, s, bits_t, 0, 0.0, 0.0, 0.0, False, why))
            continue
        nodes8 = tuple(graph.nodes[:k])
        k8 = kernels8_all[:k]
        kl = tuple(kernel_of(n, g2, target) for n in nodes_low)
        table = coefficient_table(kernels8_all + kl)
        chains = (nodes_low, nodes_low) if never else (nodes8, nodes_low)  # as lowbit_only_schedule / lowbit_schedule
        if not never:
            after, resume = _check_position(nodes_low, g2, checked)
            cnode = check_node(g2, checked, zp, threshold)
            ccost = check_kernel(cnode, g2, target).kernel.cost
            c = int(graph.tensors[checked].shape[-1])
        else:
            after, resume = 0, True
        cache: dict = {}  # sub-patch regions by tile: the grids and factors of one stage share many
        rest_arena = rest_memory_plan(graph, k, target)
        for n in grids:
            if n > min(h, w):
                break
            plan = plan_patches(graph, k, n, input_by_patch)
            plan2 = _with_chain_regions(plan, {m: lowbit_name(m, b) for m, b in low.items()})
            est8 = c8 = cl = io = check = share = move = best_here = None
            floor = 0  # bytes no factor can go below (the low-bit chain's and the whole maps' live bytes)
            for s in sorted(subs):
                if best_here is not None:
                    # a factor above one that fits only adds halo on the outlier patches (and loses the resume):
                    # more instructions in the same budget, so it is not tried
                    break
                if floor > budget:
                    tried.append(JointCandidate(k, n, s, bits_t, floor, 0.0, 0.0, float(share.mean()), False,
                                                f"the low-bit chain and the whole maps alone keep {floor} B live at "
                                                f"once > {budget} B (sub-patches shrink the 8-bit chain only)"))
                    continue
                sub = plan_sub_patches(g2, plan2, s, chain=0, cache=cache) if s > 1 else None
                arena = plan_memory_patched(g2, plan2, chains=chains, board=target, sub=sub,
                                             rest_plan=rest_arena)
                peak = arena.arena_size
                fits = peak <= budget
                if sub is None:
                    floor = _live_floor(arena, 0)
                instr = 0.0
                if share is None:
                    share = (np.zeros(plan.patches) if never else
                             _outlier_flags(plan, checked, dev, threshold).mean(axis=0))
                if fits:  # price only what may win (the cost model is the slow part)
                    if c8 is None:
                        est8 = estimate_instructions(graph, plan, kernels8_all, table)
                        c8 = chain_patch_instructions(graph, plan, nodes8, k8, table)
                        cl = chain_patch_instructions(g2, plan2, nodes_low, kl, table)
                        io = patch_copy_instructions(graph, plan, table)
                        check, move = [0.0] * plan.patches, [0.0] * plan.patches  # stay 0 when the check is dropped
                        for q, regs in enumerate(plan.regions if not never else ()):
                            r = regs[checked]
                            cnt = ccost.counts(cnode, g2, Geometry(r.h, r.w, r.h, r.w, 0, 0))
                            check[q] = sum(ccost.coefficients.get(f, 0.0) * cnt.get(f, 0.0) for f in ccost.features)
                            mv = copy_features(1, r.h * r.w * c)
                            move[q] = sum(table["copy_region"].get(f, 0.0) * v for f, v in mv.items())
                    subc = None
                    if sub is not None:
                        subc = (sub, chain_patch_instructions(graph, sub.plan, nodes8, k8, table),
                                patch_copy_instructions(graph, sub.plan, table))
                    stage8 = sum(map(sum, c8)) + sum(a + b for a, b in io)
                    rest = est8.total - stage8  # the rest of the network and the loop, as 8-bit patching's
                    instr = rest + _expected_stage(cl, c8, io, check, share, after, resume and sub is None, move, subc)
                cand = JointCandidate(k, n, s, bits_t, peak, float(instr), float(est8.total) if est8 else 0.0,
                                      float(share.mean()), fits)
                tried.append(cand)
                if fits:
                    best_here = cand
                if lowest is None or (peak, n) < lowest[0]:
                    lowest = ((peak, n), cand, plan)
                key = (instr, peak, k, n, s)
                if fits and (best is None or key < best[0]):
                    best = (key, cand, plan)
    pick = best if best is not None else lowest
    seconds = time.perf_counter() - t0
    if pick is None:
        return JointChoice(None, 1, {}, 0, 0.0, False, budget, checked, threshold, tuple(tried), seconds, tuple(notes))
    _, cand, plan = pick
    return JointChoice(plan, cand.sub_patches, dict(cand.bits), cand.peak, cand.instructions, best is not None,
                       budget, checked, threshold, tuple(tried), seconds, tuple(notes))


def build_joint(graph: Graph, choice: JointChoice, vdpc_options: VdpcOptions, calib_q: np.ndarray, target,
                clipping: str = "mse", per_channel: bool = False, values: dict[str, np.ndarray] | None = None):
    """The winner of :func:`choose_joint` made real: VDPC planned on its plan, its low-bit chain calibrated
    (``build_lowbit_chain``), its schedule and arena (``lowbit_schedule(..., sub_patches=s)``).

    values : dict, optional
        ``vdqs.stage_values`` of ``calib_q`` on some stage of ``graph`` (the check and the chain's calibration values
        are taken from them, the winner's further layers run from them), else the stage runs here.

    Returns
    -------
    (VdpcPlan, LowbitChain, Schedule, ArenaPlan)
        The arena's size equals ``choice.peak`` (the sizing chain and the calibrated one have the same tensors,
        dtypes and kernels); a difference is an internal error.
    """
    if choice.plan is None:
        raise UserError("the joint search found no plan to build; fix: a larger SRAM budget or other splits")
    inliers = None
    if values is not None:  # the values of this stage from those taken (the 8-bit stage on calib_q)
        values = extend_stage_values(graph, choice.plan.stage_len, values)
    vdpc: VdpcPlan = plan_vdpc(graph, choice.plan, calib_q, vdpc_options, values=values)
    if values is not None:
        made = [m for m in stage_maps(graph, choice.plan) if m not in (graph.inputs[0], choice.plan.split)]
        inliers = inlier_counts(graph, choice.plan, values, vdpc.outlier_patches, made)
    chain: LowbitChain = build_lowbit_chain(graph, choice.plan, vdpc, choice.bits, calib_q, clipping, per_channel,
                                            inliers)
    if vdpc.never_fires:  # the check is dropped: the low-bit chain alone (choose_joint sized it so)
        schedule, arena = lowbit_only_schedule(chain, target)
    else:
        schedule, arena = lowbit_schedule(chain, vdpc, target, sub_patches=choice.sub_patches)
    if arena.arena_size != choice.peak:
        raise AssertionError(f"the calibrated chain's arena ({arena.arena_size} B) is not the sizing chain's "
                             f"({choice.peak} B)")
    return vdpc, chain, schedule, arena
