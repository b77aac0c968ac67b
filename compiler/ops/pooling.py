"""Max and average pooling over H, W (NHWC); global pooling is a window the size of the map.

Quantized, as TFLite: the output keeps the input's scale, zero point and bits; average pooling divides
the sum of the valid (non-padded) taps by their count, rounding half away from zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..arith.bitwidth import saturate
from ..ir import Activation
from .base import KernelCall, OpDef, activation_bounds, register, require_rank, shape_error, tensor_bits
from .conv import apply_activation
from .spatial import Window, WindowPatchRule, im2col


@dataclass(frozen=True)
class PoolAttrs:
    window: Window
    activation: Activation = field(default_factory=Activation)


@dataclass(frozen=True)
class PoolParams:
    act_min: int
    act_max: int


class _Pool(WindowPatchRule, OpDef):
    fuses_activation = True

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
        return KernelCall(self.template, {"window": node.attrs.window, "p": node.params})


@register
class MaxPool2D(_Pool):
    name = "max_pool2d"
    template = "max_pool.c.j2"

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
    template = "avg_pool.c.j2"

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
