"""Memory safety of an arena plan, checked after planning and before any C is emitted.

For every kernel call the generated code will make (layer by layer, and in the patch loop: the input
region copy or the application's fill callback, each stage layer and its cropped copies, the paste into
the stage output), this module computes the byte ranges the kernel reads and writes, from the access
pattern each kernel documents in ``runtime_c/include/mcunn.h`` and the node's shapes, attributes and
patch regions, and checks that

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
from typing import Callable

import numpy as np

from ..arith.bitwidth import PACKED_BITS, c_array_type, pack, pixel_bytes
from ..ir import Graph, Node
from ..memory.planner import ArenaPlan, Buffer, scratch_buffer
from ..ops import op_def
from ..ops.spatial import as_nhwc
from ..patch.memory import region_buffer
from ..patch.planner import crop_buffer, local_window

Dims = tuple[int, int, int, int]
C_SIZES = {"int8": 1, "uint8": 1, "int16": 2, "int32": 4, "float32": 4, "int4": 1, "int2": 1}


class PlanSafetyError(RuntimeError):
    """The plan lets a kernel read or write outside its buffers: a bug in mcucompile."""


@dataclass(frozen=True)
class Access:
    """Bytes [start, end) from the pointer the C passes for ``pointer`` (a plan name, or a constant)."""

    pointer: str
    start: int
    end: int
    write: bool
    role: str


@dataclass(frozen=True)
class Step:
    """One kernel call: the plan's step number (buffer lifetimes count in these) and what it touches."""

    index: int
    label: str
    accesses: tuple[Access, ...]
    contract: tuple[str, ...] = ()  # argument violations: the kernel would return MCU_ARG_ERROR


@dataclass(frozen=True)
class Call:
    """What one layer's kernel receives: pointers per input slot (None for an absent one), dims as the
    generated code passes them, padding (top, left) and the kernel's own context values."""

    node: Node
    graph: Graph
    context: dict
    inputs: tuple[str | None, ...]
    output: str
    in_dims: tuple[Dims, ...]  # per activation input, in slot order
    out_dims: Dims
    pads: tuple[int, int]
    patched: bool
    scratch: str | None = None


def _prod(d) -> int:
    return int(np.prod(d, dtype=np.int64)) if len(d) else 1


def const_pointer(name: str) -> str:
    return f"const:{name}"


def _array_pointer(node: Node, key: str) -> str:
    return f"array:{node.name}:{key}"


def _read(p, n, role, start=0) -> Access:
    return Access(p, start, start + n, False, role)


def _write(p, n, role, start=0) -> Access:
    return Access(p, start, start + n, True, role)


def _window_extent(in_d: Dims, out_d: Dims, kernel, stride, dilation, pads) -> int:
    """One past the last input byte a window kernel touches: the kernels skip taps outside the input
    dims, so rows and columns are clipped to them."""
    n, h, w, c = in_d
    _, oh, ow, _ = out_d
    if min(n, oh, ow, h, w, c) <= 0:
        return 0
    last_y = min(h - 1, (oh - 1) * stride[0] - pads[0] + (kernel[0] - 1) * dilation[0])
    last_x = min(w - 1, (ow - 1) * stride[1] - pads[1] + (kernel[1] - 1) * dilation[1])
    if last_y < 0 or last_x < 0:
        return 0
    return (((n - 1) * h + last_y) * w + last_x + 1) * c


def _quant_arrays(call: Call, channels: int) -> list[Access]:
    return [_read(_array_pointer(call.node, k), 4 * channels, k) for k in ("multiplier", "shift")]


def _conv(call: Call):
    """mcu_conv_s8: input within input_dims, filter [C_out, KH, KW, C_in / groups], bias and
    multiplier / shift C_out entries, output [N_in, OH, OW, C_out]."""
    win, groups = call.context["window"], call.context["groups"]
    filt = call.graph.tensors[call.node.inputs[1]].shape
    in_d, out_d = call.in_dims[0], call.out_dims
    cout = out_d[3]
    contract = []
    if len(filt) != 4 or groups < 1 or filt[3] * groups != in_d[3] or cout % groups or filt[0] != cout:
        contract.append(f"filter {list(filt)} with {groups} groups does not fit input {list(in_d)} / "
                        f"output {list(out_d)}")
    acc = [
        _read(call.inputs[0], _window_extent(in_d, out_d, win.kernel, win.stride, win.dilation, call.pads), "input"),
        _read(call.inputs[1], _prod(filt), "weights"),
        _read(call.inputs[2], 4 * cout, "bias"),
        _write(call.output, in_d[0] * out_d[1] * out_d[2] * cout, "output"),
        *_quant_arrays(call, cout),
    ]
    return acc, contract


def _depthwise(call: Call):
    """mcu_dwconv_s8: input within input_dims, filter [KH, KW, C_out], C_out int32 accumulators in the
    scratch, output [N_in, OH, OW, C_out]."""
    win, mult = call.context["window"], call.context["ch_mult"]
    filt = call.graph.tensors[call.node.inputs[1]].shape
    in_d, out_d = call.in_dims[0], call.out_dims
    cout = out_d[3]
    contract = []
    if mult < 1 or in_d[3] * mult != cout or filt[-1] != cout:
        contract.append(f"channels: input {in_d[3]} x multiplier {mult} != output {cout} (filter {list(filt)})")
    declared = op_def(call.node).scratch_bytes(call.node, call.graph)
    if call.scratch is None or declared < 4 * cout:
        contract.append(f"scratch of {declared} B passed, the kernel needs {4 * cout} B (one int32 per channel)")
    acc = [
        _read(call.inputs[0], _window_extent(in_d, out_d, win.kernel, win.stride, win.dilation, call.pads), "input"),
        _read(call.inputs[1], _prod(filt), "weights"),
        _read(call.inputs[2], 4 * cout, "bias"),
        _write(call.output, in_d[0] * out_d[1] * out_d[2] * cout, "output"),
        *_quant_arrays(call, cout),
    ]
    if call.scratch is not None:
        acc.append(_write(call.scratch, 4 * cout, "scratch"))
    return acc, contract


def _fully_connected(call: Call):
    """mcu_fully_connected_s8: input [rows, depth], filter [out_ch, depth], output [rows, out_ch]."""
    rows, depth, out_ch = call.context["rows"], call.context["accum_depth"], call.context["out_ch"]
    return [
        _read(call.inputs[0], rows * depth, "input"),
        _read(call.inputs[1], out_ch * depth, "weights"),
        _read(call.inputs[2], 4 * out_ch, "bias"),
        _write(call.output, rows * out_ch, "output"),
        *_quant_arrays(call, out_ch),
    ], []


def _pool(call: Call, average: bool = False):
    """mcu_max_pool_s8 / mcu_avg_pool_s8: input within input_dims (no dilation), output [N, OH, OW, C_in];
    mcu_avg_pool_s8 refuses a window with no tap inside the input (its mean is undefined)."""
    win = call.context["window"]
    in_d, out_d = call.in_dims[0], call.out_dims
    contract = []
    if average and in_d[0] > 0 and in_d[3] > 0 and out_d[1] > 0 and out_d[2] > 0:
        for axis, (size, count) in enumerate(((in_d[1], out_d[1]), (in_d[2], out_d[2]))):
            k, st, pad = win.kernel[axis], win.stride[axis], call.pads[axis]
            empty = [o for o in range(count) if not max(0, pad - o * st) < min(k, size - (o * st - pad))]
            if empty:
                contract.append(f"average-pool windows {empty[:4]} along {'HW'[axis]} cover no input")
    return [
        _read(call.inputs[0], _window_extent(in_d, out_d, win.kernel, win.stride, (1, 1), call.pads), "input"),
        _write(call.output, in_d[0] * out_d[1] * out_d[2] * in_d[3], "output"),
    ], contract


def _binary(call: Call):
    """mcu_add_s8 / mcu_mul_s8: each input within its dims (broadcast dims of 1), output dims whole."""
    if call.patched:
        d1, d2, out_d = call.in_dims[0], call.in_dims[1], call.out_dims
    else:
        d1, d2, out_d = call.context["in1_dims"], call.context["in2_dims"], call.context["out_dims"]
    contract = [f"input dims {list(d)} do not broadcast to {list(out_d)}" for d in (d1, d2)
                if any(a not in (b, 1) for a, b in zip(d, out_d))]
    return [_read(call.inputs[0], _prod(d1), "input 1"), _read(call.inputs[1], _prod(d2), "input 2"),
            _write(call.output, _prod(out_d), "output")], contract


def _lut(call: Call):
    """mcu_lut_s8: size elements in and out, a 256-entry table indexed by (uint8)(x + 128); input and
    output dims must hold the same element count."""
    size = _prod(call.in_dims[0])
    contract = [] if _prod(call.out_dims) == size else [
        f"input dims {list(call.in_dims[0])} and output dims {list(call.out_dims)} differ in element count"]
    return [_read(call.inputs[0], size, "input"), _read(_array_pointer(call.node, "table"), 256, "table"),
            _write(call.output, size, "output")], contract


def _softmax(call: Call):
    """mcu_softmax_s8: rows x row_size in and out; row_size >= 1, input left shift in [0, 30], and
    diff_min in [-2^31 / 2^shift, 0] (only differences >= diff_min are scaled by 2^shift)."""
    p = call.context["p"]
    rows, row_size, shift, diff_min = call.context["rows"], call.context["row_size"], p.shift, p.diff_min
    contract = []
    if row_size < 1:
        contract.append(f"rows of {row_size} elements (the kernel reads each row's first element)")
    if not 0 <= shift <= 30 or diff_min > 0 or diff_min * (1 << shift) < -(1 << 31):
        contract.append(f"input left shift {shift} with diff_min {diff_min}: (x - max) * 2^shift could overflow int32")
    n = rows * row_size
    return [_read(call.inputs[0], n, "input"), _write(call.output, n, "output")], contract


def _mean(call: Call):
    """mcu_mean_hw_s8: the whole [N, H, W, C] input, output [N, 1, 1, C]."""
    n, h, w, c = call.in_dims[0]
    contract = [] if tuple(call.out_dims) == (n, 1, 1, c) else [
        f"output dims {list(call.out_dims)} are not [{n}, 1, 1, {c}]"]
    return [_read(call.inputs[0], n * h * w * c, "input"), _write(call.output, n * c, "output")], contract


def _concat(call: Call):
    """mcu_concat_s8 once per input: outer rows of in_row bytes, written at offset in rows of out_row (each
    call checks offset >= 0 and offset + in_row <= out_row; the parts together must fill the row)."""
    outer = call.out_dims[1] * call.out_dims[2] if call.patched else call.context["outer"]
    out_row, acc, offset = call.context["out_row"], [], 0
    for k, part in enumerate(call.context["parts"]):
        acc.append(_read(call.inputs[k], outer * part, f"input {k}"))
        if outer > 0 and part > 0:
            acc.append(Access(call.output, offset, (outer - 1) * out_row + offset + part, True, f"output part {k}"))
        offset += part
    contract = [] if offset == out_row else [f"parts sum to {offset} bytes per row, output rows have {out_row}"]
    return acc, contract


def _pad(call: Call):
    """mcu_pad_s8: fills the whole output, copies the input at ``before``; before + input <= output."""
    if call.patched:
        in_d, out_d, before = call.in_dims[0], call.out_dims, (0, call.pads[0], call.pads[1], 0)
    else:
        in_d, out_d, before = call.context["in_shape"], call.context["out_shape"], call.context["before"]
    contract = [] if all(b >= 0 and b + i <= o for b, i, o in zip(before, in_d, out_d)) else [
        f"input {list(in_d)} at {list(before)} leaves the output {list(out_d)}"]
    return [_read(call.inputs[0], _prod(in_d), "input"), _write(call.output, _prod(out_d), "output")], contract


def _transpose(call: Call):
    """mcu_transpose_s8: every element of input_dims in, the same count out."""
    n = _prod(call.context["in_shape"])
    perm = tuple(call.context["perm"])
    contract = [] if sorted(perm) == [0, 1, 2, 3] else [f"perm {list(perm)} is not a permutation of 4 axes"]
    return [_read(call.inputs[0], n, "input"), _write(call.output, n, "output")], contract


def _resize_nearest(call: Call):
    """mcu_resize_nearest_s8: output pixel (oy, ox) reads input pixel ((oy + offset.h) / scale.h,
    (ox + offset.w) / scale.w); offset = -padding (a patch starting inside a replicated block); N and C
    equal; the last output row / column must read inside the input dims."""
    (sh, sw), (off_h, off_w) = call.context["scale"], (-call.pads[0], -call.pads[1])
    in_d, out_d = call.in_dims[0], call.out_dims
    n, h, w, c = in_d
    _, oh, ow, _ = out_d
    contract = []
    if sh < 1 or sw < 1 or off_h < 0 or off_w < 0:
        contract.append(f"scale {[sh, sw]} (>= 1) and offset {[off_h, off_w]} (>= 0)")
    if out_d[0] != n or out_d[3] != c or oh < 0 or ow < 0:
        contract.append(f"output dims {list(out_d)} do not match input {list(in_d)} in N, C")
    empty = min(n, c, oh, ow) <= 0
    if not contract and not empty:
        last_y, last_x = (oh - 1 + off_h) // sh, (ow - 1 + off_w) // sw
        if last_y >= h or last_x >= w:
            contract.append(f"output {oh}x{ow} at offset {[off_h, off_w]} x{[sh, sw]} reads input row {last_y}, "
                            f"column {last_x} of {h}x{w}")
    extent = 0
    if not contract and not empty:
        extent = (((n - 1) * h + (oh - 1 + off_h) // sh) * w + (ow - 1 + off_w) // sw + 1) * c
    return [_read(call.inputs[0], extent, "input"),
            _write(call.output, max(0, n * oh * ow * c) if not contract else 0, "output")], contract


def _prelu(call: Call):
    """mcu_prelu_s8: input and output dims equal (size elements each), alpha_len slopes (C or 1)."""
    in_d, out_d, alpha_len = call.in_dims[0], call.out_dims, call.context["alpha_len"]
    contract = []
    if tuple(in_d) != tuple(out_d):
        contract.append(f"input dims {list(in_d)} and output dims {list(out_d)} differ")
    if alpha_len not in (1, in_d[3]):
        contract.append(f"{alpha_len} slopes for {in_d[3]} channels")
    return [_read(call.inputs[0], _prod(in_d), "input"), _read(call.inputs[1], alpha_len, "slopes"),
            _write(call.output, _prod(out_d), "output")], contract


def _pack(call: Call, packed_output: bool):
    """mcu_pack_s8 / mcu_unpack_s8: input and output dims equal (element dims), bits 4 or 2; the int8 side
    is C bytes per pixel, the packed side pixel_bytes(C, bits) (padded to a whole byte)."""
    in_d, out_d, bits = call.in_dims[0], call.out_dims, call.context["p"].bits
    contract = []
    if tuple(in_d) != tuple(out_d):
        contract.append(f"input dims {list(in_d)} and output dims {list(out_d)} differ")
    if bits not in PACKED_BITS:
        contract.append(f"{bits} bits (the kernels pack 4 or 2)")
        return [], contract
    pixels = _prod(in_d[:3])
    wide, packed = pixels * in_d[3], pixels * pixel_bytes(in_d[3], bits)
    read, written = (wide, packed) if packed_output else (packed, wide)
    return [_read(call.inputs[0], read, "input"), _write(call.output, written, "output")], contract


#: kernel template -> its access pattern (one entry per C kernel the templates call)
KERNEL_ACCESS: dict[str, Callable[[Call], tuple[list[Access], list[str]]]] = {
    "conv.c.j2": _conv,
    "depthwise_conv.c.j2": _depthwise,
    "fully_connected.c.j2": _fully_connected,
    "max_pool.c.j2": _pool,
    "avg_pool.c.j2": lambda call: _pool(call, average=True),
    "add.c.j2": _binary,
    "mul.c.j2": _binary,
    "lut.c.j2": _lut,
    "softmax.c.j2": _softmax,
    "mean.c.j2": _mean,
    "concat.c.j2": _concat,
    "pad.c.j2": _pad,
    "transpose.c.j2": _transpose,
    "resize_nearest.c.j2": _resize_nearest,
    "prelu.c.j2": _prelu,
    "pack.c.j2": lambda call: _pack(call, packed_output=True),
    "unpack.c.j2": lambda call: _pack(call, packed_output=False),
}


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
    return Step(index, label, (Access(src, lo, hi, False, "region source"), _write(dst, h * w * src_dims[3], "region")),
                tuple(_region_contract(label, src_dims, top, left, h, w)))


def paste_region_step(index: int, label: str, src: str, h: int, w: int, dst_dims: Dims, top: int, left: int,
                      dst: str) -> Step:
    """mcu_paste_region_s8: reads [h, w, C] from ``src``, writes the region of ``dst``."""
    lo, hi = _region_rows(dst_dims, top, left, h, w)
    return Step(index, label, (_read(src, h * w * dst_dims[3], "patch"), Access(dst, lo, hi, True, "region")),
                tuple(_region_contract(label, dst_dims, top, left, h, w)))


def _activations(graph: Graph, node: Node) -> list[str]:
    return [i for i in node.inputs if i and not graph.tensors[i].is_const]


def _pointer(graph: Graph, name: str, in_stage: bool) -> str:
    if graph.tensors[name].is_const:
        return const_pointer(name)
    return region_buffer(name) if in_stage else name


def _layer_step(graph: Graph, node: Node, index: int, label: str, in_stage: bool, dims, pads,
                replaced: dict[int, str] | None = None) -> Step:
    call_def = op_def(node).kernel(node, graph)
    access = KERNEL_ACCESS.get(call_def.template)
    if access is None:
        raise PlanSafetyError(f"{label}: no access pattern known for kernel template '{call_def.template}'; "
                              "document it in mcucompile.schedule.safety.KERNEL_ACCESS")
    pointers = [None if not i else _pointer(graph, i, in_stage and i in dims.stage) for i in node.inputs]
    for slot, p in (replaced or {}).items():
        pointers[slot] = p
    scratch = scratch_buffer(node) if op_def(node).scratch_bytes(node, graph) else None
    out = node.outputs[0]
    call = Call(node, graph, call_def.context, tuple(pointers),
                region_buffer(out) if in_stage else out, dims.ins, dims.out, pads, in_stage, scratch)
    accesses, contract = access(call)
    return Step(index, label, tuple(accesses), tuple(contract))


@dataclass(frozen=True)
class _Dims:
    ins: tuple[Dims, ...]
    out: Dims
    stage: frozenset = frozenset()


def _layer_label(k: int, node: Node, patch_index: int | None = None) -> str:
    where = f"patch {patch_index}: " if patch_index is not None else ""
    return f"{where}layer {k} '{node.name}' ({node.op})"


def plan_steps(graph: Graph, plan: ArenaPlan, patch=None) -> list[Step]:
    """Every kernel call of the generated code, in order, with the bytes it reads and writes.

    Parameters
    ----------
    graph : the quantized graph.
    plan : its arena plan (layer by layer, or patched for ``patch``).
    patch : the PatchPlan the first stage runs with, or None.
    """
    steps: list[Step] = []
    k = patch.stage_len if patch is not None else 0
    layer = 0  # the generated code's layer number: alias nodes run no kernel and take none
    first_rest_step = k + 2 if patch is not None else 0
    if patch is not None:
        steps += _patch_steps(graph, plan, patch)
        layer = sum(1 for n in graph.nodes[:k] if not op_def(n).alias)
    for j, node in enumerate(graph.nodes[k:]):
        if op_def(node).alias:
            continue
        dims = _Dims(tuple(as_nhwc(tuple(graph.tensors[i].shape)) for i in _activations(graph, node)),
                     as_nhwc(tuple(graph.tensors[node.outputs[0]].shape)))
        win = getattr(node.attrs, "window", None)
        pads = (win.pads[0], win.pads[1]) if win is not None else (0, 0)
        steps.append(_layer_step(graph, node, first_rest_step + j, _layer_label(layer, node), False, dims, pads))
        layer += 1
    return steps


def _patch_steps(graph: Graph, plan: ArenaPlan, patch) -> list[Step]:
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
                              (_write(region_buffer(inp), r.h * r.w * in_shape[3], "input patch"),)))
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
                                     _Dims(ins, out_d, stage_tensors), pads, replaced))
            layer += 1
        ro = regs[split]
        steps.append(paste_region_step(k + 1, f"patch {p}: paste into '{split}'", region_buffer(split), ro.h, ro.w,
                                       split_shape, ro.top, ro.left, split))
    return steps


def _buffers(plan: ArenaPlan) -> dict[str, Buffer]:
    return {b.name: b for b in plan.buffers}


def _constant_sizes(graph: Graph) -> dict[str, int]:
    """Bytes of every constant the generated code holds: tensors and each layer's context arrays."""
    # what the generated array holds (its data, packed for 4/2-bit tensors), not what the shape promises
    sizes = {const_pointer(n): (pack(t.data, t.bits) if t.packed else t.data).size * C_SIZES[t.dtype]
             for n, t in graph.tensors.items() if t.is_const}
    for node in graph.nodes:
        if op_def(node).alias:
            continue
        for key, value in op_def(node).kernel(node, graph).context.items():
            if isinstance(value, np.ndarray):
                sizes[_array_pointer(node, key)] = value.size * c_array_type(value)[1]
    return sizes


def check_plan_memory(graph: Graph, plan: ArenaPlan, patch=None) -> None:
    """Check that every kernel call of the plan stays inside its buffers, the arena and its constants.

    Parameters
    ----------
    graph : the quantized graph.
    plan : its arena plan (layer by layer, or patched for ``patch``).
    patch : the PatchPlan, or None for layer-by-layer execution.

    Raises
    ------
    PlanSafetyError
        Naming the step, the buffer and the bytes: a compiler bug (the plan, not the user's model).
    """
    problems = plan_problems(graph, plan, patch)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise PlanSafetyError(f"unsafe memory plan: {problems[0]}{more}")


def plan_problems(graph: Graph, plan: ArenaPlan, patch=None) -> list[str]:
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
    constants = _constant_sizes(graph)
    for step in plan_steps(graph, plan, patch):
        problems += [f"{step.label}: {c} (the kernel would return MCU_ARG_ERROR)" for c in step.contract]
        for a in step.accesses:
            problems += _access_problems(step, a, plan, buffers, constants)
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
