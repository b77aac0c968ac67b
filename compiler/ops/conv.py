"""Convolutions: standard / grouped (``conv2d``) and depthwise (``depthwise_conv2d``), NHWC.

Weights: conv2d [Cout, KH, KW, Cin/groups]; depthwise [KH, KW, Cout] with Cout = Cin * multiplier.
Quantized: symmetric per-channel int8 weights, int32 bias, per-channel multiplier/shift, TFLite rounding;
activations at their own bitwidth (the output saturates to its params' bits).

Kernels: the portable ``mcu_conv_s8`` / ``mcu_dwconv_s8`` everywhere, and on cores with the DSP extension
(unless ``--kernels portable``) the SIMD32 ``mcu_conv_dsp_s8`` (groups 1, any window: 1x1 included, which
runs it faster than ``mcu_conv_1x1_dsp_s8``) and ``mcu_dwconv_dsp_s8`` (channel multiplier 1, <= 64 taps),
with their weights laid out at compile time (``fast_layout``); a layer they cannot run falls back to the
portable kernel with the reason. A layer reading or writing a packed 4- or 2-bit map runs the
``mcu_conv_a<b>w8_s8`` / ``mcu_dwconv_a<b>w8_s8`` kernels of ``packed_kernels`` (their DSP versions where the
core has the extension). On cores with MVE (Helium, Cortex-M55) the MVE kernels of ``mcunn_mve.h``
come first: ``mcu_conv_1x1_mve_s8`` for 1x1 layers whose taps all lie inside the input, ``mcu_conv_mve_s8`` for
every other groups-1 convolution and ``mcu_dwconv_mve_s8`` (channel multiplier 1, <= 64 taps), with weights and
folded bias from ``mve_layout``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import weakref

import numpy as np

from ..ir import Activation, Graph, Node, QuantParams, Tensor
from ..ir.graph import int_dtype
from ..arith.bitwidth import qrange, requantize, saturate, storage_dtype
from ..arith.fixedpoint import quantize_multiplier_array, requantize_saturated, round_half_away
from ..errors import UnsupportedError
from . import cmsis_nn, fast_layout, mve_layout, packed_kernels
from .base import OpDef, QuantContext, activation_bounds, register, require_rank, shape_error, tensor_bits
from .kernel import (Kernel, KernelArgs, KernelCost, base_counts, kernel_target, prod, quant_arrays, read,
                     window_extent, window_taps, write)
from .spatial import Window, WindowPatchRule, as_nhwc, im2col


@dataclass(frozen=True)
class ConvAttrs:
    window: Window
    groups: int = 1
    activation: Activation = field(default_factory=Activation)


@dataclass(frozen=True, eq=False)
class ConvParams:
    """Quantized parameters, named as CMSIS-NN's conv params."""

    input_offset: int
    output_offset: int
    act_min: int
    act_max: int
    multiplier: np.ndarray
    shift: np.ndarray


#: weights stay int8 per channel whatever the activations' bits (CMSIS-NN's kernels; QuantMCU lowers the
#: feature maps only); symmetric, so they use [-127, 127]
WEIGHT_BITS = 8
WEIGHT_MAX = qrange(WEIGHT_BITS)[1]


def quantize_weights_per_channel(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per channel along ``axis``: scale = max|w| / 127."""
    moved = np.moveaxis(w.astype(np.float64), axis, 0).reshape(w.shape[axis], -1)
    amax = np.abs(moved).max(axis=1)
    scale = np.where(amax > 0, amax / float(WEIGHT_MAX), 1.0)
    q = saturate(round_half_away(moved / scale[:, None]), WEIGHT_BITS, -WEIGHT_MAX, WEIGHT_MAX)
    q = np.moveaxis(q.reshape((w.shape[axis],) + tuple(np.delete(w.shape, axis))), 0, axis)
    return q, scale


def quantize_bias(b: np.ndarray | None, scale: np.ndarray, cout: int) -> np.ndarray:
    if b is None:
        return np.zeros(cout, np.int32)
    v = round_half_away(b.astype(np.float64) / scale)
    return np.clip(v, -(2**31), 2**31 - 1).astype(np.int32)


def requant_output(acc: np.ndarray, p, bits: int, rounding: str = "double", bias=None) -> np.ndarray:
    """The int32 accumulators of a weighted layer to its ``bits``-bit output (per-channel multipliers,
    the graph's ``rounding``): ``arith.bitwidth.requantize``, computed block by block (tests/test_conv_reference.py).
    ``bias``: added first (in 64 bits; ``acc`` may hold the integer sums in floats): the same as requantizing
    ``acc.astype(int64) + bias``."""
    if bits > 8:
        if bias is not None:
            acc = np.asarray(acc, np.int64) + np.asarray(bias, np.int64)
        return requantize(acc, p.multiplier, p.shift, p.output_offset, bits, p.act_min, p.act_max, rounding)
    qmin, qmax = qrange(bits)  # saturate's bounds: the range, narrowed by a fused activation's
    lo = qmin if p.act_min is None else max(qmin, int(p.act_min))
    hi = qmax if p.act_max is None else min(qmax, int(p.act_max))
    return requantize_saturated(acc, p.multiplier, p.shift, p.output_offset, lo, hi, storage_dtype(bits), rounding,
                                bias)


def weight_quant(t: Tensor, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """int8 weights and per-output-channel scales: the model's own (pre-quantized) or symmetric max/127."""
    cout = t.shape[axis]
    if t.qdata is not None and t.quant is not None:
        scale = np.broadcast_to(np.asarray(t.quant.scale, np.float64), (cout,)).copy()
        zp = np.asarray(t.quant.zero_point).reshape(-1)
        if np.any(zp != 0):
            raise UnsupportedError(f"weights '{t.name}' have zero point {int(zp[zp != 0][0])}: asymmetric int8 weights; "
                                   "mcucompile (like TFLite's int8 scheme) needs symmetric weights (zero point 0): "
                                   "re-quantize the weights symmetrically (e.g. QuantType.QInt8 with symmetric weights)")
        return t.qdata.astype(np.int8), scale
    return quantize_weights_per_channel(t.data, axis)


def quantize_weighted(node: Node, ctx: QuantContext, weight_axis: int) -> list[Node]:
    """Shared quantization for conv / depthwise / fully connected: weights, bias, multipliers."""
    x, w_name = node.inputs[0], node.inputs[1]
    b_name = node.inputs[2] if len(node.inputs) > 2 else ""
    out = node.outputs[0]
    in_q = ctx.quant[x]
    out_q = ctx.from_range(out)
    ctx.quant[out] = out_q
    wt_in = ctx.tensor(w_name)
    wq, wscale = weight_quant(wt_in, weight_axis)
    cout = wq.shape[weight_axis]
    bias_scale = in_q.s * wscale
    if b_name and ctx.tensor(b_name).qdata is not None:
        bq = ctx.tensor(b_name).qdata.astype(np.int32).reshape(-1)
    else:
        bq = quantize_bias(ctx.tensor(b_name).data if b_name else None, bias_scale, cout)
    mult, shift = quantize_multiplier_array(bias_scale / out_q.s)
    wt = Tensor(w_name + "_q", wq.shape, int_dtype(WEIGHT_BITS), wq,
                QuantParams(wscale, np.zeros(cout, np.int64), weight_axis, WEIGHT_BITS))
    bname = (b_name or (node.name + "bias_or_zeros")) + "_q"
    bt = Tensor(bname, (cout,), "int32", bq, QuantParams(bias_scale, np.zeros(cout, np.int64), 0, 32))
    ctx.new_tensors[wt.name] = wt
    ctx.new_tensors[bt.name] = bt
    lo, hi = activation_bounds(node.attrs.activation, out_q)
    params = ConvParams(-in_q.zp, out_q.zp, lo, hi, mult, shift)
    return [node.replace(inputs=(x, wt.name, bt.name), params=params)]


def kernel_quant_context(node: Node, graph: Graph) -> dict:
    p = node.params
    return {
        "input_offset": p.input_offset,
        "output_offset": p.output_offset,
        "act_min": p.act_min,
        "act_max": p.act_max,
        "multiplier": p.multiplier,
        "shift": p.shift,
    }


def bias_or_zeros(graph: Graph, node: Node, cout: int, dtype) -> np.ndarray:
    if len(node.inputs) > 2 and node.inputs[2]:
        return graph.tensors[node.inputs[2]].data.astype(dtype)
    return np.zeros(cout, dtype)


def _check_bias(node: Node, in_shapes, cout: int) -> None:
    if len(in_shapes) > 2 and node.inputs[2:3] != ("",) and int(np.prod(in_shapes[2])) != cout:
        raise shape_error(node, f"bias of shape {list(in_shapes[2])} for {cout} output channels")


def apply_activation(y: np.ndarray, act: Activation) -> np.ndarray:
    return np.clip(y, act.min, act.max) if not act.is_identity else y


def _window_output(node: Node, in_shapes, kernel: tuple[int, int], cout: int, h: int, w: int) -> tuple[int, int]:
    """A convolution's output size over an h x w input, its window, weights and bias checked against each
    other (UserError naming the node when the model contradicts itself)."""
    win = node.attrs.window
    if tuple(win.kernel) != tuple(kernel):
        raise shape_error(node, f"kernel {list(win.kernel)} differs from the weights' {list(kernel)}")
    _check_bias(node, in_shapes, cout)
    problem = win.problem(h, w)
    if problem:
        raise shape_error(node, problem)
    return win.out_size(h, w)


# --- the kernels: what they read and write, what they cost -------------------------------------------------

def _conv_access(args: KernelArgs):
    """mcu_conv_s8: input within input_dims, filter [C_out, KH, KW, C_in / groups], bias and
    multiplier / shift C_out entries, output [N_in, OH, OW, C_out]."""
    win, groups = args.context["window"], args.context["groups"]
    filt = args.graph.tensors[args.node.inputs[1]].shape
    in_d, out_d = args.in_dims[0], args.out_dims
    cout = out_d[3]
    contract = []
    if len(filt) != 4 or groups < 1 or filt[3] * groups != in_d[3] or cout % groups or filt[0] != cout:
        contract.append(f"filter {list(filt)} with {groups} groups does not fit input {list(in_d)} / "
                        f"output {list(out_d)}")
    acc = [
        read(args.inputs[0], window_extent(in_d, out_d, win.kernel, win.stride, win.dilation, args.pads), "input"),
        read(args.inputs[1], prod(filt), "weights"),
        read(args.inputs[2], 4 * cout, "bias"),
        write(args.output, in_d[0] * out_d[1] * out_d[2] * cout, "output"),
        *quant_arrays(args, cout),
    ]
    return acc, contract


def _conv_counts(node, graph, g):
    f = base_counts(node, graph, g)
    rows_v, cols_v = window_taps(node, g)
    groups, dw = node.attrs.groups, node.attrs.window.dilation[1]
    k_c = graph.tensors[node.inputs[0]].shape[-1] // groups
    c_out = as_nhwc(tuple(graph.tensors[node.outputs[0]].shape))[3]
    f["pixels"] = float(g.out_h * g.out_w)
    f["macs"] = float(rows_v * cols_v * k_c * c_out)
    # a kernel row inside the image is one contiguous run (groups 1, dilation 1), else one per tap
    contiguous = groups == 1 and dw == 1
    f["row_runs"] = float(rows_v * (g.out_w if contiguous else cols_v) * c_out)
    return f


def _depthwise_access(args: KernelArgs):
    """mcu_dwconv_s8: input within input_dims, filter [KH, KW, C_out], C_out int32 accumulators in the
    scratch, output [N_in, OH, OW, C_out]."""
    win, mult = args.context["window"], args.context["ch_mult"]
    filt = args.graph.tensors[args.node.inputs[1]].shape
    in_d, out_d = args.in_dims[0], args.out_dims
    cout = out_d[3]
    contract = []
    if mult < 1 or in_d[3] * mult != cout or filt[-1] != cout:
        contract.append(f"channels: input {in_d[3]} x multiplier {mult} != output {cout} (filter {list(filt)})")
    if args.scratch is None or args.scratch_bytes < 4 * cout:
        contract.append(f"scratch of {args.scratch_bytes} B passed, the kernel needs {4 * cout} B (one int32 per channel)")
    acc = [
        read(args.inputs[0], window_extent(in_d, out_d, win.kernel, win.stride, win.dilation, args.pads), "input"),
        read(args.inputs[1], prod(filt), "weights"),
        read(args.inputs[2], 4 * cout, "bias"),
        write(args.output, in_d[0] * out_d[1] * out_d[2] * cout, "output"),
        *quant_arrays(args, cout),
    ]
    if args.scratch is not None:
        acc.append(write(args.scratch, 4 * cout, "scratch"))
    return acc, contract


def _depthwise_counts(node, graph, g):
    f = base_counts(node, graph, g)
    rows_v, cols_v = window_taps(node, g)
    c_out = as_nhwc(tuple(graph.tensors[node.outputs[0]].shape))[3]
    f["pixels"] = float(g.out_h * g.out_w)
    f["taps"] = float(rows_v * cols_v)
    f["macs"] = float(rows_v * cols_v * c_out)
    return f


CONV = Kernel("conv.c.j2", _conv_access, KernelCost(
    ("calls", "pixels", "outputs", "row_runs", "macs"),
    {"calls": 286.143, "pixels": 81.36, "outputs": 97.764, "row_runs": 29.666, "macs": 6.004}, _conv_counts))
DEPTHWISE_CONV = Kernel("depthwise_conv.c.j2", _depthwise_access, KernelCost(
    ("calls", "pixels", "outputs", "taps", "macs"),
    {"calls": 202.183, "pixels": 88.343, "outputs": 69.186, "taps": 40.987, "macs": 9.472}, _depthwise_counts))


# --- the SIMD32 (DSP extension) kernels of mcunn_dsp.h ----------------------------------------------------

_LAYOUTS: dict[tuple, tuple] = {}


def fast_constants(fn, weights: np.ndarray, bias: np.ndarray | None, input_offset: int) -> fast_layout.FastConstants:
    """``fn(weights, bias, input_offset)`` (a ``fast_layout.*_constants``), computed once per weights array:
    every stage asks the layer's kernel call (the planners, the safety check once per patch, codegen)."""
    # module and name: fast_layout and mve_layout both have a conv_constants
    key = (fn.__module__, fn.__name__, id(weights), id(bias), int(input_offset))
    hit = _LAYOUTS.get(key)
    if hit is not None and hit[0]() is weights and hit[1]() is bias:
        return hit[2]
    out = fn(weights.astype(np.int8), bias, input_offset)
    # weakrefs: an entry dies with its arrays, so a recycled id() never returns another layer's layout
    _LAYOUTS[key] = (weakref.ref(weights), (lambda: None) if bias is None else weakref.ref(bias), out)
    weakref.finalize(weights, _LAYOUTS.pop, key, None)
    return out


def _layer_bias(graph: Graph, node: Node) -> np.ndarray | None:
    return graph.tensors[node.inputs[2]].data if len(node.inputs) > 2 and node.inputs[2] else None


def _conv_dsp_access(args: KernelArgs):
    """mcu_conv_dsp_s8: input within input_dims (taps outside are the zero point in its im2col), weights
    C_out * K4(KH * KW * C_in) in the "pairs, swapped" layout, the model's bias and multiplier / shift C_out
    entries, scratch mcu_conv_dsp_get_buffer_size_s8, output [N_in, OH, OW, C_out]."""
    win, groups = args.context["window"], args.context["groups"]
    filt = args.graph.tensors[args.node.inputs[1]].shape
    in_d, out_d = args.in_dims[0], args.out_dims
    cout = out_d[3]
    need = fast_layout.conv_scratch_bytes(filt[1], filt[2], in_d[3])
    contract = []
    if groups != 1 or len(filt) != 4 or filt[3] != in_d[3] or filt[0] != cout:
        contract.append(f"filter {list(filt)} with {groups} groups does not fit input {list(in_d)} / output "
                        f"{list(out_d)} (groups must be 1)")
    if args.scratch is None or args.scratch_bytes < need:
        contract.append(f"scratch of {args.scratch_bytes} B passed, the kernel needs {need} B")
    acc = [
        read(args.inputs[0], window_extent(in_d, out_d, win.kernel, win.stride, win.dilation, args.pads), "input"),
        read(args.array("weights"), cout * fast_layout.k4(prod(filt[1:])), "weights"),
        read(args.inputs[2], 4 * cout, "bias"),
        write(args.output, in_d[0] * out_d[1] * out_d[2] * cout, "output"),
        *quant_arrays(args, cout),
    ]
    if args.scratch is not None:
        acc.append(write(args.scratch, need, "scratch"))
    return acc, contract


def _conv_dsp_counts(node, graph, g):
    """Two pixels x two channels per block of 4 K-elements (K4 = K rounded up), each pixel's window widened
    once into the im2col scratch."""
    f = base_counts(node, graph, g)
    w = graph.tensors[node.inputs[1]].shape
    k4, c_out = fast_layout.k4(w[1] * w[2] * w[3]), w[0]
    pixels = float(g.out_h * g.out_w)
    f["pixels"] = pixels
    f["widened"] = pixels * k4 / 4
    # C_in % 4 != 0 (first layers): each window is gathered byte by byte into the scratch before widening
    f["gathered"] = pixels * w[1] * w[2] * w[3] if w[3] % 4 else 0.0
    f["blocks"] = pixels / 2 * c_out / 2 * k4 / 4
    f["macs"] = pixels * c_out * w[1] * w[2] * w[3]
    return f


def _dwconv_dsp_access(args: KernelArgs):
    """mcu_dwconv_dsp_s8: input within input_dims (taps outside read the zero-point row in the scratch),
    weights KH * KW * C ("tap pairs"), folded bias and multiplier / shift C entries, scratch K4(C) (C bytes
    written), output [N_in, OH, OW, C]."""
    win, mult = args.context["window"], args.context["ch_mult"]
    filt = args.graph.tensors[args.node.inputs[1]].shape
    in_d, out_d = args.in_dims[0], args.out_dims
    c = out_d[3]
    need = fast_layout.dwconv_scratch_bytes(in_d[3])
    contract = []
    if mult != 1 or in_d[3] != c or filt[-1] != c:
        contract.append(f"channels: input {in_d[3]}, multiplier {mult}, output {c}, filter {list(filt)} (the kernel "
                        "takes multiplier 1)")
    if filt[0] * filt[1] > fast_layout.DWCONV_MAX_TAPS:
        contract.append(f"{filt[0]}x{filt[1]} window: more than {fast_layout.DWCONV_MAX_TAPS} taps")
    if args.scratch is None or args.scratch_bytes < need:
        contract.append(f"scratch of {args.scratch_bytes} B passed, the kernel needs {need} B")
    acc = [
        read(args.inputs[0], window_extent(in_d, out_d, win.kernel, win.stride, win.dilation, args.pads), "input"),
        read(args.array("weights"), prod(filt), "weights"),
        read(args.array("bias"), 4 * c, "bias"),
        write(args.output, in_d[0] * out_d[1] * out_d[2] * c, "output"),
        *quant_arrays(args, c),
    ]
    if args.scratch is not None:
        acc.append(write(args.scratch, in_d[3], "scratch"))
    return acc, contract


def _dwconv_dsp_counts(node, graph, g):
    """Every tap of every output pixel (taps outside the input read the zero-point row), one SMLAD per
    channel pair and tap pair."""
    f = base_counts(node, graph, g)
    kh, kw, c = graph.tensors[node.inputs[1]].shape
    taps, pixels = kh * kw, float(g.out_h * g.out_w)
    f["pixels"] = pixels
    f["pixel_taps"] = pixels * taps
    f["simd"] = pixels * (c / 4) * (taps / 2)
    f["macs"] = pixels * taps * c
    return f


def _conv_1x1_geometry(args: KernelArgs) -> str | None:
    win, in_d, out_d = args.context["window"], args.in_dims[0], args.out_dims
    filt = args.graph.tensors[args.node.inputs[1]].shape
    return fast_layout.conv_1x1_problem((filt[1], filt[2]), in_d[3], args.context["groups"], tuple(win.stride),
                                        args.pads, (in_d[1], in_d[2]), (out_d[1], out_d[2]))


def _conv_1x1_dsp_access(args: KernelArgs):
    """mcu_conv_1x1_dsp_s8: every tap inside the input (no padding, start offsets only), weights C_out * C_in
    ("pairs"), folded bias and multiplier / shift C_out entries, no scratch, output [N_in, OH, OW, C_out]."""
    win = args.context["window"]
    filt = args.graph.tensors[args.node.inputs[1]].shape
    in_d, out_d = args.in_dims[0], args.out_dims
    cout = out_d[3]
    contract = []
    if filt[0] != cout or filt[3] != in_d[3]:
        contract.append(f"filter {list(filt)} does not fit input {list(in_d)} / output {list(out_d)}")
    problem = _conv_1x1_geometry(args)
    if problem:
        contract.append(problem)
    return [
        read(args.inputs[0], window_extent(in_d, out_d, win.kernel, win.stride, win.dilation, args.pads), "input"),
        read(args.array("weights"), cout * prod(filt[1:]), "weights"),
        read(args.array("bias"), 4 * cout, "bias"),
        write(args.output, in_d[0] * out_d[1] * out_d[2] * cout, "output"),
        *quant_arrays(args, cout),
    ], contract


def _conv_1x1_dsp_counts(node, graph, g):
    """Two pixels x two channels per block of 4 input channels, the input read as it is."""
    f = base_counts(node, graph, g)
    c_out, _, _, c_in = graph.tensors[node.inputs[1]].shape
    pixels = float(g.out_h * g.out_w)
    f["pixels"] = pixels
    f["blocks"] = pixels / 2 * c_out / 2 * c_in / 4
    f["macs"] = pixels * c_out * c_in
    return f


#: fitted on qemu-m4 (NNLS, relative error) on every layer of 9 models layer by layer (the MLPerf Tiny int8
#: .tflite and float ONNX, MNIST, MobileNetV2-0.35): conv 78 layers, total within 0.1%, each within 11%;
#: depthwise 44 layers, total within 0.1%, each within 10%. Per call set by hand: whole layers cannot
#: separate it from the per-pixel terms, and the patch search needs it (patches are many small calls)
_FIT_NOTE = ("fitted on qemu-m4 per layer (MLPerf int8 and float, MNIST, MobileNetV2-0.35, layer by layer); "
             "'calls' by hand (the kernel author's per-call measurement), not separable on whole layers")
CONV_DSP = Kernel("conv_dsp.c.j2", _conv_dsp_access, KernelCost(
    ("calls", "pixels", "outputs", "widened", "blocks", "gathered"),
    {"calls": 600.0, "pixels": 271.566, "outputs": 16.38, "widened": 3.788, "blocks": 18.572, "gathered": 9.632},
    _conv_dsp_counts, note=_FIT_NOTE),
    fast=True, header="mcunn_dsp.h", replaces=(1,))
CONV_1X1_DSP = Kernel("conv_1x1_dsp.c.j2", _conv_1x1_dsp_access, KernelCost(
    ("calls", "pixels", "outputs", "blocks"), {"calls": 600.0, "pixels": 0.0, "outputs": 18.0, "blocks": 26.0},
    _conv_1x1_dsp_counts, note="set by hand from bench/kernels.py shape 1 (2.19 instr/MAC; 18 per output as the "
                               "general kernel's output stage)"),
    fast=True, header="mcunn_dsp.h", replaces=(1, 2))
DEPTHWISE_CONV_DSP = Kernel("depthwise_conv_dsp.c.j2", _dwconv_dsp_access, KernelCost(
    ("calls", "pixel_taps", "simd"), {"calls": 1455.0, "pixel_taps": 33.724, "simd": 42.695}, _dwconv_dsp_counts,
    note=_FIT_NOTE),
    fast=True, header="mcunn_dsp.h", replaces=(1, 2))


# --- the MVE (Helium) kernels of mcunn_mve.h -------------------------------------------------------------

def _conv_mve_access(args: KernelArgs):
    """mcu_conv_mve_s8: input within input_dims (taps outside are the zero point in its im2col), weights
    C_out * KH * KW * C_in ("quads"), folded bias and multiplier / shift C_out entries, scratch two int8 windows
    (2 * KH * KW * C_in), output [N_in, OH, OW, C_out]."""
    win, groups = args.context["window"], args.context["groups"]
    filt = args.graph.tensors[args.node.inputs[1]].shape
    in_d, out_d = args.in_dims[0], args.out_dims
    cout = out_d[3]
    need = mve_layout.conv_scratch_bytes(filt[1], filt[2], in_d[3])
    contract = []
    if groups != 1 or len(filt) != 4 or filt[3] != in_d[3] or filt[0] != cout:
        contract.append(f"filter {list(filt)} with {groups} groups does not fit input {list(in_d)} / output "
                        f"{list(out_d)} (groups must be 1)")
    if args.scratch is None or args.scratch_bytes < need:
        contract.append(f"scratch of {args.scratch_bytes} B passed, the kernel needs {need} B")
    acc = [
        read(args.inputs[0], window_extent(in_d, out_d, win.kernel, win.stride, win.dilation, args.pads), "input"),
        read(args.array("weights"), cout * prod(filt[1:]), "weights"),
        read(args.array("bias"), 4 * cout, "bias"),
        write(args.output, in_d[0] * out_d[1] * out_d[2] * cout, "output"),
        *quant_arrays(args, cout),
    ]
    if args.scratch is not None and in_d[0] * out_d[1] * out_d[2]:
        acc.append(write(args.scratch, need, "scratch"))
    return acc, contract


def _conv_mve_counts(node, graph, g):
    """Every tap of every output pixel (im2col holds the zero point for taps outside), 2 pixels x 4 channels
    per block of the matrix core."""
    f = base_counts(node, graph, g)
    c_out, kh, kw, c_in = graph.tensors[node.inputs[1]].shape
    pixels = float(g.out_h * g.out_w)
    f["pixels"] = pixels
    f["macs"] = pixels * c_out * kh * kw * c_in
    return f


def _conv_1x1_mve_access(args: KernelArgs):
    """mcu_conv_1x1_mve_s8: every tap inside the input (no padding, start offsets only), weights C_out * C_in
    ("quads"), folded bias and multiplier / shift C_out entries, no scratch, output [N_in, OH, OW, C_out]."""
    win, groups = args.context["window"], args.context["groups"]
    filt = args.graph.tensors[args.node.inputs[1]].shape
    in_d, out_d = args.in_dims[0], args.out_dims
    cout = out_d[3]
    contract = []
    if filt[0] != cout or filt[3] != in_d[3]:
        contract.append(f"filter {list(filt)} does not fit input {list(in_d)} / output {list(out_d)}")
    problem = mve_layout.conv_1x1_problem((filt[1], filt[2]), groups, tuple(win.stride), args.pads,
                                          (in_d[1], in_d[2]), (out_d[1], out_d[2]))
    if problem:
        contract.append(problem)
    return [
        read(args.inputs[0], window_extent(in_d, out_d, win.kernel, win.stride, win.dilation, args.pads), "input"),
        read(args.array("weights"), cout * prod(filt[1:]), "weights"),
        read(args.array("bias"), 4 * cout, "bias"),
        write(args.output, in_d[0] * out_d[1] * out_d[2] * cout, "output"),
        *quant_arrays(args, cout),
    ], contract


def _dwconv_mve_access(args: KernelArgs):
    """mcu_dwconv_mve_s8: input within input_dims (taps outside read the zero-point row in the scratch),
    weights KH * KW * C ("16-blocks"), folded bias K16(C) entries ("even/odd"), multiplier / shift C entries,
    scratch C bytes, output [N_in, OH, OW, C]."""
    win, mult = args.context["window"], args.context["ch_mult"]
    filt = args.graph.tensors[args.node.inputs[1]].shape
    in_d, out_d = args.in_dims[0], args.out_dims
    c = out_d[3]
    need = mve_layout.dwconv_scratch_bytes(in_d[3])
    contract = []
    if mult != 1 or in_d[3] != c or filt[-1] != c:
        contract.append(f"channels: input {in_d[3]}, multiplier {mult}, output {c}, filter {list(filt)} (the kernel "
                        "takes multiplier 1)")
    if filt[0] * filt[1] > mve_layout.DWCONV_MAX_TAPS:
        contract.append(f"{filt[0]}x{filt[1]} window: more than {mve_layout.DWCONV_MAX_TAPS} taps")
    if args.scratch is None or args.scratch_bytes < need:
        contract.append(f"scratch of {args.scratch_bytes} B passed, the kernel needs {need} B")
    acc = [
        read(args.inputs[0], window_extent(in_d, out_d, win.kernel, win.stride, win.dilation, args.pads), "input"),
        read(args.array("weights"), prod(filt), "weights"),
        read(args.array("bias"), 4 * mve_layout.k16(c), "bias"),
        write(args.output, in_d[0] * out_d[1] * out_d[2] * c, "output"),
        *quant_arrays(args, c),
    ]
    if args.scratch is not None:
        acc.append(write(args.scratch, need, "scratch"))
    return acc, contract


def _dwconv_mve_counts(node, graph, g):
    """Every tap of every output pixel (taps outside read the zero-point row), 16 channels per block."""
    f = base_counts(node, graph, g)
    kh, kw, c = graph.tensors[node.inputs[1]].shape
    pixels = float(g.out_h * g.out_w)
    f["pixels"] = pixels
    f["macs"] = pixels * kh * kw * c
    return f


def _dwconv_3x3_mve_access(args: KernelArgs):
    """mcu_dwconv_3x3_mve_s8: mcu_dwconv_mve_s8's arguments, with a 3x3 window and every shift <= 0 (< 0 with
    single rounding)."""
    acc, contract = _dwconv_mve_access(args)
    filt = args.graph.tensors[args.node.inputs[1]].shape
    why = mve_layout.dwconv_3x3_problem((filt[0], filt[1]), args.context["ch_mult"], args.context["shift"],
                                        args.graph.rounding)
    return acc, contract + ([why] if why and why not in contract else [])


#: fitted on qemu-m55 by bench/kernels_mve.py (least squares over 6-8 shapes per kernel, within 4-11%; see
#: mcunn_mve.h); 'calls' by hand (the fits have no per-call term; the patch search needs one)
_MVE_NOTE = ("fitted on qemu-m55 by bench/kernels_mve.py (6-8 shapes per kernel, within 4-11%); 'calls' by hand "
             "(struct set-up and the call)")
CONV_MVE = Kernel("conv_mve.c.j2", _conv_mve_access, KernelCost(
    ("calls", "pixels", "outputs", "macs"), {"calls": 150.0, "pixels": 158.0, "outputs": 11.45, "macs": 0.151},
    _conv_mve_counts, note=_MVE_NOTE),
    fast=True, header="mcunn_mve.h", replaces=(1, 2))
CONV_1X1_MVE = Kernel("conv_1x1_mve.c.j2", _conv_1x1_mve_access, KernelCost(
    ("calls", "pixels", "outputs", "macs"), {"calls": 150.0, "pixels": 63.0, "outputs": 8.65, "macs": 0.125},
    _conv_mve_counts, note=_MVE_NOTE),
    fast=True, header="mcunn_mve.h", replaces=(1, 2))
DEPTHWISE_CONV_MVE = Kernel("depthwise_conv_mve.c.j2", _dwconv_mve_access, KernelCost(
    ("calls", "pixels", "macs"), {"calls": 150.0, "pixels": 124.0, "macs": 1.48}, _dwconv_mve_counts,
    note=_MVE_NOTE),
    fast=True, header="mcunn_mve.h", replaces=(1, 2))
#: the two-pixel path of mcu_dwconv_mve_s8 as its own function: called directly, the other windows' code is not
#: linked; the general kernel's fit (its shapes are mostly this path's)
DEPTHWISE_CONV_3X3_MVE = Kernel("depthwise_conv_3x3_mve.c.j2", _dwconv_3x3_mve_access, KernelCost(
    ("calls", "pixels", "macs"), {"calls": 150.0, "pixels": 124.0, "macs": 1.48}, _dwconv_mve_counts,
    note=_MVE_NOTE),
    fast=True, header="mcunn_mve.h", replaces=(1, 2))


def _conv_mve_call(node: Node, graph: Graph, target, ctx: dict):
    """The MVE kernel call of a conv2d layer (under ``lean``, the portable one with the reason for a layer only
    the im2col kernel runs), or None for a grouped layer (no fast kernel takes it): a 1x1 layer with every tap
    inside the input runs mcu_conv_1x1_mve_s8, any other mcu_conv_mve_s8."""
    if mve_layout.conv_problem(node.attrs.groups) is not None:
        return None
    w, bias = graph.tensors[node.inputs[1]].data, _layer_bias(graph, node)
    x, y = as_nhwc(graph.tensors[node.inputs[0]].shape), as_nhwc(graph.tensors[node.outputs[0]].shape)
    win = node.attrs.window
    raw = mve_layout.conv_1x1_problem(win.kernel, node.attrs.groups, tuple(win.stride), (win.pads[0], win.pads[1]),
                                      (x[1], x[2]), (y[1], y[2]))
    if raw is None:
        fc = fast_constants(mve_layout.conv_1x1_constants, w, bias, node.params.input_offset)
        ctx.update(weights=fc.weights, bias=fc.bias)
        return CONV_1X1_MVE.call(ctx)
    why = target.scratch_problem(mve_layout.conv_scratch_bytes(*w.shape[1:]), "MVE", node.outputs[0])
    if why is not None:
        return CONV.call(ctx, reason=f"{why} (mcu_conv_1x1_mve_s8: {raw})")
    fc = fast_constants(mve_layout.conv_constants, w, bias, node.params.input_offset)
    ctx.update(weights=fc.weights, bias=fc.bias)
    return CONV_MVE.call(ctx, scratch_bytes=fc.scratch_bytes)


# --- the integer reference: exact integer accumulators, fast -------------------------------------------------
# The simulator spends most of its time here (the QuantMCU guard runs whole held-back batches through it), so
# the accumulators are computed in the narrowest type that holds them exactly: |acc| <= max|x + offset| x
# max over channels of sum|w| (``bound``) bounds every partial sum, in any order, so an int32 sum, or a BLAS
# product in float32 below 2^24 (float64 below 2^53), gives the exact integers. tests/test_conv_reference.py
# holds these paths equal to the plain int64 computation.

#: exact integer range of float32 and float64 products and sums
_FLOAT_EXACT = ((np.float32, 1 << 24), (np.float64, 1 << 53))


def _shifted_input(x: np.ndarray, offset: int) -> tuple[np.ndarray, int]:
    """``x + offset`` in the narrowest signed type that holds it (int16 for 8-bit data), and max |x + offset|."""
    x = np.asarray(x)
    if x.size == 0:
        return x.astype(np.int16), 0
    if x.dtype.kind not in "iu":
        x = np.asarray(x, np.int64)
    lo, hi = int(x.min()) + int(offset), int(x.max()) + int(offset)
    span = max(abs(lo), abs(hi))
    dtype = np.int16 if span < (1 << 15) else np.int32 if span < (1 << 31) else np.int64
    # modular: the sum fits dtype, so a wrapped offset still gives it
    return np.add(x, np.int64(offset), dtype=dtype, casting="unsafe"), span


def _zero_padded(x: np.ndarray, win: Window, oh: int, ow: int) -> np.ndarray:
    """[N,H,W,C] padded with zeros (the shifted input's pad value) to every position ``im2col`` reads."""
    n, h, w, c = x.shape
    (kh, kw), (sh, sw), (dh, dw) = win.kernel, win.stride, win.dilation
    pt, pl = win.pads[0], win.pads[1]
    pb = max(0, (oh - 1) * sh + (kh - 1) * dh + 1 - h - pt)
    pr = max(0, (ow - 1) * sw + (kw - 1) * dw + 1 - w - pl)
    if pt == pl == pb == pr == 0:
        return x
    xp = np.zeros((n, h + pt + pb, w + pl + pr, c), x.dtype)
    xp[:, pt : pt + h, pl : pl + w, :] = x
    return xp


def _tap(xp: np.ndarray, win: Window, i: int, j: int, oh: int, ow: int) -> np.ndarray:
    """The [N,OH,OW,C] view of the padded input that tap (i, j) of every output position reads."""
    (sh, sw), (dh, dw) = win.stride, win.dilation
    return xp[:, i * dh : i * dh + sh * (oh - 1) + 1 : sh, j * dw : j * dw + sw * (ow - 1) + 1 : sw, :]


def conv_accumulators(node: Node, graph: Graph, x: np.ndarray, offset: int) -> tuple[np.ndarray, int]:
    """The integer accumulators sum(w * (x + offset)) of a conv2d layer ([N,OH,OW,Cout], int32 when they fit,
    else int64; taps in the padding contribute nothing) and a bound on their magnitude."""
    sums, bound = _conv_sums(node, graph, x, offset)
    return sums.astype(np.int32 if bound < (1 << 31) else np.int64), bound


def _conv_sums(node: Node, graph: Graph, x: np.ndarray, offset: int) -> tuple[np.ndarray, int]:
    """:func:`conv_accumulators`' sums as the matrix product left them (integers, in float32, float64 or int64 as
    the bound allows: exact) and the bound."""
    win, g = node.attrs.window, node.attrs.groups
    w = np.asarray(graph.tensors[node.inputs[1]].data)
    cout, kh, kw, cin_g = w.shape
    n, h, wd, _ = x.shape
    oh, ow = win.out_size(h, wd)
    xs, span = _shifted_input(x, offset)
    wsum = int(np.abs(w.astype(np.int64)).reshape(cout, -1).sum(axis=1).max()) if w.size else 0
    bound = span * wsum
    fdtype = next((t for t, limit in _FLOAT_EXACT if bound < limit), None)
    if fdtype is None:  # beyond float64's exact integers: int64 products (slow, exact)
        fdtype = np.int64
    if (kh, kw) == (1, 1) and tuple(win.pads) == (0, 0, 0, 0):
        cols = _tap(xs, win, 0, 0, oh, ow).astype(fdtype).reshape(n * oh * ow, g * cin_g)
    else:
        cols = im2col(xs.astype(fdtype), win, oh, ow, 0).reshape(n * oh * ow, kh * kw, g * cin_g)
    wf = w.astype(fdtype)
    if g == 1:  # the product is the output (no copy into it)
        return (cols.reshape(n * oh * ow, -1) @ wf.reshape(cout, -1).T).reshape(n, oh, ow, cout), bound
    out = np.empty((n * oh * ow, cout), fdtype)
    cout_g = cout // g
    for gi in range(g):
        c = cols[..., gi * cin_g : (gi + 1) * cin_g].reshape(n * oh * ow, kh * kw * cin_g)
        wg = wf[gi * cout_g : (gi + 1) * cout_g].reshape(cout_g, -1)
        out[:, gi * cout_g : (gi + 1) * cout_g] = c @ wg.T
    return out.reshape(n, oh, ow, cout), bound


def depthwise_accumulators(node: Node, graph: Graph, x: np.ndarray, offset: int) -> tuple[np.ndarray, int]:
    """The integer accumulators of a depthwise layer ([N,OH,OW,Cout], int32 when they fit, else int64), summed
    tap by tap over strided views of the input (no im2col copy), and a bound on their magnitude."""
    win = node.attrs.window
    w = np.asarray(graph.tensors[node.inputs[1]].data)  # KH,KW,Cout
    kh, kw, cout = w.shape
    n, h, wd, cin = x.shape
    mult = cout // cin
    oh, ow = win.out_size(h, wd)
    xs, span = _shifted_input(x, offset)
    wsum = int(np.abs(w.astype(np.int64)).sum(axis=(0, 1)).max()) if w.size else 0
    bound = span * wsum
    acc_dtype = np.int32 if bound < (1 << 31) else np.int64
    xp = _zero_padded(xs, win, oh, ow)
    if mult > 1:
        xp = np.repeat(xp, mult, axis=-1)
    # each tap's weights tiled along a row ([OW, C], contiguous): numpy then runs a stride-1 tap's row as one
    # loop (a [C] row broadcast over OW runs C values at a time, ~2x slower); the same products
    wk = np.ascontiguousarray(np.broadcast_to(w.astype(acc_dtype)[:, :, None, :], (kh, kw, ow, cout)))
    acc = np.empty((n, oh, ow, cout), acc_dtype)
    tmp = np.empty_like(acc)
    for i in range(kh):
        for j in range(kw):
            if i == 0 and j == 0:
                np.multiply(_tap(xp, win, i, j, oh, ow), wk[i, j], out=acc, dtype=acc_dtype)
            else:
                np.multiply(_tap(xp, win, i, j, oh, ow), wk[i, j], out=tmp, dtype=acc_dtype)
                acc += tmp
    return acc, bound


@register
class Conv2D(WindowPatchRule, OpDef):
    name = "conv2d"
    fuses_activation = True

    def infer_shapes(self, node, in_shapes):
        require_rank(node, in_shapes[0], 4, "input")
        require_rank(node, in_shapes[1], 4, "weights")
        n, h, w, cin = in_shapes[0]
        cout, kh, kw, cin_g = in_shapes[1]
        g = node.attrs.groups
        if g < 1 or cin != cin_g * g or cout % g:
            raise shape_error(node, f"{cin} input channels, weights {list(in_shapes[1])} and group {g} do not match")
        oh, ow = _window_output(node, in_shapes, (kh, kw), cout, h, w)
        return [(n, oh, ow, cout)]

    def _conv(self, node, graph, x, pad_value, acc_dtype):
        win, g = node.attrs.window, node.attrs.groups
        w = graph.tensors[node.inputs[1]].data.astype(acc_dtype)
        cout, kh, kw, cin_g = w.shape
        n, oh, ow, _ = self.infer_shapes(node, [x.shape, w.shape])[0]
        cols = im2col(x.astype(acc_dtype), win, oh, ow, pad_value)  # N,OH,OW,KH,KW,C
        out = np.empty((n, oh, ow, cout), acc_dtype)
        cout_g = cout // g
        for gi in range(g):
            c = cols[..., gi * cin_g : (gi + 1) * cin_g].reshape(n * oh * ow, kh * kw * cin_g)
            wg = w[gi * cout_g : (gi + 1) * cout_g].reshape(cout_g, -1)
            out[..., gi * cout_g : (gi + 1) * cout_g] = (c @ wg.T).reshape(n, oh, ow, cout_g)
        return out

    def eval_float(self, node, graph, inputs):
        y = self._conv(node, graph, inputs[0], 0.0, np.float32)
        y = y + bias_or_zeros(graph, node, y.shape[-1], np.float32)
        return [apply_activation(y, node.attrs.activation).astype(np.float32)]

    def quantize(self, node, ctx):
        return quantize_weighted(node, ctx, 0)

    def eval_int(self, node, graph, inputs):
        p = node.params
        # pad value -input_offset + input_offset = 0: padded taps contribute nothing, as in TFLite
        # the bias added block by block in the requantization (the int32 sum, or in 64 bits wrapped as the C's)
        sums, _ = _conv_sums(node, graph, inputs[0], p.input_offset)
        bias = bias_or_zeros(graph, node, sums.shape[-1], np.int64)
        return [requant_output(sums, p, tensor_bits(graph, node.outputs[0]), graph.rounding, bias)]

    def macs(self, node, graph):
        out = graph.tensors[node.outputs[0]].shape
        w = graph.tensors[node.inputs[1]].shape
        return int(np.prod(out)) * w[1] * w[2] * w[3]

    def kernel(self, node, graph, board=None):
        ctx = kernel_quant_context(node, graph)
        ctx.update(window=node.attrs.window, groups=node.attrs.groups)
        target = kernel_target(board)
        bits = packed_kernels.packed_bits(graph, node)
        if bits is not None:  # a packed 4- / 2-bit input or output: the a<b>w8 kernels read and write it
            return packed_kernels.conv_call(node, graph, target, ctx, bits, fast_constants)
        if target.kernels == "cmsis-nn":
            return cmsis_nn.conv_call(node, graph, target, ctx, lambda: self.kernel(node, graph, target.auto()))
        if target.mve_problem() is None:
            call = _conv_mve_call(node, graph, target, ctx)
            if call is not None:
                return call
        why = target.dsp_problem() or fast_layout.conv_problem(node.attrs.groups)
        if why is not None:
            return CONV.call(ctx, reason=why)
        w, bias = graph.tensors[node.inputs[1]].data, _layer_bias(graph, node)
        # the general kernel is the faster one, 1x1 included; the raw 1x1 kernel needs no scratch
        why = target.scratch_problem(fast_layout.conv_scratch_bytes(*w.shape[1:]), layer=node.outputs[0])
        if why is None:
            fc = fast_constants(fast_layout.conv_constants, w, bias, node.params.input_offset)
            ctx.update(weights=fc.weights)
            return CONV_DSP.call(ctx, scratch_bytes=fc.scratch_bytes)
        x, y = as_nhwc(graph.tensors[node.inputs[0]].shape), as_nhwc(graph.tensors[node.outputs[0]].shape)
        win = node.attrs.window
        raw = fast_layout.conv_1x1_problem(win.kernel, x[3], node.attrs.groups, tuple(win.stride),
                                           (win.pads[0], win.pads[1]), (x[1], x[2]), (y[1], y[2]))
        if raw is not None:
            return CONV.call(ctx, reason=f"{why} (mcu_conv_1x1_dsp_s8: {raw})")
        fc = fast_constants(fast_layout.conv_1x1_constants, w, bias, node.params.input_offset)
        ctx.update(weights=fc.weights, bias=fc.bias)
        return CONV_1X1_DSP.call(ctx)


@register
class DepthwiseConv2D(WindowPatchRule, OpDef):
    name = "depthwise_conv2d"
    fuses_activation = True

    def infer_shapes(self, node, in_shapes):
        require_rank(node, in_shapes[1], 3, "weights")
        n, h, w, cin = as_nhwc(in_shapes[0])
        kh, kw, cout = in_shapes[1]
        if cout % cin:
            raise shape_error(node, f"{cout} output channels are not a multiple of the {cin} input channels")
        oh, ow = _window_output(node, in_shapes, (kh, kw), cout, h, w)
        if len(in_shapes[0]) != 4:
            return [tuple(in_shapes[0][:-1]) + (in_shapes[1][-1],)]
        return [(n, oh, ow, in_shapes[1][-1])]

    def _dw(self, node, graph, x, pad_value, acc_dtype):
        win = node.attrs.window
        w = graph.tensors[node.inputs[1]].data.astype(acc_dtype)  # KH,KW,Cout
        kh, kw, cout = w.shape
        shape4 = as_nhwc(x.shape)
        x4 = x.reshape(shape4).astype(acc_dtype)
        mult = cout // shape4[3]
        oh, ow = win.out_size(shape4[1], shape4[2])
        cols = im2col(x4, win, oh, ow, pad_value)  # N,OH,OW,KH,KW,C
        if mult > 1:
            cols = np.repeat(cols, mult, axis=-1)
        out = np.einsum("nhwijc,ijc->nhwc", cols, w, optimize=True)
        return out

    def eval_float(self, node, graph, inputs):
        y = self._dw(node, graph, inputs[0], 0.0, np.float32)
        y = y + bias_or_zeros(graph, node, y.shape[-1], np.float32)
        y = apply_activation(y, node.attrs.activation).astype(np.float32)
        return [y.reshape(self.infer_shapes(node, [inputs[0].shape, graph.tensors[node.inputs[1]].shape])[0])]

    def quantize(self, node, ctx):
        return quantize_weighted(node, ctx, 2)

    def eval_int(self, node, graph, inputs):
        p = node.params
        x = np.asarray(inputs[0])
        acc, _ = depthwise_accumulators(node, graph, x.reshape(as_nhwc(x.shape)), p.input_offset)
        bias = bias_or_zeros(graph, node, acc.shape[-1], np.int64)
        y = requant_output(acc, p, tensor_bits(graph, node.outputs[0]), graph.rounding, bias)
        return [y.reshape(self.infer_shapes(node, [inputs[0].shape, graph.tensors[node.inputs[1]].shape])[0])]

    def macs(self, node, graph):
        out = graph.tensors[node.outputs[0]].shape
        w = graph.tensors[node.inputs[1]].shape
        return int(np.prod(out)) * w[0] * w[1]

    def kernel(self, node, graph, board=None):
        ctx = kernel_quant_context(node, graph)
        w = graph.tensors[node.inputs[1]].shape
        cin = as_nhwc(graph.tensors[node.inputs[0]].shape)[3]
        ctx.update(window=node.attrs.window, ch_mult=w[2] // cin)
        target = kernel_target(board)
        bits = packed_kernels.packed_bits(graph, node)
        if bits is not None:
            return packed_kernels.depthwise_call(node, graph, target, ctx, bits, fast_constants)
        if target.kernels == "cmsis-nn":
            return cmsis_nn.depthwise_call(node, graph, target, ctx, lambda: self.kernel(node, graph, target.auto()))
        if target.mve_problem() is None and mve_layout.dwconv_problem(node.attrs.window.kernel, w[2] // cin) is None:
            fc = fast_constants(mve_layout.dwconv_constants, graph.tensors[node.inputs[1]].data,
                                _layer_bias(graph, node), node.params.input_offset)
            ctx.update(weights=fc.weights, bias=fc.bias)
            # the shifts are known here: 3x3 layers without left shifts call the two-pixel kernel itself
            pair = mve_layout.dwconv_3x3_problem(node.attrs.window.kernel, w[2] // cin, node.params.shift,
                                                 graph.rounding) is None
            return (DEPTHWISE_CONV_3X3_MVE if pair else DEPTHWISE_CONV_MVE).call(ctx, scratch_bytes=fc.scratch_bytes)
        why = target.dsp_problem() or fast_layout.dwconv_problem(node.attrs.window.kernel, w[2] // cin)
        if why is not None:
            # mcu_dwconv_get_buffer_size_s8: one int32 accumulator per output channel
            return DEPTHWISE_CONV.call(ctx, scratch_bytes=4 * w[-1], reason=why)
        fc = fast_constants(fast_layout.dwconv_constants, graph.tensors[node.inputs[1]].data,
                            _layer_bias(graph, node), node.params.input_offset)
        ctx.update(weights=fc.weights, bias=fc.bias if fc.bias is not None else np.zeros(w[-1], np.int32))
        return DEPTHWISE_CONV_DSP.call(ctx, scratch_bytes=fc.scratch_bytes)
