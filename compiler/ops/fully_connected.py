"""Fully connected (Gemm / MatMul with constant weights): y[..., Cout] = x[..., K] @ W[Cout, K]^T + b.

Kernels: the portable ``mcu_fully_connected_s8``, and on cores with the DSP extension (unless ``--kernels
portable``) the SIMD32 ``mcu_fully_connected_dsp_s8`` (no scratch) with its weights laid out and the input offset
folded into its bias at compile time (``fast_layout.fully_connected_constants``; the filter offset is always 0:
weights are symmetric). On cores
with MVE (Cortex-M55) ``mcu_fully_connected_mve_s8`` comes first ("quads" weights and folded bias from
``mve_layout.fully_connected_constants``, no scratch).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ir import Activation
from .base import OpDef, register, require_rank, shape_error, tensor_bits
from . import cmsis_nn, fast_layout, mve_layout
from .conv import (apply_activation, bias_or_zeros, fast_constants, kernel_quant_context, quantize_weighted,
                   requant_output)
from .kernel import Kernel, KernelArgs, KernelCost, base_counts, kernel_target, quant_arrays, read, write


@dataclass(frozen=True)
class FullyConnectedAttrs:
    activation: Activation = field(default_factory=Activation)


def _fc_access(args: KernelArgs):
    """mcu_fully_connected_s8: input [rows, depth], filter [out_ch, depth], output [rows, out_ch]."""
    rows, depth, out_ch = args.context["rows"], args.context["accum_depth"], args.context["out_ch"]
    return [
        read(args.inputs[0], rows * depth, "input"),
        read(args.inputs[1], out_ch * depth, "weights"),
        read(args.inputs[2], 4 * out_ch, "bias"),
        write(args.output, rows * out_ch, "output"),
        *quant_arrays(args, out_ch),
    ], []


def _fc_counts(node, graph, g):
    f = base_counts(node, graph, g)
    out = graph.tensors[node.outputs[0]].size
    f["outputs"] = float(out)
    f["macs"] = float(out * graph.tensors[node.inputs[1]].shape[1])
    return f


def _fc_dsp_access(args: KernelArgs):
    """mcu_fully_connected_dsp_s8: input [rows, depth] (exactly), weights out_ch * K4(depth) ("octets"), folded
    bias and multiplier / shift out_ch entries, no scratch, output [rows, out_ch]."""
    rows, depth, out_ch = args.context["rows"], args.context["accum_depth"], args.context["out_ch"]
    return [
        read(args.inputs[0], rows * depth, "input"),
        read(args.array("weights"), out_ch * fast_layout.k4(depth), "weights"),
        read(args.array("bias"), 4 * out_ch, "bias"),
        write(args.output, rows * out_ch, "output"),
        *quant_arrays(args, out_ch),
    ], []


def _fc_dsp_counts(node, graph, g):
    """1 row x 8 channels per block of 4 input bytes (each widened in registers once per 8 channels)."""
    f = _fc_counts(node, graph, g)
    out_ch, depth = graph.tensors[node.inputs[1]].shape
    rows = graph.tensors[node.outputs[0]].size // out_ch
    f["blocks"] = rows * out_ch / 8 * fast_layout.k4(depth) / 4
    return f


FULLY_CONNECTED = Kernel("fully_connected.c.j2", _fc_access, KernelCost(
    ("calls", "outputs", "macs"), {"calls": 111.537, "outputs": 67.085, "macs": 6.987}, _fc_counts))
FULLY_CONNECTED_DSP = Kernel("fully_connected_dsp.c.j2", _fc_dsp_access, KernelCost(
    ("calls", "outputs", "blocks"), {"calls": 150.0, "outputs": 30.0, "blocks": 45.0}, _fc_dsp_counts,
    note="set by hand from ad_autoencoder's ten layers on qemu-m4 (640 -> 128 ... 128 -> 640: each within 7%)"),
    fast=True, header="mcunn_dsp.h", replaces=(1, 2))


def _fc_mve_access(args: KernelArgs):
    """mcu_fully_connected_mve_s8: input [rows, depth], weights out_ch * depth ("quads"), folded bias and
    multiplier / shift out_ch entries, no scratch, output [rows, out_ch]."""
    rows, depth, out_ch = args.context["rows"], args.context["accum_depth"], args.context["out_ch"]
    return [
        read(args.inputs[0], rows * depth, "input"),
        read(args.array("weights"), out_ch * depth, "weights"),
        read(args.array("bias"), 4 * out_ch, "bias"),
        write(args.output, rows * out_ch, "output"),
        *quant_arrays(args, out_ch),
    ], []


def _fc_mve_counts(node, graph, g):
    """2 input rows x 4 channels per block of the matrix core: per MAC, per output and per input row."""
    f = _fc_counts(node, graph, g)
    out_ch = graph.tensors[node.inputs[1]].shape[0]
    f["rows"] = float(graph.tensors[node.outputs[0]].size // out_ch)
    return f


FULLY_CONNECTED_MVE = Kernel("fully_connected_mve.c.j2", _fc_mve_access, KernelCost(
    ("calls", "rows", "outputs", "macs"), {"calls": 150.0, "rows": 148.0, "outputs": 17.1, "macs": 0.172},
    _fc_mve_counts, note="fitted on qemu-m55 by bench/kernels_mve.py (within 4-11%); 'calls' by hand"),
    fast=True, header="mcunn_mve.h", replaces=(1, 2))


@register
class FullyConnected(OpDef):
    name = "fully_connected"
    fuses_activation = True

    def infer_shapes(self, node, in_shapes):
        require_rank(node, in_shapes[1], 2, "weights")
        if not in_shapes[0] or in_shapes[0][-1] != in_shapes[1][1]:
            raise shape_error(node, f"input of shape {list(in_shapes[0])} against weights {list(in_shapes[1])} "
                                    f"(the last input dimension must be {in_shapes[1][1]})")
        if len(in_shapes) > 2 and node.inputs[2:3] != ("",) and int(np.prod(in_shapes[2])) != in_shapes[1][0]:
            raise shape_error(node, f"bias of shape {list(in_shapes[2])} for {in_shapes[1][0]} outputs")
        return [tuple(in_shapes[0][:-1]) + (in_shapes[1][0],)]

    def eval_float(self, node, graph, inputs):
        w = graph.tensors[node.inputs[1]].data.astype(np.float32)
        y = inputs[0].astype(np.float32) @ w.T + bias_or_zeros(graph, node, w.shape[0], np.float32)
        return [apply_activation(y, node.attrs.activation).astype(np.float32)]

    def quantize(self, node, ctx):
        return quantize_weighted(node, ctx, 0)

    def eval_int(self, node, graph, inputs):
        p = node.params
        w = graph.tensors[node.inputs[1]].data.astype(np.float64)
        x = inputs[0].astype(np.float64) + p.input_offset
        acc = np.rint(x @ w.T).astype(np.int64) + bias_or_zeros(graph, node, w.shape[0], np.int64)
        return [requant_output(acc, p, tensor_bits(graph, node.outputs[0]), graph.rounding)]

    def macs(self, node, graph):
        out = graph.tensors[node.outputs[0]].shape
        return int(np.prod(out)) * graph.tensors[node.inputs[1]].shape[1]

    def kernel(self, node, graph, board=None):
        ctx = kernel_quant_context(node, graph)
        x = graph.tensors[node.inputs[0]].shape
        w = graph.tensors[node.inputs[1]].shape
        ctx.update(rows=int(np.prod(x[:-1], dtype=np.int64)), accum_depth=w[1], out_ch=w[0])
        # the filter offset is 0 by construction (symmetric weights), the one thing the DSP kernel refuses
        target = kernel_target(board)
        if target.kernels == "cmsis-nn":
            return cmsis_nn.fully_connected_call(node, graph, target, ctx,
                                                 lambda: self.kernel(node, graph, target.auto()))
        bias = graph.tensors[node.inputs[2]].data if len(node.inputs) > 2 and node.inputs[2] else None
        if target.mve_problem() is None and mve_layout.fully_connected_problem(0) is None:
            fc = fast_constants(mve_layout.fully_connected_constants, graph.tensors[node.inputs[1]].data, bias,
                                node.params.input_offset)
            ctx.update(weights=fc.weights, bias=fc.bias)
            return FULLY_CONNECTED_MVE.call(ctx)
        why = target.dsp_problem()
        if why is not None:
            return FULLY_CONNECTED.call(ctx, reason=why)
        fc = fast_constants(fast_layout.fully_connected_constants, graph.tensors[node.inputs[1]].data, bias,
                            node.params.input_offset)
        ctx.update(weights=fc.weights, bias=fc.bias)
        return FULLY_CONNECTED_DSP.call(ctx)
