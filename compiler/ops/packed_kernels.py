"""Kernels for packed 4- and 2-bit feature maps (QuantMCU's low-bit chain) with int8 per-channel weights:
``runtime_c/include/mcunn_packed.h``.

A convolution or depthwise layer whose input or output tensor has fewer than 8 bits runs one of these
kernels, named by both widths: ``mcu_conv_a4w8_s8`` reads a packed 4-bit input (``a8``: an int8 input writing
a packed output), the output's bits are its ``output_bits`` argument. They compute exactly what the simulator
computes with the tensors' own bits (``Conv2D.eval_int``: the same accumulator, requantization and
saturation to the output's bits), then pack (``arith/bitwidth.py``). Portable C everywhere; on cores with
the DSP extension the SIMD32 versions (``mcu_conv_dsp_a*w8_s8``, groups 1; ``mcu_dwconv_dsp_a*w8_s8``, channel
multiplier 1, <= 64 taps) unpack at the load stage into int16 lanes and keep the MAC loop on SMLAD with the
int8 kernels' weight layouts (``fast_layout``); a groups-1 conv whose im2col scratch must go (the per-layer scratch
fallback) runs the scratch-free ``mcu_conv_lean_dsp_a*w8_s8`` instead (C_in a multiple of 4: each 4-block of a window
unpacked at the load stage into SMLAD's lanes, 4 output channels per pass, the input offset in the bias). On cores with MVE (Cortex-M55) the Helium versions come first
(``mcu_conv_mve_a*w8_s8``, groups 1, any window, 1x1 included; ``mcu_dwconv_mve_a*w8_s8``, channel multiplier 1,
<= 64 taps; ``runtime_c/include/mcunn_packed_mve.h``): they unpack into int8 lanes at the load stage, run the int8
MVE matrix core (VMLADAVA) or VMULLB / VMULLT with int16 sums (depthwise) on the int8 MVE kernels' weight layouts
(``mve_layout``) with the input offset folded into the bias, and pack at the store.

Only ``conv.py`` calls :func:`conv_call` / :func:`depthwise_call`; everything the compiler states about these
kernels (access pattern for the plan safety check, cost for the patch search, scratch) is here.
"""

from __future__ import annotations

import numpy as np

from ..arith.bitwidth import pixel_bytes
from ..ir import Graph, Node
from . import fast_layout, mve_layout
from .base import tensor_bits
from .kernel import (
    Kernel,
    KernelArgs,
    KernelCost,
    KernelTarget,
    base_counts,
    prod,
    quant_arrays,
    read,
    window_extent,
    window_taps,
    write,
)
from .spatial import as_nhwc

#: input / output bitwidths the kernels take (8 means int8, one value per byte)
BITS = (8, 4, 2)


def packed_bits(graph: Graph, node: Node) -> tuple[int, int] | None:
    """(input bits, output bits) of a weighted layer when either is below 8 (these kernels run it), else None."""
    bi, bo = tensor_bits(graph, node.inputs[0]), tensor_bits(graph, node.outputs[0])
    if bi >= 8 and bo >= 8:
        return None
    return int(bi), int(bo)


def function_name(op: str, in_bits: int, variant: bool | str) -> str:
    """The C function: ``mcu_conv_a4w8_s8``, ``mcu_dwconv_dsp_a2w8_s8``, ``mcu_conv_mve_a4w8_s8``... ``variant``:
    "mve", "dsp" (or True), "" (or False) for the portable kernel."""
    tag = "dsp" if variant is True else (variant or "")
    return f"mcu_{op}{'_' + tag if tag else ''}_a{in_bits}w8_s8"


def _packed_dims(d, bits: int):
    """Dims with the channels replaced by the bytes of one pixel (the kernels' byte addressing)."""
    return (d[0], d[1], d[2], pixel_bytes(d[3], bits))


def _bits_contract(args: KernelArgs) -> list[str]:
    bi, bo = args.context["in_bits"], args.context["out_bits"]
    bad = [f"{b}-bit {what}" for b, what in ((bi, "input"), (bo, "output")) if b not in BITS]
    return [f"{' and '.join(bad)}: the packed kernels take {list(BITS)} bits"] if bad else []


def _io_access(args: KernelArgs, filt_bytes: int, weights_ptr: str, bias_ptr: str | None) -> list:
    win, in_d, out_d = args.context["window"], args.in_dims[0], args.out_dims
    bi, bo = args.context["in_bits"], args.context["out_bits"]
    cout = out_d[3]
    acc = [
        read(args.inputs[0], window_extent(_packed_dims(in_d, bi), out_d, win.kernel, win.stride, win.dilation,
                                           args.pads), "input"),
        read(weights_ptr, filt_bytes, "weights"),
        write(args.output, in_d[0] * out_d[1] * out_d[2] * pixel_bytes(cout, bo), "output"),
        *quant_arrays(args, cout),
    ]
    if bias_ptr is not None:
        acc.append(read(bias_ptr, 4 * cout, "bias"))
    return acc


def _conv_access(args: KernelArgs):
    """mcu_conv_a*w8_s8: input within input_dims at P(C_in, in bits) bytes per pixel, filter [C_out, KH, KW,
    C_in / groups], bias and multiplier / shift C_out entries, output [N_in, OH, OW] x P(C_out, out bits)."""
    groups = args.context["groups"]
    filt = args.graph.tensors[args.node.inputs[1]].shape
    in_d, out_d = args.in_dims[0], args.out_dims
    contract = _bits_contract(args)
    if len(filt) != 4 or groups < 1 or filt[3] * groups != in_d[3] or out_d[3] % groups or filt[0] != out_d[3]:
        contract.append(f"filter {list(filt)} with {groups} groups does not fit input {list(in_d)} / output "
                        f"{list(out_d)}")
    return _io_access(args, prod(filt), args.inputs[1], args.inputs[2]), contract


def _conv_dsp_access(args: KernelArgs):
    """mcu_conv_dsp_a*w8_s8: as mcu_conv_a*w8_s8 with groups 1, weights C_out * K4(K) ("pairs, swapped"), scratch
    mcu_conv_dsp_get_buffer_size_packed (two int16 windows, all written)."""
    filt = args.graph.tensors[args.node.inputs[1]].shape
    in_d, out_d = args.in_dims[0], args.out_dims
    need = conv_dsp_scratch_bytes(filt[1], filt[2], in_d[3])
    contract = _bits_contract(args)
    if args.context["groups"] != 1 or len(filt) != 4 or filt[3] != in_d[3] or filt[0] != out_d[3]:
        contract.append(f"filter {list(filt)} does not fit input {list(in_d)} / output {list(out_d)} (groups 1)")
    if args.scratch is None or args.scratch_bytes < need:
        contract.append(f"scratch of {args.scratch_bytes} B passed, the kernel needs {need} B")
    acc = _io_access(args, out_d[3] * fast_layout.k4(prod(filt[1:])), args.array("weights"), args.inputs[2])
    if args.scratch is not None and in_d[0] * out_d[1] * out_d[2]:
        acc.append(write(args.scratch, need, "scratch"))
    return acc, contract


def _dwconv_access(args: KernelArgs):
    """mcu_dwconv_a*w8_s8 (and the DSP version: channel multiplier 1, <= 64 taps, "tap pairs" weights, scratch of
    one zero-point pixel): input at P(C_in, in bits) bytes per pixel, filter [KH, KW, C_out], bias and
    multiplier / shift C_out entries, output at P(C_out, out bits) bytes per pixel."""
    mult, dsp = args.context["ch_mult"], args.context["dsp"]
    filt = args.graph.tensors[args.node.inputs[1]].shape
    in_d, out_d = args.in_dims[0], args.out_dims
    contract = _bits_contract(args)
    if mult < 1 or in_d[3] * mult != out_d[3] or filt[-1] != out_d[3]:
        contract.append(f"channels: input {in_d[3]} x multiplier {mult} != output {out_d[3]} (filter {list(filt)})")
    if dsp:
        why = fast_layout.dwconv_problem((filt[0], filt[1]), mult)
        if why:
            contract.append(why)
    weights = args.array("weights") if dsp else args.inputs[1]
    acc = _io_access(args, prod(filt), weights, args.array("bias") if dsp else args.inputs[2])
    if dsp:
        need = dwconv_dsp_scratch_bytes(in_d[3], args.context["in_bits"])
        if args.scratch is None or args.scratch_bytes < need:
            contract.append(f"scratch of {args.scratch_bytes} B passed, the kernel needs {need} B")
        if args.scratch is not None:
            acc.append(write(args.scratch, pixel_bytes(in_d[3], args.context["in_bits"]), "scratch"))
    return acc, contract


def dwconv_dsp_scratch_bytes(channels: int, in_bits: int) -> int:
    """``mcu_dwconv_dsp_get_buffer_size_packed``: one pixel of input zero points, K4(P(C, in bits)) bytes."""
    return fast_layout.k4(pixel_bytes(channels, in_bits))


def dwconv_dsp_bias(bias: np.ndarray | None, weights: np.ndarray, input_offset: int, in_bits: int) -> np.ndarray:
    """The bias ``mcu_dwconv_dsp_a*w8_s8`` takes: its lanes hold x + 2^(b-1) (offset binary; x itself for int8), so
    ``bias + (input_offset - 2^(b-1)) * sum of the channel's taps`` (``fast_layout.dwconv_bias``)."""
    lane_bias = 0 if in_bits == 8 else 1 << (in_bits - 1)
    return fast_layout.dwconv_bias(bias, np.asarray(weights), int(input_offset) - lane_bias)


def conv_dsp_scratch_bytes(kh: int, kw: int, cin: int) -> int:
    """``mcu_conv_dsp_get_buffer_size_packed``: two windows of K4(KH * KW * C_in) int16, and K4 bytes to gather a
    window when C_in is not a multiple of 4 (the int8 kernel's, ``fast_layout.conv_scratch_bytes``; the packed
    output is staged on the stack)."""
    return fast_layout.conv_scratch_bytes(kh, kw, cin)


def _conv_counts(node, graph, g):
    f = base_counts(node, graph, g)
    rows_v, cols_v = window_taps(node, g)
    k_c = graph.tensors[node.inputs[1]].shape[3]
    c_out = as_nhwc(tuple(graph.tensors[node.outputs[0]].shape))[3]
    f["pixels"] = float(g.out_h * g.out_w)
    f["macs"] = float(rows_v * cols_v * k_c * c_out)
    return f


def _conv_dsp_counts(node, graph, g):
    """Two pixels x two channels per block of 4 K-elements; each pixel's window unpacked once (every tap)."""
    f = base_counts(node, graph, g)
    c_out, kh, kw, c_in = graph.tensors[node.inputs[1]].shape
    k4 = fast_layout.k4(kh * kw * c_in)
    pixels = float(g.out_h * g.out_w)
    f["pixels"] = pixels
    f["unpacked"] = pixels * k4 / 4 if c_in % 4 == 0 else 0.0
    f["gathered"] = pixels * kh * kw * c_in if c_in % 4 else 0.0
    # a sub-byte input unpacks its fields (more than the int8 widening per block, or per gathered value)
    sub = tensor_bits(graph, node.inputs[0]) < 8
    f["unpacked_sub"] = f["unpacked"] if sub else 0.0
    f["gathered_sub"] = f["gathered"] if sub else 0.0
    f["blocks"] = pixels / 2 * c_out / 2 * k4 / 4
    f["macs"] = pixels * c_out * kh * kw * c_in
    return f


def _dwconv_counts(node, graph, g):
    f = base_counts(node, graph, g)
    rows_v, cols_v = window_taps(node, g)
    kh, kw, c = graph.tensors[node.inputs[1]].shape
    pixels = float(g.out_h * g.out_w)
    f["pixels"] = pixels
    f["pixel_taps"] = pixels * kh * kw
    f["simd"] = pixels * (c / 4) * (kh * kw / 2)
    # the tap-pair loop on a sub-byte input: 21 instructions per 8 MACs against the int8 loop's 19
    f["simd_sub"] = f["simd"] if tensor_bits(graph, node.inputs[0]) < 8 else 0.0
    f["macs"] = float(rows_v * cols_v * c)
    return f


def _packed_outputs(node, graph, f: dict, written: str = "outputs") -> dict:
    """Adds the output elements written packed (the stack staging and packing per output) to counts ``f``:
    ``f[written]`` of them (``"pair_outputs"`` for a kernel that writes pixels in pairs)."""
    f["packed_outputs"] = f[written] if tensor_bits(graph, node.outputs[0]) < 8 else 0.0
    return f


_NOTE = ("set by hand from bench/packed_kernels.py on qemu-m4 (performance.md shapes 1, 2, 4, 5 at a4/a2 in and "
         "out): the int8 DSP kernels' fitted terms where the loops are theirs, the unpacking and packing terms "
         "from the differences; within about 5% on those shapes, not fitted")
CONV = Kernel("conv_packed.c.j2", _conv_access, KernelCost(
    ("calls", "outputs", "macs"), {"calls": 300.0, "outputs": 110.0, "macs": 17.5},
    _conv_counts, note=_NOTE), header="mcunn_packed.h", packed=True)
_DSP_NOTE = ("least squares (weighted by 1 / instructions) on 120 layers measured on qemu-m4 with "
             "bench/packed_kernels.py's firmware: 1x1 and 3x3 convolutions and 3x3 depthwise layers of 3x3 to "
             "16x16 pixels and 3 to 64 channels (VWW's and MNIST's per-patch regions among them) at a4>a4, a2>a2, "
             "a4>a8, a8>a4, a8>a2, a2>a4 (at 13cb940); conv within 3% on average, 9% at worst; depthwise within 4% on "
             "average, 14% at worst")
CONV_DSP = Kernel("conv_packed_dsp.c.j2", _conv_dsp_access, KernelCost(
    ("calls", "pixels", "outputs", "packed_outputs", "unpacked", "unpacked_sub", "blocks", "gathered",
     "gathered_sub"),
    {"calls": 1106.6, "pixels": 132.33, "outputs": 17.25, "packed_outputs": 1.4, "unpacked": 11.49,
     "unpacked_sub": 5.13, "blocks": 18.88, "gathered": 14.8, "gathered_sub": 13.24},
    lambda node, graph, g: _packed_outputs(node, graph, _conv_dsp_counts(node, graph, g)), note=_DSP_NOTE),
    fast=True, header="mcunn_packed.h", packed=True, replaces=(1,))
_DW_MASK_NOTE = ("; not moved with 609f03c's faster loop (24 -> 21 instructions per tap pair and 4 channels on a "
                 "sub-byte input, 3.9 fewer per group of 4 channels, 3.05 fewer per output: simd_sub 2.15, simd 22.28, "
                 "outputs 17.53 by hand), because those terms change the joint search's path on MNIST moderate "
                 "(tests/test_quantmcu_plan.py's kept-plan case) and there was no time left to re-check it: these "
                 "overestimate the packed depthwise by about 10% on performance.md shape 4")
DEPTHWISE_CONV = Kernel("depthwise_conv_packed.c.j2", _dwconv_access, KernelCost(
    ("calls", "outputs", "macs"), {"calls": 300.0, "outputs": 20.0, "macs": 50.0}, _dwconv_counts, note=_NOTE),
    header="mcunn_packed.h", packed=True)
DEPTHWISE_CONV_DSP = Kernel("depthwise_conv_packed_dsp.c.j2", _dwconv_access, KernelCost(
    ("calls", "pixels", "outputs", "pixel_taps", "simd", "simd_sub", "packed_outputs"),
    {"calls": 1107.0, "pixels": 4.04, "outputs": 20.58, "pixel_taps": 36.38, "simd": 23.15, "simd_sub": 5.15,
     "packed_outputs": 2.19},
    lambda node, graph, g: _packed_outputs(node, graph, _dwconv_counts(node, graph, g)),
    note=_DSP_NOTE + _DW_MASK_NOTE),
    fast=True, header="mcunn_packed.h", packed=True, replaces=(1, 2))

#: limits of mcu_conv_lean_dsp_a*w8_s8 (MCU_CONV_LEAN_DSP_MAX_TAPS, MCU_CONV_LEAN_DSP_MAX_PIXEL_BYTES in mcunn_packed.h)
CONV_LEAN_DSP_MAX_TAPS = 32
CONV_LEAN_DSP_MAX_PIXEL_BYTES = 128


def conv_lean_dsp_problem(kh: int, kw: int, cin: int, in_bits: int) -> str | None:
    """Why ``mcu_conv_lean_dsp_a*w8_s8`` (the scratch-free SIMD32 conv) cannot run a groups-1 layer (None: it can):
    C_in a multiple of 4 (each 4-block of a window in one pixel), at most 32 taps, one pixel at most 128 bytes."""
    if cin < 4 or cin % 4:
        return f"{cin} input channels are not a multiple of 4"
    if kh * kw > CONV_LEAN_DSP_MAX_TAPS:
        return f"{kh}x{kw} window: more than {CONV_LEAN_DSP_MAX_TAPS} taps"
    if pixel_bytes(cin, in_bits) > CONV_LEAN_DSP_MAX_PIXEL_BYTES:
        return f"{cin} input channels at {in_bits} bits: a pixel over {CONV_LEAN_DSP_MAX_PIXEL_BYTES} bytes"
    return None


def conv_lean_dsp_weights(weights: np.ndarray, in_bits: int) -> np.ndarray:
    """Weights of ``mcu_conv_lean_dsp_a*w8_s8`` from OHWI [C_out, KH, KW, C_in] (C_in % 4 == 0): "quads" (4 output
    channels per 4-block of the window, ``fast_layout.interleave_channels``), each block's middle weights exchanged
    for a sub-byte input (its lanes are natural pairs (x0, x1), (x2, x3)), in natural order for int8 (SXTB16's
    (x0, x2), (x1, x3))."""
    w = np.asarray(weights)
    return fast_layout.interleave_channels(w.reshape(w.shape[0], -1), 4, swap=in_bits < 8)


def _conv_lean_dsp_constants(weights: np.ndarray, bias: np.ndarray | None, lane_offset: int,
                             in_bits: int) -> fast_layout.FastConstants:
    name = "mcu_conv_lean_dsp_a8w8_s8" if in_bits == 8 else "mcu_conv_lean_dsp_a4w8_s8 / _a2w8"
    return fast_layout.FastConstants(name, conv_lean_dsp_weights(weights, in_bits),
                                     fast_layout.fold_input_offset(bias, weights, lane_offset), 0)


def conv_lean_dsp_constants(weights: np.ndarray, bias: np.ndarray | None,
                            lane_offset: int) -> fast_layout.FastConstants:
    """Weights ("quads, swapped") and bias of ``mcu_conv_lean_dsp_a4w8_s8`` / ``_a2w8``: its lanes hold x + 2^(b-1)
    (offset binary), so ``lane_offset`` = input offset - 2^(b-1) is folded in (the caller passes it)."""
    return _conv_lean_dsp_constants(weights, bias, lane_offset, 4)


def conv_lean_dsp_a8_constants(weights: np.ndarray, bias: np.ndarray | None,
                               input_offset: int) -> fast_layout.FastConstants:
    """Weights ("quads", natural order) and bias (the input offset folded in) of ``mcu_conv_lean_dsp_a8w8_s8``."""
    return _conv_lean_dsp_constants(weights, bias, input_offset, 8)


def _conv_lean_dsp_access(args: KernelArgs):
    """mcu_conv_lean_dsp_a*w8_s8: as mcu_conv_a*w8_s8 with groups 1, weights C_out * K ("quads"), folded bias C_out
    entries, no scratch (ctx not read)."""
    filt = args.graph.tensors[args.node.inputs[1]].shape
    in_d, out_d = args.in_dims[0], args.out_dims
    contract = _bits_contract(args)
    if args.context["groups"] != 1 or len(filt) != 4 or filt[3] != in_d[3] or filt[0] != out_d[3]:
        contract.append(f"filter {list(filt)} does not fit input {list(in_d)} / output {list(out_d)} (groups 1)")
    else:
        why = conv_lean_dsp_problem(filt[1], filt[2], filt[3], args.context["in_bits"])
        if why is not None:
            contract.append(f"filter {list(filt)}: {why}")
    return _io_access(args, prod(filt), args.array("weights"), args.array("bias")), contract


def _conv_lean_dsp_counts(node, graph, g):
    """Per output pixel its tap pointers (``pixel_taps``); per 4 output channels of a pixel each tap's loop set-up
    (``quad_taps``) and each 4-block (``quad_blocks``: its unpacking, 4 weight words, 8 SMLAD); the last C_out % 4
    channels per block in C (``tail_blocks``); the output stage by pixel pairs (``pair_outputs``: a last single pixel
    is requantized twice)."""
    f = base_counts(node, graph, g)
    c_out, kh, kw, c_in = graph.tensors[node.inputs[1]].shape
    pixels = float(g.out_h * g.out_w)
    blocks = kh * kw * c_in / 4
    quads, tail = c_out // 4, c_out % 4
    f["pixels"] = pixels
    f["pixel_taps"] = pixels * kh * kw
    f["quad_taps"] = pixels * quads * kh * kw
    f["quad_blocks"] = pixels * quads * blocks
    f["quad_blocks_sub"] = f["quad_blocks"] if tensor_bits(graph, node.inputs[0]) < 8 else 0.0
    f["tail_blocks"] = pixels * tail * blocks
    f["pair_outputs"] = float(-(-int(pixels) // 2) * 2 * c_out)
    f["macs"] = pixels * c_out * kh * kw * c_in
    return f


_LEAN_DSP_NOTE = ("least squares (non-negative, weighted by 1 / instructions) over a sweep measured on qemu-m4 with "
                  "bench/packed_kernels.py --board qemu-m4 --fit (1x1 and 3x3 convolutions of 1x1 to 12x12 output "
                  "pixels, C_in 4 to 32, C_out 3 to 36, strides 1 and 2, at a4>a4, a2>a2, a4>a8, a8>a4, a8>a2, "
                  "a2>a8; 624 layers, every output equal to the simulator's): within 4.0% on average, 18.5% at "
                  "worst (the hand-set terms before: 23%, 61%)")
#: the scratch-free SIMD32 conv: taken when a layer must run without scratch (KernelTarget.lean / lean_layers)
CONV_LEAN_DSP = Kernel("conv_lean_packed_dsp.c.j2", _conv_lean_dsp_access, KernelCost(
    ("calls", "pixels", "pixel_taps", "quad_taps", "quad_blocks", "quad_blocks_sub", "tail_blocks", "pair_outputs",
     "packed_outputs"),
    {"calls": 518.1, "pixels": 250.3, "pixel_taps": 25.66, "quad_taps": 4.529, "quad_blocks": 24.5,
     "quad_blocks_sub": 3.499, "tail_blocks": 14.58, "pair_outputs": 18.96, "packed_outputs": 3.707},
    lambda node, graph, g: _packed_outputs(node, graph, _conv_lean_dsp_counts(node, graph, g), "pair_outputs"),
    note=_LEAN_DSP_NOTE), fast=True, header="mcunn_packed.h", packed=True, replaces=(1, 2))


# --- the MVE (Helium) versions: runtime_c/include/mcunn_packed_mve.h ----------------------------------------

def conv_mve_scratch_bytes(kh: int, kw: int, cin: int, cout: int, out_bits: int) -> int:
    """``mcu_conv_mve_get_buffer_size_packed``: none for a 1x1 window on at most 16 input channels (the direct
    pointwise path: each pixel unpacked into one register), else two int8 windows (2 * KH * KW * C_in) and, for a
    packed output, two int8 output rows (2 * C_out) packed at the store."""
    if conv_mve_direct(kh, kw, cin):
        return 0
    return 2 * kh * kw * cin + (0 if out_bits == 8 else 2 * cout)


#: the windowed direct path of mcu_conv_mve_a*w8_s8 (PM_DC_MAX_CIN, PM_DC_MAX_BLOCKS in mcunn_packed_mve.c)
CONV_MVE_DIRECT_MAX_CIN = 64
CONV_MVE_DIRECT_MAX_BLOCKS = 64


def conv_mve_direct(kh: int, kw: int, cin: int) -> bool:
    """Whether ``mcu_conv_mve_a*w8_s8`` always runs a layer on its direct pointwise path (1x1 on 1 <= C_in <= 16:
    each pixel unpacked into one register, no im2col, no scratch)."""
    return kh == 1 and kw == 1 and 1 <= cin <= 16


def conv_mve_scratch_free(kh: int, kw: int, cin: int) -> bool:
    """``mcu_conv_mve_scratch_free_packed``: whether ``mcu_conv_mve_a*w8_s8`` runs the layer without scratch -- the
    direct pointwise path, or (given less than the im2col scratch) the windowed direct path on C_in a multiple of 16
    up to 64 with KH * KW * C_in / 16 <= 64 blocks (each 16-block of a window unpacked into a register per 4 output
    channels; 1.4-1.7x the im2col path's instructions, for layers that must run without scratch)."""
    if conv_mve_direct(kh, kw, cin):
        return True
    return (cin % 16 == 0 and 16 <= cin <= CONV_MVE_DIRECT_MAX_CIN
            and 1 <= kh * kw * (cin // 16) <= CONV_MVE_DIRECT_MAX_BLOCKS)


def dwconv_mve_scratch_bytes(channels: int, in_bits: int) -> int:
    """``mcu_dwconv_mve_get_buffer_size_packed``: one pixel of input zero points, P(C, in bits) bytes."""
    return pixel_bytes(channels, in_bits)


def dwconv_mve_constants(weights: np.ndarray, bias: np.ndarray | None, input_offset: int) -> mve_layout.MveConstants:
    """Weights ("16-blocks", ``mve_layout.dwconv_weights``) and bias of ``mcu_dwconv_mve_a*w8_s8``: the input offset
    folded in, in channel order, C entries (its lanes hold the raw values, whatever their bits)."""
    w = np.asarray(weights)
    c = w.shape[-1]
    folded = fast_layout.fold_input_offset(bias, np.moveaxis(w.reshape(-1, c), -1, 0), input_offset)
    return mve_layout.MveConstants("mcu_dwconv_mve_a*w8_s8", mve_layout.dwconv_weights(w), folded.astype(np.int32), 0)


def _conv_mve_access(args: KernelArgs):
    """mcu_conv_mve_a*w8_s8: as mcu_conv_a*w8_s8 with groups 1, weights C_out * K ("quads"), folded bias C_out
    entries, scratch mcu_conv_mve_get_buffer_size_packed (two int8 windows, then two int8 output rows for a packed
    output; all written; none on the direct pointwise path)."""
    filt = args.graph.tensors[args.node.inputs[1]].shape
    in_d, out_d = args.in_dims[0], args.out_dims
    contract = _bits_contract(args)
    if args.context["groups"] != 1 or len(filt) != 4 or filt[3] != in_d[3] or filt[0] != out_d[3]:
        contract.append(f"filter {list(filt)} does not fit input {list(in_d)} / output {list(out_d)} (groups 1)")
    need = conv_mve_scratch_bytes(filt[1], filt[2], in_d[3], out_d[3], args.context["out_bits"])
    if need > 0 and (args.scratch is None or args.scratch_bytes < need):
        contract.append(f"scratch of {args.scratch_bytes} B passed, the kernel needs {need} B")
    acc = _io_access(args, prod(filt), args.array("weights"), args.array("bias"))
    if need > 0 and args.scratch is not None and in_d[0] * out_d[1] * out_d[2]:
        acc.append(write(args.scratch, need, "scratch"))
    return acc, contract


def _conv_lean_mve_access(args: KernelArgs):
    """mcu_conv_mve_a*w8_s8 without scratch (NULL context) on a layer ``conv_mve_scratch_free`` accepts: as
    _conv_mve_access, no scratch read or written."""
    filt = args.graph.tensors[args.node.inputs[1]].shape
    in_d, out_d = args.in_dims[0], args.out_dims
    contract = _bits_contract(args)
    if args.context["groups"] != 1 or len(filt) != 4 or filt[3] != in_d[3] or filt[0] != out_d[3]:
        contract.append(f"filter {list(filt)} does not fit input {list(in_d)} / output {list(out_d)} (groups 1)")
    if len(filt) == 4 and not conv_mve_scratch_free(filt[1], filt[2], filt[3]):
        contract.append(f"filter {list(filt)}: mcu_conv_mve_a*w8_s8 needs scratch for it")
    return _io_access(args, prod(filt), args.array("weights"), args.array("bias")), contract


def _dwconv_mve_access(args: KernelArgs):
    """mcu_dwconv_mve_a*w8_s8: channel multiplier 1, <= 64 taps, "16-blocks" weights, folded bias C entries,
    scratch of one zero-point pixel (P(C, in bits) bytes, written once per call)."""
    filt = args.graph.tensors[args.node.inputs[1]].shape
    in_d, out_d = args.in_dims[0], args.out_dims
    contract = _bits_contract(args)
    why = mve_layout.dwconv_problem((filt[0], filt[1]), args.context["ch_mult"])
    if why:
        contract.append(why)
    if in_d[3] != out_d[3] or filt[-1] != out_d[3]:
        contract.append(f"channels: input {in_d[3]}, output {out_d[3]}, filter {list(filt)} (multiplier 1)")
    need = dwconv_mve_scratch_bytes(in_d[3], args.context["in_bits"])
    if args.scratch is None or args.scratch_bytes < need:
        contract.append(f"scratch of {args.scratch_bytes} B passed, the kernel needs {need} B")
    acc = _io_access(args, prod(filt), args.array("weights"), args.array("bias"))
    if args.scratch is not None:
        acc.append(write(args.scratch, need, "scratch"))
    return acc, contract


def _conv_mve_counts(node, graph, g):
    """The im2col path: every tap of every output pixel unpacked into im2col (the zero point for taps outside), 2
    pixels x 4 channels per block of the int8 matrix core, a packed output packed per pixel; the direct pointwise
    path (1x1 on C_in <= 16): per pixel its unpacking, per 4 channels of 2 pixels (``pw_quads``) 4 weight loads, 8
    VMLADAVA and the output stage."""
    f = base_counts(node, graph, g)
    c_out, kh, kw, c_in = graph.tensors[node.inputs[1]].shape
    pixels = float(g.out_h * g.out_w)
    direct = conv_mve_direct(kh, kw, c_in)
    f["pixels"] = 0.0 if direct else pixels
    f["macs"] = 0.0 if direct else pixels * c_out * kh * kw * c_in
    f["unpacked"] = 0.0 if direct else pixels * kh * kw * c_in  # im2col: unpacked (a4, a2) or copied (a8)
    f["unpacked_a2"] = f["unpacked"] if tensor_bits(graph, node.inputs[0]) == 2 else 0.0
    # C_out a multiple of 16 runs pm_pw_fast (its own terms: per pixel, per 4 channels of 2 pixels); others the
    # generic direct loop
    fast = direct and c_out % 16 == 0
    quads = float(-(-int(pixels) // 2) * -(-c_out // 4))
    f["pw_pixels"] = pixels if direct and not fast else 0.0
    f["pw_quads"] = quads if direct and not fast else 0.0
    f["pw16_pixels"] = pixels if fast else 0.0
    f["pw16_quads"] = quads if fast else 0.0
    return f


def _conv_lean_mve_counts(node, graph, g):
    """The windowed direct path: per pixel its block pointers (``window_blocks``: one per 16 values of the window),
    per 4 channels of 2 pixels and 16-block (``block_quads``) the block's unpacking and 4 weight loads and 8
    VMLADAVA, per 4 channels of 2 pixels the output stage (``quads``)."""
    f = base_counts(node, graph, g)
    c_out, kh, kw, c_in = graph.tensors[node.inputs[1]].shape
    pixels = float(g.out_h * g.out_w)
    blocks = kh * kw * -(-c_in // 16)
    quads = float(-(-int(pixels) // 2) * -(-c_out // 4))
    f["pixels"] = pixels
    f["window_blocks"] = pixels * blocks
    f["quads"] = quads
    f["block_quads"] = quads * blocks
    f["block_quads_sub"] = f["block_quads"] if tensor_bits(graph, node.inputs[0]) < 8 else 0.0
    f["macs"] = pixels * c_out * kh * kw * c_in
    return f


def _dwconv_mve_counts(node, graph, g):
    """16 channels per block and tap (every tap: the zero-point pixel outside), one output stage per block; a 3x3
    layer's last 8 channels when C % 16 = 8 as a half block (int16 lanes, two pixels per weight load, any input
    width: ``halves`` per pixel, ``half_taps`` per pixel and tap)."""
    f = base_counts(node, graph, g)
    kh, kw, c = graph.tensors[node.inputs[1]].shape
    pixels = float(g.out_h * g.out_w)
    # 8 channels, 3x3, dilation 1: pm_dw8_run (two pixels per weight load, no tap pointers; its own per-pixel term)
    dw8 = (kh, kw) == (3, 3) and c == 8 and tuple(node.attrs.window.dilation) == (1, 1)
    half = (kh, kw) == (3, 3) and c % 16 == 8 and not dw8
    blocks = float(-(-c // 16) - (1 if half or dw8 else 0))
    f["dw8_pixels"] = pixels if dw8 else 0.0
    f["pixels"] = 0.0 if dw8 else pixels
    f["blocks"] = pixels * blocks
    f["block_taps"] = pixels * blocks * kh * kw
    # 2-bit fields take two more ALU instructions per tap; int8 inputs widen every tap into int32 and run one pixel
    # at a time (sub-byte 3x3 layers: two, sharing the weight loads)
    in_bits = tensor_bits(graph, node.inputs[0])
    f["block_taps_a2"] = f["block_taps"] if in_bits == 2 else 0.0
    f["block_taps_a8"] = f["block_taps"] if in_bits == 8 else 0.0
    f["halves"] = pixels if half else 0.0
    f["half_taps"] = pixels * 9 if half else 0.0
    f["half_taps_a2"] = f["half_taps"] if in_bits == 2 else 0.0
    f["dw8_pixels_sub"] = f["dw8_pixels"] if in_bits < 8 else 0.0
    f["macs"] = pixels * kh * kw * c
    return f


_MVE_NOTE = ("least squares (weighted by 1 / instructions) over a sweep measured on qemu-m55 with bench/packed_kernels.py "
             "--board qemu-m55 --fit (1x1 and 3x3 convolutions and 3x3 depthwise layers of 1x1 to 12x12 output pixels and "
             "8 to 64 channels, QuantMCU's VWW and MNIST per-patch regions among them, at a4>a4, a2>a2, a4>a8, a8>a4, "
             "a8>a2, a2>a8; 480 layers, after the 8-channel depthwise runs and the pointwise 16-channel blocks): conv "
             "within 7.5% on average (25.8% at worst), the scratch-free conv 7.1% (23.8%), depthwise 2.9% (9.2%)")
CONV_MVE = Kernel("conv_packed_mve.c.j2", _conv_mve_access, KernelCost(
    ("calls", "pixels", "outputs", "packed_outputs", "unpacked", "unpacked_a2", "macs", "pw_pixels", "pw_quads",
     "pw16_pixels", "pw16_quads"),
    {"calls": 578.4, "pixels": 228.2, "outputs": 5.301, "packed_outputs": 0.3604, "unpacked": 0.291,
     "unpacked_a2": 0.1758, "macs": 0.1705, "pw_pixels": 51.57, "pw_quads": 53.37, "pw16_pixels": 54.96,
     "pw16_quads": 21.51},
    lambda node, graph, g: _packed_outputs(node, graph, _conv_mve_counts(node, graph, g)), note=_MVE_NOTE),
    fast=True, header="mcunn_packed_mve.h", packed=True, replaces=(1, 2))
#: the same function without scratch (a NULL context) on a layer only its windowed direct path can run so (C_in a
#: multiple of 16 up to 64): taken when the layer must go scratch-free (KernelTarget.lean / lean_layers)
CONV_LEAN_MVE = Kernel("conv_lean_packed_mve.c.j2", _conv_lean_mve_access, KernelCost(
    ("calls", "pixels", "outputs", "packed_outputs", "window_blocks", "quads", "block_quads", "block_quads_sub"),
    {"calls": 366.4, "pixels": 75.59, "outputs": 14.71, "packed_outputs": 1.82, "window_blocks": 31.77, "quads": 0.0,
     "block_quads": 17.14, "block_quads_sub": 7.219},
    lambda node, graph, g: _packed_outputs(node, graph, _conv_lean_mve_counts(node, graph, g)), note=_MVE_NOTE),
    fast=True, header="mcunn_packed_mve.h", packed=True, replaces=(1, 2))
DEPTHWISE_CONV_MVE = Kernel("depthwise_conv_packed_mve.c.j2", _dwconv_mve_access, KernelCost(
    ("calls", "pixels", "blocks", "block_taps", "block_taps_a2", "block_taps_a8", "halves", "half_taps",
     "half_taps_a2", "dw8_pixels", "dw8_pixels_sub"),
    {"calls": 985.1, "pixels": 106.6, "blocks": 0.0, "block_taps": 25.52, "block_taps_a2": 1.821, "block_taps_a8": 6.08,
     "halves": 0.0, "half_taps": 21.87, "half_taps_a2": 2.573, "dw8_pixels": 127.5, "dw8_pixels_sub": 31.9},
    _dwconv_mve_counts, note=_MVE_NOTE),
    fast=True, header="mcunn_packed_mve.h", packed=True, replaces=(1, 2))


def _mve_conv_call(node: Node, graph: Graph, target: KernelTarget, ctx: dict, bits: tuple[int, int],
                   fast_constants):
    """The MVE packed conv call, or None when it does not apply (groups; scratch under ``lean`` for a layer the
    scratch-free paths do not take)."""
    if target.mve_problem() is not None or mve_layout.conv_problem(node.attrs.groups) is not None:
        return None
    w = graph.tensors[node.inputs[1]].data
    need = conv_mve_scratch_bytes(*w.shape[1:], w.shape[0], bits[1])
    lean = target.scratch_problem(need, "MVE", node.outputs[0]) is not None
    if lean and not conv_mve_scratch_free(*w.shape[1:]):
        return None
    bias = graph.tensors[node.inputs[2]].data if len(node.inputs) > 2 and node.inputs[2] else None
    fc = fast_constants(mve_layout.conv_constants, w, bias, node.params.input_offset)
    ctx.update(weights=fc.weights, bias=fc.bias, function=function_name("conv", bits[0], "mve"))
    if lean:
        # no scratch to spare: the windowed direct path (the same function, a NULL context)
        return CONV_LEAN_MVE.call(ctx)
    return CONV_MVE.call(ctx, scratch_bytes=need)


def _mve_depthwise_call(node: Node, graph: Graph, target: KernelTarget, ctx: dict, bits: tuple[int, int],
                        fast_constants):
    """The MVE packed depthwise call, or None when it does not apply (multiplier, window)."""
    if target.mve_problem() is not None or mve_layout.dwconv_problem(node.attrs.window.kernel, ctx["ch_mult"]):
        return None
    w = graph.tensors[node.inputs[1]].data
    bias = graph.tensors[node.inputs[2]].data if len(node.inputs) > 2 and node.inputs[2] else None
    fc = fast_constants(dwconv_mve_constants, w, bias, node.params.input_offset)
    ctx.update(weights=fc.weights, bias=fc.bias, dsp=False, function=function_name("dwconv", bits[0], "mve"))
    cin = graph.tensors[node.inputs[0]].shape[-1]
    return DEPTHWISE_CONV_MVE.call(ctx, scratch_bytes=dwconv_mve_scratch_bytes(cin, bits[0]))


def _dsp_why(target: KernelTarget) -> str | None:
    # the M55 has the DSP extension too: a layer its MVE kernels do not take runs the SIMD32 ones
    if target.kernels == "portable":
        return "--kernels portable"
    if target.board is None:
        return "no board given (portable kernels)"
    if not target.board.dsp:
        return f"no DSP extension on {target.board.core}"
    return None


def conv_call(node: Node, graph: Graph, target: KernelTarget, ctx: dict, bits: tuple[int, int], fast_constants):
    """The packed kernel call of a conv2d layer reading or writing a sub-byte map (``bits``: in, out).
    ``fast_constants``: conv.py's cached ``fast_layout`` constants (one layout per weights array)."""
    in_bits, out_bits = bits
    ctx.update(in_bits=in_bits, out_bits=out_bits)
    call = _mve_conv_call(node, graph, target, ctx, bits, fast_constants)
    if call is not None:
        return call
    why = _dsp_why(target) or fast_layout.conv_problem(node.attrs.groups)
    if why is None:
        w = graph.tensors[node.inputs[1]].data
        need = conv_dsp_scratch_bytes(*w.shape[1:])
        why = target.scratch_problem(need, layer=node.outputs[0])
        if why is None:
            fc = fast_constants(fast_layout.conv_constants, w, None, node.params.input_offset)
            ctx.update(weights=fc.weights, function=function_name("conv", in_bits, True))
            return CONV_DSP.call(ctx, scratch_bytes=need)
        lean_why = conv_lean_dsp_problem(*w.shape[1:], in_bits)
        if lean_why is None:
            # no scratch to spare: the scratch-free SIMD32 conv (its own weight order, the offset in the bias)
            bias = graph.tensors[node.inputs[2]].data if len(node.inputs) > 2 and node.inputs[2] else None
            if in_bits == 8:
                fc = fast_constants(conv_lean_dsp_a8_constants, w, bias, node.params.input_offset)
            else:
                fc = fast_constants(conv_lean_dsp_constants, w, bias,
                                    node.params.input_offset - (1 << (in_bits - 1)))
            ctx.update(weights=fc.weights, bias=fc.bias, function=function_name("conv", in_bits, "lean_dsp"))
            return CONV_LEAN_DSP.call(ctx)
        why = f"{why} (mcu_conv_lean_dsp_a{in_bits}w8_s8: {lean_why})"
    ctx.update(function=function_name("conv", in_bits, False))
    return CONV.call(ctx, reason=f"{why} ({ctx['function']}: portable packed kernel)")


def depthwise_call(node: Node, graph: Graph, target: KernelTarget, ctx: dict, bits: tuple[int, int],
                   fast_constants):
    """The packed kernel call of a depthwise layer reading or writing a sub-byte map (``bits``: in, out)."""
    in_bits, out_bits = bits
    ctx.update(in_bits=in_bits, out_bits=out_bits)
    call = _mve_depthwise_call(node, graph, target, ctx, bits, fast_constants)
    if call is not None:
        return call
    why = _dsp_why(target) or fast_layout.dwconv_problem(node.attrs.window.kernel, ctx["ch_mult"])
    if why is None:
        w = graph.tensors[node.inputs[1]].data
        bias = graph.tensors[node.inputs[2]].data if len(node.inputs) > 2 and node.inputs[2] else None
        # fast_layout.dwconv_constants folds (offset - 2^(b-1)): the lanes are offset binary (dwconv_dsp_bias)
        lane_bias = 0 if in_bits == 8 else 1 << (in_bits - 1)
        fc = fast_constants(fast_layout.dwconv_constants, w, bias, node.params.input_offset - lane_bias)
        ctx.update(weights=fc.weights, bias=fc.bias, dsp=True, function=function_name("dwconv", in_bits, True))
        cin = graph.tensors[node.inputs[0]].shape[-1]
        return DEPTHWISE_CONV_DSP.call(ctx, scratch_bytes=dwconv_dsp_scratch_bytes(cin, in_bits))
    ctx.update(dsp=False, function=function_name("dwconv", in_bits, False))
    return DEPTHWISE_CONV.call(ctx, reason=f"{why} ({ctx['function']}: portable packed kernel)")



# --- pooling, add, pad and lookup on packed maps (portable: per element, no MACs to speed up) ---------------

def _pool_access(args: KernelArgs):
    """mcu_max_pool_packed_s8 / mcu_avg_pool_packed_s8: input within input_dims at P(C, bits) bytes per pixel,
    output [N, OH, OW] x P(C, bits) (the output keeps the input's bits)."""
    win, bits = args.context["window"], args.context["bits"]
    in_d, out_d = args.in_dims[0], args.out_dims
    contract = [] if bits in BITS else [f"{bits}-bit map: the packed kernels take {list(BITS)} bits"]
    if args.context["average"] and in_d[0] > 0 and in_d[3] > 0 and out_d[1] > 0 and out_d[2] > 0:
        for axis, (size, count) in enumerate(((in_d[1], out_d[1]), (in_d[2], out_d[2]))):
            k, st, pad = win.kernel[axis], win.stride[axis], args.pads[axis]
            if any(not max(0, pad - o * st) < min(k, size - (o * st - pad)) for o in range(count)):
                contract.append(f"average-pool windows along {'HW'[axis]} cover no input")
    return [
        read(args.inputs[0], window_extent(_packed_dims(in_d, bits), out_d, win.kernel, win.stride, (1, 1),
                                           args.pads), "input"),
        write(args.output, in_d[0] * out_d[1] * out_d[2] * pixel_bytes(in_d[3], bits), "output"),
    ], contract


def _pool_counts(node, graph, g):
    f = base_counts(node, graph, g)
    rows_v, cols_v = window_taps(node, g)
    f["taps"] = float(rows_v * cols_v * graph.tensors[node.outputs[0]].shape[-1])
    return f


def _add_access(args: KernelArgs):
    """mcu_add_packed_s8: both inputs and the output with equal dims (no broadcasting), each at its own bits."""
    if args.patched:
        d1, d2, out_d = args.in_dims[0], args.in_dims[1], args.out_dims
    else:
        d1, d2, out_d = args.context["in1_dims"], args.context["in2_dims"], args.context["out_dims"]
    b1, b2, bo = args.context["bits"]
    contract = [f"input dims {list(d)} differ from the output's {list(out_d)} (the packed add does not broadcast)"
                for d in (d1, d2) if tuple(d) != tuple(out_d)]
    contract += [f"{b}-bit operand: the packed kernels take {list(BITS)} bits" for b in (b1, b2, bo) if b not in BITS]
    return [read(args.inputs[0], prod(d1[:3]) * pixel_bytes(d1[3], b1), "input 1"),
            read(args.inputs[1], prod(d2[:3]) * pixel_bytes(d2[3], b2), "input 2"),
            write(args.output, prod(out_d[:3]) * pixel_bytes(out_d[3], bo), "output")], contract


def _pad_access(args: KernelArgs):
    """mcu_pad_packed_s8: fills the whole output, copies the input at ``before`` (N, H, W only; channels equal)."""
    bits = args.context["bits"]
    if args.patched:
        in_d, out_d, before = args.in_dims[0], args.out_dims, (0, args.pads[0], args.pads[1], 0)
    else:
        in_d, out_d, before = args.context["in_shape"], args.context["out_shape"], args.context["before"]
    contract = [] if all(b >= 0 and b + i <= o for b, i, o in zip(before, in_d, out_d)) else [
        f"input {list(in_d)} at {list(before)} leaves the output {list(out_d)}"]
    if before[3] != 0 or in_d[3] != out_d[3]:
        contract.append("a packed map is padded along N, H and W only (channels equal, no channel padding)")
    return [read(args.inputs[0], prod(in_d[:3]) * pixel_bytes(in_d[3], bits), "input"),
            write(args.output, prod(out_d[:3]) * pixel_bytes(out_d[3], bits), "output")], contract


def _lut_access(args: KernelArgs):
    """mcu_lut_packed_s8: equal dims in and out, a table of 2^in_bits entries indexed by x - qmin."""
    bi, bo = args.context["in_bits"], args.context["out_bits"]
    in_d, out_d = args.in_dims[0], args.out_dims
    contract = [] if tuple(in_d) == tuple(out_d) else [f"input dims {list(in_d)} differ from the output's {list(out_d)}"]
    return [read(args.inputs[0], prod(in_d[:3]) * pixel_bytes(in_d[3], bi), "input"),
            read(args.array("table"), 1 << bi, "table"),
            write(args.output, prod(out_d[:3]) * pixel_bytes(out_d[3], bo), "output")], contract


def _pad_counts(node, graph, g):
    f = base_counts(node, graph, g)
    f["rows"] = float(g.in_h)
    return f


_BY_HAND = "set by hand from the portable loops (one unpack, op and pack per element), not measured"
MAX_POOL = Kernel("max_pool_packed.c.j2", _pool_access, KernelCost(
    ("calls", "outputs", "taps"), {"calls": 160.0, "outputs": 40.0, "taps": 22.0}, _pool_counts, note=_BY_HAND),
    header="mcunn_packed.h", packed=True)
AVG_POOL = Kernel("avg_pool_packed.c.j2", _pool_access, KernelCost(
    ("calls", "outputs", "taps"), {"calls": 160.0, "outputs": 60.0, "taps": 22.0}, _pool_counts, note=_BY_HAND),
    header="mcunn_packed.h", packed=True)
PAD = Kernel("pad_packed.c.j2", _pad_access, KernelCost(
    ("calls", "outputs", "rows"), {"calls": 200.0, "outputs": 3.0, "rows": 40.0}, _pad_counts, note=_BY_HAND),
    header="mcunn_packed.h", packed=True)
LUT = Kernel("lut_packed.c.j2", _lut_access, KernelCost(
    ("calls", "outputs"), {"calls": 120.0, "outputs": 25.0}, base_counts, note=_BY_HAND), header="mcunn_packed.h", packed=True)


def pool_call(ctx: dict, bits: int, average: bool):
    """The packed pooling call for a ``bits``-bit map (the output keeps the input's bits)."""
    ctx.update(bits=bits, average=average)
    return (AVG_POOL if average else MAX_POOL).call(ctx, reason=f"{bits}-bit packed map: portable packed pooling")


def _add_runs(node, graph, g):
    """The fast packed adds' runs: one per pixel when an operand's pixel has padding bits, else runs of 128 values
    (``ADD_RUN``) over the whole region."""
    f = base_counts(node, graph, g)
    c = as_nhwc(tuple(graph.tensors[node.outputs[0]].shape))[3]
    flat = all((c * tensor_bits(graph, t)) % 8 == 0 for t in (node.inputs[0], node.inputs[1], node.outputs[0]))
    pixels = float(g.out_h * g.out_w)
    f["runs"] = float(-(-int(pixels * c) // ADD_RUN)) if flat else pixels * -(-c // ADD_RUN)
    return f


#: values per run of the packed adds (MCU_PACKED_ADD_RUN in mcunn_packed_support.h)
ADD_RUN = 128


def _add_table_access(args: KernelArgs):
    """mcu_add_table_packed_s8: as the packed add, plus its two term tables (2^bits int32 entries each)."""
    access, contract = _add_access(args)
    b1, b2, _ = args.context["bits"]
    return access + [read(args.array("terms1"), 4 << b1, "input 1 terms"),
                     read(args.array("terms2"), 4 << b2, "input 2 terms")], contract


def _table_add(template: str, per_output: float, note: str, header: str = "mcunn_packed.h") -> Kernel:
    """A table packed add (``mcu_packed_add_table`` in mcunn_packed_support.h: per run two unpacks, per value two
    table loads and the output's requantization, a pack)."""
    return Kernel(template, _add_table_access, KernelCost(
        ("calls", "outputs", "runs"), {"calls": 150.0, "outputs": per_output, "runs": 90.0}, _add_runs, note=note),
        fast=True, header=header, packed=True)


ADD_TABLE_DSP = _table_add("add_packed_table_dsp.c.j2", 27.0,
                           "set by hand from MobileNetV2's a8 + a8 -> a4 add on qemu-m4 (tight budget, input by patch, "
                           "6x6 patches: 5,210,040 instructions with the SIMD32 add at 61 per output, 3,514,480 with "
                           "this one; its loop is 15 instructions per value), not fitted")
ADD_TABLE_MVE = _table_add("add_packed_table_mve.c.j2", 14.0,
                           "set by hand from MobileNetV2's a8 + a8 -> a4 add on qemu-m55 (tight budget, input by patch, "
                           "6x6 patches: 1,503,250 instructions with the MVE add of int8 runs at 15 per output, "
                           "1,248,843 with this one), not fitted", "mcunn_packed_mve.h")
ADD_TABLE = _table_add("add_packed_table.c.j2", 40.0, "set by hand from the loop (two loads and mcu_requantize per "
                       "value, an unpack and a pack), not measured")


def add_call(ctx: dict, bits: tuple[int, int, int], terms: tuple[np.ndarray, np.ndarray],
             target: KernelTarget | None = None):
    """The packed add call: ``bits`` of input 1, input 2 and the output; ``terms`` each input's rescaled values
    (``elementwise.add_terms``: 2^bits int32 each, in flash), so the device requantizes only the sum: on a core with
    MVE 4 values per step with gathered terms (``mcu_add_table_mve_packed_s8``), else with the DSP extension as one
    SMLAL per value (``mcu_add_table_dsp_packed_s8``), else in portable C (``mcu_add_table_packed_s8``)."""
    ctx.update(bits=bits, terms1=np.asarray(terms[0], np.int32), terms2=np.asarray(terms[1], np.int32))
    if target is not None and target.mve_problem() is None:
        return ADD_TABLE_MVE.call(ctx)
    why = "no kernel target given" if target is None else _dsp_why(target)
    if why is None:
        return ADD_TABLE_DSP.call(ctx)
    return ADD_TABLE.call(ctx, reason=f"{why} (a{bits[0]} + a{bits[1]} -> a{bits[2]}: portable table add)")


def pad_call(ctx: dict, bits: int):
    ctx.update(bits=bits)
    return PAD.call(ctx, reason=f"{bits}-bit packed map: portable packed pad")


def lut_call(ctx: dict, in_bits: int, out_bits: int):
    ctx.update(in_bits=in_bits, out_bits=out_bits)
    return LUT.call(ctx, reason=f"a{in_bits} -> a{out_bits}: portable packed lookup")


#: ops with kernels for packed 4- / 2-bit maps (pack / unpack convert int8 <-> packed, ops/pack.py)
PACKED_OPS = ("conv2d", "depthwise_conv2d", "max_pool2d", "avg_pool2d", "add", "pad", "unary", "pack", "unpack")


def packed_problem(node: Node, graph: Graph) -> str | None:
    """Why ``node`` cannot read or write a packed 4- or 2-bit map (None: it can, with the kernels of this module).

    A precision search asks this before it lowers a map: every producer and consumer of the map must say None.
    """
    if node.op not in PACKED_OPS:
        return f"{node.op} has no kernel for packed 4- / 2-bit maps (its kernel reads and writes int8)"
    if node.op == "add":
        shapes = {tuple(graph.tensors[t].shape) for t in (*node.inputs, node.outputs[0])}
        if len(shapes) > 1:
            return "the packed add does not broadcast (operands and output must have equal shapes)"
    if node.op == "pad":
        pads = node.attrs.pads
        if len(pads) == 4 and pads[3] != (0, 0):
            return "a packed map is padded along N, H and W only, not along the channels"
    return None
