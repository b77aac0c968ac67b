"""Memory safety of an arena plan, checked after planning and before any C is emitted.

For every kernel call the generated code will make (layer by layer, and in the patch loop: the input
region copy or the application's fill callback, each stage layer and its cropped copies, the paste into
the stage output), this module computes the byte ranges the kernel reads and writes, from the access
pattern the kernel implementation states (``ops.kernel.Kernel.access``, written from its documented loops
in ``runtime_c/include/mcunn.h``) on the node's shapes, attributes and patch regions as the generated
code passes them (``ops.kernel.KernelArgs``), and checks that

- each range lies inside the buffer the plan allotted to the pointer the C passes (``plan.offsets``,
  the buffer of ``plan.roots``) and that buffer inside the arena;
- the buffer is alive at that step, and nothing the kernel writes lands on another buffer alive then;
- constants (weights, bias, multipliers, tables) hold what the kernel reads from them;
- the call meets the kernel's documented argument contract (else it returns MCU_ARG_ERROR at run time).

It is a second, independent line of defence: sizes come from the kernels' loops, never from the
planner's own size formulas, so a plan that is wrong in a way the planner cannot see (a tensor whose
declared shape contradicts its op, a corrupted offset) is caught before it becomes C that reads past the
arena. A failure is a compiler bug, not a user error: :class:`PlanSafetyError`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..arith.bitwidth import c_array_type, pack
from ..ir import Graph, Node
from ..memory.planner import ArenaPlan, Buffer, scratch_buffer
from ..ops import Access, KernelArgs, op_def
from ..ops.kernel import array_pointer, read, write
from ..ops.spatial import as_nhwc
from ..patch.memory import region_buffer
from ..patch.planner import crop_buffer, local_window

Dims = tuple[int, int, int, int]
C_SIZES = {"int8": 1, "uint8": 1, "int16": 2, "int32": 4, "float32": 4, "int4": 1, "int2": 1}


class PlanSafetyError(RuntimeError):
    """The plan lets a kernel read or write outside its buffers: a bug in mcucompile."""


def const_pointer(name: str) -> str:
    return f"const:{name}"


@dataclass(frozen=True)
class Step:
    """One kernel call: the plan's step number (buffer lifetimes count in these) and what it touches."""

    index: int
    label: str
    accesses: tuple[Access, ...]
    contract: tuple[str, ...] = ()  # argument violations: the kernel would return MCU_ARG_ERROR


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


def _pointer(graph: Graph, name: str, in_stage: bool) -> str:
    if graph.tensors[name].is_const:
        return const_pointer(name)
    return region_buffer(name) if in_stage else name


def _layer_step(graph: Graph, node: Node, index: int, label: str, in_stage: bool, dims, pads,
                replaced: dict[int, str] | None = None, board=None) -> Step:
    call = op_def(node).kernel(node, graph, board)
    impl = call.kernel
    if impl is None:
        raise PlanSafetyError(f"{label}: kernel template '{call.template}' has no declared implementation, so its "
                              "access pattern is unknown; return a KernelCall of an ops.kernel.Kernel from the op's "
                              "kernel()")
    pointers = [None if not i else _pointer(graph, i, in_stage and i in dims.stage) for i in node.inputs]
    for slot, p in (replaced or {}).items():
        pointers[slot] = p
    scratch = scratch_buffer(node) if call.scratch_bytes else None
    out = node.outputs[0]
    args = KernelArgs(node, graph, call.context, tuple(pointers), region_buffer(out) if in_stage else out, dims.ins,
                      dims.out, pads, in_stage, scratch, call.scratch_bytes)
    accesses, contract = impl.access(args)
    return Step(index, label, tuple(accesses), tuple(contract))


@dataclass(frozen=True)
class _Dims:
    ins: tuple[Dims, ...]
    out: Dims
    stage: frozenset = frozenset()


def _layer_label(k: int, node: Node, patch_index: int | None = None) -> str:
    where = f"patch {patch_index}: " if patch_index is not None else ""
    return f"{where}layer {k} '{node.name}' ({node.op})"


def plan_steps(graph: Graph, plan: ArenaPlan, patch=None, board=None) -> list[Step]:
    """Every kernel call of the generated code, in order, with the bytes it reads and writes.

    Parameters
    ----------
    graph : the quantized graph.
    plan : its arena plan (layer by layer, or patched for ``patch``).
    patch : the PatchPlan the first stage runs with, or None.
    board : the ``boards.Board`` whose kernel implementations the code calls (None: the portable ones).
    """
    steps: list[Step] = []
    k = patch.stage_len if patch is not None else 0
    layer = 0  # the generated code's layer number: alias nodes run no kernel and take none
    first_rest_step = k + 2 if patch is not None else 0
    if patch is not None:
        steps += _patch_steps(graph, plan, patch, board)
        layer = sum(1 for n in graph.nodes[:k] if not op_def(n).alias)
    for j, node in enumerate(graph.nodes[k:]):
        if op_def(node).alias:
            continue
        dims = _Dims(tuple(as_nhwc(tuple(graph.tensors[i].shape)) for i in _activations(graph, node)),
                     as_nhwc(tuple(graph.tensors[node.outputs[0]].shape)))
        win = getattr(node.attrs, "window", None)
        pads = (win.pads[0], win.pads[1]) if win is not None else (0, 0)
        steps.append(_layer_step(graph, node, first_rest_step + j, _layer_label(layer, node), False, dims, pads,
                                 board=board))
        layer += 1
    return steps


def _patch_steps(graph: Graph, plan: ArenaPlan, patch, board=None) -> list[Step]:
    k, inp, split = patch.stage_len, graph.inputs[0], patch.split
    stage = graph.nodes[:k]
    stage_tensors = frozenset({inp} | {n.outputs[0] for n in stage})
    in_shape = as_nhwc(tuple(graph.tensors[inp].shape))
    split_shape = as_nhwc(tuple(graph.tensors[split].shape))
    steps: list[Step] = []
    for p, regs in enumerate(patch.regions):
        r = regs[inp]
        if patch.input_by_patch:
            # the application's fill callback writes the [h, w, C] patch, row by row (model.h)
            steps.append(Step(0, f"patch {p}: input filled by the application",
                              (write(region_buffer(inp), r.h * r.w * in_shape[3], "input patch"),)))
        else:
            steps.append(copy_region_step(0, f"patch {p}: input region copy", inp, in_shape, r.top, r.left, r.h, r.w,
                                          region_buffer(inp)))
        layer = 0
        for j, node in enumerate(stage):
            if op_def(node).alias:
                continue
            acts = _activations(graph, node)
            rout = regs[node.outputs[0]]
            cout = graph.tensors[node.outputs[0]].shape[3]
            out_d = (1, rout.h, rout.w, cout)
            if op_def(node).patch_crops_operands:  # operands are (cropped to) the output region
                ins = tuple((1, rout.h, rout.w, graph.tensors[t].shape[3]) for t in acts)
            else:
                rin = regs[acts[0]]
                ins = tuple((1, rin.h, rin.w, graph.tensors[t].shape[3]) for t in acts)
            lw = local_window(graph, patch, node, p)
            pads = (lw.pad_top, lw.pad_left) if lw is not None else (0, 0)
            replaced = {}
            for jj, slot in patch.crops:
                if jj != j:
                    continue
                src = node.inputs[slot]
                ri = regs[src]
                c = graph.tensors[src].pixel_bytes  # bytes per pixel (packed maps: whole bytes)
                crop = crop_buffer(graph, patch, j, slot)
                steps.append(copy_region_step(j + 1, f"patch {p}: crop of '{src}' for layer {layer}",
                                              region_buffer(src), (1, ri.h, ri.w, c), rout.top - ri.top,
                                              rout.left - ri.left, rout.h, rout.w, crop))
                replaced[slot] = crop
            steps.append(_layer_step(graph, node, j + 1, _layer_label(layer, node, p), True,
                                     _Dims(ins, out_d, stage_tensors), pads, replaced, board))
            layer += 1
        ro = regs[split]
        steps.append(paste_region_step(k + 1, f"patch {p}: paste into '{split}'", region_buffer(split), ro.h, ro.w,
                                       split_shape, ro.top, ro.left, split))
    return steps


def _buffers(plan: ArenaPlan) -> dict[str, Buffer]:
    return {b.name: b for b in plan.buffers}


def _constant_sizes(graph: Graph, board=None) -> dict[str, int]:
    """Bytes of every constant the generated code holds: tensors and each layer's context arrays."""
    # what the generated array holds (its data, packed for 4/2-bit tensors), not what the shape promises
    sizes = {const_pointer(n): (pack(t.data, t.bits) if t.packed else t.data).size * C_SIZES[t.dtype]
             for n, t in graph.tensors.items() if t.is_const}
    for node in graph.nodes:
        if op_def(node).alias:
            continue
        for key, value in op_def(node).kernel(node, graph, board).constants.items():
            sizes[array_pointer(node, key)] = value.size * c_array_type(value)[1]
    return sizes


def check_plan_memory(graph: Graph, plan: ArenaPlan, patch=None, board=None) -> None:
    """Check that every kernel call of the plan stays inside its buffers, the arena and its constants.

    Parameters
    ----------
    graph : the quantized graph.
    plan : its arena plan (layer by layer, or patched for ``patch``).
    patch : the PatchPlan, or None for layer-by-layer execution.
    board : the ``boards.Board`` whose kernel implementations the code calls (None: the portable ones).

    Raises
    ------
    PlanSafetyError
        Naming the step, the buffer and the bytes: a compiler bug (the plan, not the user's model).
    """
    problems = plan_problems(graph, plan, patch, board)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise PlanSafetyError(f"unsafe memory plan: {problems[0]}{more}")


def plan_problems(graph: Graph, plan: ArenaPlan, patch=None, board=None) -> list[str]:
    """Every violation check_plan_memory would raise for, as lines (empty: the plan is safe)."""
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
    problems += packed_map_problems(graph, board)
    constants = _constant_sizes(graph, board)
    for step in plan_steps(graph, plan, patch, board):
        problems += [f"{step.label}: {c} (the kernel would return MCU_ARG_ERROR)" for c in step.contract]
        for a in step.accesses:
            problems += _access_problems(step, a, plan, buffers, constants)
    return problems


def packed_map_problems(graph: Graph, board=None) -> list[str]:
    """Layers whose kernel would read or write a packed 4- / 2-bit map as one value per byte (its Kernel does not
    state ``packed``), and views of a packed map that change its channels (the packing runs along them)."""
    problems = []
    for node in graph.nodes:
        tensors = [graph.tensors[t] for t in (*_activations(graph, node), *node.outputs)]
        packed = [t.name for t in tensors if t.packed]
        if not packed:
            continue
        if op_def(node).alias:
            if len({t.shape[-1] for t in tensors}) > 1:
                problems.append(f"'{node.name}' ({node.op}) views the packed map '{packed[0]}' with other channels")
            continue
        impl = op_def(node).kernel(node, graph, board).kernel
        if impl is None or not impl.packed:
            name = impl.name if impl is not None else "its kernel"
            problems.append(f"'{node.name}' ({node.op}): {name} takes one value per byte, not the packed map "
                            f"'{packed[0]}'")
    return problems


def _access_problems(step: Step, a: Access, plan: ArenaPlan, buffers: dict[str, Buffer],
                     constants: dict[str, int]) -> list[str]:
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
            if other.name == b.name or not other.first <= step.index <= other.last:
                continue
            if lo < other.offset + other.size and other.offset < hi:
                out.append(f"{step.label}: writes {a.role} at arena bytes [{lo}, {hi}) over '{other.name}' "
                           f"[{other.offset}, {other.offset + other.size}), alive at step {step.index}")
    return out
