"""Max and average pooling over H, W (NHWC); global pooling is a window the size of the map.

Quantized, as TFLite: the output keeps the input's scale, zero point and bits; average pooling divides
the sum of the valid (non-padded) taps by their count, rounding half away from zero. A packed 4- or 2-bit
map runs ``mcu_max_pool_packed_s8`` / ``mcu_avg_pool_packed_s8`` (``packed_kernels``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..arith.bitwidth import saturate
from ..arith.tflite_semantics import mean_params
from ..ir import Activation
from .base import OpDef, activation_bounds, register, require_rank, shape_error, tensor_bits
from .conv import apply_activation
from . import cmsis_nn, packed_kernels
from .kernel import (Kernel, KernelArgs, KernelCost, base_counts, kernel_target, read, window_extent, window_taps,
                     write)
from .mean import MeanAttrs
from .spatial import Window, WindowPatchRule, im2col


@dataclass(frozen=True)
class PoolAttrs:
    window: Window
    activation: Activation = field(default_factory=Activation)


@dataclass(frozen=True)
class PoolParams:
    act_min: int
    act_max: int


def _pool_access(args: KernelArgs, average: bool = False):
    """mcu_max_pool_s8 / mcu_avg_pool_s8: input within input_dims (no dilation), output [N, OH, OW, C_in];
    mcu_avg_pool_s8 refuses a window with no tap inside the input (its mean is undefined)."""
    win = args.context["window"]
    in_d, out_d = args.in_dims[0], args.out_dims
    contract = []
    if average and in_d[0] > 0 and in_d[3] > 0 and out_d[1] > 0 and out_d[2] > 0:
        for axis, (size, count) in enumerate(((in_d[1], out_d[1]), (in_d[2], out_d[2]))):
            k, st, pad = win.kernel[axis], win.stride[axis], args.pads[axis]
            empty = [o for o in range(count) if not max(0, pad - o * st) < min(k, size - (o * st - pad))]
            if empty:
                contract.append(f"average-pool windows {empty[:4]} along {'HW'[axis]} cover no input")
    return [
        read(args.inputs[0], window_extent(in_d, out_d, win.kernel, win.stride, (1, 1), args.pads), "input"),
        write(args.output, in_d[0] * out_d[1] * out_d[2] * in_d[3], "output"),
    ], contract


def _pool_counts(node, graph, g):
    f = base_counts(node, graph, g)
    rows_v, cols_v = window_taps(node, g)
    c_out = graph.tensors[node.outputs[0]].shape[-1]
    f["pixels"] = float(g.out_h * g.out_w)
    f["taps"] = float(rows_v * cols_v * c_out)
    f["row_runs"] = float(rows_v * g.out_w * c_out)
    return f


_POOL_FEATURES = ("calls", "outputs", "row_runs", "taps")
MAX_POOL = Kernel("max_pool.c.j2", _pool_access, KernelCost(
    _POOL_FEATURES, {"calls": 155.367, "outputs": 86.742, "row_runs": 0.0, "taps": 10.976}, _pool_counts))
AVG_POOL = Kernel("avg_pool.c.j2", lambda args: _pool_access(args, average=True), KernelCost(
    _POOL_FEATURES, {"calls": 135.976, "outputs": 84.245, "row_runs": 9.096, "taps": 8.977}, _pool_counts))


class _Pool(WindowPatchRule, OpDef):
    fuses_activation = True

    def supports(self, node, graph):
        if tuple(node.attrs.window.dilation) != (1, 1):
            return f"dilated pooling (dilation {list(node.attrs.window.dilation)}): the pooling kernels take none"
        return None

    def infer_shapes(self, node, in_shapes):
        require_rank(node, in_shapes[0], 4, "input")
        n, h, w, c = in_shapes[0]
        problem = node.attrs.window.problem(h, w, pads_within_kernel=True)
        if problem:
            raise shape_error(node, problem)
        oh, ow = node.attrs.window.out_size(h, w)
        return [(n, oh, ow, c)]

    def _cols(self, node, x, pad_value):
        n, h, w, c = x.shape
        oh, ow = node.attrs.window.out_size(h, w)
        return im2col(x, node.attrs.window, oh, ow, pad_value)

    def quantize(self, node, ctx):
        q = ctx.quant[node.inputs[0]]
        ctx.quant[node.outputs[0]] = q
        lo, hi = activation_bounds(node.attrs.activation, q)
        return [node.replace(params=PoolParams(lo, hi))]

    def macs(self, node, graph):
        k = node.attrs.window.kernel
        return graph.tensors[node.outputs[0]].size * k[0] * k[1]

    def kernel(self, node, graph, board=None):
        ctx = {"window": node.attrs.window, "p": node.params}
        target = kernel_target(board)
        bits = tensor_bits(graph, node.inputs[0])
        if bits < 8:  # a packed 4- / 2-bit map (the output keeps its bits)
            return packed_kernels.pool_call(ctx, bits, self.implementation is AVG_POOL)
        if target.kernels == "cmsis-nn":
            return cmsis_nn.pool_call(node, graph, target, ctx, self.implementation is AVG_POOL,
                                      lambda: self.kernel(node, graph, target.auto()))
        return self.implementation.call(ctx)


@register
class MaxPool2D(_Pool):
    name = "max_pool2d"
    implementation = MAX_POOL

    def eval_float(self, node, graph, inputs):
        y = self._cols(node, inputs[0].astype(np.float32), -np.inf).max(axis=(3, 4))
        return [apply_activation(y, node.attrs.activation).astype(np.float32)]

    def eval_int(self, node, graph, inputs):
        p = node.params
        y = self._cols(node, inputs[0].astype(np.int32), -(1 << 20)).max(axis=(3, 4))
        return [saturate(y, tensor_bits(graph, node.outputs[0]), p.act_min, p.act_max)]


@register
class AvgPool2D(_Pool):
    name = "avg_pool2d"
    implementation = AVG_POOL

    def quantize(self, node, ctx):
        """As TFLite, the output keeps the input's params; except a global average (the window is the whole
        map, no padding, no fused clamp) whose output the model quantizes otherwise (onnxruntime's QDQ
        picks the pooled range): that is TFLite's MEAN, which rescales to any output params with one
        rounding, instead of an average at the input's scale and a second rounding into the model's."""
        x, out = node.inputs[0], node.outputs[0]
        in_q, want = ctx.quant[x], ctx.preset(out)
        _, h, w, _ = ctx.tensor(x).shape
        win = node.attrs.window
        is_global = tuple(win.kernel) == (h, w) and not any(win.pads) and node.attrs.activation == Activation()
        if (want is None or want.same_as(in_q) or not is_global or not want.is_per_tensor
                or in_q.bits != 8 or want.bits != 8):
            return super().quantize(node, ctx)
        ctx.quant[out] = want
        return [node.replace(op="mean", attrs=MeanAttrs((1, 2)),
                             params=mean_params(in_q.s, in_q.zp, want.s, want.zp, h * w))]

    def _sum_count(self, node, x):
        s = self._cols(node, x, 0).sum(axis=(3, 4))
        ones = np.ones((1,) + x.shape[1:3] + (1,), x.dtype)
        cnt = self._cols(node, ones, 0).sum(axis=(3, 4))
        return s, cnt

    def eval_float(self, node, graph, inputs):
        s, cnt = self._sum_count(node, inputs[0].astype(np.float64))
        return [apply_activation(s / cnt, node.attrs.activation).astype(np.float32)]

    def eval_int(self, node, graph, inputs):
        p = node.params
        s, cnt = self._sum_count(node, inputs[0].astype(np.int64))
        cnt = np.broadcast_to(cnt, s.shape)
        half = cnt // 2
        # C division truncates toward zero
        avg = np.where(s > 0, (s + half) // cnt, -((-(s - half)) // cnt))
        return [saturate(avg, tensor_bits(graph, node.outputs[0]), p.act_min, p.act_max)]
