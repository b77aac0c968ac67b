"""Memory safety of an arena plan, checked after planning and before any C is emitted.

For every kernel call the generated code will make (layer by layer, and in the patch loop: the input
region copy or the application's fill callback, each stage layer and its cropped copies, the paste into
the stage output, in every chain the loop may run; with a run-time dispatch also the outlier check and the
move of the checked region into the outlier chain), this module computes the byte ranges the kernel reads
and writes, from the access pattern the kernel implementation states (``ops.kernel.Kernel.access``, written
from its documented loops in ``runtime_c/include/mcunn.h``) on the node's shapes, attributes and patch
regions as the generated code passes them (``ops.kernel.KernelArgs``), and checks that

- each range lies inside the buffer the plan allotted to the pointer the C passes (``plan.offsets``,
  the buffer of ``plan.roots``) and that buffer inside the arena;
- the buffer is alive at that step, and nothing the kernel writes lands on another buffer alive then;
  the alternative chains of a patch loop are mutually exclusive (one patch runs one chain at a time), so
  their buffers may share bytes: a write of one chain may land on another chain's buffers, never on its own
  chain's live buffers nor on a live buffer outside the loop (the whole input, the stage output, the rest
  of the graph). Which chain a buffer belongs to comes from the schedule (its region, crop and scratch
  buffers, by name: :func:`chain_buffers`), not from the plan's exclusive groups (``Buffer.group``), so a
  plan whose groups are wrong is caught too;
- bytes another chain still has to read (``Step.keep``) are not written before they are read;
- constants (weights, bias, multipliers, tables) hold what the kernel reads from them;
- the call meets the kernel's documented argument contract (else it returns MCU_ARG_ERROR at run time).

The chains of the loop come from the schedule (``schedule=``: each chain's own nodes and kernels, its
dispatch and check); without one, the loop is one chain of the stage's nodes with the kernels their ops
choose for ``board``. The regions each chain computes a patch with come from :func:`chain_regions` alone.

It is a second, independent line of defence: sizes come from the kernels' loops, never from the
planner's own size formulas, so a plan that is wrong in a way the planner cannot see (a tensor whose
declared shape contradicts its op, a corrupted offset) is caught before it becomes C that reads past the
arena. A failure is a compiler bug, not a user error: :class:`PlanSafetyError`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..arith.bitwidth import c_array_type, pack
from ..ir import Graph, Node, Region
from ..memory.planner import ArenaPlan, Buffer, scratch_buffer
from ..ops import Access, KernelArgs, KernelCall, op_def
from ..ops.kernel import array_pointer, read, write
from ..ops.spatial import as_nhwc
from ..patch.memory import region_buffer
from ..patch.planner import PatchPlan, crop_buffer
from .schedule import CheckStep, PatchLoop, Schedule

Dims = tuple[int, int, int, int]
C_SIZES = {"int8": 1, "uint8": 1, "int16": 2, "int32": 4, "float32": 4, "int4": 1, "int2": 1}


class PlanSafetyError(RuntimeError):
    """The plan lets a kernel read or write outside its buffers: a bug in mcucompile."""


def const_pointer(name: str) -> str:
    return f"const:{name}"


@dataclass(frozen=True)
class Step:
    """One kernel call: the plan's step number (buffer lifetimes count in these) and what it touches.

    ``arrays``: (pointer, bytes) of the constant arrays the call owns (its multipliers, tables); ``overlap_ok``:
    buffers its writes may overlap although alive (a memmove's source); ``keep``: bytes (from their pointers)
    another chain has not read yet while this step runs, which its writes must not touch whatever chain they
    belong to."""

    index: int
    label: str
    accesses: tuple[Access, ...]
    contract: tuple[str, ...] = ()  # argument violations: the kernel would return MCU_ARG_ERROR
    arrays: tuple[tuple[str, int], ...] = ()
    overlap_ok: tuple[str, ...] = ()
    keep: tuple[Access, ...] = ()


def _region_rows(src_dims: Dims, top: int, left: int, h: int, w: int) -> tuple[int, int]:
    """Byte span of rows [top, top+h) x columns [left, left+w) of a [1, H, W, C] tensor."""
    _, _, width, c = src_dims
    if h <= 0 or w <= 0:
        return 0, 0
    return (top * width + left) * c, ((top + h - 1) * width + left + w) * c


def _region_contract(what: str, dims: Dims, top: int, left: int, h: int, w: int) -> list[str]:
    """mcu_copy_region_s8 / mcu_paste_region_s8 return MCU_ARG_ERROR unless the whole tensor has batch 1
    and the region [1, h, w, C] (h, w >= 0) at (top, left) lies inside it; the generated C builds the
    region's dims with the whole tensor's C, so the channel check holds by construction."""
    if dims[0] != 1:
        return [f"{what}: whole tensor {list(dims)} has batch {dims[0]}, the region kernels take batch 1"]
    if h < 0 or w < 0 or top < 0 or left < 0 or top + h > dims[1] or left + w > dims[2]:
        return [f"{what}: region rows {top}+{h}, columns {left}+{w} leaves {list(dims)}"]
    return []


def copy_region_step(index: int, label: str, src: str, src_dims: Dims, top: int, left: int, h: int, w: int,
                     dst: str) -> Step:
    """mcu_copy_region_s8: reads the region of ``src``, writes [h, w, C] contiguous to ``dst``."""
    lo, hi = _region_rows(src_dims, top, left, h, w)
    return Step(index, label, (Access(src, lo, hi, False, "region source"), write(dst, h * w * src_dims[3], "region")),
                tuple(_region_contract(label, src_dims, top, left, h, w)))


def paste_region_step(index: int, label: str, src: str, h: int, w: int, dst_dims: Dims, top: int, left: int,
                      dst: str) -> Step:
    """mcu_paste_region_s8: reads [h, w, C] from ``src``, writes the region of ``dst``."""
    lo, hi = _region_rows(dst_dims, top, left, h, w)
    return Step(index, label, (read(src, h * w * dst_dims[3], "patch"), Access(dst, lo, hi, True, "region")),
                tuple(_region_contract(label, dst_dims, top, left, h, w)))


def _activations(graph: Graph, node: Node) -> list[str]:
    return [i for i in node.inputs if i and not graph.tensors[i].is_const]


@dataclass(frozen=True)
class _Layer:
    """One kernel-running node as the generated code calls it: ``position`` in ``graph.nodes`` (for a chain of
    the loop, the stage node it stands for: plan step position + 1), the node and its kernel call."""

    position: int
    node: Node
    call: KernelCall


def _arrays(node: Node, call: KernelCall) -> tuple[tuple[str, int], ...]:
    return tuple((array_pointer(node, key), v.size * c_array_type(v)[1]) for key, v in call.constants.items())


def _layer_step(graph: Graph, layer: _Layer, index: int, label: str, chain: int | None, dims: _Dims,
                pads: tuple[int, int], replaced: dict[int, str] | None = None) -> Step:
    """The call of ``layer``: outside the loop (``chain`` None) on whole tensors, else on chain ``chain``'s
    region buffers of the stage tensors in ``dims.stage``."""
    node, call = layer.node, layer.call
    impl = call.kernel
    if impl is None:
        raise PlanSafetyError(f"{label}: kernel template '{call.template}' has no declared implementation, so its "
                              "access pattern is unknown; return a KernelCall of an ops.kernel.Kernel from the op's "
                              "kernel()")
    in_loop = chain is not None

    def pointer(name: str) -> str:
        if graph.tensors[name].is_const:
            return const_pointer(name)
        return region_buffer(name, chain) if in_loop and name in dims.stage else name

    pointers = [None if not i else pointer(i) for i in node.inputs]
    for slot, p in (replaced or {}).items():
        pointers[slot] = p
    scratch = scratch_buffer(node, chain or 0) if call.scratch_bytes else None
    out = node.outputs[0]
    args = KernelArgs(node, graph, call.context, tuple(pointers), pointer(out), dims.ins, dims.out, pads, in_loop,
                      scratch, call.scratch_bytes)
    accesses, contract = impl.access(args)
    return Step(index, label, tuple(accesses), tuple(contract), _arrays(node, call))


@dataclass(frozen=True)
class _Dims:
    ins: tuple[Dims, ...]
    out: Dims
    stage: frozenset = frozenset()


def _layer_label(k: int, node: Node, where: str | None = None) -> str:
    return (f"{where}: " if where is not None else "") + f"layer {k} '{node.name}' ({node.op})"


def _layers(graph: Graph, patch: PatchPlan | None, board, schedule: Schedule | None
            ) -> tuple[tuple[tuple[_Layer, ...], ...], tuple[_Layer, ...]]:
    """(each chain of the loop, the rest): the kernel calls in order, from ``schedule`` when given (each chain's
    own nodes and kernels), else the graph's nodes with the kernels their ops choose for ``board``."""
    k = patch.stage_len if patch is not None else 0
    stage_pos = [j for j, n in enumerate(graph.nodes[:k]) if not op_def(n).alias]
    rest_pos = [j for j in range(k, len(graph.nodes)) if not op_def(graph.nodes[j]).alias]
    if schedule is None:
        def mk(j: int) -> _Layer:
            n = graph.nodes[j]
            return _Layer(j, n, op_def(n).kernel(n, graph, board))

        return ((tuple(mk(j) for j in stage_pos),) if patch is not None else ()), tuple(mk(j) for j in rest_pos)
    loop = schedule.loop
    chains = loop.chains if loop is not None else ()
    if any(len(ch.steps) != len(stage_pos) for ch in chains) or len(schedule.rest.steps) != len(rest_pos):
        raise PlanSafetyError("the schedule's chains or rest do not run one step per kernel-running node of the "
                              "graph's stage and rest: schedule and graph disagree")
    return (tuple(tuple(_Layer(j, st.node, st.kernel) for j, st in zip(stage_pos, ch.steps)) for ch in chains),
            tuple(_Layer(j, st.node, st.kernel) for j, st in zip(rest_pos, schedule.rest.steps)))


def chain_regions(patch: PatchPlan, loop: PatchLoop | None, chain: int, p: int) -> dict[str, Region]:
    """The regions chain ``chain`` of the loop computes patch ``p`` with (tensor -> region; a chain's own
    tensors, e.g. a low-bit chain's packed maps, are among them). Every region the check uses comes from
    here, so a chain that computes a patch differently (e.g. as sub-patches) changes this one place."""
    return patch.regions[p]


def plan_steps(graph: Graph, plan: ArenaPlan, patch=None, board=None, schedule: Schedule | None = None) -> list[Step]:
    """Every kernel call of the generated code, in order, with the bytes it reads and writes.

    Parameters
    ----------
    graph : the quantized graph.
    plan : its arena plan (layer by layer, or patched for ``patch``).
    patch : the PatchPlan the first stage runs with, or None (taken from ``schedule`` when that is given).
    board : the ``boards.Board`` whose kernel implementations the code calls (None: the portable ones); unused
        with ``schedule``, whose steps carry their kernels.
    schedule : the schedule the code is generated from, or None: then the loop (with ``patch``) is one chain
        of the stage's nodes. With it, every chain of its loop, and a run-time dispatch's check and move.
    """
    patch = _patch_of(patch, schedule)
    chains, rest = _layers(graph, patch, board, schedule)
    loop = schedule.loop if schedule is not None else None
    steps: list[Step] = []
    k = patch.stage_len if patch is not None else 0
    layer = 0  # the generated code's layer number: alias nodes run no kernel and take none
    if patch is not None:
        steps += _patch_steps(graph, patch, chains, loop)
        layer = len(chains[0])
    first_rest_step = k + 2 if patch is not None else 0
    for item in rest:
        node = item.node
        dims = _Dims(tuple(as_nhwc(tuple(graph.tensors[i].shape)) for i in _activations(graph, node)),
                     as_nhwc(tuple(graph.tensors[node.outputs[0]].shape)))
        win = getattr(node.attrs, "window", None)
        pads = (win.pads[0], win.pads[1]) if win is not None else (0, 0)
        steps.append(_layer_step(graph, item, first_rest_step + item.position - k, _layer_label(layer, node), None,
                                 dims, pads))
        layer += 1
    return steps


def _patch_of(patch: PatchPlan | None, schedule: Schedule | None) -> PatchPlan | None:
    if schedule is None:
        return patch
    own = schedule.loop.plan if schedule.loop is not None else None
    if patch is not None and patch is not own:
        raise ValueError("pass the schedule's own patch plan (schedule.loop.plan), or none")
    return own


def _patch_steps(graph: Graph, patch: PatchPlan, chains: tuple[tuple[_Layer, ...], ...],
                 loop: PatchLoop | None) -> list[Step]:
    """The loop's calls, patch by patch: the chain each patch runs; with a run-time dispatch, the probe chain
    through (an inlier patch), the check, then the outlier chain: the move of the checked region and its layers
    from the check on (resume), or all of it from the start, or all of it on each of the patch's sub-patches
    (``loop.sub``)."""
    multi = len(chains) > 1
    steps: list[Step] = []
    for p in range(len(patch.regions)):
        where = [f"patch {p}" + (f", chain {c}" if multi else "") for c in range(len(chains))]
        if loop is not None and loop.runtime:
            ck, d = loop.check, loop.dispatch
            probe, other = ck.chain, d.outlier_chain
            regs = chain_regions(patch, loop, probe, p)
            steps += _chain_steps(graph, patch, chains[probe], probe, regs, where[probe])
            steps.append(check_access_step(graph, ck, _check_index(chains[probe], ck), f"patch {p}: outlier check", regs))
            if loop.sub is not None and other == loop.sub.chain:
                # the outlier chain runs this patch as its sub-patches, each from the input up with its own
                # regions (and the sub plan's own crops)
                for q in loop.sub.of_patch[p]:
                    steps += _chain_steps(graph, loop.sub.plan, chains[other], other, loop.sub.plan.regions[q],
                                          f"patch {p}, sub-patch {q}, chain {other}")
            elif ck.resume:
                to = chain_regions(patch, loop, other, p)
                steps.append(move_step(graph, ck, other, _check_index(chains[probe], ck), f"patch {p}", regs, to))
                steps += _chain_steps(graph, patch, chains[other], other, to, where[other], first=ck.after, fill=False)
            else:
                steps += _chain_steps(graph, patch, chains[other], other, chain_regions(patch, loop, other, p),
                                      where[other])
        else:
            c = loop.chain_of(p) if loop is not None else 0
            steps += _chain_steps(graph, patch, chains[c], c, chain_regions(patch, loop, c, p), where[c])
    return steps


def _check_index(probe: tuple[_Layer, ...], ck: CheckStep) -> int:
    """The plan step the check (and the move) runs at: that of the probe's layer making the checked map
    (0: the input)."""
    return probe[ck.after - 1].position + 1 if ck.after else 0


def check_access_step(graph: Graph, ck: CheckStep, index: int, label: str, regs: dict[str, Region]) -> Step:
    """The outlier check's call on the probe chain's region buffer of the checked map (region ``regs``), from its
    kernel's access pattern; it writes one flag into a local of the generated code, not the arena."""
    impl = ck.kernel.kernel
    if impl is None:
        raise PlanSafetyError(f"{label}: kernel template '{ck.kernel.template}' has no declared implementation")
    r = regs[ck.tensor]
    dims = (1, r.h, r.w, int(graph.tensors[ck.tensor].shape[-1]))
    args = KernelArgs(ck.node, graph, ck.kernel.context, (ck.buffer(),), "", (dims,), (1, 1, 1, 1), (0, 0), True)
    accesses, contract = impl.access(args)
    return Step(index, f"{label} of '{ck.tensor}'", tuple(accesses), tuple(contract), _arrays(ck.node, ck.kernel))


def move_step(graph: Graph, ck: CheckStep, to_chain: int, index: int, label: str, src_regs: dict[str, Region],
              dst_regs: dict[str, Region]) -> Step:
    """The memmove an outlier patch makes when it resumes: the probe's checked region into chain ``to_chain``'s
    region buffer of the same map. Both ranges must lie in their buffers; the destination may overlap the source
    (memmove), nothing else live of the outlier chain (its group) or outside the loop."""
    n = src_regs[ck.tensor].h * src_regs[ck.tensor].w * graph.tensors[ck.tensor].pixel_bytes
    if dst_regs[ck.tensor] != src_regs[ck.tensor]:
        raise PlanSafetyError(f"{label}: the move of '{ck.tensor}' copies the probe's region whole, but chain "
                              f"{to_chain} computes another region of it")
    src, dst = ck.buffer(), region_buffer(ck.tensor, to_chain)
    return Step(index, f"{label}: move of '{ck.tensor}' into chain {to_chain}",
                (read(src, n, "checked region"), write(dst, n, "checked region")), overlap_ok=(src,))


def _chain_steps(graph: Graph, patch: PatchPlan, layers: tuple[_Layer, ...], chain: int, regs: dict[str, Region],
                 where: str, first: int = 0, fill: bool = True, keep: tuple[Access, ...] = ()) -> list[Step]:
    """Chain ``chain`` computing one patch (regions ``regs``): the input region (``fill``), its layers from the
    ``first``-th on with their cropped copies, the paste of its output region into the whole stage output."""
    k, inp, split = patch.stage_len, graph.inputs[0], patch.split
    stage = frozenset({inp} | {x.node.outputs[0] for x in layers})
    in_shape = as_nhwc(tuple(graph.tensors[inp].shape))
    split_shape = as_nhwc(tuple(graph.tensors[split].shape))
    out: list[Step] = []
    r = regs[inp]
    if fill and patch.input_by_patch:
        # the application's fill callback writes the [h, w, C] patch, row by row (model.h)
        out.append(Step(0, f"{where}: input filled by the application",
                        (write(region_buffer(inp, chain), r.h * r.w * in_shape[3], "input patch"),)))
    elif fill:
        out.append(copy_region_step(0, f"{where}: input region copy", inp, in_shape, r.top, r.left, r.h, r.w,
                                    region_buffer(inp, chain)))
    for number, item in enumerate(layers):
        if number < first:
            continue
        node, j = item.node, item.position
        acts = _activations(graph, node)
        rout = regs[node.outputs[0]]
        out_d = (1, rout.h, rout.w, graph.tensors[node.outputs[0]].shape[3])
        rin = rout if op_def(node).patch_crops_operands else regs[acts[0]]  # operands are (cropped to) the output
        ins = tuple((1, rin.h, rin.w, graph.tensors[t].shape[3]) for t in acts)
        local = op_def(node).patch_local_pads(node, regs[node.inputs[0]], rout)
        pads = (local[0], local[1]) if local is not None else (0, 0)
        replaced = {}
        for jj, slot in patch.crops:
            if jj != j:
                continue
            src = node.inputs[slot]
            ri = regs[src]
            c = graph.tensors[src].pixel_bytes  # bytes per pixel (packed maps: whole bytes)
            crop = crop_buffer(graph, patch, j, slot, chain)
            out.append(copy_region_step(j + 1, f"{where}: crop of '{src}' for layer {number}",
                                        region_buffer(src, chain), (1, ri.h, ri.w, c), rout.top - ri.top,
                                        rout.left - ri.left, rout.h, rout.w, crop))
            replaced[slot] = crop
        out.append(_layer_step(graph, item, j + 1, _layer_label(number, node, where), chain,
                               _Dims(ins, out_d, stage), pads, replaced))
    ro = regs[split]
    out.append(paste_region_step(k + 1, f"{where}: paste into '{split}'", region_buffer(split, chain), ro.h, ro.w,
                                 split_shape, ro.top, ro.left, split))
    if keep:
        out = [Step(s.index, s.label, s.accesses, s.contract, s.arrays, s.overlap_ok, s.keep + keep) for s in out]
    return out


def chain_buffers(graph: Graph, schedule: Schedule) -> dict[str, int]:
    """buffer name -> the chain of ``schedule``'s patch loop it belongs to (its region buffers, crops and
    scratch), for a loop of several chains (else empty: nothing is exclusive). A buffer of no chain (the whole
    input, the stage output, the rest's) is shared by all."""
    patch = _patch_of(None, schedule)
    return _chain_buffers(graph, patch, _layers(graph, patch, None, schedule)[0], schedule.loop)


def _chain_buffers(graph: Graph, patch: PatchPlan | None, chains: tuple[tuple[_Layer, ...], ...],
                   loop: PatchLoop | None) -> dict[str, int]:
    """:func:`chain_buffers` of these chains (``loop``: the schedule's, whose chains may run their own plan)."""
    if patch is None or len(chains) < 2:
        return {}
    inp, k = graph.inputs[0], patch.stage_len
    owner: dict[str, int] = {}
    for c, layers in enumerate(chains):
        crops = (loop.plan_of(c) if loop is not None else patch).crops  # a chain run as sub-patches: their crops
        names = [region_buffer(inp, c)] + [crop_buffer(graph, patch, j, slot, c) for j, slot in crops]
        for x in layers:
            names.append(region_buffer(x.node.outputs[0], c))
            if x.call.scratch_bytes:
                names.append(scratch_buffer(x.node, c))
        # views run no kernel (no layer here); their region buffers, for chains made of the stage's own nodes
        names += [region_buffer(n.outputs[0], c) for n in graph.nodes[:k] if op_def(n).alias]
        for name in names:
            owner.setdefault(name, c)
    return owner


def _buffers(plan: ArenaPlan) -> dict[str, Buffer]:
    return {b.name: b for b in plan.buffers}


def _constant_sizes(graph: Graph) -> dict[str, int]:
    """Bytes of every constant tensor the generated code holds (each call's own arrays: ``Step.arrays``)."""
    # what the generated array holds (its data, packed for 4/2-bit tensors), not what the shape promises
    return {const_pointer(n): (pack(t.data, t.bits) if t.packed else t.data).size * C_SIZES[t.dtype]
            for n, t in graph.tensors.items() if t.is_const}


def check_plan_memory(graph: Graph, plan: ArenaPlan, patch=None, board=None, schedule: Schedule | None = None) -> None:
    """Check that every kernel call of the plan stays inside its buffers, the arena and its constants.

    Parameters
    ----------
    graph : the quantized graph.
    plan : its arena plan (layer by layer, or patched for ``patch``).
    patch : the PatchPlan, or None for layer-by-layer execution (or the schedule's, with ``schedule``).
    board : the ``boards.Board`` whose kernel implementations the code calls (None: the portable ones).
    schedule : the Schedule, or None (the loop is then one chain of the stage's nodes). Give it for a loop of
        several chains: each chain is checked in its own exclusive group, and a run-time dispatch's check and
        move with them.

    Raises
    ------
    PlanSafetyError
        Naming the step, the buffer and the bytes: a compiler bug (the plan, not the user's model).
    """
    problems = plan_problems(graph, plan, patch, board, schedule)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise PlanSafetyError(f"unsafe memory plan: {problems[0]}{more}")


def plan_problems(graph: Graph, plan: ArenaPlan, patch=None, board=None, schedule: Schedule | None = None) -> list[str]:
    """Every violation check_plan_memory would raise for, as lines (empty: the plan is safe)."""
    patch = _patch_of(patch, schedule)
    buffers = _buffers(plan)
    arena = plan.arena_size
    problems = [f"buffer '{b.name}' [{b.offset}, {b.offset + b.size}) leaves the arena of {arena} B"
                for b in plan.buffers if b.offset < 0 or b.size < 0 or b.offset + b.size > arena]
    end = plan.steps - 1
    for name in graph.outputs:
        b = buffers.get(plan.roots.get(name, name))
        if b is not None and b.last < end:
            problems.append(f"graph output '{name}' lives in '{b.name}', which dies at step {b.last} before the "
                            f"end ({end})")
    if patch is None or not patch.input_by_patch:
        for name in graph.inputs:
            b = buffers.get(plan.roots.get(name, name))
            if b is not None and b.first != 0:
                problems.append(f"graph input '{name}' lives in '{b.name}', which is born at step {b.first}, not 0")
    chains, rest = _layers(graph, patch, board, schedule)
    problems += _packed_problems(graph, [(c if len(chains) > 1 else None, x) for c, ch in enumerate(chains)
                                         for x in ch] + [(None, x) for x in rest])
    problems += steps_problems(plan_steps(graph, plan, patch, board, schedule), plan, _constant_sizes(graph),
                               _chain_buffers(graph, patch, chains, schedule.loop if schedule is not None else None))
    return problems


def steps_problems(steps: list[Step], plan: ArenaPlan, constants: dict[str, int] | None = None,
                   owner: dict[str, int] | None = None) -> list[str]:
    """The violations of ``steps`` (kernel calls, :func:`plan_steps`) in ``plan``: contracts, and each access
    against its buffer, its lifetime, the live buffers it may not write over and the constants
    (``constants``: pointer -> bytes of the constant tensors; each step's own arrays are in the step).
    ``owner``: buffer -> the loop chain it belongs to (:func:`chain_buffers`): buffers of different chains may
    share bytes; None or absent: a buffer every step shares."""
    buffers, constants, owner = _buffers(plan), constants or {}, owner or {}
    problems = []
    for step in steps:
        problems += [f"{step.label}: {c} (the kernel would return MCU_ARG_ERROR)" for c in step.contract]
        own = {**constants, **dict(step.arrays)}
        for a in step.accesses:
            problems += _access_problems(step, a, plan, buffers, own, owner)
    return problems


def packed_map_problems(graph: Graph, board=None) -> list[str]:
    """Layers whose kernel would read or write a packed 4- / 2-bit map as one value per byte (its Kernel does not
    state ``packed``), and views of a packed map that change its channels (the packing runs along them)."""
    return _packed_problems(graph, [(None, _Layer(j, n, op_def(n).kernel(n, graph, board)))
                                    for j, n in enumerate(graph.nodes) if not op_def(n).alias])


def _packed_problems(graph: Graph, layers: list[tuple[int | None, _Layer]]) -> list[str]:
    """:func:`packed_map_problems` for these calls ((chain or None, call)) and the graph's views."""
    problems = []
    for node in graph.nodes:
        if not op_def(node).alias:
            continue
        tensors = [graph.tensors[t] for t in (*_activations(graph, node), *node.outputs)]
        packed = [t.name for t in tensors if t.packed]
        if packed and len({t.shape[-1] for t in tensors}) > 1:
            problems.append(f"'{node.name}' ({node.op}) views the packed map '{packed[0]}' with other channels")
    for chain, item in layers:
        node, impl = item.node, item.call.kernel
        packed = [t for t in (*_activations(graph, node), *node.outputs) if graph.tensors[t].packed]
        if packed and (impl is None or not impl.packed):
            name = impl.name if impl is not None else "its kernel"
            where = f" in chain {chain}" if chain is not None else ""
            problems.append(f"'{node.name}' ({node.op}){where}: {name} takes one value per byte, not the packed map "
                            f"'{packed[0]}'")
    return problems


def _access_problems(step: Step, a: Access, plan: ArenaPlan, buffers: dict[str, Buffer],
                     constants: dict[str, int], owner: dict[str, int]) -> list[str]:
    kind = "writes" if a.write else "reads"
    if a.end <= a.start:
        return []
    if a.pointer in constants or a.pointer.startswith(("const:", "array:")):
        size = constants.get(a.pointer)
        if size is None:
            return [f"{step.label}: {kind} {a.role} from '{a.pointer}', which the generated code does not hold"]
        if a.write:
            return [f"{step.label}: writes {a.role} into constant '{a.pointer}'"]
        if a.start < 0 or a.end > size:
            return [f"{step.label}: reads {a.role} bytes [{a.start}, {a.end}) of '{a.pointer}', which holds {size} B"]
        return []
    root = plan.roots.get(a.pointer, a.pointer)
    b = buffers.get(root)
    if b is None or a.pointer not in plan.offsets:
        return [f"{step.label}: {kind} {a.role} through '{a.pointer}', which has no buffer in the plan"]
    lo, hi = plan.offsets[a.pointer] + a.start, plan.offsets[a.pointer] + a.end
    out = []
    if lo < b.offset or hi > b.offset + b.size:
        out.append(f"{step.label}: {kind} {a.role} at arena bytes [{lo}, {hi}) outside its buffer '{b.name}' "
                   f"[{b.offset}, {b.offset + b.size})")
    if lo < 0 or hi > plan.arena_size:
        out.append(f"{step.label}: {kind} {a.role} at arena bytes [{lo}, {hi}) outside the arena of "
                   f"{plan.arena_size} B")
    if not b.first <= step.index <= b.last:
        out.append(f"{step.label}: {kind} {a.role} in '{b.name}' at step {step.index}, but it lives in steps "
                   f"{b.first}..{b.last}")
    if a.role == "scratch" and b.offset % 4:
        out.append(f"{step.label}: scratch '{b.name}' at offset {b.offset} is not 4-byte aligned (int32 accumulators)")
    if a.write:
        for other in plan.buffers:
            if other.name == b.name or other.name in step.overlap_ok or not other.first <= step.index <= other.last:
                continue
            mine, theirs = owner.get(b.name), owner.get(other.name)
            if mine is not None and theirs is not None and mine != theirs:
                continue  # another chain of the loop: never alive at the same time as this one
            if lo < other.offset + other.size and other.offset < hi:
                out.append(f"{step.label}: writes {a.role} at arena bytes [{lo}, {hi}) over '{other.name}' "
                           f"[{other.offset}, {other.offset + other.size}), alive at step {step.index}")
        for kept in step.keep:
            if kept.pointer not in plan.offsets:
                out.append(f"{step.label}: keeps {kept.role} of '{kept.pointer}', which has no buffer in the plan")
                continue
            klo, khi = plan.offsets[kept.pointer] + kept.start, plan.offsets[kept.pointer] + kept.end
            if lo < khi and klo < hi:
                out.append(f"{step.label}: writes {a.role} at arena bytes [{lo}, {hi}) over {kept.role} of "
                           f"'{kept.pointer}' [{klo}, {khi}), not read yet")
    return out
