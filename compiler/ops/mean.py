"""MEAN over H, W with TFLite Micro's integer semantics (QuantizedMeanOrSum): the raw int8 sum minus
in_zp * count, requantized once by a multiplier that folds in 1/count. Output params may differ from
the input's (unlike average pooling). Used for TFLite MEAN; ONNX ReduceMean maps to average pooling."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..arith.tflite_semantics import mean_hw, mean_params
from .base import KernelCall, OpDef, register, require_bits, require_rank


@dataclass(frozen=True)
class MeanAttrs:
    pass


@register
class Mean(OpDef):
    name = "mean"

    def infer_shapes(self, node, in_shapes):
        require_rank(node, in_shapes[0], 4, "input")
        n, _, _, c = in_shapes[0]
        return [(n, 1, 1, c)]

    def eval_float(self, node, graph, inputs):
        return [inputs[0].mean(axis=(1, 2), keepdims=True).astype(np.float32)]

    def quantize(self, node, ctx):
        require_bits(node, ctx, 8, "TFLite Micro's integer MEAN")
        in_q = ctx.quant[node.inputs[0]]
        out_q = ctx.from_range(node.outputs[0])
        ctx.quant[node.outputs[0]] = out_q
        _, h, w, _ = ctx.tensor(node.inputs[0]).shape
        return [node.replace(params=mean_params(in_q.s, in_q.zp, out_q.s, out_q.zp, h * w))]

    def eval_int(self, node, graph, inputs):

        return [mean_hw(inputs[0], node.params, keep_dims=True)]

    def macs(self, node, graph):
        return graph.tensors[node.inputs[0]].size

    def kernel(self, node, graph, board=None):
        return KernelCall("mean.c.j2", {"p": node.params})
