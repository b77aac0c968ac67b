"""Arm CMSIS-NN as a kernel backend (``--kernels cmsis-nn``): its kernels, scratch formulas and call builders.

Under ``--kernels cmsis-nn`` each op's ``kernel()`` first asks its call builder here (``conv_call``,
``depthwise_call``, ``fully_connected_call``, ``pool_call``, ``add_call``, ``mul_call``, ``softmax_call``).
A builder returns the CMSIS-NN call when CMSIS-NN computes the layer bit-exactly, else the op's own kernel
(what ``--kernels auto`` takes: the fastest mcucompile has for the core) with the reason CMSIS-NN does not
run it in ``KernelCall.reason``. The op modules keep the decision; this module only knows CMSIS-NN.

CMSIS-NN implements TFLite's integer semantics with double rounding (``arm_nn_requantize``). Its single
rounding (``CMSIS_NN_USE_SINGLE_ROUNDING``) is a build-wide switch of the library that we do not set, so a
graph with ``--rounding single`` keeps our kernels, with that reason.

Scratch: the planner needs each call's scratch at compile time, so the ``*_get_buffer_size`` formulas of
CMSIS-NN v7.0.0 are mirrored here for the three builds that differ (``mve``: Cortex-M55, ``dsp``:
Cortex-M4/M7/M33, ``none``: M0+ and the host), with gcc's values where CMSIS-NN's differ by compiler.
The generated C asks the library's own ``*_get_buffer_size`` at run time and returns ``MCU_ARG_ERROR``
when it exceeds the planned size, so another CMSIS-NN version cannot silently overrun the arena.

Patch-based inference: CMSIS-NN takes no negative padding and no input row stride. In a patch, a start
offset in H is a pointer offset (rows skipped, input height reduced); a start offset in W is a pointer
offset too when every tap of the patch stays left of the row's end, else (and for the 1x1 fast and 1xN
paths, which read the whole input width) that patch runs our portable kernel on the same weights: the
generated code decides per patch from the patch table.

On MVE, ``arm_fully_connected_s8`` reads the kernel sums (bias + input offset x sum of each filter row) from
``ctx.buf``: TFLite Micro computes them once in Prepare with ``arm_vector_sum_s8``; we compute them at
compile time and emit them as a const array (so our CMSIS-NN backend costs what TFLite Micro + CMSIS-NN costs
per ``Invoke()``). TFLite Micro's cmsis_nn conv and depthwise kernels compute no sums in Prepare.

Costs: fitted on qemu-m4 (CMSIS-NN's DSP build) on the MLPerf Tiny int8 models layer by layer, per-call terms by
hand (see the note on each); the patch search only compares plans with them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from ..ir import Graph, Node
from .kernel import (Kernel, KernelArgs, KernelCall, KernelCost, base_counts, prod, quant_arrays, read,
                     whole_outputs_counts, window_extent, window_taps, write)
from .spatial import as_nhwc

#: the CMSIS-NN release the generated projects pin and these formulas mirror
CMSIS_NN_VERSION = "v7.0.0"
CMSIS_NN_URL = "https://github.com/ARM-software/CMSIS-NN"
HEADER = "arm_nnfunctions.h"

#: what a build compiles of CMSIS-NN (relative to its Source/): every int8 function (the wrappers call across
#: families: depthwise-as-conv on MVE transposes) and the support functions, without the float ones; the
#: Makefile, the host build and the PlatformIO script use these and link them as an archive (some objects,
#: e.g. the int8 LSTM's, call int16 functions not built: the link takes only what the model calls)
SOURCE_GLOBS = ("*/*_s8*.c", "NNSupportFunctions/*.c")
EXCLUDED_SUFFIXES = ("_f16.c", "_f32.c", "_flt.c")


def library_sources(root) -> list:
    """The CMSIS-NN sources a build of the generated library needs, under checkout ``root`` (a Path)."""
    found = {p for pattern in SOURCE_GLOBS for p in (root / "Source").glob(pattern)}
    return sorted(p for p in found if not p.name.endswith(EXCLUDED_SUFFIXES))


# Include/arm_nnsupportfunctions.h (gcc): depthwise channel block on MVE, depthwise-as-conv threshold
CH_IN_BLOCK_MVE = 124
CONVERT_DW_CONV_WITH_ONE_INPUT_CH_AND_OUTPUT_CH_ABOVE_THRESHOLD = 1


def core_of(target) -> str:
    """Which CMSIS-NN build the target's core compiles: "mve" (ARM_MATH_MVEI), "dsp" (ARM_MATH_DSP) or
    "none" (the generic C paths: Cortex-M0+ and the host)."""
    board = target.board
    if board is None:
        return "none"
    if board.mve:
        return "mve"
    return "dsp" if board.dsp else "none"


# --- *_get_buffer_size, as CMSIS-NN v7.0.0 computes them (Source/*/arm_*_get_buffer_sizes_s8.c) -------------

def _k4(n: int) -> int:
    return n + (4 - n % 4) % 4


def _is_conv_1x1(pads, kernel, dilation) -> bool:
    return pads == (0, 0) and tuple(kernel) == (1, 1) and tuple(dilation) == (1, 1)


def _is_conv_1_x_n(in_h: int, c_in: int, kernel, stride, dilation) -> bool:
    return in_h == 1 and dilation[1] == 1 and kernel[0] == 1 and (stride[1] * c_in) % 4 == 0


def conv_s8_buffer_size(core: str, kh: int, kw: int, c_in: int) -> int:
    """arm_convolve_s8_get_buffer_size: the im2col columns (two int16 ones on DSP / none, four 16-padded
    int8 ones on MVE)."""
    k = kh * kw * c_in
    if core == "mve":
        return 4 * ((k + 15) // 16) * 16
    return 2 * _k4(k) * 2


def _conv_1_x_n_mve(pad_w: int, stride_w: int, kw: int, c_in: int, in_w: int, out_w: int, kh: int) -> int:
    total_pad = (out_w - 1) * stride_w + kw - in_w
    asym = total_pad % 2
    right = max(1, (pad_w + asym + stride_w - 1) // stride_w) if pad_w + asym != 0 else 0
    left = max(1, (pad_w + stride_w - 1) // stride_w) if pad_w != 0 else 0
    if right + max(out_w - (right + left), 0) + left != out_w:
        return conv_s8_buffer_size("mve", kh, kw, c_in)
    pad_left, pad_right = pad_w * c_in, (right * c_in if asym else pad_w * c_in)
    left_elems = kw * c_in
    return max(left_elems + pad_left, left_elems - c_in + pad_right)


def _one_row_is_1_x_n(win, c_in: int) -> bool:
    """Whether a region of one row takes arm_convolve_1_x_n_s8 (which reads the whole input width)."""
    return (not _is_conv_1x1((0, 0), win.kernel, win.dilation)
            and _is_conv_1_x_n(1, c_in, win.kernel, win.stride, win.dilation))


def conv_wrapper_path(pads: tuple[int, int], stride, dilation, in_d, filt) -> str:
    """The function arm_convolve_wrapper_s8 dispatches to for these parameters (whole layer)."""
    if _is_conv_1x1(pads, filt[1:3], dilation):
        return "arm_convolve_1x1_s8_fast" if tuple(stride) == (1, 1) else "arm_convolve_1x1_s8"
    if _is_conv_1_x_n(in_d[1], in_d[3], filt[1:3], stride, dilation):
        return "arm_convolve_1_x_n_s8"
    return "arm_convolve_s8"


def conv_wrapper_buffer_size(core: str, pads: tuple[int, int], stride, dilation, in_d, filt, out_d) -> int:
    """arm_convolve_wrapper_s8_get_buffer_size for ``pads`` (top, left), input / output dims NHWC and filter
    [C_out, KH, KW, C_in]. gcc: the DSP 1x1 fast path needs no buffer (only Arm Compiler 6 uses one)."""
    _, kh, kw, c_in = filt
    if _is_conv_1x1(pads, (kh, kw), dilation):
        return 0
    if _is_conv_1_x_n(in_d[1], c_in, (kh, kw), stride, dilation) and core == "mve":
        return _conv_1_x_n_mve(pads[1], stride[1], kw, c_in, in_d[2], out_d[2], kh)
    return conv_s8_buffer_size(core, kh, kw, c_in)


def depthwise_wrapper_buffer_size(core: str, pads: tuple[int, int], stride, dilation, in_d, filt_hwc, out_d) -> int:
    """arm_depthwise_conv_wrapper_s8_get_buffer_size for input / output NHWC and filter [KH, KW, C_out]."""
    kh, kw, c_out = filt_hwc
    c_in = in_d[3]
    if core == "mve" and c_in == 1 and c_out > CONVERT_DW_CONV_WITH_ONE_INPUT_CH_AND_OUTPUT_CH_ABOVE_THRESHOLD:
        # arm_depthwise_conv_to_conv_s8: a conv of the filter reordered into the buffer
        return conv_wrapper_buffer_size("mve", pads, stride, dilation, in_d, (c_out, kh, kw, 1), out_d) + kh * kw * c_out
    if c_in == c_out and in_d[0] == 1 and tuple(dilation) == (1, 1):
        if core != "mve" and (kh, kw) == (3, 3) and pads[0] <= 1 and pads[1] <= 1:
            return 0
        if core == "mve":
            return 4 * CH_IN_BLOCK_MVE * kw * kh
        if core == "dsp":
            return c_in * kw * kh * 2
    return 0


def fully_connected_buffer_size(core: str, out_ch: int) -> int:
    """arm_fully_connected_s8_get_buffer_size: the kernel sums on MVE (we pass a const array there)."""
    return 4 * out_ch if core == "mve" else 0


def avgpool_buffer_size(core: str, c: int) -> int:
    """arm_avgpool_s8_get_buffer_size: one int32 sum per channel on DSP."""
    return 4 * c if core == "dsp" else 0


# --- why CMSIS-NN does not run a layer ---------------------------------------------------------------------

def _common_problem(node: Node, graph: Graph) -> str | None:
    if graph.rounding != "double":
        return ("--rounding single: CMSIS-NN is built with TFLite's double rounding (its CMSIS_NN_USE_SINGLE_ROUNDING "
                "is a build-wide switch not used here)")
    for name in [i for i in node.inputs if i and not graph.tensors[i].is_const] + list(node.outputs):
        t = graph.tensors[name]
        bits = t.quant.bits if t.quant is not None else 8
        if bits != 8 or t.packed or t.dtype != "int8":
            return f"'{name}' is a {bits}-bit {t.dtype} map: CMSIS-NN's s8 kernels take int8 maps"
    return None


def _fallback(auto: Callable[[], KernelCall], why: str) -> KernelCall:
    """The op's own kernel (the ``auto`` choice) with the reason CMSIS-NN does not run the layer first."""
    call = auto()
    reason = f"CMSIS-NN: {why}" + (f"; {call.reason}" if call.reason else "")
    return dataclasses.replace(call, reason=reason)


# --- access patterns (CMSIS-NN's documented arguments) and costs ----------------------------------------------

def _scratch_access(args: KernelArgs, acc: list, contract: list, need: int) -> None:
    if need and (args.scratch is None or args.scratch_bytes < need):
        contract.append(f"scratch of {args.scratch_bytes} B passed, the call needs {need} B")
    if args.scratch is not None and need:
        acc.append(write(args.scratch, need, "scratch"))


def _conv_access(args: KernelArgs):
    """arm_convolve_wrapper_s8 (or, in a patch CMSIS-NN cannot take, mcu_conv_s8 on the same arrays): input
    within input_dims, filter [C_out, KH, KW, C_in], bias and multiplier / shift C_out entries, the planned
    scratch, output [N, OH, OW, C_out]."""
    win = args.context["window"]
    filt = args.graph.tensors[args.node.inputs[1]].shape
    in_d, out_d = args.in_dims[0], args.out_dims
    cout = out_d[3]
    contract = []
    if len(filt) != 4 or filt[3] != in_d[3] or filt[0] != cout:
        contract.append(f"filter {list(filt)} does not fit input {list(in_d)} / output {list(out_d)} (groups 1)")
    acc = [
        read(args.inputs[0], window_extent(in_d, out_d, win.kernel, win.stride, win.dilation, args.pads), "input"),
        read(args.inputs[1], prod(filt), "weights"),
        read(args.inputs[2], 4 * cout, "bias"),
        write(args.output, in_d[0] * out_d[1] * out_d[2] * cout, "output"),
        *quant_arrays(args, cout),
    ]
    _scratch_access(args, acc, contract, args.context["scratch"])
    return acc, contract


def _depthwise_access(args: KernelArgs):
    """arm_depthwise_conv_wrapper_s8 (or mcu_dwconv_s8 in a patch CMSIS-NN cannot take): input within
    input_dims, filter [1, KH, KW, C_out], bias and multiplier / shift C_out entries, the planned scratch."""
    win, mult = args.context["window"], args.context["ch_mult"]
    filt = args.graph.tensors[args.node.inputs[1]].shape
    in_d, out_d = args.in_dims[0], args.out_dims
    cout = out_d[3]
    contract = []
    if mult < 1 or in_d[3] * mult != cout or filt[-1] != cout:
        contract.append(f"channels: input {in_d[3]} x multiplier {mult} != output {cout} (filter {list(filt)})")
    acc = [
        read(args.inputs[0], window_extent(in_d, out_d, win.kernel, win.stride, win.dilation, args.pads), "input"),
        read(args.inputs[1], prod(filt), "weights"),
        read(args.inputs[2], 4 * cout, "bias"),
        write(args.output, in_d[0] * out_d[1] * out_d[2] * cout, "output"),
        *quant_arrays(args, cout),
    ]
    _scratch_access(args, acc, contract, args.context["scratch"])
    return acc, contract


def _fc_access(args: KernelArgs):
    """arm_fully_connected_s8 / _per_channel_s8: input [rows, depth], filter [out_ch, depth], bias out_ch, the
    multiplier / shift arrays when per channel, the kernel sums (MVE) out_ch entries, output [rows, out_ch]."""
    c = args.context
    rows, depth, out_ch = c["rows"], c["accum_depth"], c["out_ch"]
    acc = [
        read(args.inputs[0], rows * depth, "input"),
        read(args.inputs[1], out_ch * depth, "weights"),
        read(args.inputs[2], 4 * out_ch, "bias"),
        write(args.output, rows * out_ch, "output"),
    ]
    if c["per_channel"]:
        acc += quant_arrays(args, out_ch)
    if "kernel_sums" in c:
        acc.append(read(args.array("kernel_sums"), 4 * out_ch, "kernel sums"))
    return acc, []


def _pool_access(args: KernelArgs):
    """arm_max_pool_s8 / arm_avgpool_s8 (or mcu_*_pool_s8 in a patch CMSIS-NN cannot take): input within
    input_dims, output [N, OH, OW, C], the planned scratch (avgpool on DSP: C int32 sums)."""
    win = args.context["window"]
    in_d, out_d = args.in_dims[0], args.out_dims
    acc = [read(args.inputs[0], window_extent(in_d, out_d, win.kernel, win.stride, (1, 1), args.pads), "input"),
           write(args.output, in_d[0] * out_d[1] * out_d[2] * in_d[3], "output")]
    contract: list[str] = []
    _scratch_access(args, acc, contract, args.context["scratch"])
    return acc, contract


def _elementwise_access(args: KernelArgs):
    """arm_elementwise_add_s8 / mul_s8: two inputs and the output of block_size elements each (no broadcast)."""
    if args.patched:
        d1, d2, out_d = args.in_dims[0], args.in_dims[1], args.out_dims
    else:
        d1, d2, out_d = args.context["in1_dims"], args.context["in2_dims"], args.context["out_dims"]
    contract = [f"input dims {list(d)} differ from the output's {list(out_d)} (CMSIS-NN does not broadcast)"
                for d in (d1, d2) if tuple(d) != tuple(out_d)]
    return [read(args.inputs[0], prod(d1), "input 1"), read(args.inputs[1], prod(d2), "input 2"),
            write(args.output, prod(out_d), "output")], contract


def _softmax_access(args: KernelArgs):
    """arm_softmax_s8: rows x row_size in and out."""
    n = args.context["rows"] * args.context["row_size"]
    return [read(args.inputs[0], n, "input"), write(args.output, n, "output")], []


def _conv_counts(node, graph, g):
    """Per pixel, output and MAC; the im2col paths also widen each pixel's window (KH * KW * C_in elements)."""
    f = base_counts(node, graph, g)
    c_out, kh, kw, c_in = graph.tensors[node.inputs[1]].shape
    pixels = float(g.out_h * g.out_w)
    f["pixels"] = pixels
    f["macs"] = pixels * c_out * kh * kw * c_in
    f["im2col"] = 0.0 if (kh, kw) == (1, 1) else pixels * kh * kw * c_in
    return f


def _depthwise_counts(node, graph, g):
    f = base_counts(node, graph, g)
    kh, kw, c = graph.tensors[node.inputs[1]].shape
    pixels = float(g.out_h * g.out_w)
    f["pixels"] = pixels
    f["macs"] = pixels * kh * kw * c
    return f


def _fc_counts(node, graph, g):
    f = base_counts(node, graph, g)
    out = graph.tensors[node.outputs[0]].size
    f["outputs"] = float(out)
    f["macs"] = float(out * graph.tensors[node.inputs[1]].shape[1])
    return f


def _pool_counts(node, graph, g):
    f = base_counts(node, graph, g)
    rows_v, cols_v = window_taps(node, g)
    f["taps"] = float(rows_v * cols_v * graph.tensors[node.outputs[0]].shape[-1])
    return f


def _softmax_counts(node, graph, g):
    f = base_counts(node, graph, g)
    f["outputs"] = float(graph.tensors[node.outputs[0]].size)
    return f


#: fitted on qemu-m4 (the DSP build of CMSIS-NN v7.0.0-43) on every CMSIS-NN layer of the four MLPerf Tiny int8
#: models layer by layer (NNLS, relative error): conv 28 layers, total within 1.4%, each within 23%; depthwise 17,
#: within 0.5% / 9%; FC 13, within 4% / 10%; avg pool, add, softmax 3 each. 'calls' set by hand (400: struct set-up,
#: the wrapper's dispatch and the scratch check; whole layers cannot separate it). Max pool and mul by hand (no
#: such layer in those models). Not refitted on qemu-m55, where the MVE build costs 3-5x fewer per MAC: the patch
#: search only compares plans with these
_NOTE = ("fitted on qemu-m4 (CMSIS-NN v7.0.0-43, DSP build; MLPerf int8 models layer by layer); 'calls' by hand; "
         "max pool and mul by hand; not refitted for MVE")
CONV = Kernel("cmsis_conv.c.j2", _conv_access, KernelCost(
    ("calls", "pixels", "outputs", "im2col", "macs"),
    {"calls": 400.0, "pixels": 194.6, "outputs": 35.4, "im2col": 10.56, "macs": 1.562}, _conv_counts, note=_NOTE),
    fast=True, header=HEADER)
DEPTHWISE_CONV = Kernel("cmsis_depthwise_conv.c.j2", _depthwise_access, KernelCost(
    ("calls", "pixels", "outputs", "macs"), {"calls": 400.0, "pixels": 122.9, "outputs": 0.0, "macs": 7.454},
    _depthwise_counts, note=_NOTE), fast=True, header=HEADER)
FULLY_CONNECTED = Kernel("cmsis_fully_connected.c.j2", _fc_access, KernelCost(
    ("calls", "outputs", "macs"), {"calls": 400.0, "outputs": 47.37, "macs": 1.787}, _fc_counts, note=_NOTE),
    fast=True, header=HEADER)
MAX_POOL = Kernel("cmsis_max_pool.c.j2", _pool_access, KernelCost(
    ("calls", "outputs", "taps"), {"calls": 400.0, "outputs": 11.0, "taps": 4.0}, _pool_counts, note=_NOTE),
    fast=True, header=HEADER)
AVG_POOL = Kernel("cmsis_avg_pool.c.j2", _pool_access, KernelCost(
    ("calls", "outputs", "taps"), {"calls": 400.0, "outputs": 11.21, "taps": 6.202}, _pool_counts, note=_NOTE),
    fast=True, header=HEADER)
ADD = Kernel("cmsis_add.c.j2", _elementwise_access, KernelCost(
    ("calls", "outputs"), {"calls": 400.0, "outputs": 81.54}, whole_outputs_counts, note=_NOTE),
    fast=True, header=HEADER)
MUL = Kernel("cmsis_mul.c.j2", _elementwise_access, KernelCost(
    ("calls", "outputs"), {"calls": 400.0, "outputs": 60.0}, whole_outputs_counts, note=_NOTE),
    fast=True, header=HEADER)
SOFTMAX = Kernel("cmsis_softmax.c.j2", _softmax_access, KernelCost(
    ("calls", "outputs"), {"calls": 400.0, "outputs": 256.0}, _softmax_counts, note=_NOTE),
    fast=True, header=HEADER)


# --- call builders: one per op family -------------------------------------------------------------------------

def _window_pads(node: Node) -> tuple[int, int]:
    return int(node.attrs.window.pads[0]), int(node.attrs.window.pads[1])


def conv_call(node: Node, graph: Graph, target, ctx: dict, auto: Callable[[], KernelCall]) -> KernelCall:
    """arm_convolve_wrapper_s8 for a conv2d layer (``ctx``: the op's template values), else ``auto()`` with
    the reason."""
    why = _common_problem(node, graph)
    if why is None and node.attrs.groups != 1:
        why = f"grouped convolution ({node.attrs.groups} groups): arm_convolve_wrapper_s8 takes groups 1"
    if why is not None:
        return _fallback(auto, why)
    win = node.attrs.window
    filt = tuple(graph.tensors[node.inputs[1]].shape)
    x, y = as_nhwc(graph.tensors[node.inputs[0]].shape), as_nhwc(graph.tensors[node.outputs[0]].shape)
    core = core_of(target)
    scratch = conv_wrapper_buffer_size(core, _window_pads(node), win.stride, win.dilation, x, filt, y)
    if not _is_conv_1x1(_window_pads(node), win.kernel, win.dilation):
        # a patch may take another path of the wrapper (pads shrink, 1xN at a height-1 region): the largest
        scratch = max(scratch, conv_s8_buffer_size(core, filt[1], filt[2], filt[3]))
    ctx = dict(ctx, scratch=scratch, path=conv_wrapper_path(_window_pads(node), win.stride, win.dilation, x, filt),
               filter=filt, eff=tuple((k - 1) * d + 1 for k, d in zip(win.kernel, win.dilation)),
               one_row=_one_row_is_1_x_n(win, filt[3]))
    return CONV.call(ctx, scratch_bytes=scratch)


def depthwise_call(node: Node, graph: Graph, target, ctx: dict, auto: Callable[[], KernelCall]) -> KernelCall:
    """arm_depthwise_conv_wrapper_s8 for a depthwise layer, else ``auto()`` with the reason."""
    why = _common_problem(node, graph)
    if why is not None:
        return _fallback(auto, why)
    win = node.attrs.window
    filt = tuple(graph.tensors[node.inputs[1]].shape)
    x, y = as_nhwc(graph.tensors[node.inputs[0]].shape), as_nhwc(graph.tensors[node.outputs[0]].shape)
    if len(graph.tensors[node.inputs[0]].shape) != 4:
        return _fallback(auto, "a depthwise convolution over a map that is not 4-D")
    core = core_of(target)
    scratch = depthwise_wrapper_buffer_size(core, _window_pads(node), win.stride, win.dilation, x, filt, y)
    # a patch CMSIS-NN cannot take runs mcu_dwconv_s8: one int32 per channel
    scratch = max(scratch, 4 * filt[-1])
    # on MVE a depthwise layer of one input channel runs as a convolution (arm_depthwise_conv_to_conv_s8): in a
    # patch, the conv wrapper's whole-width paths apply
    as_conv = core == "mve" and x[3] == 1 and filt[-1] > CONVERT_DW_CONV_WITH_ONE_INPUT_CH_AND_OUTPUT_CH_ABOVE_THRESHOLD
    ctx = dict(ctx, scratch=scratch, eff=tuple((k - 1) * d + 1 for k, d in zip(win.kernel, win.dilation)),
               as_conv_1x1=as_conv and _is_conv_1x1(_window_pads(node), win.kernel, win.dilation)
               and tuple(win.stride) == (1, 1), one_row=as_conv and _one_row_is_1_x_n(win, 1))
    return DEPTHWISE_CONV.call(ctx, scratch_bytes=scratch)


def fully_connected_call(node: Node, graph: Graph, target, ctx: dict, auto: Callable[[], KernelCall]) -> KernelCall:
    """arm_fully_connected_s8 (one multiplier) or arm_fully_connected_per_channel_s8, with the kernel sums
    precomputed on MVE; else ``auto()`` with the reason."""
    why = _common_problem(node, graph)
    if why is not None:
        return _fallback(auto, why)
    mult, shift = np.asarray(ctx["multiplier"]), np.asarray(ctx["shift"])
    per_channel = not (np.all(mult == mult.flat[0]) and np.all(shift == shift.flat[0]))
    ctx = dict(ctx, per_channel=per_channel, mult0=int(mult.flat[0]), shift0=int(shift.flat[0]))
    if core_of(target) == "mve":
        w = graph.tensors[node.inputs[1]].data.astype(np.int64)
        bias = (graph.tensors[node.inputs[2]].data.astype(np.int64) if len(node.inputs) > 2 and node.inputs[2]
                else np.zeros(w.shape[0], np.int64))
        # arm_vector_sum_s8(sums, depth, out_ch, w, input_offset, 0, bias), int32 arithmetic as in C
        sums = bias + w.sum(axis=1) * int(ctx["input_offset"])
        ctx["kernel_sums"] = ((sums + 2**31) % 2**32 - 2**31).astype(np.int32)
    return FULLY_CONNECTED.call(ctx)


def pool_call(node: Node, graph: Graph, target, ctx: dict, average: bool,
              auto: Callable[[], KernelCall]) -> KernelCall:
    """arm_max_pool_s8 / arm_avgpool_s8, else ``auto()`` with the reason."""
    why = _common_problem(node, graph)
    if why is not None:
        return _fallback(auto, why)
    c = as_nhwc(graph.tensors[node.inputs[0]].shape)[3]
    scratch = avgpool_buffer_size(core_of(target), c) if average else 0
    ctx = dict(ctx, scratch=scratch)
    return (AVG_POOL if average else MAX_POOL).call(ctx, scratch_bytes=scratch)


def _elementwise_problem(node: Node, graph: Graph, ctx: dict, fn: str) -> str | None:
    why = _common_problem(node, graph)
    if why is None and not ctx["in1_dims"] == ctx["in2_dims"] == ctx["out_dims"]:
        why = f"an operand is broadcast: {fn} takes two inputs of the output's size"
    return why


def add_call(node: Node, graph: Graph, target, ctx: dict, auto: Callable[[], KernelCall]) -> KernelCall:
    """arm_elementwise_add_s8 for an add without broadcasting, else ``auto()`` with the reason."""
    why = _elementwise_problem(node, graph, ctx, "arm_elementwise_add_s8")
    return _fallback(auto, why) if why is not None else ADD.call(ctx)


def mul_call(node: Node, graph: Graph, target, ctx: dict, auto: Callable[[], KernelCall]) -> KernelCall:
    """arm_elementwise_mul_s8 for a mul without broadcasting, else ``auto()`` with the reason."""
    why = _elementwise_problem(node, graph, ctx, "arm_elementwise_mul_s8")
    return _fallback(auto, why) if why is not None else MUL.call(ctx)


def softmax_call(node: Node, graph: Graph, target, ctx: dict, auto: Callable[[], KernelCall]) -> KernelCall:
    """arm_softmax_s8, else ``auto()`` with the reason."""
    why = _common_problem(node, graph)
    return _fallback(auto, why) if why is not None else SOFTMAX.call(ctx)


def no_kernel_reason(op: str) -> str:
    """The reason for an op CMSIS-NN has no s8 kernel for (concat, pad, mean, lookup tables, ...)."""
    return f"CMSIS-NN has no kernel for {op} here"


def uses_cmsis_nn(calls) -> bool:
    """Whether any of the kernel calls is a CMSIS-NN one (the build then needs CMSIS_NN_DIR)."""
    return any(c.kernel is not None and c.kernel.header == HEADER for c in calls)
